"""The MOA network (wrappers.moa) and its online trainer's buffer (wrappers.moa_training)."""

import numpy as np
import pytest
import torch
from torch import nn

from wrappers.moa import MOA, InfluenceEngine

N, A = 3, 4
CARDS = [A] + [A + 1] * (N - 1)


def _model(seed=0, lstm_size=16):
    model = MOA(N, A, CARDS, 0, (6, 5, 3), lstm_size=lstm_size, seed=seed)
    with torch.no_grad():  # away from the initial weights (a zero-ish state would hide mistakes)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.2)
    return model


def _inputs(b, steps=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    lead = (b,) if steps is None else (steps, b)
    img = torch.randint(0, 256, (*lead, N, 6, 5, 3), generator=g, dtype=torch.uint8)
    slots = torch.stack([torch.randint(0, c, (N, *lead), generator=g) for c in CARDS], -1)
    h, c = torch.randn(2, N, b, 16, generator=g)
    return img, slots, h, c


def test_agent_lstm_cell_is_the_textbook_lstm_cell_per_agent():
    """Agent k's slice of the batched cell computes what ``nn.LSTMCell`` computes on the
    concatenation of the feature and the slots' one-hots, with the same weights."""
    model = _model()
    cell, hs, nv = model.lstm, model.lstm_size, model.lstm.num_values
    g = torch.Generator().manual_seed(1)
    feat, h, c = torch.randn(N, 7, 32, generator=g), torch.randn(N, 7, hs, generator=g), torch.randn(N, 7, hs, generator=g)
    slots = torch.stack([torch.randint(0, k, (N, 7), generator=g) for k in CARDS], -1) + model.offsets
    with torch.no_grad():
        h2, c2 = cell(feat, slots, h, c)
        for k in range(N):
            ref = nn.LSTMCell(32 + nv, hs)
            onehot = torch.zeros(7, nv).scatter_(1, slots[k], 1.0)
            ref.weight_ih.copy_(torch.cat([cell.ih.weight[k], cell.slot_weight.view(N, nv, -1)[k]]).T)
            ref.weight_hh.copy_(cell.hh.weight[k].T)
            ref.bias_ih.copy_(cell.ih.bias[k, 0])
            ref.bias_hh.zero_()
            rh, rc = ref(torch.cat([feat[k], onehot], 1), (h[k], c[k]))
            torch.testing.assert_close(h2[k], rh, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(c2[k], rc, rtol=1e-5, atol=1e-5)


def test_counterfactual_batch_is_one_step_per_value():
    """Each entry of the expanded batch is the one-step sequence with the own slot set to that value."""
    model = _model()
    img, slots, h, c = _inputs(b=2)
    with torch.no_grad():
        logits, h2, c2, self_logits = model.counterfactuals(img, slots, h, c)
        for v in range(A):
            s = slots.clone()
            s[..., 0] = v
            ref, ref_self = model.sequence(img[None], s[:, None], h, c)
            torch.testing.assert_close(logits[:, :, v], ref[:, 0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(self_logits, ref_self[:, 0], rtol=1e-5, atol=1e-5)
            h_ref, c_ref = model.lstm(model.encode(img), s + model.offsets, h, c)
            torch.testing.assert_close(h2[:, :, v], h_ref, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(c2[:, :, v], c_ref, rtol=1e-5, atol=1e-5)


def test_agents_networks_are_independent():
    """Agent k's outputs depend on its own observation and weights only."""
    model = _model()
    img, slots, h, c = _inputs(b=2)
    with torch.no_grad():
        before = model.counterfactuals(img, slots, h, c)[0]
        img2 = img.clone()
        img2[:, 1] = 255 - img2[:, 1]  # another view for agent 1
        model.head.weight[2] += 1.0  # and other head weights for agent 2
        after = model.counterfactuals(img2, slots, h, c)[0]
    torch.testing.assert_close(after[0], before[0])
    assert not torch.allclose(after[1], before[1]) and not torch.allclose(after[2], before[2])


def test_sequence_zeroes_the_state_where_an_episode_starts():
    model = _model()
    img, slots, h, c = _inputs(b=3, steps=5)
    keep = torch.ones(5, 3, 1)
    keep[2, 1] = 0.0  # sequence 1 starts a new episode at step 2
    with torch.no_grad():
        logits, self_logits = model.sequence(img, slots, h, c, keep)
        zero = torch.zeros(N, 1, 16)
        ref, ref_self = model.sequence(img[2:, 1:2], slots[:, 2:, 1:2], zero, zero)
        full, _ = model.sequence(img, slots, h, c)
    torch.testing.assert_close(logits[:, 2:, 1:2], ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(self_logits[:, 2:, 1:2], ref_self, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits[:, :, [0, 2]], full[:, :, [0, 2]], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(logits[:, 2:, 1], full[:, 2:, 1])


@pytest.mark.parametrize("comm", [False, True])
def test_training_pass_reproduces_the_acting_predictions(comm):
    """The buffer, cut into BPTT chunks and replayed by ``MOA.sequence`` with the weights it was
    collected with, gives the predictions made while acting (episode ends inside chunks included):
    the running statistics are scored on exactly what the influence reward used."""
    w, T, L = 3, 8, 4
    kw = dict(num_symbols=3, cf_on="symbol") if comm else {}
    engine = InfluenceEngine(w, N, A, (6, 5, 3), train_every=T, bptt=L, lstm_size=16, seed=4, **kw)
    rng = np.random.default_rng(0)
    acting, act = [], engine._act

    def record(*args):
        out = act(*args)
        acting.append(out[4])  # the conditional: the prediction at the value really chosen
        return out

    engine._act = record
    trained = {}
    engine._train = lambda: trained.update(engine._train_batch())
    for t in range(T + 1):  # the last step brings the last targets and triggers the round
        if t == 3:
            engine.reset_worlds(np.array([False, True, False]))
        engine.step(rng.integers(0, 256, (w, N, 6, 5, 3)).astype(np.uint8), rng.integers(0, A, (w, N)),
                    rng.random((w, N, N - 1)) > 0.3, symbols=rng.integers(0, 3, (w, N)) if comm else None)
    assert trained, "a training round was due"
    with torch.no_grad():
        logits, _ = engine.model.sequence(trained["img"], trained["slots"], trained["h0"], trained["c0"],
                                          trained["keep"])
    probs = torch.softmax(logits, -1).view(N, L, T // L, w, N - 1, A)  # [N, l, chunk, world, ...]
    for t in range(T):
        torch.testing.assert_close(probs[:, t % L, t // L], acting[t], rtol=1e-4, atol=1e-6)
    assert trained["keep"] is not None and trained["keep"][3 % L, (3 // L) * w + 1] == 0


def test_acting_workspace_and_conv_paths_give_the_same_function():
    """The acting pass's kept buffers and the im2col conv are speed-ups only: the counterfactual
    batch with a workspace (twice, reusing it) equals the one without, and the im2col encoder equals
    the grouped ``nn.Conv2d`` one (used for large batches)."""
    import wrappers.moa as moa

    model = _model()
    img, slots, h, c = _inputs(b=2)
    with torch.inference_mode():
        ref = [t.clone() for t in model.counterfactuals(img, slots, h, c)]
        ws = {}
        for _ in range(2):
            out = model.counterfactuals(img, slots, h, c, ws)
            for a, b in zip(out, ref):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert ws, "the workspace was used"
        saved = moa._IM2COL_MAX_BATCH
        try:
            moa._IM2COL_MAX_BATCH = 0
            conv_feat = model.encode(img)
        finally:
            moa._IM2COL_MAX_BATCH = saved
        torch.testing.assert_close(model.encode(img), conv_feat, rtol=1e-5, atol=1e-6)
