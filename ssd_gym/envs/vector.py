"""Stable-Baselines3 ``VecEnv`` face: B worlds x N agents = B*N slots, stepped in the engine's
arrays. Slot ``b * N + i`` is agent i of world b."""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from ..core.engine import Engine
from ..games import make_game
from ..metrics import INFO_KEY
from .parallel import agent_ids
from .spaces import agent_observation_space, check_action, check_obs_mode, check_seed


class SSDVecEnv(VecEnv):
    """Many worlds of one game as an SB3 ``VecEnv`` whose slots are (world, agent) pairs.

    * ``step`` takes int[B*N] actions; worlds whose episode ends are reset at once (SB3
      convention): their slots get ``done=True``, ``info["terminal_observation"]``,
      ``info["TimeLimit.truncated"]=True``, ``info["episode_metrics"]`` (the episode's social-outcome
      metrics plus ``agent_return``) and ``info["episode"]`` in SB3 Monitor's exact format
      ``{"r", "l", "t"}`` (slot return, length, seconds since construction), so that SB3 logs
      ``ep_rew_mean`` without a ``VecMonitor`` (one overwrites it with its own); the returned
      observation is the new episode's first.
    * ``info["extrinsic_reward"]`` holds each slot's game reward (wrappers keep it).
    * ``seed(s)`` seeds world b with ``s + b``: world b then replays exactly what
      ``parallel_env(...).reset(seed=s + b)`` does with the same actions.
    """

    def __init__(self, game: str = "cleanup", num_envs: int = 1, obs_mode: str = "dict", **options: Any):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs (number of worlds) must be a positive integer, got {num_envs!r}")
        self.obs_mode = check_obs_mode(obs_mode)
        self.game = make_game(game, **options)
        self.engine = Engine(self.game, num_worlds=int(num_envs))
        self.num_worlds = int(num_envs)
        self.num_agents = self.game.num_agents
        self.possible_agents = agent_ids(self.num_agents)
        self.num_actions = self.game.num_actions
        obs_space = agent_observation_space(self.num_agents, self.num_actions, self.engine.view_size, obs_mode)
        self.render_mode = "rgb_array"  # set first: SB3's VecEnv.__init__ reads it
        super().__init__(self.num_worlds * self.num_agents, obs_space, spaces.Discrete(self.num_actions))
        self._actions: np.ndarray | None = None
        self._seeds: list[int | None] = [None] * self.num_worlds
        self._seeded = False
        self._t_start = time.time()

    # ---- helpers ---------------------------------------------------------------------------
    def _flat_obs(self):
        ob = self.engine.observe()
        S = self.num_envs
        rgb = ob.rgb.reshape(S, *ob.rgb.shape[2:])
        if self.obs_mode == "rgb":
            return rgb
        out = {"rgb": rgb, "prev_action": ob.prev_action.reshape(S)}
        if self.num_agents > 1:
            out["others_prev_actions"] = ob.others_prev_actions.reshape(S, self.num_agents - 1)
            out["others_visible"] = ob.others_visible.reshape(S, self.num_agents - 1)
        return out

    def _slot_obs(self, obs, slot: int):
        if isinstance(obs, dict):
            return {k: v[slot] for k, v in obs.items()}
        return obs[slot]

    # ---- VecEnv API ------------------------------------------------------------------------
    def reset(self):
        if not self._seeded:
            for b in range(self.num_worlds):
                self.engine.seed_world(b, self._seeds[b])
            self._seeded = True
        self.engine.reset()
        self._seeds = [None] * self.num_worlds
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._flat_obs()

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Seed world b with ``seed + b`` at the next ``reset()``."""
        seed = check_seed(seed)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._seeds = [seed + b for b in range(self.num_worlds)]
        self._seeded = False
        return [seed + b for b in range(self.num_worlds) for _ in range(self.num_agents)]

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) and a.shape != (self.num_envs, 1):
            raise ValueError(f"expected {self.num_envs} actions (one per slot), got shape {a.shape}")
        flat = a.reshape(-1)
        if a.dtype.kind not in "iu":  # same rules and messages as the other faces (floats refused)
            for i, v in enumerate(flat.tolist() if a.dtype.kind == "O" else flat):
                check_action(v, self.num_actions, f"slot {i}")
        bad = np.flatnonzero((flat < 0) | (flat >= self.num_actions))
        if bad.size:
            check_action(flat[bad[0]], self.num_actions, f"slot {bad[0]}")
        a = a.reshape(self.num_worlds, self.num_agents).astype(np.int64, copy=False)
        self._actions = a

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        if not self._seeded:
            raise RuntimeError("call reset() before step()")
        rewards = self.engine.step(self._actions).reshape(-1).astype(np.float32)
        self._actions = None
        done_worlds = self.engine.truncated()
        dones = np.repeat(done_worlds, self.num_agents)
        infos = [{"extrinsic_reward": r} for r in rewards.tolist()]
        if done_worlds.any():
            terminal = self._flat_obs()
            N = self.num_agents
            elapsed = round(time.time() - self._t_start, 6)
            for b in np.flatnonzero(done_worlds):
                m = self.engine.episode_metrics(int(b))
                for i in range(N):
                    slot = int(b) * N + i
                    infos[slot]["terminal_observation"] = self._slot_obs(terminal, slot)
                    infos[slot]["TimeLimit.truncated"] = True
                    infos[slot][INFO_KEY] = dict(m, agent_return=m["returns"][i])
                    infos[slot]["episode"] = {"r": m["returns"][i], "l": m["episode_length"], "t": elapsed}
            self.engine.reset(done_worlds)
        return self._flat_obs(), rewards, dones, infos

    def close(self) -> None:
        pass

    def get_images(self) -> Sequence[np.ndarray]:
        from ..rendering import draw_world

        return [draw_world(self.engine, b, 8) for b in range(self.num_worlds)]

    def render(self, mode: str | None = None):
        from ..rendering import draw_world

        return draw_world(self.engine, 0, 16)

    # attribute plumbing (slots share one engine)
    def _slots(self, indices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._slots(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        fn = getattr(self, method_name)
        return [fn(*method_args, **method_kwargs) for _ in self._slots(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._slots(indices)]
