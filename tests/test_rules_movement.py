"""Rules: egocentric views and moves, turns, and move-conflict resolution."""
from __future__ import annotations

import numpy as np
import pytest

from ssd_gym.core import constants as C
from conftest import Scenario, colour, open_map

DIRS = {C.UP: (-1, 0), C.RIGHT: (0, 1), C.DOWN: (1, 0), C.LEFT: (0, -1)}


def clockwise(d):
    return (d[1], -d[0])


@pytest.mark.parametrize("facing", [C.UP, C.RIGHT, C.DOWN, C.LEFT])
def test_view_rotation_cell_ahead_is_above_centre(facing):
    s = Scenario("harvest", num_agents=1).place([(7, 7)], [facing])
    d = DIRS[facing]
    left = tuple(-v for v in clockwise(d))
    ahead = (7 + d[0], 7 + d[1])
    s.engine.grid[0, ahead[0], ahead[1]] = C.APPLE  # an apple straight ahead
    s.engine.grid[0, 7 + 2 * left[0], 7 + 2 * left[1]] = C.WASTE  # waste two cells to the left
    rgb = s.views().rgb[0, 0]
    R = 7
    assert np.array_equal(rgb[R - 1, R], colour("apple")), "the cell ahead must be above the centre"
    for cell in [(R + 1, R), (R, R - 1), (R, R + 1)]:
        assert not np.array_equal(rgb[cell], colour("apple"))
    assert np.array_equal(rgb[R, R - 2], colour("waste")), "the left-hand side must be on the left"
    assert np.array_equal(rgb[R, R], s.engine.agent_colours[0]), "the agent sees itself at the centre"


def test_view_shows_walls_and_black_padding_in_the_right_place():
    # agent in the top-left corner facing UP: rows above the map are black padding
    s = Scenario("harvest", num_agents=1).place([(1, 1)], [C.UP])
    rgb = s.views().rgb[0, 0]
    assert np.array_equal(rgb[6, 7], colour("wall"))     # the border wall just ahead
    assert np.array_equal(rgb[5, 7], colour("empty"))    # outside the map: black
    assert np.array_equal(rgb[7, 6], colour("wall"))     # wall on the left


@pytest.mark.parametrize("facing", [C.UP, C.RIGHT, C.DOWN, C.LEFT])
@pytest.mark.parametrize("move", ["MOVE_UP", "MOVE_DOWN", "MOVE_LEFT", "MOVE_RIGHT"])
def test_egocentric_moves(facing, move):
    s = Scenario("harvest", num_agents=1).place([(7, 7)], [facing])
    d = DIRS[facing]
    r = clockwise(d)
    expected = {"MOVE_UP": d, "MOVE_DOWN": (-d[0], -d[1]), "MOVE_RIGHT": r,
                "MOVE_LEFT": (-r[0], -r[1])}[move]
    s.step(move)
    assert s.pos(0) == (7 + expected[0], 7 + expected[1])
    assert s.engine.orient[0, 0] == facing


def test_reference_example_facing_right():
    # reference-env.md: facing RIGHT, MOVE_UP gives (0,+1) and MOVE_LEFT gives (-1,0)
    s = Scenario("harvest", num_agents=1).place([(7, 7)], [C.RIGHT])
    s.step("MOVE_UP")
    assert s.pos(0) == (7, 8)
    s.step("MOVE_LEFT")
    assert s.pos(0) == (6, 8)


def test_turns():
    s = Scenario("harvest", num_agents=1).place([(7, 7)], [C.UP])
    seq = []
    for _ in range(4):
        s.step("TURN_CLOCKWISE")
        seq.append(int(s.engine.orient[0, 0]))
    assert seq == [C.RIGHT, C.DOWN, C.LEFT, C.UP]
    s.step("TURN_COUNTERCLOCKWISE")
    assert s.engine.orient[0, 0] == C.LEFT
    assert s.pos(0) == (7, 7)


def test_move_into_wall_stays():
    s = Scenario("harvest", num_agents=1).place([(1, 1)], [C.UP])
    s.step("MOVE_UP")
    assert s.pos(0) == (1, 1)
    s.step("MOVE_LEFT")
    assert s.pos(0) == (1, 1)


def test_contested_cell_random_tie_break():
    wins = np.zeros(2, dtype=int)
    for seed in range(400):
        s = Scenario("harvest", num_agents=2, seed=seed).place([(7, 6), (7, 8)], [C.RIGHT, C.LEFT])
        s.step("MOVE_UP", "MOVE_UP")  # both want (7, 7)
        p0, p1 = s.pos(0), s.pos(1)
        assert p0 != p1
        if p0 == (7, 7):
            assert p1 == (7, 8)
            wins[0] += 1
        else:
            assert p1 == (7, 7) and p0 == (7, 6)
            wins[1] += 1
    # fair coin over 400 trials: 200 +- 5 sigma (sigma = 10)
    assert abs(wins[0] - 200) < 50, wins


def test_no_swaps():
    s = Scenario("harvest", num_agents=2).place([(7, 6), (7, 7)], [C.RIGHT, C.LEFT])
    s.step("MOVE_UP", "MOVE_UP")
    assert (s.pos(0), s.pos(1)) == ((7, 6), (7, 7))


def test_chain_moves_together():
    s = Scenario("harvest", num_agents=3).place([(7, 5), (7, 6), (7, 7)], [C.RIGHT] * 3)
    s.step("MOVE_UP", "MOVE_UP", "MOVE_UP")
    assert [s.pos(i) for i in range(3)] == [(7, 6), (7, 7), (7, 8)]


def test_blocked_chain_stays():
    # the head walks into a staying agent: the whole chain stays
    s = Scenario("harvest", num_agents=4).place([(7, 5), (7, 6), (7, 7), (7, 8)], [C.RIGHT] * 4)
    s.step("MOVE_UP", "MOVE_UP", "MOVE_UP", "STAY")
    assert [s.pos(i) for i in range(4)] == [(7, 5), (7, 6), (7, 7), (7, 8)]


@pytest.mark.parametrize("blocker", ["TURN_CLOCKWISE", "FIRE"])
def test_turning_or_firing_agents_are_obstacles(blocker):
    s = Scenario("harvest", num_agents=2).place([(7, 6), (7, 7)], [C.RIGHT, C.DOWN])
    s.step("MOVE_UP", blocker)
    assert s.pos(0) == (7, 6) and s.pos(1) == (7, 7)


def test_cycle_of_four_rotates():
    # 2x2 block, everyone steps clockwise around the square
    pos = [(6, 6), (6, 7), (7, 7), (7, 6)]
    facing = [C.RIGHT, C.DOWN, C.LEFT, C.UP]
    s = Scenario("harvest", num_agents=4).place(pos, facing)
    s.step(*["MOVE_UP"] * 4)
    assert [s.pos(i) for i in range(4)] == [pos[1], pos[2], pos[3], pos[0]]


def test_follower_enters_cell_vacated_by_contest_winner_only_if_it_leaves():
    # agent 0 -> (7,7) occupied by agent 1 who contests (7,8) with agent 2.
    for seed in range(60):
        s = Scenario("harvest", num_agents=3, seed=seed).place(
            [(7, 6), (7, 7), (7, 9)], [C.RIGHT, C.RIGHT, C.LEFT])
        s.step("MOVE_UP", "MOVE_UP", "MOVE_UP")
        p = [s.pos(i) for i in range(3)]
        assert len(set(p)) == 3
        if p[1] == (7, 8):       # agent 1 won: agent 0 follows
            assert p[0] == (7, 7) and p[2] == (7, 9)
        else:                     # agent 2 won: agent 1 is blocked and so is agent 0
            assert p == [(7, 6), (7, 7), (7, 8)]


def test_winner_of_contest_into_cell_of_a_blocked_agent_stays():
    # agents 0 and 2 both want agent 1's cell; agent 1 tries to walk into a wall
    s = Scenario("harvest", num_agents=3).place([(2, 1), (1, 1), (1, 2)], [C.UP, C.UP, C.LEFT])
    s.step("MOVE_UP", "MOVE_UP", "MOVE_UP")
    assert [s.pos(i) for i in range(3)] == [(2, 1), (1, 1), (1, 2)]


def test_consumption_gives_plus_one_and_removes_apple():
    s = Scenario("harvest", num_agents=1).place([(7, 7)], [C.UP])
    s.engine.grid[0, 6, 7] = C.APPLE
    _, rew, *_ = s.step("MOVE_UP")
    assert rew["agent_0"] == 1.0
    assert s.engine.grid[0, 6, 7] == C.EMPTY
