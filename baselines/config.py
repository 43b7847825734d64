"""Agent configs of the zoo: typed dataclasses, loaded from YAML files a user can copy and edit.

A config file (``baselines/configs/<agent>.yaml``) has a ``defaults`` block with the fields of
:class:`AgentConfig` and a ``games`` block with per-game overrides (the paper's tuned values from
Jaques et al. 2019, supplement Tables 1-3)::

    name: a3c
    description: ...
    defaults:
      ppo: {n_steps: 128}
    games:
      cleanup: {ppo: {ent_coef: 0.00176, lr_init: 0.00126, lr_end: 0.000012}}

Small map variants (``cleanup_small``) use their own block when present, else the base game's.
Every field is checked: unknown keys, wrong types and out-of-range values raise :class:`ConfigError`
with the file and the dotted key path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from baselines.cli import parse_int

CONFIG_DIR = Path(__file__).parent / "configs"

#: Games the zoo knows; ``fake`` is the tiny test stand-in in :mod:`baselines.fake_env`.
GAMES = ("cleanup", "harvest", "box_trapped", "cleanup_small", "harvest_small", "fake")
REWARDS = ("none", "prosocial", "inequity_aversion", "influence_moa")
POLICY_INPUTS = ("rgb", "rgb+actions")
SHARING = ("independent", "shared")
DIVERGENCES = ("kl", "jsd", "pmi")
CRITICS = ("shared", "separate", "detached")  # value functions: baselines.network.SSDLstmPolicy


class ConfigError(ValueError):
    """A config (file, name or value) is invalid; the message says where and why."""


@dataclass
class PPOConfig:
    """RecurrentPPO settings. ``lr_init -> lr_end`` is annealed linearly over the training budget."""

    # rollout length per slot between updates: 50 divides every game's episode length (200, 1000,
    # 100), so with all worlds in step every minibatch sequence starts at an episode start or a
    # rollout start and little padding is wasted; 32 worlds x 50 steps = one 1600-step minibatch
    n_steps: int = 50
    batch_size: int = 1600  # minibatch, in transitions (sb3-contrib cuts it into sequences)
    n_epochs: int = 4
    gamma: float = 0.99  # paper
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    ent_coef: float = 0.00176  # paper, Cleanup A3C baseline
    lr_init: float = 0.00126  # paper, Cleanup A3C baseline
    lr_end: float = 0.000012
    # divide each learner's rewards by the running std of its discounted return (SB3 VecNormalize's
    # rule): without it the fines' value loss saturates the shared trunk (baselines.lockstep.ReturnScaler)
    normalize_reward: bool = True


@dataclass
class NetworkConfig:
    """The paper's network (supplement section 4)."""

    conv_channels: int = 6
    fc_sizes: list[int] = field(default_factory=lambda: [32, 32])
    lstm_hidden_size: int = 128
    # "shared": the paper's one trunk under both heads, trained by both losses; "separate": a critic
    # LSTM of its own; "detached": sb3-contrib's shared_lstm (the value head is a linear probe on
    # LSTM features only the policy loss trains). See baselines.network.SSDLstmPolicy.
    critic: str = "shared"


@dataclass
class ProsocialConfig:
    """r_k = e_k + eta * sum_{i != k} e_i (supplement section 5.2; eta = 0.85 best in both games)."""

    eta: float = 0.85


@dataclass
class InequityAversionConfig:
    """Hughes et al. (2018) with temporally smoothed rewards; alpha = envy, beta = guilt."""

    alpha: float = 0.0  # the zoo's config explains why not Hughes' 5
    beta: float = 0.05
    lambda_: float = 0.975  # smoothing; the trace decays by gamma * lambda_ per step


@dataclass
class InfluenceConfig:
    """Social influence with a learned Model of Other Agents (supplement Table 3).

    The influence weight ramps linearly from 0 to ``beta`` over the first ``curriculum_fraction`` of
    the run's budget, as the learning rate anneals over the whole budget: one rule, so any
    ``--total-steps`` ends with beta at its full value. The paper's C (Table 3: 40 and 226, unit not
    stated; read as millions of steps) against the reference code's 3e8-step schedule gives the
    shipped fractions 0.13 (Cleanup) and 0.75 (Harvest). ``train_moa_only_when_visible`` and ``only_when_visible`` go to the wrapper
    that owns the MOA; ``moa_loss_weight`` is the paper's value, recorded but not applied: the
    wrapper's MOA shares no parameters with the policy and trains with its own Adam, for which a
    constant loss weight cancels out. ``moa_lr`` (default: the agents' ``lr_init``) is the MOA's
    learning rate (see README, "MOA loss weight"). The MOA trains every ``moa_train_every``
    vector steps (a multiple of its 8-step BPTT) with ``moa_train_iters`` Adam steps on the
    steps since the last round: with the wrapper's own default (one step every 64) a zoo run of a
    few hundred thousand steps gives the MOA only ~100 updates, too few to learn anything but the
    commonest actions (benchmarks/RESULTS.md, Box Trapped).
    """

    beta: float = 0.620
    curriculum_fraction: float = 0.13
    divergence: str = "kl"
    moa_loss_weight: float = 15.007
    train_moa_only_when_visible: bool = True
    only_when_visible: bool = True  # influence counted only for agents in view
    clip: float = 10.0
    moa_lr: float | None = None  # None: the agents' lr_init (see README, "MOA loss weight")
    moa_train_every: int = 16
    moa_train_iters: int = 2


@dataclass
class AgentConfig:
    """One zoo agent for one game."""

    name: str = "custom"
    description: str = ""
    policy_inputs: str = "rgb"  # "rgb+actions": the visible-actions channel enters after the conv
    reward: str = "none"
    sharing: str = "independent"
    ppo: PPOConfig = field(default_factory=PPOConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    prosocial: ProsocialConfig = field(default_factory=ProsocialConfig)
    inequity_aversion: InequityAversionConfig = field(default_factory=InequityAversionConfig)
    influence: InfluenceConfig = field(default_factory=InfluenceConfig)

    @property
    def obs_mode(self) -> str:
        """What the env must emit: the influence wrapper and visible actions need the Dict."""
        return "dict" if (self.policy_inputs != "rgb" or self.reward == "influence_moa") else "rgb"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------------
# loading and validation


def zoo_names() -> list[str]:
    """Names of the shipped agent configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def base_game(game: str) -> str:
    """``cleanup_small`` -> ``cleanup``: small maps use their base game's tuned values."""
    return game[: -len("_small")] if game.endswith("_small") else game


def check_game(game: str) -> str:
    if game not in GAMES:
        raise ConfigError(f"unknown game {game!r}; choose one of {', '.join(GAMES)}")
    return game


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a config file, turning YAML syntax errors into ConfigError with the file name."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"malformed config file {path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def resolve_agent(agent: str) -> Path:
    """A zoo name (``a3c``) or a path to a YAML file."""
    p = Path(agent)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise ConfigError(f"config file {agent} does not exist")
        return p
    path = CONFIG_DIR / f"{agent}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown agent {agent!r}; the zoo has {', '.join(zoo_names())} (or pass a .yaml path)")
    return path


def load_agent_config(agent: str, game: str, overrides: list[str] | None = None) -> AgentConfig:
    """Build the config of ``agent`` (zoo name or YAML path) for ``game``.

    ``overrides`` are ``dotted.key=value`` strings (YAML values), applied last, e.g.
    ``["ppo.ent_coef=0.01", "influence.beta=1.0"]``.
    """
    check_game(game)
    path = resolve_agent(agent)
    data = read_yaml(path)
    unknown = set(data) - {"name", "description", "defaults", "games"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected name, description, defaults, games")
    merged: dict[str, Any] = {"name": data.get("name", path.stem), "description": data.get("description", "")}
    _deep_update(merged, _mapping(data.get("defaults", {}), f"{path}: defaults"))
    games = _mapping(data.get("games", {}), f"{path}: games")
    for g in games:
        if g not in GAMES:
            raise ConfigError(f"{path}: games.{g}: unknown game; choose from {', '.join(GAMES)}")
    for g in dict.fromkeys([base_game(game), game]):
        if g in games:
            _deep_update(merged, _mapping(games[g], f"{path}: games.{g}"))
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        key, value = item.split("=", 1)
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: bad value: {exc}") from None
        parts = key.strip().split(".")
        _check_override_key(item, parts)
        node = merged
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = parsed
    # a bad value may come from the file or from an override: name both
    return from_dict(merged, source=f"{path} + overrides" if overrides else str(path))


def _check_override_key(item: str, parts: list[str]) -> None:
    """An override's dotted key must name a field of :class:`AgentConfig` (checked against the
    dataclasses, so a typo is reported as the override's, not as the config file's)."""
    cls: Any = AgentConfig
    for depth, part in enumerate(parts):
        where = f"in {'.'.join(parts[:depth])}" if depth else "at the top level"
        if cls is None:
            raise ConfigError(f"override {item!r}: {'.'.join(parts[:depth])} is not a section")
        names = [f.name for f in dataclasses.fields(cls)]
        if part not in names:
            raise ConfigError(f"override {item!r}: unknown key {part!r} {where}; valid keys there: {', '.join(names)}")
        tp = typing.get_type_hints(cls)[part]
        cls = tp if dataclasses.is_dataclass(tp) else None


def from_dict(data: dict[str, Any], source: str = "config") -> AgentConfig:
    """Typed, validated AgentConfig from a plain mapping."""
    cfg = _build(AgentConfig, data, source, "")
    validate(cfg, source)
    return cfg


def validate(cfg: AgentConfig, source: str = "config") -> None:
    """Range and choice checks that types alone cannot express."""

    def bad(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {msg}")

    for key, value, choices in (
        ("policy_inputs", cfg.policy_inputs, POLICY_INPUTS),
        ("reward", cfg.reward, REWARDS),
        ("sharing", cfg.sharing, SHARING),
        ("influence.divergence", cfg.influence.divergence, DIVERGENCES),
        ("network.critic", cfg.network.critic, CRITICS),
    ):
        if value not in choices:
            raise bad(key, f"{value!r} is not one of {', '.join(choices)}")
    p = cfg.ppo
    for key in ("n_steps", "batch_size", "n_epochs"):
        if getattr(p, key) < 1:
            raise bad(f"ppo.{key}", f"must be >= 1, got {getattr(p, key)}")
    for key in ("gamma", "gae_lambda"):
        if not 0.0 <= getattr(p, key) <= 1.0:
            raise bad(f"ppo.{key}", f"must be in [0, 1], got {getattr(p, key)}")
    for key in ("clip_range", "lr_init", "max_grad_norm"):
        if getattr(p, key) <= 0:
            raise bad(f"ppo.{key}", f"must be > 0, got {getattr(p, key)}")
    for key in ("vf_coef", "ent_coef", "lr_end"):
        if getattr(p, key) < 0:
            raise bad(f"ppo.{key}", f"must be >= 0, got {getattr(p, key)}")
    if p.lr_end > p.lr_init:
        raise bad("ppo.lr_end", f"({p.lr_end}) must not exceed ppo.lr_init ({p.lr_init}); the schedule anneals down")
    n = cfg.network
    if n.conv_channels < 1 or n.lstm_hidden_size < 1 or not n.fc_sizes or min(n.fc_sizes) < 1:
        raise bad("network", "conv_channels, lstm_hidden_size and every fc size must be >= 1")
    i = cfg.influence
    if not 0.0 <= i.curriculum_fraction <= 1.0:
        raise bad("influence.curriculum_fraction", f"must be in [0, 1], got {i.curriculum_fraction}")
    for key in ("moa_loss_weight", "clip", "moa_lr"):
        if getattr(i, key) is not None and getattr(i, key) <= 0:
            raise bad(f"influence.{key}", f"must be > 0, got {getattr(i, key)}")
    if i.moa_train_every < 8 or i.moa_train_every % 8:
        raise bad("influence.moa_train_every", f"must be a positive multiple of 8 (the MOA's BPTT length), "
                                               f"got {i.moa_train_every}")
    if i.moa_train_iters < 1:
        raise bad("influence.moa_train_iters", f"must be >= 1, got {i.moa_train_iters}")
    if not 0.0 <= cfg.inequity_aversion.lambda_ <= 1.0:
        raise bad("inequity_aversion.lambda_", "must be in [0, 1]")
    if cfg.inequity_aversion.alpha < 0 or cfg.inequity_aversion.beta < 0:
        raise bad("inequity_aversion", "alpha and beta must be >= 0")


def dump_yaml(cfg: AgentConfig) -> str:
    """The resolved config as YAML (written next to every run)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = dict(v) if isinstance(v, dict) else v


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data`` with type checks and clear paths in errors."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"{source}: {prefix}{sorted(unknown)[0]}: unknown key; valid keys here: {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, source, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, source, key + ".")
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key}: expected a list, got {value!r}")
        return [_coerce(item_tp, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key}: expected true/false, got {value!r}")
        return value
    if tp is int and isinstance(value, str):
        # YAML 1.1 reads "4e7" (no dot) as a string; the commands' integer spellings are accepted
        try:
            value = parse_int(value)
        except ValueError:
            raise ConfigError(f"{source}: {key}: expected an integer, got {value!r}") from None
    if tp is float and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{source}: {key}: expected a number, got {value!r}") from None
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{source}: {key}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key}: expected a string, got {value!r}")
        return value
    return value
