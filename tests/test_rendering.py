"""Rendering: rgb_array frames, headless ``human`` mode, episode videos."""
from __future__ import annotations

import sys
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import ssd_gym
from ssd_gym.core import constants as C

ALL_GAMES = sorted(ssd_gym.GAMES)


# ---- rgb_array -------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 3, 16])
@pytest.mark.parametrize("name", ALL_GAMES)
def test_rgb_array_frame_shape_and_content(name, scale):
    env = ssd_gym.parallel_env(name, render_mode="rgb_array", render_scale=scale, max_cycles=5)
    H, W = env.game.layout.height, env.game.layout.width
    env.reset(seed=2)
    for t in range(3):
        frame = env.render()
        assert isinstance(frame, np.ndarray)
        assert frame.shape == (H * scale, W * scale, 3) and frame.dtype == np.uint8
        # each cell's top-left pixel is the cell's colour (the facing notch never reaches it)
        img = env.engine.world_image(0)
        assert np.array_equal(frame[::scale, ::scale], img)
        for i in range(env.game.num_agents):
            r, c = env.engine.pos[0, i]
            assert np.array_equal(frame[r * scale, c * scale], env.engine.agent_colours[i])
        env.step({a: 5 for a in env.agents})  # turn: the picture of the facing notch changes
    # a fresh array every call: the caller may keep or modify it
    f1 = env.render()
    f1[:] = 0
    assert env.render().any()


def test_rgb_array_draws_facing_notch():
    env = ssd_gym.parallel_env("harvest_small", render_mode="rgb_array", render_scale=8, max_cycles=5)
    env.reset(seed=0)
    s = 8
    r, c = env.engine.pos[0, 0]
    for facing in (C.UP, C.RIGHT, C.DOWN, C.LEFT):
        env.engine.orient[0, 0] = facing
        cell = env.render()[r * s:(r + 1) * s, c * s:(c + 1) * s]
        white = np.all(cell == 255, axis=-1)
        assert white.any()
        rows, cols = np.nonzero(white)
        side = {C.UP: rows.max() < s // 2, C.DOWN: rows.min() >= s // 2,
                C.LEFT: cols.max() < s // 2, C.RIGHT: cols.min() >= s // 2}
        assert side[facing], f"notch on the wrong side for facing {facing}"


def test_state_is_one_pixel_per_cell():
    env = ssd_gym.parallel_env("cleanup", max_cycles=5)
    env.reset(seed=0)
    st = env.state()
    assert st.shape == (env.game.layout.height, env.game.layout.width, 3) and st.dtype == np.uint8
    assert env.state_space.contains(st)


@pytest.mark.parametrize("name", ALL_GAMES)
def test_agent_views_are_observations(name):
    env = ssd_gym.parallel_env(name, max_cycles=5)
    obs, _ = env.reset(seed=1)
    views = env.agent_views()
    assert list(views) == env.possible_agents
    for a in env.possible_agents:
        assert views[a].shape == (15, 15, 3) and np.array_equal(views[a], obs[a]["rgb"])


def test_render_without_mode_returns_none_and_warns():
    env = ssd_gym.parallel_env("harvest_small", max_cycles=5)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


# ---- human ---------------------------------------------------------------------------------
@pytest.mark.parametrize("display", [None, ":99"])  # no display; a display that cannot be opened
def test_human_mode_headless_does_not_crash(monkeypatch, display):
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if display is None:
        monkeypatch.delenv("DISPLAY", raising=False)
    else:
        monkeypatch.setenv("DISPLAY", display)
        monkeypatch.setenv("SDL_VIDEODRIVER", "x11")  # if pygame is installed, it must fail to open
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = ssd_gym.parallel_env("cleanup_small", render_mode="human", max_cycles=4)
        env.reset(seed=0)
        assert env.render() is None
        while env.agents:
            env.step({a: 0 for a in env.agents})
            assert env.render() is None
        env.close()
        env.close()  # closing twice is fine
    mine = [w for w in caught if "cannot open a window" in str(w.message)]
    assert len(mine) == 1, "headless human mode should warn exactly once"
    assert "rgb_array" in str(mine[0].message)


def test_human_mode_gym_env():
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make("SSD/BoxTrapped-v0", render_mode="human")
        env.reset(seed=0)
        env.step(env.action_space.sample())
        assert env.render() is None
        env.close()
    env = gym.make("SSD/BoxTrapped-v0", render_mode="rgb_array", render_scale=2)
    env.reset(seed=0)
    assert env.render().shape == (9 * 2, 9 * 2, 3)


def test_vecenv_images():
    venv = ssd_gym.vector_env("harvest_small", 3, max_cycles=5)
    venv.seed(0)
    venv.reset()
    imgs = venv.get_images()
    lay = venv.game.layout
    assert len(imgs) == 3 and all(i.shape == (lay.height * 8, lay.width * 8, 3) for i in imgs)
    assert venv.render().shape == (lay.height * 16, lay.width * 16, 3)


# ---- videos ----------------------------------------------------------------------------------
def read_gif(path):
    frames = iio.imread(path, index=None)
    with Image.open(path) as im:
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info.get("duration"))
    return frames, durations


def test_gif_from_per_agent_policy(tmp_path):
    env = ssd_gym.parallel_env("cleanup_small", render_mode="rgb_array", render_scale=4, max_cycles=7)
    calls = []

    def policy(agent, obs):
        calls.append(agent)
        assert env.observation_space(agent).contains(obs)
        return 5  # TURN_CLOCKWISE: every frame differs from the one before

    path = tmp_path / "ep.gif"
    out = ssd_gym.save_episode_video(env, str(path), policy=policy, seed=3, fps=10)
    assert out == str(path) and path.stat().st_size > 0
    frames, durations = read_gif(path)
    steps = 7
    H, W = env.game.layout.height * 4, env.game.layout.width * 4
    factor = -(-256 // min(H, W))  # enlarged by a whole factor to >= 256 px on the short side
    assert factor > 1 and frames.shape[0] == steps + 1
    assert frames.shape[1:3] == (H * factor, W * factor) and min(frames.shape[1:3]) >= 256
    assert len(calls) == steps * 3 and set(calls) == set(env.possible_agents)
    assert all(d == pytest.approx(100, abs=10) for d in durations)
    # the frames are the episode's: replay it and compare
    expected = ssd_gym.record_episode(env, lambda a, o: 5, seed=3)
    assert len(expected) == steps + 1
    for k in (0, steps):
        big = np.repeat(np.repeat(expected[k], factor, 0), factor, 1)
        assert np.array_equal(frames[k][..., :3], big)


@pytest.mark.parametrize("name", ALL_GAMES)
def test_default_videos_are_big_enough_to_see(tmp_path, name):
    env = ssd_gym.parallel_env(name, render_mode="rgb_array", max_cycles=1)
    frames, _ = read_gif(ssd_gym.save_episode_video(env, str(tmp_path / "ep.gif"), seed=0))
    assert min(frames.shape[1:3]) >= 256
    raw = env.render()
    # never shrunk and only enlarged by a whole factor, so cells stay sharp squares
    assert frames.shape[1] % raw.shape[0] == 0 and frames.shape[1] // raw.shape[0] == frames.shape[2] // raw.shape[1]


def test_min_side_zero_writes_frames_as_they_are(tmp_path):
    env = ssd_gym.parallel_env("box_trapped", render_mode="rgb_array", render_scale=2, max_cycles=2)
    frames, _ = read_gif(ssd_gym.save_episode_video(env, str(tmp_path / "ep.gif"), seed=0, min_side=0))
    assert frames.shape[1:3] == env.render().shape[:2]
    with pytest.raises(ValueError, match=r"min_side must be a non-negative integer"):
        ssd_gym.write_video([env.render()], str(tmp_path / "x.gif"), min_side=-1)
    assert not (tmp_path / "x.gif").exists()


def test_gif_from_joint_policy_and_max_steps(tmp_path):
    env = ssd_gym.parallel_env("harvest_small", render_mode="rgb_array", render_scale=4)
    seen = []

    def joint(observations):
        seen.append(sorted(observations))
        return {a: 6 for a in observations}  # TURN_COUNTERCLOCKWISE

    path = tmp_path / "joint.gif"
    ssd_gym.save_episode_video(env, str(path), policy=joint, seed=0, max_steps=4)
    frames, _ = read_gif(path)
    assert frames.shape[0] == 4 + 1
    assert seen == [env.possible_agents] * 4


@pytest.mark.parametrize("kind", ["joint", "per_agent"])
def test_policy_with_optional_parameters(kind):
    """Policies often take optional extras (``deterministic=True``, an RNN state...); only the
    required positional parameters decide whether a policy is joint or per-agent."""
    env = ssd_gym.parallel_env("box_trapped", render_mode="rgb_array", render_scale=2, max_cycles=3)
    if kind == "joint":
        def policy(observations, deterministic=True):
            return {a: 5 for a in observations}
    else:
        def policy(agent, obs, deterministic=True):
            return 5
    frames = ssd_gym.record_episode(env, policy, seed=0)
    assert len(frames) == 4


def test_random_policy_and_views():
    env = ssd_gym.parallel_env("cleanup_small", render_mode="rgb_array", render_scale=4, max_cycles=3)
    frames = ssd_gym.record_episode(env, None, seed=0, with_views=True)
    assert len(frames) == 4
    plain = env.render()
    H, W = plain.shape[:2]
    f = frames[-1]
    assert np.array_equal(f[:H, :W], plain)
    # beneath the map: each agent's view at half the render scale, agent 0 first
    tile = np.repeat(np.repeat(env.agent_views()["agent_0"], 2, 0), 2, 1)
    assert np.array_equal(f[H + 4:H + 4 + tile.shape[0], :tile.shape[1]], tile)


def test_gif_keeps_identical_frames(tmp_path):
    env = ssd_gym.parallel_env("box_trapped", render_mode="rgb_array", render_scale=2, max_cycles=5)
    path = tmp_path / "still.gif"
    ssd_gym.save_episode_video(env, str(path), policy=lambda a, o: 4, seed=0)  # everyone STAYs
    frames, _ = read_gif(path)
    assert frames.shape[0] == 5 + 1


def test_gif_of_still_episode_has_right_total_duration(tmp_path):
    env = ssd_gym.parallel_env("box_trapped", render_mode="rgb_array", render_scale=2, max_cycles=5)
    path = tmp_path / "still.gif"
    ssd_gym.save_episode_video(env, str(path), policy=lambda a, o: 4, seed=0, fps=5)
    _, durations = read_gif(path)
    assert sum(durations) == pytest.approx(6 * 200, abs=10)


def test_mp4_works_or_explains(tmp_path, monkeypatch):
    env = ssd_gym.parallel_env("box_trapped", render_mode="rgb_array", render_scale=3, max_cycles=3)
    path = tmp_path / "ep.mp4"
    try:
        ssd_gym.save_episode_video(env, str(path), seed=0)
    except ImportError as exc:
        assert "imageio-ffmpeg" in str(exc) and "pip install" in str(exc)
        assert not path.exists()
    else:
        assert path.stat().st_size > 0
        assert len(iio.imread(path, index=None)) == 4
    # and without imageio-ffmpeg it must be the ImportError with the install hint
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(ImportError, match=r"imageio-ffmpeg.*pip install"):
        ssd_gym.save_episode_video(env, str(tmp_path / "b.mp4"), seed=0)
    assert not (tmp_path / "b.mp4").exists()


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [0, -1, 1.5, True, "2", None])
def test_bad_scale_raises(scale):
    env = ssd_gym.parallel_env("harvest_small", max_cycles=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"scale must be a positive integer"):
        ssd_gym.draw_world(env.engine, 0, scale)
    with pytest.raises(ValueError, match=r"render_scale must be a positive integer"):
        ssd_gym.parallel_env("harvest_small", render_mode="rgb_array", render_scale=scale)


def test_bad_video_calls(tmp_path):
    env = ssd_gym.parallel_env("box_trapped", render_mode="rgb_array", max_cycles=2)
    played = []
    with pytest.raises(ValueError, match=r"must end in .gif or .mp4, got '.*ep.avi'"):
        ssd_gym.save_episode_video(env, str(tmp_path / "ep.avi"), policy=lambda a, o: played.append(a) or 4, seed=0)
    assert played == [] and env.agents == []  # refused before playing (the env was never reset)
    with pytest.raises(ValueError, match=r"no frames to write"):
        ssd_gym.write_video([], str(tmp_path / "x.gif"))
    no_render = ssd_gym.parallel_env("box_trapped", max_cycles=2)
    with pytest.raises(ValueError, match=r"needs an env made with render_mode='rgb_array'"):
        ssd_gym.save_episode_video(no_render, str(tmp_path / "x.gif"))
    assert not (tmp_path / "x.gif").exists()
