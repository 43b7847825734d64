"""Observations: the visible-action channel (values at reset, no leaks), obs modes, spaces."""
from __future__ import annotations

import numpy as np

import ssd_gym
from ssd_gym.core import constants as C
from conftest import Scenario, open_map


def test_values_at_reset_are_the_none_action():
    env = ssd_gym.parallel_env("cleanup")
    obs, _ = env.reset(seed=0)
    A = env.action_space("agent_0").n
    for a in env.agents:
        assert obs[a]["prev_action"] == A
        assert np.all(obs[a]["others_prev_actions"] == A)
        assert env.observation_space(a).contains(obs[a])


def test_visible_actions_shown_and_invisible_actions_hidden():
    rows = open_map(12, 30, 3)
    s = Scenario("harvest", rows=rows, num_agents=3)
    # agent_1 is 5 columns from agent_0 (visible); agent_2 is 20 columns away (not visible)
    s.place([(5, 3), (5, 8), (5, 23)], [C.UP, C.UP, C.UP])
    obs, *_ = s.step("TURN_CLOCKWISE", "STAY", "TURN_COUNTERCLOCKWISE")
    names = s.env.game.action_names
    A = len(names)
    o0 = obs["agent_0"]
    assert o0["prev_action"] == names.index("TURN_CLOCKWISE")
    assert list(o0["others_visible"]) == [1, 0]
    assert list(o0["others_prev_actions"]) == [names.index("STAY"), A]  # agent_2's turn is hidden
    o1 = obs["agent_1"]  # sees agent_0 (5 away) but not agent_2 (15 away)
    assert list(o1["others_visible"]) == [1, 0]
    assert list(o1["others_prev_actions"]) == [names.index("TURN_CLOCKWISE"), A]
    o2 = obs["agent_2"]
    assert list(o2["others_visible"]) == [0, 0]
    assert list(o2["others_prev_actions"]) == [A, A]


def test_visibility_is_the_view_window_chebyshev_radius():
    rows = open_map(20, 20, 2)
    s = Scenario("harvest", rows=rows, num_agents=2)
    s.place([(2, 2), (9, 9)], [C.UP, C.UP])  # exactly 7 rows and 7 columns apart
    obs, *_ = s.step("STAY", "STAY")
    assert obs["agent_0"]["others_visible"][0] == 1
    s.place([(2, 2), (10, 9)], [C.UP, C.UP])
    obs, *_ = s.step("STAY", "STAY")
    assert obs["agent_0"]["others_visible"][0] == 0


def test_rgb_mode_is_a_plain_box():
    env = ssd_gym.parallel_env("harvest", obs_mode="rgb")
    obs, _ = env.reset(seed=1)
    space = env.observation_space("agent_0")
    assert space.shape == (15, 15, 3) and space.dtype == np.uint8
    assert obs["agent_0"].shape == (15, 15, 3) and space.contains(obs["agent_0"])


def test_single_agent_has_no_others_keys():
    env = ssd_gym.parallel_env("harvest", num_agents=1)
    obs, _ = env.reset(seed=0)
    assert set(obs["agent_0"]) == {"rgb", "prev_action"}


def test_ten_agents_get_distinct_colours_distinct_from_terrain_and_beams():
    env = ssd_gym.parallel_env("harvest", num_agents=12)
    env.reset(seed=0)
    cols = {tuple(c) for c in env.engine.agent_colours.tolist()}
    assert len(cols) == 12
    reserved = {tuple(c) for c in C.CELL_COLOURS.tolist()} | {tuple(c) for c in C.BEAM_COLOURS.tolist()}
    assert not cols & reserved
    # every agent sees itself in its own colour
    obs = env.engine.observe()
    for i in range(12):
        assert tuple(obs.rgb[0, i, 7, 7]) == tuple(env.engine.agent_colours[i])
