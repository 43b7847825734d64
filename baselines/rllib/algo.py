"""A zoo config (``baselines/configs``) as an RLlib PPO config on the new API stack.

:func:`env_config_for` turns the config's reward into our reward wrappers on the PettingZoo face
(as ``baselines.envs.wrap_rewards`` does on the VecEnv face), :func:`ppo_config` builds the
``PPOConfig``: one :class:`~baselines.rllib.module.SSDLstmModule` per agent (``sharing:
independent``, the paper's independent learners) or one shared by all (``sharing: shared``), the
config's PPO values and learning-rate schedule, and :class:`~baselines.rllib.metrics.SSDMetricsCallback`.

What differs from the zoo (sb3-contrib RecurrentPPO): RLlib's PPO is its own implementation, so
minibatching (sequences of ``max_seq_len`` steps, zero-padded at episode ends), the value target and
the loss details are RLlib's; ``ppo.normalize_reward`` (which RLlib lacks) is applied in the env
adapter, per env copy (``normalize_reward`` in :mod:`baselines.rllib.env`); the learning rate
anneals linearly from ``lr_init`` to ``lr_end`` over the budget in env steps (RLlib's schedules count env steps); PPO's KL penalty and
RLlib's value-loss clip are switched off, as in sb3-contrib.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

import ssd_gym
from baselines.config import CENTRALISED, AgentConfig, ConfigError, check_game
from baselines.rllib.env import ENV_NAME, register_envs
from baselines.rllib.metrics import SSDMetricsCallback
from baselines.rllib.module import SSDLstmModule

SHARED_MODULE = "shared"


def independent_mapping(agent_id, episode=None, **kwargs):
    """Each agent its own module (named like the agent)."""
    return agent_id


def shared_mapping(agent_id, episode=None, **kwargs):
    """Every agent the one shared module."""
    return SHARED_MODULE


def agents_of(game: str, env_options: dict | None = None) -> list[str]:
    """The agent ids of ``game`` with these options (builds the env once, without Ray)."""
    env = ssd_gym.parallel_env(game, **dict(env_options or {}))
    try:
        return list(env.possible_agents)
    finally:
        env.close()


def reward_specs(cfg: AgentConfig, curriculum_env_steps: int, seed: int, num_agents: int) -> list[dict]:
    """The ``rewards`` entry of the env_config for ``cfg.reward`` (baselines.envs.wrap_rewards' values)."""
    if cfg.reward in CENTRALISED:  # without this check they would train silently as a3c
        raise ConfigError(f"reward {cfg.reward} reads the other learners' policies at every step (the zoo's "
                          "lockstep driver, baselines.centralised); RLlib runs none, prosocial, inequity_aversion "
                          "and influence_moa: use ssd-train for it")
    if cfg.reward == "prosocial":
        return [{"type": "prosocial", "eta": cfg.prosocial.eta}]
    if cfg.reward == "inequity_aversion":
        return [{"type": "inequity_aversion", "gamma": cfg.ppo.gamma, **dataclasses.asdict(cfg.inequity_aversion)}]
    if cfg.reward == "influence_moa":
        if num_agents < 2:
            raise ConfigError("influence_moa needs at least 2 agents")
        opts = cfg.influence_options(curriculum_steps=int(curriculum_env_steps), seed=seed)
        return [{"type": "influence", "options": dataclasses.asdict(opts)}]
    return []


def env_config_for(cfg: AgentConfig, game: str, total_env_steps: int, num_envs: int, seed: int = 0,
                   env_options: dict | None = None, sharing: str | None = None) -> dict[str, Any]:
    """The RLlib ``env_config`` of ``cfg`` on ``game``: obs mode, env options and reward wrappers.

    ``num_envs`` is the number of env copies that sample (runners x envs per runner): the influence
    curriculum counts the steps of its own copy, so its length is the config's fraction of the
    budget divided among the copies.
    """
    check_game(game)
    options = {**cfg.env, **dict(env_options or {})}
    n = len(agents_of(game, options))
    per_env = cfg.influence.curriculum_fraction * total_env_steps / max(num_envs, 1)
    scale = ({"gamma": cfg.ppo.gamma, "shared": (sharing or cfg.sharing) == "shared"}
             if cfg.ppo.normalize_reward else None)
    # the run's seed is already the MOA's (influence_options(seed=...)); the env creator adds the
    # worker index, and RLlib seeds the games from config.debugging(seed=...)
    return {"game": game, "obs_mode": cfg.obs_mode, "env_options": options,
            "rewards": reward_specs(cfg, per_env, seed, n), "normalize_reward": scale}


def module_config(cfg: AgentConfig, max_seq_len: int | None = None) -> dict[str, Any]:
    """The SSDLstmModule model_config of the config's network section."""
    return {"critic": cfg.network.critic, "conv_channels": cfg.network.conv_channels, "fc_sizes": list(cfg.network.fc_sizes),
            "lstm_cell_size": cfg.network.lstm_hidden_size, "use_actions": cfg.policy_inputs == "rgb+actions",
            "max_seq_len": int(max_seq_len or cfg.ppo.n_steps)}


def ppo_config(cfg: AgentConfig, game: str, *, total_env_steps: int, num_env_runners: int = 2,
               envs_per_runner: int = 1, num_learners: int = 0, gpus_per_learner: float = 0,
               train_batch: int = 4000, minibatch: int | None = None, sharing: str | None = None,
               seed: int = 0, env_options: dict | None = None, max_seq_len: int | None = None,
               num_cpus_per_env_runner: float = 1) -> PPOConfig:
    """RLlib PPO for zoo config ``cfg`` on ``game`` (module docstring); ``train_batch`` in env steps
    per iteration (RLlib's ``train_batch_size_per_learner``), ``minibatch`` in agent steps (default
    the config's ``ppo.batch_size``)."""
    for name, value, low in (("total_env_steps", total_env_steps, 1), ("num_env_runners", num_env_runners, 0),
                             ("envs_per_runner", envs_per_runner, 1), ("num_learners", num_learners, 0),
                             ("train_batch", train_batch, 1)):
        if int(value) != value or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if gpus_per_learner < 0:
        raise ConfigError(f"gpus_per_learner must be >= 0, got {gpus_per_learner}")
    sharing = sharing or cfg.sharing
    if sharing not in ("independent", "shared"):
        raise ConfigError(f"sharing must be 'independent' or 'shared', got {sharing!r}")
    register_envs()
    env_config = env_config_for(cfg, game, total_env_steps, max(num_env_runners, 1) * envs_per_runner,
                                seed=seed, env_options=env_options, sharing=sharing)
    agents = agents_of(game, env_config["env_options"])
    spec = RLModuleSpec(module_class=SSDLstmModule, model_config=module_config(cfg, max_seq_len))
    if sharing == "independent":
        modules, mapping = {a: spec for a in agents}, independent_mapping
    else:
        modules, mapping = {SHARED_MODULE: spec}, shared_mapping
    p = cfg.ppo
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=envs_per_runner,
                     num_cpus_per_env_runner=num_cpus_per_env_runner)
        .learners(num_learners=num_learners, num_gpus_per_learner=gpus_per_learner)
        .multi_agent(policies=set(modules), policy_mapping_fn=mapping)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=modules))
        .training(
            lr=[[0, p.lr_init], [int(total_env_steps), p.lr_end]],
            gamma=p.gamma, lambda_=p.gae_lambda, clip_param=p.clip_range, vf_loss_coeff=p.vf_coef,
            entropy_coeff=p.ent_coef, grad_clip=p.max_grad_norm, grad_clip_by="global_norm",
            num_epochs=p.n_epochs, train_batch_size_per_learner=int(train_batch),
            minibatch_size=int(minibatch or min(p.batch_size, train_batch)),
            use_kl_loss=False, vf_clip_param=1e9,
        )
        .callbacks(SSDMetricsCallback)
        .debugging(seed=seed)
    )
