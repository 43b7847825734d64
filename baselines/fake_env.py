"""A tiny stand-in for ``ssd_gym.vector_env`` that follows the same VecEnv contract.

It exists so the zoo's driver and commands can be tested quickly and independently of the real games
(game name ``"fake"``). Each agent sees a random coloured 15x15 view; the colour of the centre cell
names the action that earns +1 this step, so a learner can improve on it within a few hundred steps.

Contract (shared with ``ssd_gym.vector_env``): ``num_envs = num_worlds * num_agents`` slots,
slot = world * N + agent; Dict observations ``rgb`` / ``prev_action`` / ``others_prev_actions`` /
``others_visible`` (or plain RGB with ``obs_mode="rgb"``); all agents of a world are truncated
together at ``max_cycles`` with ``terminal_observation``, ``TimeLimit.truncated`` and an ``episode``
record; ``infos[i]["extrinsic_reward"]``; auto-reset; ``seed(s)`` seeds world b with ``s + b``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from ssd_gym.metrics import INFO_KEY, equality, equality_weighted_return

VIEW = 15


class FakeSSDVecEnv(VecEnv):
    """Batched worlds x agents, vectorised in numpy (see module docstring)."""

    def __init__(
        self,
        num_envs: int = 2,
        num_agents: int = 2,
        max_cycles: int = 20,
        num_actions: int = 4,
        obs_mode: str = "dict",
        render_mode: str | None = None,
    ) -> None:
        if obs_mode not in ("dict", "rgb"):
            raise ValueError(f"obs_mode must be 'dict' or 'rgb', got {obs_mode!r}")
        self.num_worlds, self.num_agents, self.max_cycles = num_envs, num_agents, max_cycles
        self.possible_agents = [f"player_{i}" for i in range(num_agents)]
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        A, N = num_actions, num_agents
        rgb = spaces.Box(0, 255, (VIEW, VIEW, 3), np.uint8)
        if obs_mode == "rgb":
            obs_space: spaces.Space = rgb
        else:
            keys: dict[str, spaces.Space] = {"rgb": rgb, "prev_action": spaces.Discrete(A + 1)}
            if N > 1:
                keys["others_prev_actions"] = spaces.MultiDiscrete([A + 1] * (N - 1))
                keys["others_visible"] = spaces.MultiBinary(N - 1)
            obs_space = spaces.Dict(keys)
        super().__init__(num_envs * num_agents, obs_space, spaces.Discrete(A))
        self._rngs = [np.random.default_rng(b) for b in range(num_envs)]
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._target = np.zeros(self.num_envs, dtype=np.int64)
        self._prev = np.full(self.num_envs, A, dtype=np.int64)
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._actions: np.ndarray | None = None

    # --- contract -------------------------------------------------------------------------
    def seed(self, seed: int | None = None) -> list[int | None]:
        base = 0 if seed is None else int(seed)
        self._rngs = [np.random.default_rng(base + b) for b in range(self.num_worlds)]
        return [base + b for b in range(self.num_worlds)]

    def reset(self) -> Any:
        for b in range(self.num_worlds):
            self._reset_world(b)
        return self._obs()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(-1).astype(np.int64)

    def step_wait(self) -> Any:
        assert self._actions is not None, "step_async must come first"
        a = self._actions
        rewards = (a == self._target).astype(np.float32)
        self._returns += rewards
        self._prev = a.copy()
        self._t += 1
        self._draw_targets()
        obs = self._obs()
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{"extrinsic_reward": float(r)} for r in rewards]
        N = self.num_agents
        for b in np.nonzero(self._t >= self.max_cycles)[0]:
            sl = slice(b * N, (b + 1) * N)
            rets = self._returns[sl].copy()
            for i in range(b * N, (b + 1) * N):
                dones[i] = True
                infos[i]["terminal_observation"] = _index(obs, i)
                infos[i]["TimeLimit.truncated"] = True
                infos[i]["episode"] = {"r": float(self._returns[i]), "l": int(self._t[b]), "t": 0.0}
                infos[i][INFO_KEY] = {
                    "agent_return": float(self._returns[i]),
                    "returns": rets.tolist(),
                    "episode_length": int(self._t[b]),
                    "collective_return": float(rets.sum()),
                    "equality": equality(rets),
                    "equality_weighted_return": equality_weighted_return(rets),
                    "sustainability": float(self.max_cycles / 2),
                    "peace": float(N),
                }
            self._reset_world(int(b))
        if dones.any():
            obs = self._obs()
        return obs, rewards, dones, infos

    def close(self) -> None:
        pass

    def render(self, mode: str | None = None) -> np.ndarray:
        """The first world's views side by side (enough for a video)."""
        rgb = self._images()[: self.num_agents]
        return np.concatenate(list(rgb), axis=1)

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    # --- internals ------------------------------------------------------------------------
    def _reset_world(self, b: int) -> None:
        N = self.num_agents
        self._t[b] = 0
        self._returns[b * N : (b + 1) * N] = 0
        self._prev[b * N : (b + 1) * N] = self.action_space.n
        self._target[b * N : (b + 1) * N] = self._rngs[b].integers(0, self.action_space.n, N)

    def _draw_targets(self) -> None:
        N = self.num_agents
        for b in range(self.num_worlds):
            self._target[b * N : (b + 1) * N] = self._rngs[b].integers(0, self.action_space.n, N)

    def _images(self) -> np.ndarray:
        img = np.zeros((self.num_envs, VIEW, VIEW, 3), dtype=np.uint8)
        # the target action is painted as a distinct colour over the whole view
        palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                            [255, 0, 255], [128, 128, 128], [255, 128, 0], [128, 0, 255]], dtype=np.uint8)
        img[:] = palette[self._target % len(palette)][:, None, None, :]
        return img

    def _obs(self) -> Any:
        rgb = self._images()
        if self.obs_mode == "rgb":
            return rgb
        N, A = self.num_agents, self.action_space.n
        obs: dict[str, np.ndarray] = {"rgb": rgb, "prev_action": self._prev.copy()}
        if N > 1:
            prev = self._prev.reshape(self.num_worlds, N)
            others = np.stack([np.delete(prev, i, axis=1) for i in range(N)], axis=1).reshape(self.num_envs, N - 1)
            obs["others_prev_actions"] = others.astype(np.int64)
            obs["others_visible"] = np.ones((self.num_envs, N - 1), dtype=np.int8)
            del A
        return obs


def _index(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]
