"""Social-reward wrappers for sequential social dilemmas: each reward rule is a small stateful
object over ``[worlds, agents]`` arrays (:mod:`wrappers.rule`; formulas in :mod:`wrappers.core`),
put on an env by one adapter per API (:mod:`wrappers.parallel` for PettingZoo, :mod:`wrappers.vec`
for the batched SB3 ``VecEnv``), so the wrappers stack and work with any agents.  Each rule's module
holds its two faces; :mod:`wrappers.moa` is the Model of Other Agents and its online training.
"""

from .communication import CommunicationChannel, CommunicationChannelVecEnv
from .core import (
    curriculum_weight,
    inequity_aversion_rewards,
    js_divergence,
    kl_divergence,
    pointwise_mutual_information,
    prosocial_rewards,
    smooth_rewards,
)
from .inequity import InequityAversionReward, InequityAversionVecEnv
from .influence import InfluenceOptions, InfluenceReward, InfluenceRewardVecEnv
from .moa import MOA, InfluenceEngine
from .prosocial import ProsocialReward, ProsocialRewardVecEnv

__all__ = [
    "ProsocialReward", "InequityAversionReward", "InfluenceReward", "CommunicationChannel",
    "CommunicationChannelVecEnv", "ProsocialRewardVecEnv", "InequityAversionVecEnv", "InfluenceRewardVecEnv",
    "InfluenceOptions", "MOA", "InfluenceEngine", "prosocial_rewards", "smooth_rewards", "inequity_aversion_rewards",
    "curriculum_weight", "kl_divergence", "js_divergence", "pointwise_mutual_information",
]
