"""Rules: beam shape, blocking, hits (stacking), costs, cleaning, beam visibility."""
from __future__ import annotations

import numpy as np

from ssd_gym.core import constants as C
from conftest import Scenario, colour, open_map


def beam_cells(s) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(s.engine.beam[0]))}


def test_fire_beam_shape_facing_up():
    s = Scenario("harvest", rows=open_map(15, 15, 1), num_agents=1).place([(10, 7)], [C.UP])
    _, rew, *_ = s.step("FIRE")
    centre = {(10 - k, 7) for k in range(1, 6)}
    sides = {(10 - k, 7 + side) for k in range(0, 5) for side in (-1, 1)}
    assert beam_cells(s) == centre | sides
    assert rew["agent_0"] == -1.0


def test_fire_beam_shape_facing_left_is_rotated():
    s = Scenario("harvest", rows=open_map(15, 15, 1), num_agents=1).place([(7, 10)], [C.LEFT])
    s.step("FIRE")
    centre = {(7, 10 - k) for k in range(1, 6)}
    sides = {(7 + side, 10 - k) for k in range(0, 5) for side in (-1, 1)}
    assert beam_cells(s) == centre | sides


def test_walls_stop_beams_and_are_not_covered():
    rows = open_map(15, 15, 1)
    rows[7] = rows[7][:7] + "@" + rows[7][8:]   # a wall 3 cells ahead in the centre lane
    s = Scenario("harvest", rows=rows, num_agents=1).place([(10, 7)], [C.UP])
    s.step("FIRE")
    cells = beam_cells(s)
    assert (9, 7) in cells and (8, 7) in cells
    assert (7, 7) not in cells and (6, 7) not in cells and (5, 7) not in cells
    assert (6, 6) in cells and (6, 8) in cells  # side lanes unaffected


def test_hit_costs_fifty_and_absorbs_lane():
    s = Scenario("harvest", num_agents=3).place([(10, 7), (8, 7), (6, 7)], [C.UP, C.UP, C.UP])
    _, rew, *_ = s.step("FIRE", "STAY", "STAY")
    assert rew == {"agent_0": -1.0, "agent_1": -50.0, "agent_2": 0.0}
    assert (7, 7) not in beam_cells(s)


def test_hits_stack_from_several_shooters():
    s = Scenario("harvest", num_agents=3).place([(10, 7), (7, 4), (7, 7)], [C.UP, C.RIGHT, C.UP])
    _, rew, _, _, info = s.step("FIRE", "FIRE", "STAY")
    assert rew["agent_2"] == -100.0
    assert rew["agent_0"] == -1.0 and rew["agent_1"] == -1.0


def test_one_shot_can_hit_three_agents_one_per_lane():
    s = Scenario("harvest", num_agents=4).place([(10, 7), (8, 6), (8, 7), (8, 8)], [C.UP] * 4)
    _, rew, *_ = s.step("FIRE", "STAY", "STAY", "STAY")
    assert [rew[f"agent_{i}"] for i in range(4)] == [-1.0, -50.0, -50.0, -50.0]


def test_fire_passes_through_apples():
    s = Scenario("harvest", num_agents=1).place([(10, 7)], [C.UP])
    s.engine.grid[0, 8, 7] = C.APPLE
    s.step("FIRE")
    assert (6, 7) in beam_cells(s)
    assert s.engine.grid[0, 8, 7] == C.APPLE


CLEAN_ROWS = [
    "@@@@@@@@@@@",
    "@HHHHHHHHH@",
    "@HHHHHHHHH@",
    "@         @",
    "@   PP    @",
    "@BBBBBBBBB@",
    "@@@@@@@@@@@",
]


def test_clean_beam_turns_first_waste_per_lane_into_river():
    s = Scenario("cleanup", rows=CLEAN_ROWS, num_agents=1).place([(4, 5)], [C.UP])
    grid_before = s.engine.grid[0].copy()
    _, rew, *_ = s.step("CLEAN")
    assert rew["agent_0"] == 0.0  # cleaning is free
    changed = {(int(r), int(c)) for r, c in zip(*np.nonzero(s.engine.grid[0] != grid_before))}
    # centre lane reaches row 2 first; side lanes start beside the agent and reach row 2 too
    assert changed == {(2, 4), (2, 5), (2, 6)}
    assert all(s.engine.grid[0, r, c] == C.RIVER for r, c in changed)
    assert all(s.engine.grid[0, 1, c] == C.WASTE for c in (4, 5, 6))  # behind: still waste


def test_clean_beam_stops_at_agents():
    s = Scenario("cleanup", rows=CLEAN_ROWS, num_agents=2).place([(4, 5), (3, 5)], [C.UP, C.UP])
    s.step("CLEAN", "STAY")
    assert s.engine.grid[0, 2, 5] == C.WASTE
    assert s.engine.grid[0, 2, 4] == C.RIVER


def test_beams_visible_in_v0_observations_and_invisible_in_reference():
    for rules, visible in (("v0", True), ("reference", False)):
        s = Scenario("harvest", num_agents=2, rules=rules).place([(10, 7), (10, 9)], [C.UP, C.UP])
        obs, *_ = s.step("FIRE", "STAY")
        view = obs["agent_1"]["rgb"]  # agent_1 stands 2 to the right, facing up
        # cell (8, 7) is 2 ahead and 2 to the left of agent_1
        assert np.array_equal(view[5, 5], colour("fire")) == visible
        assert s.env.game.beams_visible == visible


def test_beams_and_hits_counted_in_episode_metrics():
    s = Scenario("harvest", num_agents=2, max_cycles=2).place([(10, 7), (8, 7)], [C.UP, C.UP])
    s.step("FIRE", "STAY")
    _, _, _, trunc, info = s.step("STAY", "STAY")
    assert all(trunc.values())
    ep = info["agent_0"]["episode_metrics"]
    assert ep["beams_fired"] == [1, 0]
    assert ep["hits_taken"] == [0, 1]
    assert ep["hits_given"] == [1, 0]
    assert ep["peace"] == (2 * 2 - 1) / 2
