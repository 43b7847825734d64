"""Build the batched training env of a zoo config: ``ssd_gym.vector_env`` + the config's reward wrapper.

The reward rules live in ``wrappers`` (written once over worlds x agents); the zoo only picks one and
passes the config's values. ``game="fake"`` gives :class:`baselines.fake_env.FakeSSDVecEnv`.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env import VecEnv

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


def make_base_env(game: str, num_worlds: int, obs_mode: str, num_agents: int | None = None,
                  max_cycles: int | None = None, **options: Any) -> VecEnv:
    """The raw batched env (slots = worlds x agents)."""
    check_game(game)
    if game == "fake":
        from baselines.fake_env import FakeSSDVecEnv

        return FakeSSDVecEnv(num_envs=num_worlds, num_agents=num_agents or 2,
                             max_cycles=max_cycles or 20, obs_mode=obs_mode)
    import ssd_gym

    kwargs = dict(options)
    if num_agents is not None:
        kwargs["num_agents"] = num_agents
    if max_cycles is not None:
        kwargs["max_cycles"] = max_cycles
    return ssd_gym.vector_env(game, num_worlds, obs_mode=obs_mode, **kwargs)


def influence_curriculum_env_steps(cfg: AgentConfig, total_agent_steps: int, num_agents: int) -> int:
    """The curriculum length in env steps (the wrapper's unit: one step of one world)."""
    return int(cfg.influence.curriculum_fraction * total_agent_steps / max(num_agents, 1))


def wrap_rewards(venv: VecEnv, cfg: AgentConfig, total_agent_steps: int, seed: int = 0) -> VecEnv:
    """Apply the config's social reward to the batched env (``info["extrinsic_reward"]`` is kept)."""
    if cfg.reward == "none":
        return venv
    import wrappers

    if cfg.reward == "prosocial":
        return wrappers.ProsocialRewardVecEnv(venv, eta=cfg.prosocial.eta)
    if cfg.reward == "inequity_aversion":
        ia = cfg.inequity_aversion
        return wrappers.InequityAversionVecEnv(venv, alpha=ia.alpha, beta=ia.beta, gamma=cfg.ppo.gamma, lam=ia.lambda_)
    if cfg.reward == "influence_moa":
        inf = cfg.influence
        if venv.num_agents < 2:
            raise ConfigError("influence_moa needs at least 2 agents")
        return wrappers.InfluenceRewardVecEnv(
            venv,
            beta=inf.beta,
            divergence=inf.divergence,
            curriculum_steps=influence_curriculum_env_steps(cfg, total_agent_steps, venv.num_agents),
            clip=inf.clip,
            influence_only_visible=inf.only_when_visible,
            train_only_visible=inf.train_moa_only_when_visible,
            # see README "MOA loss weight": with its own Adam the MOA learns at the agents' lr
            lr=inf.moa_lr if inf.moa_lr is not None else cfg.ppo.lr_init,
            train_every=inf.moa_train_every,
            train_iters=inf.moa_train_iters,
            seed=seed,
        )
    raise ConfigError(f"unknown reward {cfg.reward!r}")


def make_env(cfg: AgentConfig, game: str, num_worlds: int, seed: int, total_agent_steps: int,
             num_agents: int | None = None, max_cycles: int | None = None) -> VecEnv:
    """Base env of ``game`` for ``cfg``'s observation needs, seeded, with the reward wrapper applied."""
    base = make_base_env(game, num_worlds, cfg.obs_mode, num_agents=num_agents, max_cycles=max_cycles)
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
