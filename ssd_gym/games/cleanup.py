"""Cleanup: apples grow only while the river is clean enough; cleaning (the CLEAN beam) pays
nothing directly. Actions: 7 moves/turns + FIRE + CLEAN."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core import constants as C
from ..core import kernels as K
from .base import BASE_ACTION_KINDS, BASE_ACTION_NAMES, Game, check_prob


class Cleanup(Game):
    """Cleanup. Options: ``waste_spawning`` ("single" v0: one new waste cell with probability
    ``waste_spawn_prob`` per step; "retry" reference: about one every step),
    ``depletion_threshold`` (0.4), ``restoration_threshold`` (0.0), ``waste_spawn_prob`` (0.5),
    ``apple_respawn_prob`` (0.05)."""

    name = "cleanup"
    action_names = BASE_ACTION_NAMES + ("FIRE", "CLEAN")
    action_kinds = BASE_ACTION_KINDS + (C.FIRE, C.CLEAN)
    default_map = "cleanup"
    map_characters = "@ PBHRS"
    rule_options = {"beams_visible": (True, False), "waste_spawning": ("single", "retry")}

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"depletion_threshold": 0.4, "restoration_threshold": 0.0,
                "waste_spawn_prob": 0.5, "apple_respawn_prob": 0.05}

    def validate(self) -> None:
        super().validate()
        o = self.options
        if o["waste_spawning"] not in ("single", "retry"):
            raise ValueError(f"waste_spawning must be 'single' or 'retry', got {o['waste_spawning']!r}")
        for key in ("depletion_threshold", "restoration_threshold", "waste_spawn_prob", "apple_respawn_prob"):
            o[key] = check_prob(key, o[key])
        if not o["restoration_threshold"] < o["depletion_threshold"]:
            raise ValueError(
                f"restoration_threshold ({o['restoration_threshold']}) must be below "
                f"depletion_threshold ({o['depletion_threshold']})"
            )
        if len(self.layout.waste_cells) == 0:
            raise ValueError("a Cleanup map needs river cells ('H' or 'R')")
        if len(self.layout.apple_cells) == 0:
            raise ValueError("a Cleanup map needs apple cells ('B')")

    def init_rule_state(self, engine) -> None:
        engine.waste_density = np.zeros(engine.num_worlds, dtype=np.float64)
        engine.waste_history = np.zeros((engine.num_worlds, self.max_cycles + 1), dtype=np.float32)

    def _density(self, engine) -> np.ndarray:
        cells = self.layout.waste_cells
        return np.mean(engine.grid[:, cells[:, 0], cells[:, 1]] == C.WASTE, axis=1)

    def reset_rule_state(self, engine, mask: np.ndarray) -> None:
        engine.waste_density[mask] = self._density(engine)[mask]
        engine.waste_history[mask] = 0.0
        engine.waste_history[mask, 0] = engine.waste_density[mask]

    def apply_rules(self, engine, actions: np.ndarray) -> None:
        o = self.options
        K.cleanup_dynamics(engine.grid, engine.occ, engine.rng, self.layout.apple_cells,
                           self.layout.waste_cells, o["depletion_threshold"],
                           o["restoration_threshold"], o["waste_spawn_prob"],
                           o["apple_respawn_prob"], o["waste_spawning"] == "retry",
                           engine.waste_density, engine.waste_history, engine.t)

    def episode_metrics(self, engine, b: int) -> dict[str, Any]:
        steps = int(engine.t[b])
        hist = engine.waste_history[b, : steps + 1]
        return {
            "waste_density_mean": float(hist.astype(np.float64).mean()),
            "waste_density_final": float(hist[-1]),
            "waste_density_history": hist.astype(np.float64).tolist(),
        }


class CleanupSmall(Cleanup):
    """A 6x10 Cleanup for 3 agents (200-step episodes) with a faster orchard, in the spirit of the
    small Cleanup maps of the LIO paper: learnable on a CPU in minutes."""

    name = "cleanup_small"
    default_map = "cleanup_small"
    default_num_agents = 3
    default_max_cycles = 200

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {**super().option_defaults(), "apple_respawn_prob": 0.15}
