"""Inequity aversion (Hughes et al. 2018) with temporally smoothed rewards."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from ._base import SocialWrapper, extend_dict_space, extend_obs
from .core import check_weight, inequity_aversion_rewards, smooth_rewards


class InequityAversionReward(SocialWrapper):
    """Hughes et al. (2018) inequity-averse reward.

    Each step, with raw rewards e and smoothed traces h (reset to 0 every episode)::

        h_j(t) = gamma * lam * h_j(t-1) + e_j(t)
        r_i(t) = e_i(t) - alpha/(N-1) * sum_{j!=i} max(h_j(t) - h_i(t), 0)
                        - beta /(N-1) * sum_{j!=i} max(h_i(t) - h_j(t), 0)

    Both penalties are subtracted (the reference repo's code adds the advantageous term and does
    not smooth; this does neither).

    Defaults and their source: ``alpha = 5``, ``beta = 0.05``: the values of Hughes et al.'s
    strongest results (as quoted by the empathy_marl docs), also used by the reference SSD repo's
    README command (``--alpha=5.0 --beta=0.05``) and SocialJax's defaults; ``lam = 0.975``: Hughes
    et al. (via the same secondary source; the LIO code uses 0.95); ``gamma = 0.99``: the RL
    discount used by Hughes et al. and Jaques et al.  Hughes found the guilt term (beta) helps in
    Cleanup and the envy term (alpha) in Harvest.

    ``observe_smoothed_rewards=True`` adds key ``"smoothed_rewards"`` (float32 ``[N]``, agent-index
    order, the traces after the step that produced the observation) to every observation, as
    Hughes let agents observe them.  A non-Dict observation becomes
    ``{"observation": obs, "smoothed_rewards": ...}``.
    """

    OBS_KEY = "smoothed_rewards"

    def __init__(self, env, alpha: float = 5.0, beta: float = 0.05, gamma: float = 0.99,
                 lam: float = 0.975, observe_smoothed_rewards: bool = False):
        alpha = check_weight("alpha", alpha)
        beta = check_weight("beta", beta)
        gamma = check_weight("gamma", gamma)
        lam = check_weight("lam", lam)
        if gamma > 1 or lam > 1:
            raise ValueError(f"gamma and lam must lie in [0, 1], got gamma={gamma}, lam={lam}")
        super().__init__(env)
        self.alpha, self.beta, self.gamma, self.lam = alpha, beta, gamma, lam
        self.observe_smoothed_rewards = bool(observe_smoothed_rewards)
        self.traces = np.zeros((1, len(self.possible_agents)))
        self._spaces = {}
        if self.observe_smoothed_rewards:
            extra = spaces.Box(-np.inf, np.inf, (len(self.possible_agents),), np.float32)
            self._spaces = {a: extend_dict_space(env.observation_space(a), self.OBS_KEY, extra)
                            for a in self.possible_agents}

    def observation_space(self, agent):
        if self.observe_smoothed_rewards:
            return self._spaces[agent]
        return self.env.observation_space(agent)

    def _augment(self, obs):
        if not self.observe_smoothed_rewards:
            return obs
        t = self.traces[0].astype(np.float32)
        return {a: extend_obs(o, self.OBS_KEY, t.copy()) for a, o in obs.items()}

    def reset(self, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        self.traces[:] = 0.0
        return self._augment(obs), infos

    def step(self, actions):
        obs, rew, term, trunc, infos = self.env.step(actions)
        infos = self._copy_infos(infos, rew)
        e = self._reward_vector(rew)
        self.traces = smooth_rewards(self.traces, e, self.gamma, self.lam)
        r = inequity_aversion_rewards(e, self.traces, self.alpha, self.beta)[0]
        for a in rew:
            infos[a]["smoothed_reward"] = float(self.traces[0, self._index[a]])
        rew = {a: float(r[self._index[a]]) for a in rew}
        return self._augment(obs), rew, term, trunc, infos
