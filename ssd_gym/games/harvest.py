"""Harvest (commons harvest): apples regrow faster next to other apples; over-harvesting kills
a patch for good. Actions: 7 moves/turns + FIRE (fining beam)."""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from ..core import constants as C
from ..core.rng import uniform
from .base import BASE_ACTION_KINDS, BASE_ACTION_NAMES, Game

REGROWTH_PROBS = (0.0, 0.005, 0.02, 0.05)


def neighbour_table(apple_cells: np.ndarray, height: int, width: int, shape: str) -> np.ndarray:
    """For each apple cell the in-grid neighbour cells counted by regrowth, padded with -1.

    ``"disc"``: offsets with L2 distance <= 2 (12 neighbours, the intended radius-2 disc);
    ``"box"``: the 3x3 box (8 neighbours), what the reference code's j^2+k^2 <= 2 test gives.
    """
    limit = 4 if shape == "disc" else 2
    offsets = [(dr, dc) for dr in range(-2, 3) for dc in range(-2, 3)
               if (dr, dc) != (0, 0) and dr * dr + dc * dc <= limit]
    table = -np.ones((len(apple_cells), len(offsets), 2), dtype=np.int64)
    for k, (r, c) in enumerate(apple_cells):
        m = 0
        for dr, dc in offsets:
            nr, nc = r + dr, c + dc
            if 0 <= nr < height and 0 <= nc < width:
                table[k, m] = (nr, nc)
                m += 1
    return table


@njit(cache=True)
def regrow(grid, occ, rng, apple_cells, neighbours, probs):
    """An empty apple cell with no agent on it grows an apple with probability
    probs[min(n, len(probs)-1)], n = apples among its neighbour cells, all cells deciding from
    the map as it was before this pass. One random draw per cell, always, so that the stream
    does not depend on the map's state."""
    B = grid.shape[0]
    K = apple_cells.shape[0]
    M = neighbours.shape[1]
    P = probs.shape[0]
    grow = np.zeros(K, dtype=np.bool_)
    for b in range(B):
        for k in range(K):
            u = uniform(rng, b)
            r = apple_cells[k, 0]
            c = apple_cells[k, 1]
            grow[k] = False
            if grid[b, r, c] == C.APPLE or occ[b, r, c] >= 0:
                continue
            n = 0
            for m in range(M):
                nr = neighbours[k, m, 0]
                if nr < 0:
                    break
                if grid[b, nr, neighbours[k, m, 1]] == C.APPLE:
                    n += 1
            if u < probs[min(n, P - 1)]:
                grow[k] = True
        for k in range(K):
            if grow[k]:
                grid[b, apple_cells[k, 0], apple_cells[k, 1]] = C.APPLE


class Harvest(Game):
    """Harvest. Options: ``regrowth_neighbourhood`` ("disc" v0 / "box" reference),
    ``regrowth_probs`` (probability for 0, 1, 2, >=3 neighbouring apples)."""

    name = "harvest"
    action_names = BASE_ACTION_NAMES + ("FIRE",)
    action_kinds = BASE_ACTION_KINDS + (C.FIRE,)
    default_map = "harvest"
    map_characters = "@ PA"
    rule_options = {"beams_visible": (True, False), "regrowth_neighbourhood": ("disc", "box")}

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"regrowth_probs": REGROWTH_PROBS}

    def validate(self) -> None:
        super().validate()
        shape = self.options["regrowth_neighbourhood"]
        if shape not in ("disc", "box"):
            raise ValueError(f"regrowth_neighbourhood must be 'disc' or 'box', got {shape!r}")
        probs = self.options["regrowth_probs"]
        try:
            arr = np.asarray(probs, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"regrowth_probs must be a sequence of probabilities, got {probs!r}") from None
        if arr.ndim != 1 or len(arr) == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
            raise ValueError(f"regrowth_probs must be a non-empty sequence of probabilities in [0, 1], got {probs!r}")
        self.regrowth_probs = arr
        self.neighbours = neighbour_table(self.layout.apple_cells, self.layout.height,
                                          self.layout.width, shape)

    def apply_rules(self, engine, actions: np.ndarray) -> None:
        regrow(engine.grid, engine.occ, engine.rng, self.layout.apple_cells, self.neighbours,
               self.regrowth_probs)

    def episode_metrics(self, engine, b: int) -> dict[str, Any]:
        cells = self.layout.apple_cells
        left = int(np.count_nonzero(engine.grid[b, cells[:, 0], cells[:, 1]] == C.APPLE))
        return {"apples_left": left}


class HarvestSmall(Harvest):
    """A 7x12 Harvest with 3 agents and 200-step episodes, for experiments in minutes."""

    name = "harvest_small"
    default_map = "harvest_small"
    default_num_agents = 3
    default_max_cycles = 200
