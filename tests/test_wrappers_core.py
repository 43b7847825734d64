"""Hand-computed checks of the array cores (prosocial, inequity aversion, divergences, curriculum)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wrappers.core import (
    aggregate_influence,
    check_weight,
    conditional_and_marginal,
    curriculum_weight,
    inequity_aversion_rewards,
    js_divergence,
    kl_divergence,
    pairwise_divergence,
    pointwise_mutual_information,
    prosocial_rewards,
    smooth_rewards,
)


def test_prosocial_made_up_vector():
    e = np.array([[1.0, -2.0, 0.5, 4.0]])
    eta = 0.85
    # r_0 = 1 + 0.85 * (-2 + 0.5 + 4) = 1 + 0.85 * 2.5 = 3.125, etc.
    expected = [1 + 0.85 * 2.5, -2 + 0.85 * 5.5, 0.5 + 0.85 * 3.0, 4 + 0.85 * -0.5]
    np.testing.assert_allclose(prosocial_rewards(e, eta)[0], expected)


def test_prosocial_eta_zero_is_identity_and_eta_one_is_collective():
    e = np.array([[3.0, 0.0, -1.0]])
    np.testing.assert_allclose(prosocial_rewards(e, 0.0), e)
    np.testing.assert_allclose(prosocial_rewards(e, 1.0), [[2.0, 2.0, 2.0]])


def test_inequity_aversion_three_steps_by_hand():
    """Three agents, alpha=5, beta=0.05, gamma*lam = 0.5 (gamma=1, lam=0.5) for round numbers."""
    alpha, beta, gamma, lam = 5.0, 0.05, 1.0, 0.5
    rewards = [np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 2.0]]), np.array([[0.0, 0.0, 0.0]])]
    traces = np.zeros((1, 3))
    got = []
    for e in rewards:
        traces = smooth_rewards(traces, e, gamma, lam)
        got.append(inequity_aversion_rewards(e, traces, alpha, beta)[0])
    # step 1: h = [1, 0, 0]
    #   agent 0: envy 0, guilt (1 + 1) = 2 -> 1 - 0.05 * 2 / 2 = 0.95
    #   agent 1: envy (1-0) = 1 -> 0 - 5 * 1 / 2 = -2.5; agent 2 the same
    # step 2: h = [0.5, 0, 2]
    #   agent 0: envy (2 - 0.5) = 1.5, guilt (0.5 - 0) = 0.5 -> 0 - (5*1.5 + 0.05*0.5)/2 = -3.7625
    #   agent 1: envy 0.5 + 2 = 2.5 -> -(5*2.5)/2 = -6.25
    #   agent 2: guilt 1.5 + 2 = 3.5 -> 2 - 0.05*3.5/2 = 1.9125
    # step 3: h = [0.25, 0, 1]
    #   agent 0: envy 0.75, guilt 0.25 -> -(3.75 + 0.0125)/2 = -1.88125
    #   agent 1: envy 1.25 -> -3.125
    #   agent 2: guilt 0.75 + 1 = 1.75 -> -0.04375
    expected = [[0.95, -2.5, -2.5], [-3.7625, -6.25, 1.9125], [-1.88125, -3.125, -0.04375]]
    np.testing.assert_allclose(np.array(got), expected)


def test_inequity_aversion_equal_rewards_no_penalty_and_one_agent():
    e = np.array([[2.0, 2.0]])
    np.testing.assert_allclose(inequity_aversion_rewards(e, e, 5.0, 0.05), e)
    np.testing.assert_allclose(inequity_aversion_rewards(np.array([[3.0]]), np.array([[3.0]]), 5, 0.05), [[3.0]])


def test_inequity_aversion_both_terms_subtracted():
    """The reference code's sign bug rewards being ahead; here being ahead costs beta."""
    e = np.array([[1.0, 0.0]])
    r = inequity_aversion_rewards(e, e, alpha=0.0, beta=0.5)
    assert r[0, 0] == pytest.approx(1.0 - 0.5)  # guilt subtracted, not added
    assert r[0, 1] == pytest.approx(0.0)


def _hand_kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def test_conditional_marginal_and_divergences_by_hand():
    # k has 2 counterfactual actions; j has 2 actions.  p(j | k=0) = [.9, .1], p(j | k=1) = [.2, .8]
    cf = torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]]])  # [C=2, J=1, A=2]
    policy = torch.tensor([0.5, 0.5])
    cond, marg = conditional_and_marginal(cf, torch.tensor(0), policy)
    np.testing.assert_allclose(cond[0].numpy(), [0.9, 0.1], rtol=1e-6)
    np.testing.assert_allclose(marg[0].numpy(), [0.55, 0.45], rtol=1e-6)
    kl = _hand_kl([0.9, 0.1], [0.55, 0.45])
    m = [0.725, 0.275]
    jsd = 0.5 * _hand_kl([0.9, 0.1], m) + 0.5 * _hand_kl([0.55, 0.45], m)
    pmi = math.log(0.1 / 0.45)  # j really took action 1
    assert float(pairwise_divergence(cond, marg, "kl")[0]) == pytest.approx(kl, rel=1e-5)
    assert float(pairwise_divergence(cond, marg, "jsd")[0]) == pytest.approx(jsd, rel=1e-5)
    assert float(pointwise_mutual_information(cond, marg, torch.tensor([1]))[0]) == pytest.approx(pmi, rel=1e-5)


def test_skewed_policy_changes_marginal():
    cf = torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]]])
    cond, marg = conditional_and_marginal(cf, torch.tensor(1), torch.tensor([0.75, 0.25]))
    np.testing.assert_allclose(marg[0].numpy(), [0.725, 0.275], rtol=1e-6)
    assert float(pairwise_divergence(cond, marg, "kl")[0]) == pytest.approx(
        _hand_kl([0.2, 0.8], [0.725, 0.275]), rel=1e-5)


def test_zero_influence_when_prediction_ignores_own_action():
    row = torch.tensor([[0.3, 0.5, 0.2], [0.1, 0.1, 0.8]])  # J=2 others
    cf = row.expand(4, 2, 3)  # the same for every counterfactual action
    cond, marg = conditional_and_marginal(cf, torch.tensor(2), torch.tensor([0.1, 0.2, 0.3, 0.4]))
    for d in ("kl", "jsd"):
        assert pairwise_divergence(cond, marg, d).abs().max() < 1e-6
    assert pointwise_mutual_information(cond, marg, torch.tensor([0, 2])).abs().max() < 1e-6


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 6), st.integers(0, 2**31 - 1), st.floats(0.01, 50))
def test_jsd_within_zero_and_ln2(a, seed, temp):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(a, generator=g, dtype=torch.float64) * temp, -1)
    q = torch.softmax(torch.randn(a, generator=g, dtype=torch.float64) * temp, -1)
    d = float(js_divergence(p, q))
    assert -1e-9 <= d <= math.log(2) + 1e-9
    assert float(kl_divergence(p, q)) >= -1e-6  # q is clamped at 1e-20


def test_jsd_reaches_ln2_for_disjoint_supports():
    p = torch.tensor([1.0, 0.0], dtype=torch.float64)
    q = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert float(js_divergence(p, q)) == pytest.approx(math.log(2), abs=1e-6)


def test_aggregate_masks_and_clips():
    per = torch.tensor([[3.0, 4.0, 5.0]])
    assert float(aggregate_influence(per, torch.tensor([[True, False, True]]), 10.0)[0]) == pytest.approx(8.0)
    assert float(aggregate_influence(per, None, 10.0)[0]) == pytest.approx(10.0)  # 12 clipped
    assert float(aggregate_influence(-per, None, 10.0)[0]) == pytest.approx(-10.0)


@pytest.mark.parametrize("step, expected", [(0, 0.0), (25, 0.5), (50, 1.0), (100, 2.0), (1000, 2.0)])
def test_curriculum_weight(step, expected):
    assert curriculum_weight(2.0, step, 100) == pytest.approx(expected)


def test_curriculum_off_gives_full_beta():
    assert curriculum_weight(0.7, 0, 0) == 0.7


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1", None, True])
def test_check_weight_rejects(bad):
    with pytest.raises((ValueError, TypeError), match="eta"):
        check_weight("eta", bad)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=8), st.floats(0, 2))
def test_prosocial_collective_identity(rewards, eta):
    """sum_k r_k = (1 + eta (N-1)) sum_k e_k, for any reward vector."""
    e = np.array([rewards])
    r = prosocial_rewards(e, eta)
    assert r.sum() == pytest.approx((1 + eta * (len(rewards) - 1)) * e.sum(), abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=6), st.floats(0, 10), st.floats(0, 1))
def test_inequity_penalties_never_reward(traces, alpha, beta):
    """Both Fehr-Schmidt terms are penalties: the subjective reward never exceeds the raw one."""
    h = np.array([traces])
    e = np.zeros_like(h)
    assert np.all(inequity_aversion_rewards(e, h, alpha, beta) <= 1e-12)
