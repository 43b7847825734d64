"""Shared helpers for the tests: tiny maps and hand-placed scenarios."""
from __future__ import annotations

import numpy as np
import pytest

import ssd_gym
from ssd_gym.core import constants as C


def open_map(height: int, width: int, spawn: int, fill: str = " ") -> list[str]:
    """A walled map of empty floor with ``spawn`` spawn points along the top row."""
    rows = ["@" * width]
    inner = [[fill] * (width - 2) for _ in range(height - 2)]
    k = 0
    for r in range(height - 2):
        for c in range(width - 2):
            if k < spawn:
                inner[r][c] = "P"
                k += 1
    rows += ["@" + "".join(row) + "@" for row in inner]
    rows.append("@" * width)
    return rows


class Scenario:
    """A one-world env with agents placed by hand; actions given by name."""

    def __init__(self, game: str = "harvest", rows=None, num_agents: int = 1, seed: int = 0, **options):
        if rows is None:
            rows = open_map(15, 15, num_agents)
        self.env = ssd_gym.parallel_env(game, ascii_map=rows, num_agents=num_agents, **options)
        self.env.reset(seed=seed)
        self.engine = self.env.engine
        self.names = {n: i for i, n in enumerate(self.env.game.action_names)}

    def place(self, positions, orientations):
        self.engine.set_agents(0, positions, orientations)
        return self

    def step(self, *actions: str):
        acts = {f"agent_{i}": self.names[a] for i, a in enumerate(actions)}
        return self.env.step(acts)

    def pos(self, i: int) -> tuple[int, int]:
        return tuple(int(v) for v in self.engine.pos[0, i])

    def views(self):
        obs = self.engine.observe()
        return obs


@pytest.fixture
def scenario():
    return Scenario


def colour(name: str) -> np.ndarray:
    return {"apple": C.CELL_COLOURS[C.APPLE], "wall": C.CELL_COLOURS[C.WALL],
            "empty": C.CELL_COLOURS[C.EMPTY], "waste": C.CELL_COLOURS[C.WASTE],
            "fire": C.BEAM_COLOURS[C.FIRE_BEAM], "clean": C.BEAM_COLOURS[C.CLEAN_BEAM]}[name]
