"""Schelling diagrams from the scripted Cleanup and Harvest policies."""

import numpy as np
import pytest

from ssd_gym.core import constants as C
from ssd_gym.core.engine import Engine
from ssd_gym.games import make_game
from ssd_gym.schelling import ScriptedPolicy, distance_field, main, schelling_diagram


def test_distance_field_by_hand():
    walkable = np.array([[1, 1, 1],
                         [0, 0, 1],
                         [1, 1, 1]], dtype=bool)
    targets = np.zeros_like(walkable)
    targets[2, 0] = True
    dist = distance_field(walkable, targets)
    # around the wall: (2,0) <- (2,1) <- (2,2) <- (1,2) <- (0,2) <- (0,1) <- (0,0)
    assert dist.tolist() == [[6, 5, 4], [9, 9, 3], [0, 1, 2]]


def test_scripted_policies_do_what_they_say():
    engine = Engine(make_game("cleanup_small"), num_worlds=2)
    engine.reset()
    policy = ScriptedPolicy(engine, clean_above=0.0)
    cooperate = np.ones((2, engine.num_agents), dtype=bool)
    for _ in range(60):
        engine.step(policy.actions(cooperate))
    assert engine.stats[..., C.ST_CLEANED].sum() > 0  # cleaners reach the river and clean it
    assert engine.stats[..., C.ST_FIRES].sum() == 0  # nobody fines

    engine = Engine(make_game("harvest_small"), num_worlds=2)
    engine.reset()
    policy = ScriptedPolicy(engine)
    for _ in range(60):
        engine.step(policy.actions(np.zeros((2, engine.num_agents), dtype=bool)))
    assert (engine.stats[..., C.ST_APPLES] > 0).all()  # every greedy defector finds apples


def test_schelling_rows_follow_the_hand_checked_orderings():
    cleanup = schelling_diagram("cleanup_small", episodes=6, seed=0)
    rc, rd = cleanup.cooperator, cleanup.defector
    # cleanup_small starts with its river above the depletion threshold: with nobody cleaning no apple
    # ever grows, so a defector among defectors earns exactly nothing and a lone cleaner more
    assert rd[0] == 0.0 and rc[0] > 0.0
    # the cleaners pay for the orchard: a defector beside cleaners earns more than a cleaner there
    assert np.all(rd[1:] > rc[1:])
    assert cleanup.is_social_dilemma()
    harvest = schelling_diagram("harvest_small", episodes=6, seed=0)
    # restraint among the restrained beats greed among the greedy (the orchard survives)
    assert harvest.cooperator[-1] > harvest.defector[0]
    text = harvest.table()
    assert "| 2 |" in text and "R_c(N-1) > R_d(0): yes" in text


def test_schelling_errors_and_command(tmp_path, capsys):
    with pytest.raises(ValueError, match="scripted policies exist for Cleanup and Harvest"):
        ScriptedPolicy(Engine(make_game("box_trapped")))
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        schelling_diagram("harvest_small", episodes=0)
    assert main(["--game", "pong", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown game 'pong'" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    assert main(["--game", "harvest_small", "--episodes", "2", "--out", str(tmp_path / "h.png")]) == 0
    assert (tmp_path / "h.png").stat().st_size > 0 and "social dilemma" in capsys.readouterr().out
