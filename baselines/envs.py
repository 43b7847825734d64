"""The batched training env of a zoo config: ``ssd_gym.vector_env`` plus the config's reward wrapper.

The reward rules live in ``wrappers`` (written once over worlds x agents); the zoo picks one and
passes the config's values under the wrapper's own names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from stable_baselines3.common.vec_env import VecEnv

import ssd_gym
import wrappers
from baselines.centralised import InfluencerActionsInput
from baselines.config import AgentConfig, ConfigError, check_game

#: Episode-level metrics the zoo reports (keys of ``info["episode_metrics"]``), in table order.
METRICS = ("collective_return", "equality", "equality_weighted_return", "sustainability", "peace")
METRIC_TITLES = {
    "collective_return": "collective return",
    "equality": "equality (1-G)",
    "equality_weighted_return": "R*(1-G)",
    "sustainability": "sustainability",
    "peace": "peace",
    "influence_reward": "influence reward (nats/step)",
    "moa_accuracy": "MOA accuracy",
    "steps_to_positive": "agent-steps to R > 0",
    "box_opened": "box opened",
    "box_open_step": "box open step",
}


def influence_curriculum_env_steps(cfg: AgentConfig, total_agent_steps: int, num_agents: int) -> int:
    """The curriculum length in env steps (the wrapper's unit: one step of one world)."""
    return int(cfg.influence.curriculum_fraction * total_agent_steps / max(num_agents, 1))


def wrap_rewards(venv: VecEnv, cfg: AgentConfig, total_agent_steps: int, seed: int = 0) -> VecEnv:
    """Apply the config's social reward to the batched env (``info["extrinsic_reward"]`` is kept)."""
    if cfg.reward == "prosocial":
        return wrappers.ProsocialRewardVecEnv(venv, eta=cfg.prosocial.eta)
    if cfg.reward == "inequity_aversion":
        return wrappers.InequityAversionVecEnv(venv, gamma=cfg.ppo.gamma, **dataclasses.asdict(cfg.inequity_aversion))
    if cfg.reward == "influence_moa":
        if venv.num_agents < 2:
            raise ConfigError("influence_moa needs at least 2 agents")
        steps = influence_curriculum_env_steps(cfg, total_agent_steps, venv.num_agents)
        return wrappers.InfluenceRewardVecEnv(venv, options=cfg.influence_options(curriculum_steps=steps, seed=seed))
    if cfg.reward == "influence_basic":  # the reward itself: baselines.centralised, from the learners' policies
        try:
            return InfluencerActionsInput(venv, cfg.influence.influencers)
        except ValueError as exc:
            raise ConfigError(f"influence.influencers: {exc}") from None
    if cfg.reward == "influence_comm":  # the channel carries the symbols; the zoo computes their influence
        if venv.num_agents < 2:
            raise ConfigError("influence_comm needs at least 2 agents")
        return wrappers.CommunicationChannelVecEnv(venv, vocab_size=cfg.communication.vocab_size)
    return venv


def make_env(cfg: AgentConfig, game: str, num_worlds: int, seed: int, total_agent_steps: int,
             num_agents: int | None = None, max_cycles: int | None = None) -> VecEnv:
    """``game``'s batched env for ``cfg`` (its obs mode and ``env`` options), seeded, reward-wrapped."""
    check_game(game)
    given = {"num_agents": num_agents, "max_cycles": max_cycles}
    options = {**cfg.env, **{k: v for k, v in given.items() if v is not None}}
    base = ssd_gym.vector_env(game, num_worlds, obs_mode=cfg.obs_mode, **options)
    base.seed(seed)
    return wrap_rewards(base, cfg, total_agent_steps, seed=seed)


def base_of(venv: VecEnv) -> VecEnv:
    """The innermost env under the reward wrappers."""
    while hasattr(venv, "venv"):
        venv = venv.venv
    return venv


def influence_wrapper(venv: VecEnv) -> Any | None:
    """The InfluenceRewardVecEnv in the stack, if any (it owns the MOA and the curriculum step)."""
    while venv is not None:
        if hasattr(venv, "set_action_probs"):
            return venv
        venv = getattr(venv, "venv", None)
    return None
