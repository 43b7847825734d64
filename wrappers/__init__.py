"""Social-reward wrappers for sequential social dilemmas.

Each reward rule is a small stateful object over ``[worlds, agents]`` arrays (:mod:`wrappers.rule`),
put on an env by one adapter per API: :class:`~wrappers.parallel.RuleParallelEnv` (PettingZoo,
worlds = 1) and :class:`~wrappers.vec.RuleVecEnv` (SB3 ``VecEnv`` over the batched simulator), so
the wrappers stack and work with any agents.  The formulas are pure array functions in
:mod:`wrappers.core`; each rule's module holds its two faces (:mod:`~wrappers.prosocial`,
:mod:`~wrappers.inequity`, :mod:`~wrappers.influence`, :mod:`~wrappers.communication`);
:mod:`wrappers.moa` is the Model of Other Agents and its online training (:class:`InfluenceEngine`).
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
