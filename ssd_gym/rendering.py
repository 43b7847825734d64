"""Rendering: full-map pictures, a headless-safe ``human`` window, and episode videos."""
from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import numpy as np

from .core import constants as C

RENDER_MODES = ("human", "rgb_array")


def check_render_mode(render_mode, allowed) -> str | None:
    if render_mode is not None and render_mode not in allowed:
        raise ValueError(f"render_mode must be None or one of {list(allowed)}, got {render_mode!r}")
    return render_mode


def draw_world(engine, b: int = 0, scale: int = 16, show_beams: bool = True) -> np.ndarray:
    """uint8[H*scale, W*scale, 3] picture of world b. Agents are drawn as their colour with a
    white notch on the side they face (when scale >= 4)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    img = engine.world_image(b, show_beams=show_beams)
    big = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
    if scale >= 4:
        notch = max(1, scale // 4)
        mid0, mid1 = scale // 2 - notch // 2 - 1, scale // 2 + (notch + 1) // 2 + 1
        for i in range(engine.num_agents):
            r, c = engine.pos[b, i]
            y, x = r * scale, c * scale
            o = engine.orient[b, i]
            if o == C.UP:
                big[y:y + notch, x + mid0:x + mid1] = 255
            elif o == C.DOWN:
                big[y + scale - notch:y + scale, x + mid0:x + mid1] = 255
            elif o == C.LEFT:
                big[y + mid0:y + mid1, x:x + notch] = 255
            else:
                big[y + mid0:y + mid1, x + scale - notch:x + scale] = 255
    return big


class Renderer:
    """Owns the render state of one env: ``rgb_array`` returns pictures; ``human`` shows them in
    a pygame window when pygame and a display exist, and otherwise warns once and does nothing
    (so that headless machines never crash)."""

    def __init__(self, engine, render_mode: str | None, scale: int = 16, fps: int = 8, title: str = "ssd"):
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
            raise ValueError(f"render_scale must be a positive integer, got {scale!r}")
        self.engine = engine
        self.render_mode = render_mode
        self.scale = int(scale)
        self.fps = fps
        self.title = title
        self._window: Any = None
        self._clock: Any = None
        self._human_unavailable = False

    def render(self):
        frame = draw_world(self.engine, 0, self.scale)
        if self.render_mode == "rgb_array":
            return frame
        if self.render_mode == "human":
            self._show(frame)
        return None

    def _show(self, frame: np.ndarray) -> None:
        if self._human_unavailable:
            return
        if self._window is None:
            headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and os.name != "nt"
            try:
                if headless:
                    raise RuntimeError("no display")
                import pygame  # optional dependency: pip install "ssd-gym[human]"

                pygame.init()
                self._window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
                pygame.display.set_caption(self.title)
                self._clock = pygame.time.Clock()
            except Exception as exc:  # no pygame or no display: never crash
                self._human_unavailable = True
                warnings.warn(f"render_mode='human' cannot open a window ({exc}); nothing is shown. "
                              "Install pygame-ce and run with a display, or use render_mode='rgb_array'.",
                              stacklevel=3)
                return
        import pygame

        pygame.event.pump()
        surf = pygame.surfarray.make_surface(np.transpose(frame, (1, 0, 2)))
        self._window.blit(surf, (0, 0))
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None


def record_episode(env, policy: Callable[[str, Any], int] | Callable[[dict], dict] | None = None,
                   seed: int | None = None, max_steps: int | None = None,
                   with_views: bool = False) -> list[np.ndarray]:
    """Play one episode of a PettingZoo ``ParallelEnv`` and return its frames.

    ``policy`` is either ``policy(observations) -> {agent: action}`` (joint) or
    ``policy(agent, observation) -> action`` (per agent); ``None`` plays uniformly random actions.
    The env must have ``render_mode="rgb_array"``. With ``with_views`` every frame also shows
    each agent's egocentric view beneath the map.
    """
    import inspect

    if getattr(env, "render_mode", None) != "rgb_array":
        raise ValueError("record_episode needs an env made with render_mode='rgb_array'")
    obs, _ = env.reset(seed=seed)
    per_agent = policy is not None and sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in inspect.signature(policy).parameters.values()) == 2  # noqa: E501
    frames = [_frame(env, with_views)]
    steps = 0
    while env.agents and (max_steps is None or steps < max_steps):
        if policy is None:
            actions = {a: env.action_space(a).sample() for a in env.agents}
        elif per_agent:
            actions = {a: policy(a, obs[a]) for a in env.agents}
        else:
            actions = policy(obs)
        obs, _, _, _, _ = env.step(actions)
        frames.append(_frame(env, with_views))
        steps += 1
    return frames


def _frame(env, with_views: bool) -> np.ndarray:
    frame = env.render()
    if not with_views:
        return frame
    base = env.unwrapped
    views = base.agent_views()
    scale = max(1, base.renderer.scale // 2)
    tiles = [np.repeat(np.repeat(v, scale, 0), scale, 1) for v in views.values()]
    gap = np.zeros((tiles[0].shape[0], 4, 3), dtype=np.uint8)
    row = np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)
    width = max(frame.shape[1], row.shape[1])
    pad = lambda im: np.pad(im, ((0, 0), (0, width - im.shape[1]), (0, 0)))  # noqa: E731
    return np.concatenate([pad(frame), np.zeros((4, width, 3), np.uint8), pad(row)], axis=0)


def check_video_path(path) -> str:
    """Return ``path``'s lower-case extension if this module can write it, else raise a
    ValueError (or an ImportError for ``.mp4`` without imageio-ffmpeg). Call it before playing
    anything, so that a bad path fails before the work it would have saved."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"video path must be a str or os.PathLike, got {type(path).__name__}")
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in (".gif", ".mp4"):
        raise ValueError(f"video path must end in .gif or .mp4, got {os.fspath(path)!r}")
    if ext == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as exc:
            raise ImportError("writing .mp4 needs imageio-ffmpeg: pip install 'ssd-gym[video]' "
                              "(or write a .gif)") from exc
    return ext


def write_video(frames: list[np.ndarray], path: str, fps: int = 8, min_side: int = 256) -> str:
    """Write frames to ``path``: ``.gif`` (imageio + Pillow) or ``.mp4`` (needs imageio-ffmpeg,
    ``pip install "ssd-gym[video]"``). Frames whose short side is under ``min_side`` pixels are
    enlarged by the smallest whole factor that reaches it (nearest neighbour, so cells stay sharp);
    ``min_side=0`` writes them as they are. Returns the path."""
    import imageio.v3 as iio

    ext = check_video_path(path)
    if isinstance(min_side, bool) or not isinstance(min_side, (int, np.integer)) or min_side < 0:
        raise ValueError(f"min_side must be a non-negative integer, got {min_side!r}")
    if not frames:
        raise ValueError("no frames to write")
    short = min(frames[0].shape[:2])
    factor = -(-int(min_side) // short) if short < min_side else 1
    if factor > 1:
        frames = [np.repeat(np.repeat(f, factor, axis=0), factor, axis=1) for f in frames]
    if ext == ".gif":
        arr = np.stack(frames)
        # Pillow merges identical consecutive GIF frames; nudge one bit of one pixel of each
        # repeated frame (invisible) so that a GIF keeps exactly one frame per step.
        same = np.all(arr[1:] == arr[:-1], axis=(1, 2, 3))
        if same.any():
            arr = arr.copy()
            idx = np.flatnonzero(same) + 1
            arr[idx, 0, 0, 2] ^= (idx % 2 + 1).astype(np.uint8)
        iio.imwrite(path, arr, duration=1000.0 / fps, loop=0)
    else:
        # yuv420p needs even sizes
        arr = np.stack(frames)
        h, w = arr.shape[1] - arr.shape[1] % 2, arr.shape[2] - arr.shape[2] % 2
        import imageio.v2 as iio2

        iio2.mimwrite(path, list(arr[:, :h, :w]), fps=fps, macro_block_size=1)
    return path


def save_episode_video(env, path: str, policy=None, seed: int | None = None, fps: int = 8,
                       max_steps: int | None = None, with_views: bool = False, min_side: int = 256) -> str:
    """Play one episode with ``policy`` (see :func:`record_episode`) and write it to GIF/MP4,
    enlarged to at least ``min_side`` pixels on its short side (see :func:`write_video`)."""
    check_video_path(path)
    return write_video(record_episode(env, policy, seed=seed, max_steps=max_steps, with_views=with_views),
                       path, fps=fps, min_side=min_side)
