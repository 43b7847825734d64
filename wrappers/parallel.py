"""The one PettingZoo face of every reward rule: :class:`RuleParallelEnv`."""

from __future__ import annotations

import gymnasium
import numpy as np
from pettingzoo.utils.env import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper
from stable_baselines3.common.vec_env import VecEnv

from .rule import Rule, extend_dict_space, extend_obs


def check_parallel_env(env, wrapper: str) -> None:
    """Raise ``TypeError`` naming the problem unless ``env`` is a PettingZoo ``ParallelEnv``."""
    for kind, what, hint in [(VecEnv, "an SB3 VecEnv", "; use the VecEnv face of this wrapper instead"),
                             (AECEnv, "an AEC env", "; convert it with pettingzoo.utils.conversions."
                                                    "aec_to_parallel(env) or use parallel_env()"),
                             (gymnasium.Env, "a single-agent gymnasium.Env", "")]:
        if isinstance(env, kind):
            raise TypeError(f"{wrapper} wraps a PettingZoo ParallelEnv, but got {what} ({type(env).__name__}){hint}")
    missing = [a for a in ("reset", "step", "possible_agents", "observation_space", "action_space")
               if not hasattr(env, a)]
    if not isinstance(env, ParallelEnv) and missing:
        raise TypeError(f"{wrapper} wraps a PettingZoo ParallelEnv, but got {type(env).__name__}, "
                        f"which lacks {missing}")


class RuleParallelEnv(BaseParallelWrapper):
    """A ``ParallelEnv`` around a ``ParallelEnv`` that applies a :class:`~wrappers.rule.Rule`
    (worlds = 1, agents in ``possible_agents`` order; absent agents' rewards count as 0).

    Keeps the reward the wrapped env returned in ``info[agent]["extrinsic_reward"]`` unless a
    wrapper further in already put the env's own reward there (so stacking keeps the raw one).
    """

    def __init__(self, env, rule: Rule):
        name = type(self).__name__
        check_parallel_env(env, name)
        super().__init__(env)
        self.possible_agents = agents = list(env.possible_agents)
        self._index = {a: i for i, a in enumerate(agents)}
        rule.bind(name, 1, len(agents), env.observation_space(agents[0]), [env.action_space(a) for a in agents])
        self.rule = rule
        self._obs_spaces = None
        if rule.obs_key is not None:
            extra = rule.obs_space()
            self._obs_spaces = {a: extend_dict_space(env.observation_space(a), rule.obs_key, extra) for a in agents}
        self._obs = None

    @property
    def agents(self):  # forwarded explicitly: ParallelEnv declares it as a class annotation only
        return self.env.agents

    def __str__(self) -> str:
        return f"{type(self).__name__}<{self.env}>"

    def observation_space(self, agent):
        return self.env.observation_space(agent) if self._obs_spaces is None else self._obs_spaces[agent]

    def _augment(self, obs):
        if self.rule.obs_key is None:
            return obs
        row = self.rule.observation()[0]
        return {a: extend_obs(o, self.rule.obs_key, row.copy()) for a, o in obs.items()}

    def _split_actions(self, actions):
        """``(actions for the wrapped env, [1, N] actions for the rule or None)``; raises before
        anything is stepped."""
        if not self.rule.needs_actions:
            return actions, None
        missing = [a for a in self.possible_agents if a not in actions]
        if missing:
            raise ValueError(f"{type(self).__name__} needs an action for every agent each step; missing {missing}")
        return actions, np.array([[int(actions[a]) for a in self.possible_agents]])

    def reset(self, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        self.rule.reset()
        self._obs = obs
        return self._augment(obs), infos

    def step(self, actions):
        rule, index = self.rule, self._index
        if rule.reader is not None and self._obs is None:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset()")
        env_actions, act = self._split_actions(actions)
        img = vis = None
        if rule.reader is not None:  # read before the env steps: it may reuse its arrays
            img, vis = rule.reader.read_agents(self._obs, self.possible_agents)
        obs, rew, term, trunc, infos = self.env.step(env_actions)  # a failing step changes nothing here
        infos = {a: dict(i) for a, i in infos.items()}
        e = np.zeros((1, len(index)))
        for a, r in rew.items():
            infos.setdefault(a, {}).setdefault("extrinsic_reward", float(r))
            e[0, index[a]] = r
        r, extra = rule.step(e, act, img, vis)
        for k, v in extra.items():
            v = v[0].tolist() if isinstance(v, np.ndarray) else [v] * len(index)
            for a in rew:
                infos[a][k] = v[index[a]]
        if r is not None:
            r = r[0].tolist()
            rew = {a: r[index[a]] for a in rew}
        self._obs = obs
        return self._augment(obs), rew, term, trunc, infos
