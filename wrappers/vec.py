"""The one SB3 ``VecEnv`` face of every reward rule: :class:`RuleVecEnv`, over the batched simulator.

The wrapped VecEnv (``ssd_gym.vector_env``) has ``num_worlds * num_agents`` slots (slot = world *
num_agents + agent; attributes ``num_worlds``, ``num_agents``) and auto-resets, with
``infos[slot]["terminal_observation"]`` at episode ends (all agents of a world end together).
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from .rule import Rule, extend_dict_space, extend_obs


def _layout(venv, wrapper: str) -> tuple[int, int]:
    """(num_worlds, num_agents) of a batched VecEnv, with a clear error for anything else."""
    if not isinstance(venv, VecEnv):
        raise TypeError(f"{wrapper} wraps an SB3 VecEnv (ssd_gym.vector_env), got {type(venv).__name__}; "
                        "for a PettingZoo ParallelEnv use the ParallelEnv wrapper")
    try:
        w, n = int(getattr(venv, "num_worlds")), int(getattr(venv, "num_agents"))
    except AttributeError as exc:
        raise TypeError(f"{wrapper} needs a batched VecEnv with attributes num_worlds and num_agents "
                        f"(slot = world * num_agents + agent): {exc}") from None
    if w * n != venv.num_envs:
        raise ValueError(f"{wrapper}: num_worlds ({w}) x num_agents ({n}) != num_envs ({venv.num_envs})")
    return w, n


class RuleVecEnv(VecEnvWrapper):
    """A ``VecEnvWrapper`` that applies a :class:`~wrappers.rule.Rule` to all worlds at once.

    A world's rule state is reset when its episode ends; each slot observes its world's row of an
    extra observation, also in ``terminal_observation``.  Keeps the env's reward in
    ``info["extrinsic_reward"]`` (unless set further in); rewards come out float32.
    """

    def __init__(self, venv, rule: Rule):
        name = type(self).__name__
        w, n = _layout(venv, name)
        rule.bind(name, w, n, venv.observation_space, [venv.action_space] * n)
        space = None
        if rule.obs_key is not None:
            space = extend_dict_space(venv.observation_space, rule.obs_key, rule.obs_space())
        super().__init__(venv, observation_space=space)
        self.num_worlds, self.num_agents = w, n
        self.rule = rule
        self._obs = self._actions = None

    def _augment(self, obs):
        if self.rule.obs_key is None:
            return obs
        return extend_obs(obs, self.rule.obs_key, np.repeat(self.rule.observation(), self.num_agents, axis=0))

    def reset(self):
        obs = self.venv.reset()
        self.rule.reset()
        self._obs = obs
        return self._augment(obs)

    def step_async(self, actions):
        self.venv.step_async(actions)  # validates first: a refused step leaves no trace here
        if self.rule.needs_actions:
            self._actions = np.asarray(actions).reshape(self.num_worlds, self.num_agents).astype(np.int64)

    def step_wait(self):
        rule, w, n = self.rule, self.num_worlds, self.num_agents
        if rule.reader is not None and self._obs is None:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset()")
        obs, rews, dones, infos = self.venv.step_wait()
        for info, r in zip(infos, rews):
            info.setdefault("extrinsic_reward", float(r))
        img = vis = None
        if rule.reader is not None:
            img, vis = rule.reader.read_slots(self._obs, w, n)
        e = np.asarray(rews, dtype=np.float64).reshape(w, n)
        r, extra = rule.step(e, self._actions, img, vis)
        for k, v in extra.items():
            v = np.broadcast_to(v, (w, n)).reshape(-1).tolist() if isinstance(v, np.ndarray) else [v] * len(infos)
            for info, x in zip(infos, v):
                info[k] = x
        if rule.obs_key is not None:
            seen = rule.observation()
            for s, info in enumerate(infos):
                if "terminal_observation" in info:
                    info["terminal_observation"] = extend_obs(info["terminal_observation"], rule.obs_key,
                                                              seen[s // n].copy())
        rule.reset(np.asarray(dones, dtype=bool).reshape(w, n).any(axis=1))
        self._obs = obs
        return self._augment(obs), (e if r is None else r).reshape(-1).astype(np.float32), dones, infos
