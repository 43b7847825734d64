"""Inequity aversion (Hughes et al. 2018) with temporally smoothed rewards."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .core import check_weight, inequity_aversion_rewards, smooth_rewards
from .parallel import RuleParallelEnv
from .rule import Rule, rule_attr, rule_keywords
from .vec import RuleVecEnv


class InequityAversionRule(Rule):
    """Hughes et al. (2018) inequity-averse reward: each step, with raw rewards e and smoothed
    traces h (reset to 0 every episode)::

        h_j(t) = gamma * lam * h_j(t-1) + e_j(t)
        r_i(t) = e_i(t) - alpha/(N-1) * sum_{j!=i} max(h_j(t) - h_i(t), 0)
                        - beta /(N-1) * sum_{j!=i} max(h_i(t) - h_j(t), 0)

    Both penalties are subtracted (the reference repo's code adds the advantageous term and does
    not smooth).  ``info["smoothed_reward"]`` is the agent's own trace.  Defaults: Hughes et al.'s
    strongest results (``alpha = 5``, ``beta = 0.05``, ``lam = 0.975``; README) and ``gamma = 0.99``.

    ``observe_smoothed_rewards=True`` adds key ``"smoothed_rewards"`` (float32 ``[N]``, agent-index
    order, the traces after the step) to every observation, as Hughes let agents observe them.
    """

    def __init__(self, alpha: float = 5.0, beta: float = 0.05, gamma: float = 0.99, lam: float = 0.975,
                 observe_smoothed_rewards: bool = False):
        self.alpha, self.beta = check_weight("alpha", alpha), check_weight("beta", beta)
        self.gamma, self.lam = check_weight("gamma", gamma), check_weight("lam", lam)
        if self.gamma > 1 or self.lam > 1:
            raise ValueError(f"gamma and lam must lie in [0, 1], got gamma={gamma}, lam={lam}")
        self.observe_smoothed_rewards = bool(observe_smoothed_rewards)
        self.obs_key = "smoothed_rewards" if self.observe_smoothed_rewards else None

    def bind(self, wrapper, num_worlds, num_agents, obs_space, action_spaces):
        super().bind(wrapper, num_worlds, num_agents, obs_space, action_spaces)
        self.traces = np.zeros((num_worlds, num_agents))

    def obs_space(self):
        return spaces.Box(-np.inf, np.inf, (self.num_agents,), np.float32)

    def observation(self):
        return self.traces.astype(np.float32)

    def reset(self, mask=None):
        self.traces[slice(None) if mask is None else mask] = 0.0

    def step(self, e, actions=None, img=None, vis=None):
        self.traces = smooth_rewards(self.traces, e, self.gamma, self.lam)
        return inequity_aversion_rewards(e, self.traces, self.alpha, self.beta), {"smoothed_reward": self.traces}


class _Options:
    """The rule's options and traces, as attributes of both faces."""

    alpha, beta, gamma, lam, observe_smoothed_rewards, traces = map(
        rule_attr, ("alpha", "beta", "gamma", "lam", "observe_smoothed_rewards", "traces"))


class InequityAversionReward(_Options, RuleParallelEnv):
    """PettingZoo face of :class:`InequityAversionRule`."""

    @rule_keywords(InequityAversionRule)
    def __init__(self, env, *args, **kwargs):
        super().__init__(env, InequityAversionRule(*args, **kwargs))


class InequityAversionVecEnv(_Options, RuleVecEnv):
    """SB3 VecEnv face of :class:`InequityAversionRule` (traces reset per world at its episode end)."""

    @rule_keywords(InequityAversionRule)
    def __init__(self, venv, *args, **kwargs):
        super().__init__(venv, InequityAversionRule(*args, **kwargs))
