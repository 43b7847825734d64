"""Social-reward wrappers for sequential social dilemmas.

Each reward rule is one small stateful object over ``[worlds, agents]`` arrays, and one generic
adapter per API puts any rule on an env, so the wrappers stack and work with any agents:

* :mod:`wrappers.rule`: what a rule is (:class:`~wrappers.rule.Rule`) and the helpers both
  adapters share (observation extension, image reading, policy-probability checks).
* :mod:`wrappers.parallel`: :class:`~wrappers.parallel.RuleParallelEnv`, the PettingZoo
  ``ParallelEnv`` face (worlds = 1).
* :mod:`wrappers.vec`: :class:`~wrappers.vec.RuleVecEnv`, the SB3 ``VecEnv`` face over the batched
  simulator (worlds = ``num_worlds``).
* :mod:`wrappers.core`: the formulas as pure array functions (prosocial, inequity aversion,
  divergences, curriculum) and argument checks.
* One module per rule, with its two faces: :mod:`~wrappers.prosocial` (:class:`ProsocialReward`,
  r_k = e_k + eta * sum_{i!=k} e_i), :mod:`~wrappers.inequity` (:class:`InequityAversionReward`,
  Hughes et al. 2018 with smoothed rewards), :mod:`~wrappers.influence` (:class:`InfluenceReward`,
  Jaques et al. 2019 social influence from a learned MOA, options in one
  :class:`InfluenceOptions`), :mod:`~wrappers.communication` (:class:`CommunicationChannel`,
  cheap-talk symbols, optionally with influential-communication reward;
  :class:`CommunicationChannelVecEnv` on the VecEnv face).
* :mod:`wrappers.moa`: the Model of Other Agents and its online training
  (:class:`InfluenceEngine`).
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
    "CommunicationChannelVecEnv", "ProsocialRewardVecEnv", "InequityAversionVecEnv", "InfluenceRewardVecEnv", "InfluenceOptions",
    "MOA", "InfluenceEngine", "prosocial_rewards", "smooth_rewards", "inequity_aversion_rewards",
    "curriculum_weight", "kl_divergence", "js_divergence", "pointwise_mutual_information",
]
