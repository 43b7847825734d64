"""The numba acting pass (``InfluenceEngine._act_fast``) computes what the torch pass computes."""

import numpy as np
import pytest
import torch

import wrappers.moa as moa
from wrappers import InfluenceReward
from wrappers.moa import InfluenceEngine, im2col
from wrappers.testing import ToySSD


def _random_case(engine, w, n, rng, symbols=False):
    img = rng.integers(0, 256, (w, n, *engine.model.obs_shape)).astype(np.uint8)
    actions = rng.integers(0, engine.A, (w, n))
    vis = rng.random((w, n, n - 1)) > 0.3
    syms = rng.integers(0, engine.num_symbols, (w, n)) if symbols else None
    engine.h = torch.randn(n, w, engine.H) * 0.5
    engine.c = torch.randn(n, w, engine.H)
    idx = engine.slot_values(actions, vis, syms)
    cf_actual = actions if engine.cf_on == "action" else syms
    sup = rng.random((n, w, engine.num_cf)).astype(np.float32)
    sup /= sup.sum(-1, keepdims=True)
    given = rng.random((n, w, 1)) > 0.5
    mask = vis.transpose(1, 0, 2)
    return img, idx, cf_actual.T.copy(), sup, given, mask


@pytest.mark.parametrize("divergence", ["kl", "jsd", "pmi"])
@pytest.mark.parametrize("worlds", [1, 3])
@pytest.mark.parametrize("comm", [False, True])
def test_numba_acting_pass_matches_torch(divergence, worlds, comm):
    n = 4
    kw = dict(num_symbols=5, cf_on="symbol") if comm else {}
    engine = InfluenceEngine(worlds, n, 6, (9, 11, 3), divergence=divergence, seed=2, **kw)
    rng = np.random.default_rng(worlds)
    with torch.no_grad():  # away from the initial weights (zero biases), incl. an in-place edit
        for p in engine.model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.2)
    for _ in range(3):
        img, idx, actual, sup, given, mask = _random_case(engine, worlds, n, rng, comm)
        with torch.no_grad():
            ref = engine._act_core(im2col(img), engine.model.rows(idx, drop_cf=True), engine.h, engine.c,
                                   torch.from_numpy(actual), torch.from_numpy(sup), torch.from_numpy(given),
                                   torch.from_numpy(mask.astype(np.float32)))
        fast = engine._act_fast(img, idx, actual, sup, given[:, :, 0], mask)
        for r, f in zip(ref, fast):
            if r is None:
                assert f is None
                continue
            assert f.shape == r.shape and f.dtype == r.dtype
            np.testing.assert_allclose(f.numpy(), r.numpy(), rtol=1e-5, atol=1e-5)


def _run(env, steps, seed=0):
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        acts = {a: env.action_space(a).sample() if hasattr(env.action_space(a), "nvec")
                else int(rng.integers(env.action_space(a).n)) for a in env.agents}
        _, rew, term, trunc, info = env.step(acts)
        out.append([info[a]["influence_reward"] for a in env.possible_agents])
        if any(term.values()) or any(trunc.values()):
            env.reset()
    return np.array(out)


@pytest.mark.parametrize("divergence", ["kl", "pmi"])
def test_wrapper_rewards_same_with_and_without_numba(monkeypatch, divergence):
    """End to end through several training rounds (the numba pass must see the new weights)."""
    def make():
        return InfluenceReward(ToySSD(num_agents=3, num_actions=4, max_cycles=80), divergence=divergence,
                               train_every=16, bptt=4, seed=1)
    env = make()
    assert env.engine._fast and env.engine._fast_ok()
    fast = _run(env, 120)
    assert env.engine.train_steps > 3
    monkeypatch.setattr(moa, "FAST_MAX_WORLDS", 0)
    env = make()
    assert not env.engine._fast
    ref = _run(env, 120)
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-5)


def test_numba_pass_used_only_where_it_mirrors_torch():
    env = InfluenceReward(ToySSD(num_agents=2, num_actions=2), seed=0)
    assert env.engine._fast_ok()
    env.engine.model.counterfactual_step = lambda *a: None  # a hand-set MOA: torch path
    assert not env.engine._fast_ok()
