"""Social-reward wrappers for sequential social dilemmas.

Each wrapper takes a PettingZoo ``ParallelEnv`` and returns one, so they stack and work with any
agents; each reward rule is written once over ``[worlds, agents]`` arrays (:mod:`wrappers.core`,
:mod:`wrappers.moa`) and also wraps the batched SB3 ``VecEnv`` (:mod:`wrappers.vec`).

* :class:`ProsocialReward`: r_k = e_k + eta * sum_{i!=k} e_i.
* :class:`InequityAversionReward`: Hughes et al. 2018 with smoothed rewards.
* :class:`InfluenceReward`: Jaques et al. 2019 social influence from a learned MOA.
* :class:`CommunicationChannel`: cheap-talk symbols, optionally with influential-communication reward.
"""

from .communication import CommunicationChannel
from .core import (
    curriculum_weight,
    inequity_aversion_rewards,
    js_divergence,
    kl_divergence,
    pointwise_mutual_information,
    prosocial_rewards,
    smooth_rewards,
)
from .inequity import InequityAversionReward
from .influence import InfluenceReward
from .moa import MOA, InfluenceEngine
from .prosocial import ProsocialReward
from .vec import InequityAversionVecEnv, InfluenceRewardVecEnv, ProsocialRewardVecEnv

__all__ = [
    "ProsocialReward",
    "InequityAversionReward",
    "InfluenceReward",
    "CommunicationChannel",
    "ProsocialRewardVecEnv",
    "InequityAversionVecEnv",
    "InfluenceRewardVecEnv",
    "MOA",
    "InfluenceEngine",
    "prosocial_rewards",
    "smooth_rewards",
    "inequity_aversion_rewards",
    "curriculum_weight",
    "kl_divergence",
    "js_divergence",
    "pointwise_mutual_information",
]
