"""Agent configs of the zoo: typed dataclasses read and merged with OmegaConf.

A config is built in layers, each checked against the dataclasses below (the defaults, stated once):

1. the dataclass defaults;
2. the agent's YAML (``configs/<agent>.yaml`` or a user's file): only what differs, e.g.
   ``reward: prosocial``;
3. the game's rows of ``configs/games.yaml``, the table of tuned values (the paper's, Tables 1-3):
   ``all``, then the row named like the agent; small maps (``cleanup_small``) use their base game's;
4. the agent YAML's own per-game values, if any: ``games: {<game>: {...}}``;
5. ``key.path=value`` overrides (``--set``), e.g. ``ppo.ent_coef=0.01`` or ``env.ascii_map=[...]``.

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the source
and the key. The ``influence`` section holds :class:`wrappers.InfluenceOptions`' fields under their
own names (passed straight through) plus the zoo's ``curriculum_fraction`` and ``moa_loss_weight``.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

import ssd_gym
from baselines.cli import parse_int
from wrappers import InfluenceOptions

CONFIG_DIR = Path(__file__).parent / "configs"
GAMES = tuple(ssd_gym.GAMES)
#: the wrapper options a run sets itself (from curriculum_fraction and --seed)
RUN_SET_OPTIONS = ("curriculum_steps", "seed")
CRITICS = ("shared", "separate", "detached")  # value functions: baselines.network.SSDLstmPolicy
#: the intrinsic rewards; influence_basic and influence_comm are computed by the zoo from the
#: learners' own policies (baselines.centralised), the others by a wrapper on the env
REWARDS = ("none", "prosocial", "inequity_aversion", "influence_moa", "influence_basic", "influence_comm")
CENTRALISED = ("influence_basic", "influence_comm")


class ConfigError(ValueError):
    """A config (file, name or value) is invalid; the message says where and why."""


@dataclass
class PPOConfig:
    """RecurrentPPO settings. ``lr_init -> lr_end`` is annealed linearly over the training budget."""

    # 50 divides every game's episode length (200, 1000, 100): minibatch sequences start at episode
    # or rollout starts, so little padding is wasted; 32 worlds x 50 steps = one 1600-step minibatch
    n_steps: int = 50
    batch_size: int = 1600  # minibatch, in transitions (sb3-contrib cuts it into sequences)
    n_epochs: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    ent_coef: float = MISSING  # these three: the game's tuned values (games.yaml)
    lr_init: float = MISSING
    lr_end: float = MISSING
    # rewards divided by the running std of the discounted return (baselines.lockstep.ReturnScaler)
    normalize_reward: bool = True


@dataclass
class NetworkConfig:
    """The paper's network (supplement section 4); ``critic``: see baselines.network.SSDLstmPolicy."""

    conv_channels: int = 6
    fc_sizes: list[int] = field(default_factory=lambda: [32, 32])
    lstm_hidden_size: int = 128
    critic: Literal[CRITICS] = "shared"


@dataclass
class ProsocialConfig:
    """r_k = e_k + eta * sum_{i != k} e_i (supplement section 5.2)."""

    eta: float = 0.85


@dataclass
class InequityAversionConfig:
    """Hughes et al. (2018), temporally smoothed; the trace decays by ``ppo.gamma * lam`` per step."""

    alpha: float = 0.0  # envy
    beta: float = 0.05  # guilt
    lam: float = 0.975


_OPTION_TYPES = typing.get_type_hints(InfluenceOptions)
#: ``wrappers.InfluenceOptions`` (its names and defaults) less RUN_SET_OPTIONS, plus the zoo's own:
#: the weight ramps from 0 to beta over the first ``curriculum_fraction`` of the run's budget;
#: ``moa_loss_weight`` (the paper's) is recorded, not applied (README, "MOA loss weight")
InfluenceConfig = dataclasses.make_dataclass("InfluenceConfig", [
    *((f.name, _OPTION_TYPES[f.name], field(default=f.default))
      for f in dataclasses.fields(InfluenceOptions) if f.name not in RUN_SET_OPTIONS),
    ("curriculum_fraction", float, field(default=0.0)),
    ("moa_loss_weight", float, field(default=0.0)),
    # influence_basic (Experiment I): agents 0..influencers-1 act first and are rewarded for their
    # influence on the others; influencee_reward: the others get the influence exerted on them too
    ("influencers", int, field(default=1)),
    ("influencee_reward", bool, field(default=False)),
])


@dataclass
class CommunicationConfig:
    """The message policy of influence_comm / comm_baseline (supplement Table 2): its own learner
    acting on ``vocab_size`` symbols, with its own entropy weight and a hidden layer of ``embedding``
    units between the LSTM and its logits (the paper's communication embedding). ``loss_weight``
    is recorded, not applied: the message policy is a network of its own (baselines.centralised)."""

    vocab_size: int = 9
    ent_coef: float = 0.001
    embedding: int = 32
    loss_weight: float = 0.0



@dataclass
class AgentConfig:
    """One zoo agent for one game."""

    name: str = "custom"
    description: str = ""
    policy_inputs: Literal["rgb", "rgb+actions"] = "rgb"  # rgb+actions: the visible-actions channel
    reward: Literal[REWARDS] = "none"
    sharing: Literal["independent", "shared"] = "independent"
    ppo: PPOConfig = field(default_factory=PPOConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    prosocial: ProsocialConfig = field(default_factory=ProsocialConfig)
    inequity_aversion: InequityAversionConfig = field(default_factory=InequityAversionConfig)
    influence: InfluenceConfig = field(default_factory=InfluenceConfig)  # type: ignore[valid-type]
    communication: CommunicationConfig = field(default_factory=CommunicationConfig)
    env: dict[str, Any] = field(default_factory=dict)  # options of ssd_gym.vector_env: ascii_map, rules...

    @property
    def obs_mode(self) -> str:
        """What the env must emit: the influence wrapper and visible actions need the Dict."""
        return "dict" if (self.policy_inputs != "rgb" or self.reward.startswith("influence")) else "rgb"

    def influence_options(self, **run_set: Any) -> InfluenceOptions:
        """The wrapper's options: this config's influence fields, straight through, and ``run_set``."""
        names = [f.name for f in dataclasses.fields(InfluenceOptions)]
        return InfluenceOptions(**{k: v for k, v in dataclasses.asdict(self.influence).items() if k in names}, **run_set)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: range checks that types cannot express: (key, test, what it must be)
CHECKS = [
    *((f"ppo.{k}", lambda v: v >= 1, "must be >= 1") for k in ("n_steps", "batch_size", "n_epochs")),
    *((f"ppo.{k}", lambda v: 0 <= v <= 1, "must be in [0, 1]") for k in ("gamma", "gae_lambda")),
    *((f"ppo.{k}", lambda v: v > 0, "must be > 0") for k in ("clip_range", "lr_init", "max_grad_norm")),
    *((f"ppo.{k}", lambda v: v >= 0, "must be >= 0") for k in ("vf_coef", "ent_coef", "lr_end")),
    *((f"network.{k}", lambda v: v >= 1, "must be >= 1") for k in ("conv_channels", "lstm_hidden_size")),
    ("network.fc_sizes", lambda v: len(v) > 0 and min(v) >= 1, "must name sizes >= 1"),
    ("influence.curriculum_fraction", lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    ("influence.moa_loss_weight", lambda v: v >= 0, "must be >= 0"),
    ("influence.train_iters", lambda v: v >= 1, "must be >= 1"),
    ("influence.influencers", lambda v: v >= 1, "must be >= 1"),
    ("communication.vocab_size", lambda v: v >= 2, "must be >= 2"),
    ("communication.embedding", lambda v: v >= 1, "must be >= 1"),
    *((f"communication.{k}", lambda v: v >= 0, "must be >= 0") for k in ("ent_coef", "loss_weight")),
    ("inequity_aversion.lam", lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    *((f"inequity_aversion.{k}", lambda v: v >= 0, "must be >= 0") for k in ("alpha", "beta")),
]


def zoo_names() -> list[str]:
    """Names of the shipped agent configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "games")


def base_game(game: str) -> str:
    """``cleanup_small`` -> ``cleanup``: small maps use their base game's tuned values."""
    return game.removesuffix("_small")


def check_game(game: str) -> str:
    if game not in GAMES:
        raise ConfigError(f"unknown game {game!r}; choose one of {', '.join(GAMES)}")
    return game


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a config file, turning YAML syntax errors into ConfigError with the file name."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
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
    if agent not in zoo_names():
        raise ConfigError(f"unknown agent {agent!r}; the zoo has {', '.join(zoo_names())} (or pass a .yaml path)")
    return CONFIG_DIR / f"{agent}.yaml"


def load_agent_config(agent: str, game: str, overrides: list[str] | None = None) -> AgentConfig:
    """Build the config of ``agent`` (zoo name or YAML path) for ``game`` (layers: module docstring)."""
    check_game(game)
    path = resolve_agent(agent)
    data = read_yaml(path)
    games = data.pop("games", None) or {}
    for g in games:
        if g not in GAMES:
            raise ConfigError(f"{path}: games.{g}: unknown game; choose from {', '.join(GAMES)}")
    table = read_yaml(CONFIG_DIR / "games.yaml")
    name = data.setdefault("name", path.stem)
    rows = list(dict.fromkeys([base_game(game), game]))
    layers = [(data, str(path)), *((table.get(g, {}).get(k), f"games.yaml: {g}.{k}") for g in rows for k in ("all", name)),
              *((games.get(g), f"{path}: games.{g}") for g in rows)]
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        layers.append((OmegaConf.to_container(OmegaConf.from_dotlist([item])), f"override {item!r}"))
    return _finish(_merged(layers), f"{path} + overrides" if overrides else str(path))


def from_dict(data: dict[str, Any], source: str = "config") -> AgentConfig:
    """Typed, validated AgentConfig from a plain mapping (e.g. a run's ``run.json``)."""
    return _finish(_merged([(data, source)]), source)


def dump_yaml(cfg: AgentConfig) -> str:
    """The resolved config as YAML (written next to every run)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


@functools.cache
def _schema() -> DictConfig:
    return OmegaConf.structured(AgentConfig)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _merged(layers: list[tuple[Any, str]]) -> DictConfig:
    """The schema with every layer merged in, in order (one merge; a failing one is redone layer by
    layer to name the layer at fault)."""
    layers = [(data or {}, source) for data, source in layers]
    for data, source in layers:
        _spellings(data, AgentConfig, source)
    try:
        return OmegaConf.merge(_schema(), *(data for data, _ in layers))
    except OmegaConfBaseException:
        cfg = _schema()
        for data, source in layers:
            cfg = _merge(cfg, data, source)
        return cfg


def _merge(cfg: DictConfig, data: dict[str, Any], source: str) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, data)
    except OmegaConfBaseException as exc:
        key = exc.full_key or ""
        parent, _, leaf = key.rpartition(".")
        if isinstance(exc, ConfigKeyError):
            node = OmegaConf.select(cfg, parent) if parent else cfg
            raise ConfigError(f"{source}: unknown key {leaf!r} {f'in {parent}' if parent else 'at the top level'}; "
                              f"valid keys there: {', '.join(node)}") from None
        if "DictConfig" in exc.msg and not isinstance(OmegaConf.select(cfg, key), DictConfig):
            raise ConfigError(f"{source}: {key} is not a section") from None
        msg = exc.msg.splitlines()[0]  # the rest repeats the key and the types
        raise ConfigError(f"{source}: {key}: {msg}" if key else f"{source}: {msg}") from None


def _spellings(data: Any, cls: Any, where: str, prefix: str = "") -> None:
    """Integer fields take the commands' spellings (:func:`baselines.cli.parse_int`: YAML reads ``1e2``
    as a float, ``4e7`` as a string); true/false fields take only true or false."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return
    hints = _hints(cls)
    for key, value in data.items():
        tp = hints.get(key)
        if tp is int and isinstance(value, (str, float)):
            with suppress(ValueError):
                data[key] = parse_int(str(value))
        if tp is bool and not isinstance(value, bool):
            raise ConfigError(f"{where}: {prefix}{key}: expected true or false, got {value!r}")
        _spellings(value, tp, where, f"{prefix}{key}.")


def _finish(cfg: DictConfig, source: str) -> AgentConfig:
    try:
        if missing := OmegaConf.missing_keys(cfg):
            raise ConfigError(f"{source}: no value for {', '.join(sorted(missing))}")
        out = typing.cast(AgentConfig, OmegaConf.to_object(cfg))  # resolves ${...} interpolations
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{source}: {exc.full_key}: {exc.msg.splitlines()[0]}") from None
    for key, ok, what in CHECKS:
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise ConfigError(f"{source}: {key}: {what}, got {value}")
    if out.ppo.lr_end > out.ppo.lr_init:
        raise ConfigError(f"{source}: ppo.lr_end ({out.ppo.lr_end}) must not exceed ppo.lr_init ({out.ppo.lr_init}); "
                          "the schedule anneals down")
    if out.reward in CENTRALISED and out.sharing != "independent":
        raise ConfigError(f"{source}: reward {out.reward} needs sharing: independent (one learner per agent, "
                          "whose policy the others' influence is measured on)")
    if out.reward == "influence_comm" and out.influence.divergence == "pmi":
        raise ConfigError(f"{source}: influence.divergence: influence_comm takes kl or jsd (PMI needs the "
                          "listeners' next action, which is not taken yet when the message is rewarded)")
    try:
        out.influence_options()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: influence: {exc}") from None
    return out
