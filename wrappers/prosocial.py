"""Prosocial reward: each agent also values the others' rewards (Jaques et al. 2019, supp. 10.5.2)."""

from __future__ import annotations

from .core import check_weight, prosocial_rewards
from .parallel import RuleParallelEnv
from .rule import Rule, rule_attr, rule_keywords
from .vec import RuleVecEnv


class ProsocialRule(Rule):
    """r_k = e_k + eta * sum_{i != k} e_i within each world.  ``eta`` defaults to 0.85, the best in
    both games in Jaques et al. (supp. 10.5.2); 1 gives everyone the collective reward, 0 is the identity."""

    def __init__(self, eta: float = 0.85):
        self.eta = check_weight("eta", eta)

    def step(self, e, actions=None, img=None, vis=None):
        return prosocial_rewards(e, self.eta), {}


class ProsocialReward(RuleParallelEnv):
    """PettingZoo face of :class:`ProsocialRule`; the reward each agent received from the wrapped
    env is kept in ``info[agent]["extrinsic_reward"]``."""

    eta = rule_attr("eta")

    @rule_keywords(ProsocialRule)
    def __init__(self, env, *args, **kwargs):
        super().__init__(env, ProsocialRule(*args, **kwargs))


class ProsocialRewardVecEnv(RuleVecEnv):
    """SB3 VecEnv face of :class:`ProsocialRule` (slots = worlds x agents)."""

    eta = rule_attr("eta")

    @rule_keywords(ProsocialRule)
    def __init__(self, venv, *args, **kwargs):
        super().__init__(venv, ProsocialRule(*args, **kwargs))
