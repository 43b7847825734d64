"""Prosocial reward: each agent also values the others' rewards (Jaques et al. 2019, supp. 10.5.2)."""

from __future__ import annotations

from ._base import SocialWrapper
from .core import check_weight, prosocial_rewards


class ProsocialReward(SocialWrapper):
    """r_k = e_k + eta * sum_{i != k} e_i.

    ``eta`` defaults to 0.85, the best value in both games in Jaques et al. (supp. 10.5.2, searched
    over [0, 2]).  ``eta = 1`` gives every agent the collective reward (the reference repo's
    ``use_collective_reward``); ``eta = 0`` is the identity.  The reward each agent received from
    the wrapped env is kept in ``info[agent]["extrinsic_reward"]``.
    """

    def __init__(self, env, eta: float = 0.85):
        eta = check_weight("eta", eta)
        super().__init__(env)
        self.eta = eta

    def step(self, actions):
        obs, rew, term, trunc, infos = self.env.step(actions)
        infos = self._copy_infos(infos, rew)
        e = self._reward_vector(rew)
        r = prosocial_rewards(e, self.eta)[0]
        rew = {a: float(r[self._index[a]]) for a in rew}
        return obs, rew, term, trunc, infos
