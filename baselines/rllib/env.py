"""Every ssd-gym game, under any stack of our reward wrappers, as an RLlib ``MultiAgentEnv``.

RLlib (new API stack) builds envs from a registered name and an ``env_config`` dict. The name
``"ssd_gym"`` (and ``"ssd_gym/<game>"`` for each game, which fixes ``game``) is registered by
:func:`register_envs`; ``env_config`` holds:

* ``game``: one of ``ssd_gym.GAMES`` (not needed with ``"ssd_gym/<game>"``);
* ``obs_mode``: ``"rgb"`` (default) or ``"dict"`` (the view plus the visible-action channel; the
  influence wrapper needs it for the visibility mask);
* ``env_options``: keyword options of ``ssd_gym.parallel_env`` (``max_cycles``, ``num_agents``,
  ``ascii_map``, ``rules``...);
* ``rewards``: the reward wrappers, innermost first, each ``{"type": ..., **keywords}`` with
  ``type`` one of ``prosocial`` (:class:`wrappers.ProsocialReward`), ``inequity_aversion``
  (:class:`wrappers.InequityAversionReward`) or ``influence`` (:class:`wrappers.InfluenceReward`,
  keywords: :class:`wrappers.InfluenceOptions` fields); e.g.
  ``[{"type": "prosocial", "eta": 0.5}, {"type": "influence", "beta": 1.0}]``;
* ``normalize_reward``: None (default) or ``{"gamma": g, "shared": bool}``: each agent's reward
  divided by the running standard deviation of its discounted return (the zoo's
  ``ppo.normalize_reward``, SB3's ``VecNormalize`` rule; one running estimate per agent, or one for
  all when ``shared``), kept per env copy. Only what RLlib trains on is scaled: ``info`` keeps
  ``extrinsic_reward`` and the episode's metrics are the game's own;
* ``seed``: added to RLlib's worker index to seed the influence MOA's weights (the games are seeded
  by RLlib's own ``reset(seed=...)``, from ``config.debugging(seed=...)``).

The games themselves know nothing of Ray: :class:`SSDMultiAgentEnv` is a thin adapter over any
PettingZoo ``ParallelEnv``. It copies the observations (the engine reuses its arrays, and RLlib
keeps every observation of an episode) and keeps the infos, so that the episode's last step carries
``info["episode_metrics"]`` for :class:`baselines.rllib.metrics.SSDMetricsCallback`.

Influence: RLlib's env runners do not hand the agents' action probabilities to the env, so the
influence wrapper's learned self-model supplies pi_k for the counterfactual marginal
(``info["policy_source"] == "self_model"``). Each env copy owns its own MOA, trained online on the
trajectories of that copy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

import ssd_gym
import wrappers

#: the reward wrappers an env_config can name, and their PettingZoo faces
REWARD_WRAPPERS = {
    "prosocial": wrappers.ProsocialReward,
    "inequity_aversion": wrappers.InequityAversionReward,
    "influence": wrappers.InfluenceReward,
}
ENV_NAME = "ssd_gym"
CONFIG_KEYS = ("game", "obs_mode", "env_options", "rewards", "normalize_reward", "seed")


class ReturnScaler:
    """Rewards divided by the running std of the discounted return (``baselines.lockstep``'s rule:
    SB3's ``VecNormalize(norm_reward=True)`` without clipping), per group of agents."""

    def __init__(self, num_agents: int, gamma: float, shared: bool = False):
        if not 0 <= gamma <= 1:
            raise ValueError(f"normalize_reward gamma must lie in [0, 1], got {gamma}")
        self.gamma, self.shared = float(gamma), bool(shared)
        groups = 1 if shared else num_agents
        self.mean, self.var, self.count = np.zeros(groups), np.ones(groups), np.full(groups, 1e-4)
        self.returns = np.zeros(num_agents)

    def __call__(self, rewards: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        x = self.returns[None, :] if self.shared else self.returns[:, None]  # [groups, samples]
        batch_mean, batch_var, n = x.mean(axis=1), x.var(axis=1), x.shape[1]
        delta, total = batch_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total) / total
        self.count = total
        std = np.sqrt(self.var + 1e-8)
        return rewards / (std[0] if self.shared else std)

    def end_episode(self) -> None:
        self.returns[:] = 0.0

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count.tolist(),
                "returns": self.returns.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count, self.returns = (np.asarray(state[k], dtype=np.float64)
                                                         for k in ("mean", "var", "count", "returns"))


def _copy(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: _copy(v) for k, v in obs.items()}
    return np.array(obs, copy=True)


class SSDMultiAgentEnv(MultiAgentEnv):
    """An RLlib ``MultiAgentEnv`` over a PettingZoo ``ParallelEnv`` (ours, or ours wrapped).

    All agents act every step; the episode ends for everyone at once (``"__all__"``), by
    truncation at ``max_cycles``.
    """

    def __init__(self, par_env, normalize_reward: dict | None = None):
        for attr in ("reset", "step", "possible_agents", "observation_space", "action_space"):
            if not hasattr(par_env, attr):
                raise TypeError(f"SSDMultiAgentEnv wraps a PettingZoo ParallelEnv, got {type(par_env).__name__} "
                                f"(no {attr!r})")
        self.par_env = par_env
        self.possible_agents = list(par_env.possible_agents)
        self.agents = list(self.possible_agents)
        super().__init__()
        self.observation_spaces = {a: par_env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: par_env.action_space(a) for a in self.possible_agents}
        self.observation_space = gym.spaces.Dict(self.observation_spaces)
        self.action_space = gym.spaces.Dict(self.action_spaces)
        self.metadata = getattr(par_env, "metadata", {})
        self.render_mode = getattr(par_env, "render_mode", None)
        self.scaler = None
        if normalize_reward:
            if not isinstance(normalize_reward, dict) or set(normalize_reward) - {"gamma", "shared"}:
                raise ValueError(f"normalize_reward must be None or {{'gamma': g, 'shared': bool}}, got {normalize_reward!r}")
            self.scaler = ReturnScaler(len(self.possible_agents), normalize_reward.get("gamma", 0.99),
                                       normalize_reward.get("shared", False))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self.agents = list(self.par_env.agents)
        return _copy(obs), {a: dict(infos.get(a, {})) for a in obs}

    def step(self, action_dict: dict):
        actions = {a: int(v) for a, v in action_dict.items()}
        obs, rewards, terms, truncs, infos = self.par_env.step(actions)
        terms = {a: bool(v) for a, v in terms.items()}
        truncs = {a: bool(v) for a, v in truncs.items()}
        terms["__all__"] = bool(terms) and all(terms.values())
        truncs["__all__"] = bool(truncs) and all(truncs.values())
        self.agents = list(self.par_env.agents)
        if self.scaler is not None:
            raw = np.array([float(rewards.get(a, 0.0)) for a in self.possible_agents])
            scaled = self.scaler(raw)
            rewards = {a: float(scaled[i]) for i, a in enumerate(self.possible_agents) if a in rewards}
            if truncs["__all__"] or terms["__all__"]:
                self.scaler.end_episode()
        return _copy(obs), {a: float(r) for a, r in rewards.items()}, terms, truncs, infos

    def render(self):
        return self.par_env.render()

    def close(self):
        self.par_env.close()

    def wrapper_with(self, attr: str):
        """The first env in the wrapper stack (outermost first) that has ``attr``, or None."""
        env = self.par_env
        while env is not None:
            if hasattr(type(env), attr) or attr in getattr(env, "__dict__", {}):
                return env
            env = getattr(env, "env", None)
        return None


def build_parallel_env(game: str, obs_mode: str = "rgb", env_options: dict | None = None,
                       rewards: list[dict] | tuple = ()) -> Any:
    """``ssd_gym.parallel_env(game)`` with the reward wrappers ``rewards`` (innermost first)."""
    if game not in ssd_gym.GAMES:
        raise ValueError(f"unknown game {game!r}; choose one of {', '.join(ssd_gym.GAMES)}")
    env = ssd_gym.parallel_env(game, obs_mode=obs_mode, **dict(env_options or {}))
    for i, spec in enumerate(rewards or ()):
        if not isinstance(spec, dict) or "type" not in spec:
            raise ValueError(f"rewards[{i}] must be a dict with a 'type' key ({', '.join(REWARD_WRAPPERS)}), got {spec!r}")
        kwargs = dict(spec)
        kind = kwargs.pop("type")
        if kind not in REWARD_WRAPPERS:
            raise ValueError(f"rewards[{i}]: unknown reward wrapper {kind!r}; choose one of {', '.join(REWARD_WRAPPERS)}")
        if kind == "influence" and isinstance(kwargs.get("options"), dict):
            kwargs["options"] = wrappers.InfluenceOptions(**kwargs["options"])
        env = REWARD_WRAPPERS[kind](env, **kwargs)
    return env


def env_creator(env_config: dict | None = None, game: str | None = None) -> SSDMultiAgentEnv:
    """What RLlib calls with the ``env_config`` (an ``EnvContext``: a dict with ``worker_index``)."""
    cfg = dict(env_config or {})
    unknown = sorted(set(cfg) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown env_config key(s) {unknown}; the keys are {', '.join(CONFIG_KEYS)}")
    game = game or cfg.get("game")
    if game is None:
        raise ValueError(f"env_config needs a 'game' (one of {', '.join(ssd_gym.GAMES)}) with the env name {ENV_NAME!r}")
    if cfg.get("game", game) != game:
        raise ValueError(f"env_config game {cfg['game']!r} contradicts the env name's game {game!r}")
    worker = int(getattr(env_config, "worker_index", 0) or 0)
    rewards = []
    for spec in cfg.get("rewards") or ():
        if not isinstance(spec, dict):  # refused with its index by build_parallel_env
            rewards.append(spec)
            continue
        spec = dict(spec)
        if spec.get("type") == "influence":  # distinct MOA initialisations per env runner
            if "options" in spec:
                opts = spec["options"]
                opts = dataclasses.asdict(opts) if dataclasses.is_dataclass(opts) else dict(opts)
                opts["seed"] = int(opts.get("seed", 0)) + int(cfg.get("seed", 0)) + worker
                spec["options"] = opts
            else:
                spec["seed"] = int(spec.get("seed", 0)) + int(cfg.get("seed", 0)) + worker
        rewards.append(spec)
    par = build_parallel_env(game, cfg.get("obs_mode", "rgb"), cfg.get("env_options"), rewards)
    return SSDMultiAgentEnv(par, normalize_reward=cfg.get("normalize_reward"))


def register_envs() -> list[str]:
    """Register ``"ssd_gym"`` and ``"ssd_gym/<game>"`` for every game with RLlib; returns the names."""
    from functools import partial

    from ray.tune.registry import register_env

    names = [ENV_NAME]
    register_env(ENV_NAME, env_creator)
    for game in ssd_gym.GAMES:
        register_env(f"{ENV_NAME}/{game}", partial(env_creator, game=game))
        names.append(f"{ENV_NAME}/{game}")
    return names
