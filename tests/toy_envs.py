"""Test doubles of the wrappers' tests: a tiny stand-in for the ssd_gym games (no simulator).

:class:`ToySSD` is a PettingZoo ``ParallelEnv`` with the ssd_gym observation contract (dict with
``rgb`` (15, 15, 3) uint8, ``prev_action``, ``others_prev_actions`` (masked by visibility, value A =
unknown), ``others_visible``; or just the image with ``obs_mode="rgb"``), truncation at
``max_cycles`` and ``info["extrinsic_reward"]``.  Rewards come from ``reward_fn(t, actions, rng)``
(default: random 0/1 apples) and visibility from ``visibility_fn(t, rng)`` (default: everyone sees
everyone).  :class:`ToyVecEnv` batches ``num_worlds`` of them behind the ``ssd_gym.vector_env``
VecEnv contract (slot = world * N + agent, auto-reset, ``terminal_observation``).
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces
from pettingzoo.utils.env import ParallelEnv
from stable_baselines3.common.vec_env import VecEnv


def _default_rewards(t, actions, rng):
    return (rng.random(len(actions)) < 0.3).astype(np.float64)


class ToySSD(ParallelEnv):
    metadata = {"name": "toy_ssd_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, num_agents: int = 3, num_actions: int = 5, max_cycles: int = 50,
                 obs_mode: str = "dict", reward_fn=None, visibility_fn=None, view: int = 15):
        self.possible_agents = [f"agent_{i}" for i in range(num_agents)]
        self.agents = []
        self.A, self.N, self.max_cycles, self.view = num_actions, num_agents, max_cycles, view
        self.obs_mode = obs_mode
        self.reward_fn = reward_fn or _default_rewards
        self.visibility_fn = visibility_fn
        self.rng = np.random.default_rng()
        img = spaces.Box(0, 255, (view, view, 3), np.uint8)
        n, a = num_agents, num_actions
        if obs_mode == "rgb":
            self._obs_space = img
        else:
            d = {"rgb": img, "prev_action": spaces.Discrete(a + 1)}
            if n > 1:
                d["others_prev_actions"] = spaces.MultiDiscrete([a + 1] * (n - 1))
                d["others_visible"] = spaces.MultiBinary(n - 1)
            self._obs_space = spaces.Dict(d)
        self._act_space = spaces.Discrete(a)

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent):
        return self._obs_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent):
        return self._act_space

    def _visibility(self):
        if self.visibility_fn is None:
            return np.ones((self.N, self.N), dtype=bool)
        v = np.asarray(self.visibility_fn(self.t, self.rng), dtype=bool).copy()
        np.fill_diagonal(v, True)
        return v

    def _obs(self):
        vis = self._visibility()
        out = {}
        for k, agent in enumerate(self.possible_agents):
            img = self.rng.integers(0, 256, (self.view, self.view, 3), dtype=np.uint8)
            if self.obs_mode == "rgb":
                out[agent] = img
                continue
            others = [j for j in range(self.N) if j != k]
            o = {"rgb": img, "prev_action": int(self.prev[k])}
            if self.N > 1:
                ov = vis[k, others].astype(np.int8)
                o["others_prev_actions"] = np.where(ov == 1, self.prev[others], self.A).astype(np.int64)
                o["others_visible"] = ov
            out[agent] = o
        return out

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        self.agents = list(self.possible_agents)
        self.prev = np.full(self.N, self.A, dtype=np.int64)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("step() after the episode ended; call reset()")
        act = np.array([int(actions[a]) for a in self.possible_agents], dtype=np.int64)
        r = np.asarray(self.reward_fn(self.t, act, self.rng), dtype=np.float64)
        self.t += 1
        self.prev = act
        obs = self._obs()
        done = self.t >= self.max_cycles
        rew = {a: float(r[i]) for i, a in enumerate(self.agents)}
        infos = {a: {"extrinsic_reward": float(r[i])} for i, a in enumerate(self.agents)}
        term = {a: False for a in self.agents}
        trunc = {a: done for a in self.agents}
        if done:
            self.agents = []
        return obs, rew, term, trunc, infos


class ToyVecEnv(VecEnv):
    """``num_worlds`` ToySSD copies behind the batched-VecEnv contract of ``ssd_gym.vector_env``."""

    def __init__(self, num_worlds: int = 2, **kwargs):
        self.envs = [ToySSD(**kwargs) for _ in range(num_worlds)]
        e = self.envs[0]
        self.num_worlds, self.num_agents = num_worlds, e.N
        self.possible_agents = list(e.possible_agents)
        super().__init__(num_worlds * e.N, e.observation_space("agent_0"), e.action_space("agent_0"))
        self._seeds = [None] * num_worlds
        self._actions = None

    def _stack(self, per_world):
        flat = [per_world[w][a] for w in range(self.num_worlds) for a in self.possible_agents]
        if isinstance(flat[0], dict):
            return {k: np.stack([o[k] for o in flat]) for k in flat[0]}
        return np.stack(flat)

    def seed(self, seed=None):
        self._seeds = [None if seed is None else seed + b for b in range(self.num_worlds)]
        return self._seeds

    def reset(self):
        obs = [env.reset(seed=s)[0] for env, s in zip(self.envs, self._seeds)]
        self._seeds = [None] * self.num_worlds
        return self._stack(obs)

    def step_async(self, actions):
        self._actions = np.asarray(actions).reshape(self.num_worlds, self.num_agents)

    def step_wait(self):
        obs_l, rews, dones, infos = [], [], [], []
        for w, env in enumerate(self.envs):
            acts = {a: int(self._actions[w, i]) for i, a in enumerate(self.possible_agents)}
            obs, rew, term, trunc, info = env.step(acts)
            done = not env.agents
            for a in self.possible_agents:
                rews.append(rew[a])
                dones.append(done)
                infos.append(dict(info[a]))
            if done:
                for i, a in enumerate(self.possible_agents):
                    slot = infos[w * self.num_agents + i]
                    slot["terminal_observation"] = obs[a]
                    slot["TimeLimit.truncated"] = True
                obs = env.reset()[0]
            obs_l.append(obs)
        return self._stack(obs_l), np.array(rews, dtype=np.float32), np.array(dones), infos

    def close(self):
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name, value, indices=None):
        setattr(self, attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        raise NotImplementedError

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._get_indices(indices))
