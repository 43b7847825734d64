"""Communication analyses: speaker consistency, mutual information, instantaneous coordination."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssd_gym.analysis import instantaneous_coordination, mutual_information, speaker_consistency


def test_speaker_consistency_one_to_one_independent_and_constant():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 9, size=(4000, 3))
    perm = rng.permutation(9)
    assert speaker_consistency(actions, perm[actions], 9, 9) == pytest.approx([1.0, 1.0, 1.0])
    independent = rng.integers(0, 9, size=actions.shape)
    assert np.all(speaker_consistency(actions, independent, 9, 9) < 0.01)
    # one symbol whatever the action: p(m | a) is certain (1), p(a | m) is the actions' spread (0 here,
    # every action equally often), so 0.5
    balanced = np.tile(np.arange(9), 20)[:, None]
    assert speaker_consistency(balanced, np.zeros_like(balanced), 9, 4) == pytest.approx([0.5])


def test_speaker_consistency_by_hand():
    # actions 0 0 1 1, symbols 0 1 1 1 (2 actions, 2 symbols)
    # p(a | m=0) = (1, 0): 1 - 0 = 1; p(a | m=1) = (1/3, 2/3): 1 - H / ln 2
    # p(m | a=0) = (1/2, 1/2): 0; p(m | a=1) = (0, 1): 1
    h = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3)) / math.log(2)
    expected = 0.5 * ((1 + (1 - h)) / 2 + (0 + 1) / 2)
    sc = speaker_consistency(np.array([[0], [0], [1], [1]]), np.array([[0], [1], [1], [1]]), 2, 2)
    assert sc == pytest.approx([expected])
    # episodes [E, T, N] pool like one long [T, N]
    a = np.array([[[0], [0]], [[1], [1]]])
    m = np.array([[[0], [1]], [[1], [1]]])
    assert speaker_consistency(a, m, 2, 2) == pytest.approx([expected])


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 6), st.integers(2, 6), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_speaker_consistency_lies_in_unit_interval(num_actions, num_symbols, agents, seed):
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, num_actions, size=(30, agents))
    symbols = np.where(rng.random(actions.shape) < 0.5, actions % num_symbols, rng.integers(0, num_symbols, actions.shape))
    sc = speaker_consistency(actions, symbols, num_actions, num_symbols)
    assert sc.shape == (agents,) and np.all(sc >= -1e-12) and np.all(sc <= 1 + 1e-12)


def test_mutual_information_by_hand():
    x = np.tile(np.arange(4), 25)
    assert mutual_information(x, x, 4, 4) == pytest.approx(math.log(4))
    grid_x, grid_y = np.tile(np.arange(4), 4), np.repeat(np.arange(4), 4)  # every pair once: independent
    assert mutual_information(grid_x, grid_y, 4, 4) == pytest.approx(0.0, abs=1e-12)
    # x = (0, 0, 1, 1), y = (0, 1, 1, 1): joint (1/4, 1/4, 0, 1/2), I = H(x) + H(y) - H(x, y)
    hx, hy, hxy = math.log(2), -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), 1.5 * math.log(2)
    assert mutual_information([0, 0, 1, 1], [0, 1, 1, 1], 2, 2) == pytest.approx(hx + hy - hxy)


def test_instantaneous_coordination_finds_the_follower_and_respects_episode_ends():
    rng = np.random.default_rng(1)
    e, t, k = 40, 50, 5
    symbols = rng.integers(0, k, size=(e, t, 3))
    actions = rng.integers(0, k, size=(e, t, 3))
    actions[:, 1:, 2] = symbols[:, :-1, 0]  # agent 2 does next what agent 0 says now
    ic = instantaneous_coordination(symbols, actions, k, k)
    assert np.isnan(np.diag(ic)).all()
    assert ic[0, 2] == pytest.approx(math.log(k), rel=0.02)
    off = [ic[a, b] for a in range(3) for b in range(3) if a != b and (a, b) != (0, 2)]
    assert max(off) < 0.05 and np.nanmax(ic) == ic[0, 2]
    # glued into one long episode the follower would also see across episode ends: there the pair
    # (last step of one episode, first of the next) is random, so a single [T, N] run scores lower
    long = instantaneous_coordination(symbols.reshape(-1, 3), actions.reshape(-1, 3), k, k)
    assert long[0, 2] < ic[0, 2]
    # moments: only the steps where agent 0 said 0 (then agent 2's next action is always 0: no
    # information left within those moments)
    said_zero = symbols[..., 0] == 0
    assert instantaneous_coordination(symbols, actions, k, k, moments=said_zero)[0, 2] == pytest.approx(0.0, abs=1e-12)


def test_analysis_errors_name_the_problem():
    a = np.zeros((5, 2), dtype=int)
    with pytest.raises(ValueError, match=r"symbols must lie in \[0, 3\)"):
        speaker_consistency(a, a + 3, 9, 3)
    with pytest.raises(ValueError, match="same shape"):
        speaker_consistency(a, a[:4], 9, 3)
    with pytest.raises(ValueError, match="must be >= 2"):
        speaker_consistency(a, a, 9, 1)
    with pytest.raises(ValueError, match="integers"):
        speaker_consistency(a.astype(float), a, 9, 3)
    with pytest.raises(ValueError, match=r"\[T, N\] or \[E, T, N\]"):
        speaker_consistency(a.ravel(), a.ravel(), 9, 3)
    with pytest.raises(ValueError, match="at least 2 steps"):
        instantaneous_coordination(a[:1], a[:1], 9, 9)
    with pytest.raises(ValueError, match="moments must be laid out"):
        instantaneous_coordination(a, a, 9, 9, moments=np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="pair up"):
        mutual_information([0, 1], [0], 2, 2)
