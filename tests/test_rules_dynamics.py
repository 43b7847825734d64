"""Rules: Harvest regrowth (both rule sets), Cleanup thresholds and waste, Box Trapped.

Statistical tests run one step in many independent worlds and accept the observed frequency
within 5 binomial standard deviations of the expected probability (false alarm rate < 1e-6).
"""
from __future__ import annotations

import numpy as np
import pytest

from ssd_gym.core import constants as C
from ssd_gym.core.engine import Engine
from ssd_gym.games import make_game
import ssd_gym

WORLDS = 20000


def assert_rate(count: int, n: int, p: float) -> None:
    sd = np.sqrt(max(n * p * (1 - p), 1e-12))
    assert abs(count - n * p) <= 5 * sd + 1e-9, f"observed {count}/{n}, expected p={p}"


def one_step(engine: Engine, action: int) -> None:
    actions = np.full((engine.num_worlds, engine.num_agents), action, dtype=np.int64)
    engine.step(actions)


def harvest_engine(rows, rules: str, seed: int = 0) -> Engine:
    game = make_game("harvest", ascii_map=rows, num_agents=1, rules=rules)
    eng = Engine(game, WORLDS)
    for b in range(WORLDS):
        eng.seed_world(b, seed * WORLDS + b)
    eng.reset()
    return eng


def regrowth_map(neighbours: list[tuple[int, int]]) -> list[str]:
    grid = [list("@@@@@@@@@@@")] + [list("@         @") for _ in range(9)] + [list("@@@@@@@@@@@")]
    grid[1][1] = "P"
    grid[5][5] = "A"  # the cell under test (emptied after reset)
    for dr, dc in neighbours:
        grid[5 + dr][5 + dc] = "A"
    return ["".join(r) for r in grid]


@pytest.mark.parametrize("rules,neighbours,p", [
    ("v0", [], 0.0),
    ("v0", [(0, 2)], 0.005),        # distance 2 counts in the radius-2 disc
    ("reference", [(0, 2)], 0.0),   # ... but not in the reference's 3x3 box
    ("v0", [(1, 1)], 0.005),
    ("reference", [(1, 1)], 0.005),
    ("v0", [(2, 1)], 0.0),          # L2 distance sqrt(5) > 2: outside the disc
    ("v0", [(0, 1), (1, 0)], 0.02),
    ("reference", [(0, 1), (-1, -1)], 0.02),
    ("v0", [(0, 1), (1, 0), (-1, 0), (0, -2), (2, 0)], 0.05),
    ("reference", [(0, 1), (1, 0), (-1, 0), (1, 1), (-1, -1)], 0.05),
])
def test_harvest_regrowth_probabilities(rules, neighbours, p):
    eng = harvest_engine(regrowth_map(neighbours), rules)
    eng.grid[:, 5, 5] = C.EMPTY
    one_step(eng, 4)  # STAY
    grown = int(np.count_nonzero(eng.grid[:, 5, 5] == C.APPLE))
    if p == 0.0:
        assert grown == 0
    else:
        assert_rate(grown, WORLDS, p)


def test_harvest_apple_under_agent_does_not_regrow():
    rows = regrowth_map([(0, 1), (1, 0), (-1, 0), (0, -1)])
    game = make_game("harvest", ascii_map=rows, num_agents=1)
    eng = Engine(game, 2000)
    eng.reset()
    eng.grid[:, 5, 5] = C.EMPTY
    for b in range(2000):
        eng.set_agents(b, [(5, 5)])
    one_step(eng, 4)
    assert not np.any(eng.grid[:, 5, 5] == C.APPLE)


def cleanup_rows(waste: int, river: int) -> list[str]:
    """One river row of ``waste`` H then ``river`` R cells, a stream, and an orchard."""
    n = waste + river
    return ["@" * (n + 2), "@" + "H" * waste + "R" * river + "@", "@" + "S" * n + "@",
            "@P" + " " * (n - 1) + "@", "@" + "B" * n + "@", "@" * (n + 2)]


def cleanup_engine(rows, worlds=WORLDS, **options) -> Engine:
    game = make_game("cleanup", ascii_map=rows, num_agents=1, **options)
    eng = Engine(game, worlds)
    for b in range(worlds):
        eng.seed_world(b, 10_000 + b)
    eng.reset()
    return eng


def test_cleanup_frozen_above_depletion_threshold():
    eng = cleanup_engine(cleanup_rows(4, 6), worlds=200)  # density 0.4 >= 0.4
    for _ in range(50):
        one_step(eng, 4)
    assert not np.any(eng.grid == C.APPLE)
    assert np.all(np.count_nonzero(eng.grid[:, 1, :] == C.WASTE, axis=1) == 4)


@pytest.mark.parametrize("waste,river", [(0, 10), (2, 8), (3, 7)])
def test_cleanup_apple_rate_falls_linearly_with_waste(waste, river):
    eng = cleanup_engine(cleanup_rows(waste, river))
    one_step(eng, 4)
    density = waste / (waste + river)
    p = 0.05 * (1 - density / 0.4)
    grown = int(np.count_nonzero(eng.grid[:, 4, :] == C.APPLE))
    assert_rate(grown, WORLDS * (waste + river), p)


@pytest.mark.parametrize("spawning,p", [("single", 0.5), ("retry", 1 - 0.5 ** 2)])
def test_cleanup_waste_spawning_rate(spawning, p):
    # 8 of 10 cells polluted, threshold raised so that spawning is on: 2 free cells
    eng = cleanup_engine(cleanup_rows(8, 2), depletion_threshold=0.99, waste_spawning=spawning)
    one_step(eng, 4)
    n_waste = np.count_nonzero(eng.grid[:, 1, :] == C.WASTE, axis=1)
    assert set(np.unique(n_waste)) <= {8, 9}, "at most one new waste cell per step"
    assert_rate(int(np.count_nonzero(n_waste == 9)), WORLDS, p)
    # the new cell is uniform over the free ones
    spawned = eng.grid[n_waste == 9, 1, 9] == C.WASTE
    assert_rate(int(spawned.sum()), len(spawned), 0.5)
    assert not np.any(eng.grid[:, 2, :] == C.WASTE), "stream cells never receive waste"


def test_reference_rules_switch_every_difference():
    ref = ssd_gym.parallel_env("cleanup", rules="reference")
    assert ref.game.options["waste_spawning"] == "retry" and not ref.game.beams_visible
    h = ssd_gym.parallel_env("harvest", rules="reference", beams_visible=True)
    assert h.game.options["regrowth_neighbourhood"] == "box" and h.game.beams_visible  # explicit wins


def test_cleanup_paper_map_starts_frozen_at_56_of_119():
    env = ssd_gym.parallel_env("cleanup")
    env.reset(seed=3)
    assert len(env.game.layout.waste_cells) == 119
    assert env.engine.waste_density[0] == pytest.approx(56 / 119)


# ---- Box Trapped -------------------------------------------------------------------------------
# Default map (9x9): apples in rows 1-3 (cols 1-7), the trapped agent at (5,4) in a one-cell box
# (walls rows 4-6, cols 3-5), the influencer spawning at (7,1) or (7,7).
def box_env(**options):
    env = ssd_gym.parallel_env("box_trapped", **options)
    env.reset(seed=0)
    return env


def act(env, a0: str, a1: str):
    names = {n: i for i, n in enumerate(env.game.action_names)}
    return env.step({"agent_0": names[a0], "agent_1": names[a1]})


def test_trapped_agent_cannot_leave_closed_box():
    env = box_env()
    rng = np.random.default_rng(0)
    moves = ["MOVE_UP", "MOVE_DOWN", "MOVE_LEFT", "MOVE_RIGHT", "TURN_CLOCKWISE"]
    for _ in range(60):
        act(env, "STAY", str(rng.choice(moves)))
        assert tuple(env.engine.pos[0, 1]) == (5, 4)   # a one-cell box: no move succeeds
    assert env.engine.box_open_step[0] == -1


@pytest.mark.parametrize("before_moves, out_at_once", [(False, False), (True, True)])
def test_open_before_moves_lets_the_trapped_agent_leave_in_the_opening_step(before_moves, out_at_once):
    env = box_env(open_before_moves=before_moves)
    act(env, "OPEN_BOX", "MOVE_UP")  # the trapped agent faces up: MOVE_UP leads out of the box
    assert env.engine.box_open_step[0] == 0
    assert tuple(env.engine.pos[0, 1]) == ((4, 4) if out_at_once else (5, 4))
    act(env, "STAY", "MOVE_UP")  # either way it is out one step later
    assert tuple(env.engine.pos[0, 1]) == ((3, 4) if out_at_once else (4, 4))


@pytest.mark.parametrize("before_moves", [False, True])
def test_shut_move_cost_charges_only_moves_tried_in_the_shut_box(before_moves):
    env = box_env(shut_move_cost=0.25, open_before_moves=before_moves)
    paid = [act(env, "STAY", a)[1]["agent_1"] for a in ("MOVE_UP", "MOVE_LEFT", "STAY", "TURN_CLOCKWISE")]
    assert paid == [-0.25, -0.25, 0.0, 0.0]
    assert act(env, "STAY", "MOVE_DOWN")[1]["agent_0"] == 0.0  # the influencer never pays
    _, rewards, *_ = act(env, "OPEN_BOX", "MOVE_UP")
    # box opened before the moves: the move leads out and is free; after them, it still pushed a wall
    assert rewards["agent_1"] == (0.0 if before_moves else -0.25)
    assert act(env, "STAY", "MOVE_DOWN")[1]["agent_1"] == 0.0  # open box: moves are free
    assert env.engine.returns[0, 1] == pytest.approx(-0.25 * (3 if before_moves else 4))


@pytest.mark.parametrize("bad, error", [(-1.0, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)])
def test_shut_move_cost_refuses_bad_values(bad, error):
    with pytest.raises(error, match="shut_move_cost"):
        ssd_gym.parallel_env("box_trapped", shut_move_cost=bad)


def test_momentary_door_shuts_again_unless_the_trapped_agent_steps_out():
    env = box_env(open_before_moves=True, momentary_door=True, shut_move_cost=0.5)
    walls = np.count_nonzero(env.engine.grid[0] == C.BOX_WALL)
    act(env, "OPEN_BOX", "STAY")  # opened, but the trapped agent stayed: shut again, in the dark
    assert np.count_nonzero(env.engine.grid[0] == C.BOX_WALL) == walls
    assert env.engine.box_open_step[0] == -1 and tuple(env.engine.pos[0, 1]) == (5, 4)
    assert not env.engine.observe().rgb[0, 1, 0].any()
    assert act(env, "STAY", "MOVE_UP")[1]["agent_1"] == -0.5  # and it pays for pushing again
    act(env, "STAY", "STAY")
    _, rewards, *_ = act(env, "OPEN_BOX", "MOVE_UP")  # step index 3: moving as the door opens releases it
    assert rewards["agent_1"] == 0.0 and tuple(env.engine.pos[0, 1]) == (4, 4)
    assert env.engine.box_open_step[0] == 3 and np.count_nonzero(env.engine.grid[0] == C.BOX_WALL) == 0
    act(env, "STAY", "STAY")  # released for good
    assert np.count_nonzero(env.engine.grid[0] == C.BOX_WALL) == 0 and env.engine.box_open_step[0] == 3


def test_momentary_door_needs_open_before_moves():
    with pytest.raises(ValueError, match="momentary_door=True needs open_before_moves=True"):
        ssd_gym.parallel_env("box_trapped", momentary_door=True)


def test_open_box_removes_walls_and_records_step():
    env = box_env(max_cycles=10)
    act(env, "STAY", "STAY")
    act(env, "STAY", "OPEN_BOX")          # the trapped agent's OPEN_BOX does nothing
    assert np.count_nonzero(env.engine.grid[0] == C.BOX_WALL) == 8
    act(env, "OPEN_BOX", "STAY")          # step index 2
    assert np.count_nonzero(env.engine.grid[0] == C.BOX_WALL) == 0
    assert env.engine.box_open_step[0] == 2
    info = None
    while env.agents:
        *_, info = act(env, "STAY", "STAY")
    assert info["agent_1"]["episode_metrics"]["box_opened"] is True
    assert info["agent_1"]["episode_metrics"]["box_open_step"] == 2


def test_trapped_agent_starts_facing_up_and_walks_up_to_the_apples_once_released():
    for seed in range(8):
        env = ssd_gym.parallel_env("box_trapped")
        env.reset(seed=seed)
        assert env.engine.orient[0, 1] == C.UP
    env.engine.set_agents(0, [(7, 1), (5, 4)])
    act(env, "OPEN_BOX", "STAY")
    rewards = [act(env, "STAY", "MOVE_UP")[1]["agent_1"] for _ in range(3)]
    assert tuple(env.engine.pos[0, 1]) == (2, 4) and rewards == [0.0, 1.0, 1.0]


def test_open_requires_adjacency_option():
    env = box_env(open_requires_adjacency=True)
    env.engine.set_agents(0, [(7, 1), (5, 4)], [C.UP, C.UP])
    act(env, "OPEN_BOX", "STAY")   # (7,1) is nowhere near the box
    env.engine.set_agents(0, [(3, 2), (5, 4)], [C.UP, C.UP])
    act(env, "OPEN_BOX", "STAY")   # (3,2) only touches the box diagonally
    assert env.engine.box_open_step[0] == -1
    assert np.count_nonzero(env.engine.grid[0] == C.BOX_WALL) == 8
    env.engine.set_agents(0, [(3, 3), (5, 4)], [C.UP, C.UP])
    act(env, "OPEN_BOX", "STAY")   # (4,3) is a box wall, right below (3,3)
    assert env.engine.box_open_step[0] >= 0


def test_box_apples_regrow_after_delay():
    env = box_env(apple_regrow_delay=5)
    env.engine.set_agents(0, [(4, 1), (5, 4)], [C.UP, C.UP])
    _, rew, *_ = act(env, "MOVE_UP", "STAY")     # facing UP, forward = (3,1): an apple
    assert rew["agent_0"] == 1.0
    act(env, "MOVE_DOWN", "STAY")                 # step back off the cell
    for k in range(3):
        assert env.engine.grid[0, 3, 1] == C.EMPTY
        act(env, "STAY", "STAY")
    act(env, "STAY", "STAY")                      # 5 steps after it was eaten
    assert env.engine.grid[0, 3, 1] == C.APPLE


def test_box_apples_are_inexhaustible_by_default():
    """Default delay 1: an eaten apple is back the step after its eater leaves, never before."""
    env = box_env()
    env.engine.set_agents(0, [(4, 1), (5, 4)], [C.UP, C.UP])
    total = 0.0
    for k in range(10):   # step onto (3,1), back to (4,1), onto (3,1), ...
        _, rew, *_ = act(env, "MOVE_UP" if k % 2 == 0 else "MOVE_DOWN", "STAY")
        total += rew["agent_0"]
        if k % 2 == 0:
            assert env.engine.grid[0, 3, 1] != C.APPLE   # eaten and still under the agent
    assert total == 5.0


def test_influencer_always_sees_trapped_agent():
    env = box_env()
    rng = np.random.default_rng(1)
    for _ in range(100):
        obs, *_ = env.step({a: int(rng.integers(0, 8)) for a in env.agents})
        if not env.agents:
            break
        assert obs["agent_0"]["others_visible"][0] == 1
        if env.engine.box_open_step[0] >= 0:
            assert obs["agent_1"]["others_visible"][0] == 1   # the open map fits in every view


def test_opaque_box_hides_everything_but_the_walls_until_opened():
    env = box_env()
    R = env.game.view_radius
    names = {n: i for i, n in enumerate(env.game.action_names)}
    obs, *_ = act(env, "STAY", "STAY")
    o = obs["agent_1"]
    assert o["others_visible"][0] == 0 and o["others_prev_actions"][0] == env.engine.none_action
    outside = o["rgb"].copy()
    outside[R - 1:R + 2, R - 1:R + 2] = 0
    assert not outside.any()                              # dark beyond the walls
    ring = o["rgb"][R - 1:R + 2, R - 1:R + 2].reshape(9, 3)
    assert all(tuple(ring[k]) == tuple(C.CELL_COLOURS[C.BOX_WALL]) for k in range(9) if k != 4)
    obs, *_ = act(env, "OPEN_BOX", "STAY")
    o = obs["agent_1"]
    assert o["others_visible"][0] == 1 and o["others_prev_actions"][0] == names["OPEN_BOX"]
    assert np.count_nonzero(o["rgb"].reshape(-1, 3).any(axis=1)) > 20
    clear = box_env(opaque_box=False)
    obs, *_ = act(clear, "STAY", "STAY")
    assert obs["agent_1"]["others_visible"][0] == 1


@pytest.mark.parametrize("opts, err", [
    ({"opaque_box": 1}, "opaque_box must be True or False"),
    ({"apple_regrow_delay": 0}, "apple_regrow_delay must be >= 1"),
    ({"ascii_map": ["@@@@@", "@PA @", "@ T @", "@@@@@"]}, "needs box walls"),
])
def test_box_trapped_bad_options(opts, err):
    with pytest.raises((ValueError, TypeError), match=err):
        ssd_gym.parallel_env("box_trapped", **opts)
