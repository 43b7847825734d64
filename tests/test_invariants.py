"""Invariants under random play (property tests): no two agents ever share a cell, no agent
stands in a wall, the occupancy grid agrees with the positions, waste and apples stay on their
cells."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssd_gym.core import constants as C
from ssd_gym.core.engine import Engine
from ssd_gym.games import make_game


def check_invariants(eng: Engine) -> None:
    B, N = eng.num_worlds, eng.num_agents
    flat = eng.pos[:, :, 0] * eng.grid.shape[2] + eng.pos[:, :, 1]
    for b in range(B):
        assert len(np.unique(flat[b])) == N, f"world {b}: two agents share a cell"
    cells = eng.grid[np.arange(B)[:, None], eng.pos[:, :, 0], eng.pos[:, :, 1]]
    assert not np.any((cells == C.WALL) | (cells == C.BOX_WALL)), "an agent stands in a wall"
    occ_count = np.count_nonzero(eng.occ >= 0, axis=(1, 2))
    assert np.all(occ_count == N)
    who = eng.occ[np.arange(B)[:, None], eng.pos[:, :, 0], eng.pos[:, :, 1]]
    assert np.array_equal(who, np.broadcast_to(np.arange(N), (B, N)))


def crowded_map(height: int, width: int, agents: int, walls: list[tuple[int, int]]) -> list[str]:
    grid = [["@"] * width] + [["@"] + ["A"] * (width - 2) + ["@"] for _ in range(height - 2)] + [["@"] * width]
    for r, c in walls:
        if 1 <= r < height - 1 and 1 <= c < width - 1:
            grid[r][c] = "@"
    free = [(r, c) for r in range(1, height - 1) for c in range(1, width - 1) if grid[r][c] != "@"]
    for r, c in free[:agents]:
        grid[r][c] = "P"
    return ["".join(row) for row in grid]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(4, 8), width=st.integers(4, 8), crowd=st.floats(0.2, 1.0),
    walls=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), max_size=4),
    seed=st.integers(0, 2**31 - 1), game=st.sampled_from(["harvest", "cleanup_like"]),
)
def test_no_shared_cells_under_random_play(height, width, crowd, walls, seed, game):
    rows = crowded_map(height, width, 10**6, walls)
    spawn = sum(r.count("P") for r in rows)
    agents = max(1, min(spawn, int(round(crowd * spawn))))
    if game == "cleanup_like":
        rows = [r.replace("A", "B") for r in rows]
        rows.insert(1, "@" + "H" * (width - 2) + "@")   # a river row
        rows.insert(2, "@" + "B" * (width - 2) + "@")   # and an orchard row
        g = make_game("cleanup", ascii_map=rows, num_agents=agents, depletion_threshold=1.0)
    else:
        g = make_game("harvest", ascii_map=rows, num_agents=agents)
    eng = Engine(g, 8)
    for b in range(8):
        eng.seed_world(b, seed + b)
    eng.reset()
    check_invariants(eng)
    rng = np.random.default_rng(seed)
    for _ in range(60):
        eng.step(rng.integers(0, g.num_actions, size=(8, agents)))
        check_invariants(eng)


def test_no_shared_cells_on_paper_maps_long_random_play():
    for name in ("cleanup", "harvest"):
        g = make_game(name, num_agents=10)
        eng = Engine(g, 16)
        for b in range(16):
            eng.seed_world(b, 100 + b)
        eng.reset()
        rng = np.random.default_rng(0)
        for _ in range(500):
            eng.step(rng.integers(0, g.num_actions, size=(16, 10)))
            check_invariants(eng)
