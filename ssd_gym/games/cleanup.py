"""Cleanup: apples grow only while the river is clean enough; cleaning (the CLEAN beam) pays
nothing directly. Actions: 7 moves/turns + FIRE + CLEAN."""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from ..core import constants as C
from ..core.rng import uniform
from .base import BASE_ACTION_KINDS, BASE_ACTION_NAMES, Game, check_prob


@njit(cache=True)
def river_and_orchard(grid, occ, rng, t, apple_cells, waste_cells, depletion, restoration,
                      waste_prob, apple_prob, retry_waste, waste_density, waste_history):
    """Apples regrow at a rate that falls linearly with the river's waste density and stops at
    the depletion threshold; waste reappears while the river is below it.

    retry_waste=False (v0): with probability waste_prob one uniformly random clean river cell
    becomes waste. retry_waste=True (the reference code): a spawn is retried over every clean
    cell, so a cell is added with probability 1 - (1 - waste_prob)^free_cells.
    ``waste_density[b]`` receives the density after this step, as does
    ``waste_history[b, t[b] + 1]``. The draws per step are fixed (one per apple cell, two for
    the waste), whatever the map's state.
    """
    B = grid.shape[0]
    K = apple_cells.shape[0]
    M = waste_cells.shape[0]
    for b in range(B):
        n_waste = 0
        for m in range(M):
            if grid[b, waste_cells[m, 0], waste_cells[m, 1]] == C.WASTE:
                n_waste += 1
        density = n_waste / M if M > 0 else 0.0
        if density >= depletion:
            p_apple = 0.0
            p_waste = 0.0
        else:
            p_apple = apple_prob * (1.0 - (density - restoration) / (depletion - restoration))
            p_waste = waste_prob
        for k in range(K):
            u = uniform(rng, b)
            r = apple_cells[k, 0]
            c = apple_cells[k, 1]
            if grid[b, r, c] != C.APPLE and occ[b, r, c] < 0 and u < p_apple:
                grid[b, r, c] = C.APPLE
        u_spawn = uniform(rng, b)
        u_cell = uniform(rng, b)
        free = M - n_waste
        if free > 0 and p_waste > 0.0:
            if retry_waste:
                p = 1.0 - (1.0 - p_waste) ** free
            else:
                p = p_waste
            if u_spawn < p:
                target = min(int(u_cell * free), free - 1)
                seen = 0
                for m in range(M):
                    r = waste_cells[m, 0]
                    c = waste_cells[m, 1]
                    if grid[b, r, c] != C.WASTE:
                        if seen == target:
                            grid[b, r, c] = C.WASTE
                            n_waste += 1
                            break
                        seen += 1
        waste_density[b] = n_waste / M if M > 0 else 0.0
        waste_history[b, min(t[b] + 1, waste_history.shape[1] - 1)] = waste_density[b]


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
        river_and_orchard(engine.grid, engine.occ, engine.rng, engine.t, self.layout.apple_cells,
                          self.layout.waste_cells,
                          o["depletion_threshold"], o["restoration_threshold"],
                          o["waste_spawn_prob"], o["apple_respawn_prob"],
                          o["waste_spawning"] == "retry", engine.waste_density,
                          engine.waste_history)

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
