"""What a game is: a map, an action set, and rules that run after the engine's shared step.

A game module subclasses :class:`Game`, states its actions, default map and options, and
implements :meth:`Game.apply_rules` (regrowth, waste, boxes...) with a numba kernel of its own,
defined beside it, called with the engine's state arrays it needs (``engine.grid``, ``engine.rng``...;
shapes in :mod:`ssd_gym.core.kernels`) and the arrays the game keeps on the engine.
"""
from __future__ import annotations

import math
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from ..core import constants as C
from ..core.layout import Layout, MapError, parse_map

RULE_SETS = ("v0", "reference")


def load_map(name: str) -> str:
    """The text of a shipped ASCII map (``ssd_gym/games/maps/<name>.txt``)."""
    return resources.files("ssd_gym.games").joinpath("maps", f"{name}.txt").read_text()


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def check_prob(name: str, value: Any) -> float:
    value = check_number(name, value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return float(value)


def check_cost(name: str, value: Any) -> float:
    value = check_number(name, value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


class Game:
    """Base class of the games. Subclasses set the class attributes and implement the rules.

    Common options (every game): ``num_agents``, ``max_cycles``, ``ascii_map``, ``rules``
    ("v0" or "reference"), ``beams_visible``, ``view_radius``, ``beam_length``.
    """

    name: ClassVar[str]
    action_names: ClassVar[tuple[str, ...]]
    action_kinds: ClassVar[tuple[int, ...]]
    default_map: ClassVar[str]            # name of a file in maps/
    default_num_agents: ClassVar[int] = 5
    default_max_cycles: ClassVar[int] = 1000
    map_characters: ClassVar[str] = "@ P"
    # option name -> value under rules="v0" and under rules="reference"
    rule_options: ClassVar[dict[str, tuple[Any, Any]]] = {"beams_visible": (True, False)}

    def __init__(self, *, num_agents: int | None = None, max_cycles: int | None = None,
                 ascii_map: str | list[str] | None = None, rules: str = "v0",
                 view_radius: int = 7, beam_length: int = 5, **options: Any):
        if rules not in RULE_SETS:
            raise ValueError(f"rules must be one of {RULE_SETS}, got {rules!r}")
        self.rules = rules
        valid = set(self.option_defaults()) | set(self.rule_options)
        unknown = sorted(set(options) - valid)
        if unknown:
            raise TypeError(
                f"unknown option(s) {unknown} for game {self.name!r}; valid game options are "
                f"{sorted(valid | {'num_agents', 'max_cycles', 'ascii_map', 'rules', 'view_radius', 'beam_length'})} "
                f"(and, for the env faces, obs_mode, render_mode, render_scale)"
            )
        self.num_agents = check_int("num_agents", self.default_num_agents if num_agents is None else num_agents)
        self.max_cycles = check_int("max_cycles", self.default_max_cycles if max_cycles is None else max_cycles)
        self.view_radius = check_int("view_radius", view_radius, minimum=0)
        self.beam_length = check_int("beam_length", beam_length)
        text = load_map(self.default_map) if ascii_map is None else ascii_map
        self.layout: Layout = parse_map(text, allowed=self.map_characters)
        self.custom_map = ascii_map is not None
        # rule-set dependent options: explicit value wins over the rule set's value
        self.options: dict[str, Any] = dict(self.option_defaults())
        which = 0 if rules == "v0" else 1
        for key, pair in self.rule_options.items():
            self.options[key] = pair[which]
        self.options.update(options)
        self.beams_visible = check_bool("beams_visible", self.options["beams_visible"])
        self.validate()

    # ---- things subclasses override -------------------------------------------------------
    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """Game-specific options and their defaults (not counting ``rule_options``)."""
        return {}

    def validate(self) -> None:
        """Check the options and the map for this game; raise a clear error."""
        n_spawn = len(self.layout.spawn_points)
        if n_spawn < self.num_agents:
            raise MapError(
                f"the map has {n_spawn} spawn points ('P') but num_agents={self.num_agents}; "
                f"add spawn points or use fewer agents"
            )

    def spawn_groups(self) -> tuple[list[np.ndarray], np.ndarray]:
        """Spawn cell lists and, per agent, the index of the list it spawns from."""
        return [self.layout.spawn_points], np.zeros(self.num_agents, dtype=np.int64)

    def init_rule_state(self, engine) -> None:
        """Allocate per-world arrays the rules need (attributes on ``engine``)."""

    def reset_rule_state(self, engine, mask: np.ndarray) -> None:
        """Reset those arrays for the worlds in ``mask``."""

    def before_moves(self, engine, actions: np.ndarray) -> None:
        """Rules that act before the shared step's turns, moves and beams (none by default)."""

    def apply_rules(self, engine, actions: np.ndarray) -> None:
        """Run this game's dynamics after the shared step (regrowth, waste, boxes...)."""

    def edit_observation(self, engine, obs) -> None:
        """Change the freshly computed observations in place (e.g. what a boxed agent can see)."""

    def episode_metrics(self, engine, b: int) -> dict[str, Any]:
        """Game-specific per-episode metrics of world b."""
        return {}

    # ---- derived ----------------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return len(self.action_kinds)

    def describe(self) -> str:
        return f"{self.name} ({self.layout.height}x{self.layout.width}, {self.num_agents} agents)"


BASE_ACTION_NAMES = ("MOVE_LEFT", "MOVE_RIGHT", "MOVE_UP", "MOVE_DOWN", "STAY",
                     "TURN_CLOCKWISE", "TURN_COUNTERCLOCKWISE")
BASE_ACTION_KINDS = (C.MOVE_LEFT, C.MOVE_RIGHT, C.MOVE_UP, C.MOVE_DOWN, C.STAY, C.TURN_CW, C.TURN_CCW)
