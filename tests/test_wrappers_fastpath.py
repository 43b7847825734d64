"""The numba acting pass (``InfluenceEngine._act_fast``) computes what the torch pass computes."""

import numpy as np
import pytest
import torch

import wrappers.moa as moa
from wrappers import InfluenceReward
from wrappers.moa import InfluenceEngine, im2col
from toy_envs import ToySSD


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


def _lstm_reference(model, gin, w_h, h0, c0, keep):
    """The training recurrence written with :meth:`MOA.cell` and autograd (the reference)."""
    h4 = 4 * model.lstm_size
    h, c = h0, c0
    hs, self_logits = [], []
    for t in range(gin.shape[1]):
        if t > 0 and keep is not None:
            h, c = h * keep[t], c * keep[t]
        pre = torch.baddbmm(gin[:, t], h, w_h)
        self_logits.append(pre[..., h4:])
        h, c = model.cell(pre[..., :h4], c)
        hs.append(h)
    return torch.stack(hs, 1), torch.stack(self_logits, 1)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("with_reset", [False, True])
def test_lstm_sequence_matches_autograd_through_the_cell(monkeypatch, fast, with_reset):
    """The hand-written backward of the training recurrence (numba loops, or torch ops) gives the
    same outputs and gradients as autograd through ``MOA.cell``, episode resets included."""
    monkeypatch.setattr(moa, "FAST_LSTM", fast)
    n, L, b, H, C = 3, 5, 4, 16, 6
    model = moa.MOA(n, 4, [6, 5, 5], 0, (5, 5, 3), lstm_size=H)
    g = torch.Generator().manual_seed(0)
    gin = torch.randn(n, L, b, 4 * H + C, generator=g).requires_grad_()
    w_h = (torch.randn(n, H, 4 * H + C, generator=g) * 0.3).requires_grad_()
    h0, c0 = torch.randn(n, b, H, generator=g) * 0.5, torch.randn(n, b, H, generator=g)
    keep = None
    if with_reset:
        keep = torch.ones(L, b, 1)
        keep[2, 1] = keep[4, 3] = keep[1, 0] = 0.0
    d_hs, d_self = torch.randn(n, L, b, H, generator=g), torch.randn(n, L, b, C, generator=g)
    out = []
    for fn in (lambda: _lstm_reference(model, gin, w_h, h0, c0, keep),
               lambda: moa.lstm_sequence(gin, w_h, h0, c0, keep, model.gate_scale)):
        gin.grad = w_h.grad = None
        hs, sl = fn()
        ((hs * d_hs).sum() + (sl * d_self).sum()).backward()
        out.append((hs.detach(), sl.detach(), gin.grad.clone(), w_h.grad.clone()))
    for r, f in zip(*out):
        np.testing.assert_allclose(f.numpy(), r.numpy(), rtol=1e-4, atol=2e-5)
    if with_reset:  # the reset of row 0 at step 1 cuts the last step's gradient to step 0
        gin.grad = None
        hs, _ = moa.lstm_sequence(gin, w_h, h0, c0, keep, model.gate_scale)
        hs[:, -1].sum().backward()
        assert gin.grad[:, 0, 0].abs().max() == 0 and gin.grad[:, 0, 2].abs().max() > 0  # row 2: no reset


def test_lstm_sequence_torch_backward_passes_gradcheck():
    n, L, b, H, C = 2, 3, 2, 3, 2
    g = torch.Generator().manual_seed(1)
    gin = torch.randn(n, L, b, 4 * H + C, generator=g, dtype=torch.float64, requires_grad=True)
    w_h = torch.randn(n, H, 4 * H + C, generator=g, dtype=torch.float64, requires_grad=True)
    h0, c0 = torch.randn(n, b, H, dtype=torch.float64), torch.randn(n, b, H, dtype=torch.float64)
    keep = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)[..., None]
    scale = torch.ones(4 * H, dtype=torch.float64)
    scale[3 * H:] = 2.0
    # float64 runs the torch ops (the numba loops are float32)
    assert torch.autograd.gradcheck(lambda x, w: moa.lstm_sequence(x, w, h0, c0, keep, scale), (gin, w_h))


def test_training_same_with_and_without_numba_lstm(monkeypatch):
    """End to end through several training rounds, episode ends inside BPTT chunks included."""
    def make():
        return InfluenceReward(ToySSD(num_agents=3, num_actions=4, max_cycles=37), train_every=16, bptt=8,
                               seed=1)
    env = make()
    fast = _run(env, 150)
    assert env.engine.train_steps > 5
    monkeypatch.setattr(moa, "FAST_LSTM", False)
    ref = _run(make(), 150)
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("comm", [False, True])
@pytest.mark.parametrize("sees_hidden", [False, True])
def test_buffer_slot_written_by_numba_matches_numpy(comm, sees_hidden):
    """The compiled store of a step writes what the numpy definition (``slot_values`` etc.) says."""
    n, w = 4, 3
    kw = dict(num_symbols=5, cf_on="symbol") if comm else {}
    engine = InfluenceEngine(w, n, 6, (5, 5, 3), moa_sees_hidden_actions=sees_hidden, **kw)
    rng = np.random.default_rng(3)
    actions = rng.integers(0, 6, (w, n))
    vis = rng.random((w, n, n - 1)) > 0.4
    syms = rng.integers(0, 5, (w, n)) if comm else None
    engine.h, engine.c = torch.randn(n, w, engine.H), torch.randn(n, w, engine.H)
    engine.first[:] = [True, False, True]
    img = rng.integers(0, 256, (w, n, 5, 5, 3)).astype(np.uint8)
    h, c = engine.h.clone(), engine.c.clone()
    engine._store(img, actions, vis, syms, syms if comm else actions)
    keep = torch.tensor([0.0, 1.0, 0.0])[None, :, None]
    np.testing.assert_array_equal(engine.buf_idx[0], engine.slot_values(actions, vis, syms))
    np.testing.assert_array_equal(engine.buf_h[0], (h * keep).numpy())
    np.testing.assert_array_equal(engine.buf_c[0], (c * keep).numpy())
    np.testing.assert_array_equal(engine.buf_target[0], actions[:, engine.others].transpose(1, 0, 2))
    np.testing.assert_array_equal(engine.buf_vis[0], vis.transpose(1, 0, 2))
    np.testing.assert_array_equal(engine.buf_cf[0], (syms if comm else actions).T)
    np.testing.assert_array_equal(engine.buf_img[0], img)
    np.testing.assert_array_equal(engine.buf_first[0], [True, False, True])
    assert (engine.buf_idx[0][:, :, 1:n] == 6).any() != sees_hidden  # hidden actions show as "unknown"


def test_training_patches_are_im2col_in_chunk_order():
    """The compiled im2col of the training buffer equals ``im2col`` of each step, placed in the
    chunk order the training pass uses."""
    w, n, T, L = 2, 3, 8, 4
    engine = InfluenceEngine(w, n, 4, (6, 5, 3), train_every=T, bptt=L)
    rng = np.random.default_rng(0)
    engine.buf_img[:] = rng.integers(0, 256, engine.buf_img.shape).astype(np.uint8)
    patches = engine._train_batch()["patches"]  # [N, C*9, T*W*P]
    npos = 4 * 3
    nc = T // L
    for t in range(T):
        ref = im2col(engine.buf_img[t]).view(n, 27, w, npos)  # [N, C*9, W*P] for step t
        for wi in range(w):
            col = (((t % L) * nc + t // L) * w + wi) * npos
            np.testing.assert_array_equal(patches[:, :, col:col + npos].numpy(), ref[:, :, wi].numpy())
