"""Box Trapped (Jaques et al. 2019, supp. 10.3): agent_0, the influencer, can OPEN_BOX to free
agent_1, who starts inside a box of walls; apples outside are inexhaustible (each regrows a few
steps after it is eaten). A selfish learner has no reason to open the box."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core import constants as C
from ..core import kernels as K
from ..core.layout import MapError
from .base import BASE_ACTION_KINDS, BASE_ACTION_NAMES, Game, check_bool, check_int

INFLUENCER = 0
TRAPPED = 1


class BoxTrapped(Game):
    """Box Trapped. Options: ``apple_regrow_delay`` (steps, default 10),
    ``open_requires_adjacency`` (default False: OPEN_BOX works from anywhere)."""

    name = "box_trapped"
    action_names = BASE_ACTION_NAMES + ("OPEN_BOX",)
    action_kinds = BASE_ACTION_KINDS + (C.OPEN_BOX,)
    default_map = "box_trapped"
    default_num_agents = 2
    default_max_cycles = 100
    map_characters = "@ PTAX"
    rule_options = {"beams_visible": (True, True)}  # no beams in this game

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"apple_regrow_delay": 10, "open_requires_adjacency": False}

    def validate(self) -> None:
        if self.num_agents != 2:
            raise ValueError(f"box_trapped is a two-agent game, got num_agents={self.num_agents}")
        if len(self.layout.spawn_points) < 1:
            raise MapError("box_trapped needs a spawn point 'P' for the influencer")
        if len(self.layout.trapped_spawn_points) < 1:
            raise MapError("box_trapped needs a spawn point 'T' for the trapped agent")
        if len(self.layout.box_cells) == 0:
            raise MapError("box_trapped needs box walls 'X'")
        self.options["apple_regrow_delay"] = check_int("apple_regrow_delay", self.options["apple_regrow_delay"])
        self.options["open_requires_adjacency"] = check_bool(
            "open_requires_adjacency", self.options["open_requires_adjacency"])
        self.can_open = np.array([True, False])

    def spawn_groups(self) -> tuple[list[np.ndarray], np.ndarray]:
        return ([self.layout.spawn_points, self.layout.trapped_spawn_points],
                np.array([INFLUENCER, TRAPPED], dtype=np.int64))

    def init_rule_state(self, engine) -> None:
        engine.box_open_step = -np.ones(engine.num_worlds, dtype=np.int64)
        engine.regrow_timer = np.zeros((engine.num_worlds, len(self.layout.apple_cells)), dtype=np.int64)

    def reset_rule_state(self, engine, mask: np.ndarray) -> None:
        engine.box_open_step[mask] = -1
        engine.regrow_timer[mask] = 0

    def apply_rules(self, engine, actions: np.ndarray) -> None:
        K.box_dynamics(actions, engine.kinds, self.can_open, engine.grid, engine.occ, engine.pos,
                       self.layout.box_cells, self.layout.apple_cells, engine.regrow_timer,
                       self.options["apple_regrow_delay"], self.options["open_requires_adjacency"],
                       engine.box_open_step, engine.t)

    def episode_metrics(self, engine, b: int) -> dict[str, Any]:
        step = int(engine.box_open_step[b])
        return {"box_opened": step >= 0, "box_open_step": step}
