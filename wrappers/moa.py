"""Model of Other Agents (MOA) and the influence engine, batched over ``[worlds, agents]``.

One :class:`MOA` holds a separate network per agent (Jaques et al. 2019, Experiment III), but all
agents run in one forward pass: every layer is a batched matmul over an agent axis (the 3x3 conv
too, as an im2col matmul).  Internal tensors are laid out ``[agents, batch, ...]`` so
``torch.bmm`` applies each agent's weights to its own rows.

Network (Jaques et al. supp. 10.4, as in the reference SSD repo): obs uint8 /255 -> conv 3x3, 6
channels, valid, relu -> FC 32 -> FC 32 (tanh) -> LSTM 128 whose input is that feature
concatenated with a one-hot of everyone's actions at t (own first, then the others in
agent-index order) -> logits of every other agent's action at t+1.  A "self-model" head reads
the same (feature_t, h_{t-1}) as the LSTM gates (it shares their input matmul) and predicts the
agent's own choice at t, so the marginal can be formed when the agent does not supply its policy.

:class:`InfluenceEngine` owns the MOA, its optimiser and a short trajectory buffer.  Each call to
:meth:`InfluenceEngine.step` (one environment step of every world) does, in this order:

1. encodes s_t for all agents and runs the LSTM once with the |C| counterfactual values of the
   agent's own slot batched in a tensor axis (no Python loop), under ``torch.no_grad``;
2. forms the conditional (at the value actually chosen) and the policy-weighted marginal, and the
   divergence to each other agent, masked by visibility *at t* (when the action was taken);
3. stores the step and, every ``train_every`` steps, trains the MOA by cross-entropy on the
   buffer (prediction made at t scored against the action at t+1, masked by visibility at t+1);
   the first pass of each round, before the update, gives the running (held-out) loss/accuracy.

Steps 1-2 run as one numba loop (``_act_numba``, same results as the torch ``_act_core`` up to
float32 rounding): torch's per-call overhead dominates on such small tensors.  The torch pass
serves ``compile_moa``, hand-replaced MOA methods and ``FAST_MAX_WORLDS = 0``.  The step's
inputs are written once into the training buffer (``_record_numba``) and read from there.

Training (step 3) runs the encoder, the input part of the gates and the one-hot inputs for all
buffered steps in one batch (the buffer laid out in "chunk order", see ``_train_batch``); only the
LSTM recurrence loops over the ``bptt`` steps, as numba loops with a hand-written backward
(:func:`lstm_sequence`, same values and gradients as autograd through :meth:`MOA.cell`;
``FAST_LSTM = False`` runs the same recurrence in torch ops).

Timing (the classic off-by-one pitfalls): the influence returned by ``step`` at t is the
influence of the action taken at t, computed from inputs at t (not the previous step's
counterfactuals), so the wrapper adds it to the reward of that same step: the reward lands on the
action that caused it.  Only PMI needs j's realised next action, so PMI for the action at t is
delivered one step later (documented on the wrapper).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .core import (
    aggregate_influence,
    conditional_and_marginal,
    pairwise_divergence,
    pointwise_mutual_information,
)


# the numba acting pass is used up to this many worlds: it measured faster than the batched torch
# pass at every count tried (1-32 worlds: 3.6x at 1, 1.6x at 32, one thread), so no limit by default
FAST_MAX_WORLDS = 1 << 30
# the training pass's LSTM recurrence runs as numba loops (``_lstm_fwd_numba``/``_lstm_bwd_numba``);
# False: the same recurrence in torch ops (also the fallback without numba, and for float64)
FAST_LSTM = True


class BatchedLinear(nn.Module):
    """``G`` independent linear layers applied with one ``bmm``: x ``[G, B, in]`` -> ``[G, B, out]``."""

    def __init__(self, groups: int, fan_in: int, fan_out: int, bias: bool, gen: torch.Generator):
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = nn.Parameter((torch.rand(groups, fan_in, fan_out, generator=gen) * 2 - 1) * bound)
        self.bias = nn.Parameter(torch.zeros(groups, 1, fan_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)


def im2col(img) -> torch.Tensor:
    """uint8 ``[B, N, H, W, C]`` -> float 3x3 patches ``[N, C*9, B*(H-2)*(W-2)]``.

    A 3x3 valid convolution is then one ``bmm`` of a ``[channels, C*9]`` weight per agent with
    these patches, several times faster on CPU than a grouped ``conv2d`` for such tiny images
    (and this orientation, with the long axis last, is the fast one for ``bmm``).  The patches
    are a strided view of the image, materialised by one copy.
    """
    x = torch.as_tensor(np.asarray(img)).float()
    b, n, h, w, c = x.shape
    sb, sn, sh, sw, sc = x.stride()
    v = x.as_strided((n, c, 3, 3, b, h - 2, w - 2), (sn, sc, sh, sw, sb, sh, sw))
    return v.reshape(n, c * 9, b * (h - 2) * (w - 2))


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh via sigmoid: on large tensors torch's CPU tanh is ~3x slower than sigmoid, and the
    counterfactual LSTM cell is the hot path."""
    s = torch.sigmoid(2.0 * x)
    if torch.is_grad_enabled():  # autograd needs the sigmoid output intact
        return s * 2.0 - 1.0
    return s.mul_(2.0).sub_(1.0)


def _lin(layer: BatchedLinear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` without the ``nn.Module.__call__`` overhead (hooks are not used here)."""
    return torch.baddbmm(layer.bias, x, layer.weight)


class MOA(nn.Module):
    """Per-agent MOA networks evaluated together.

    ``cards``: cardinality of each categorical input slot, the same for every agent (slot 0 is the
    agent's own action, then the others' actions, then optionally symbols).  ``cf_slot``: the slot
    whose value is varied counterfactually (own action, or own symbol for communication).
    The one-hot input's weight is stored as an embedding table (row = slot offset + value), which
    is exactly a linear layer on the concatenated one-hots.
    """

    def __init__(self, num_agents: int, num_actions: int, cards: list[int], cf_slot: int,
                 obs_shape: tuple[int, int, int], conv_channels: int = 6, fc_size: int = 32,
                 lstm_size: int = 128, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        n, a = num_agents, num_actions
        h, w, ch = obs_shape
        self.num_agents, self.num_actions, self.obs_shape = n, a, tuple(obs_shape)
        self.cards = list(cards)
        self.offsets = np.concatenate([[0], np.cumsum(self.cards)[:-1]]).astype(np.int64)
        self.dim_cat = int(sum(self.cards))
        self.cf_slot = cf_slot
        self.cf_off = int(self.offsets[cf_slot])  # a Python int (no numpy inside compiled code)
        self.num_cf = self.cards[cf_slot]
        self.lstm_size = lstm_size
        self.conv_channels = conv_channels
        bound = 1.0 / math.sqrt(ch * 9)  # 3x3 conv as an im2col matmul: weight [N, out, C*9]
        self.conv_w = nn.Parameter((torch.rand(n, conv_channels, ch * 9, generator=gen) * 2 - 1) * bound)
        self.conv_b = nn.Parameter(torch.zeros(n, conv_channels, 1))
        conv_out = conv_channels * (h - 2) * (w - 2)
        self.fc1 = BatchedLinear(n, conv_out, fc_size, True, gen)
        self.fc2 = BatchedLinear(n, fc_size, fc_size, True, gen)
        hid4 = 4 * lstm_size
        # One input layer on (feature_t, h_{t-1}) gives the LSTM gates (first 4H columns) and the
        # self-model's logits (last C columns) in the same matmuls: both read exactly those inputs.
        self.in_x = BatchedLinear(n, fc_size, hid4 + self.num_cf, True, gen)
        self.in_h = BatchedLinear(n, lstm_size, hid4 + self.num_cf, False, gen)
        # gate layout (i, f, o, g); rows n*dim_cat .. (n+1)*dim_cat-1 belong to agent n
        self.cat_table = nn.Parameter((torch.rand(n * self.dim_cat, hid4, generator=gen) * 2 - 1)
                                      / math.sqrt(fc_size + len(self.cards)))
        with torch.no_grad():  # forget-gate bias 1: keeps early gradients alive
            self.in_x.bias[..., lstm_size:2 * lstm_size] = 1.0
        self.head = BatchedLinear(n, lstm_size, (n - 1) * a, True, gen)
        scale = torch.ones(hid4)
        scale[3 * lstm_size:] = 2.0
        self.register_buffer("gate_scale", scale)
        self.keep_slots = np.array([i for i in range(len(self.cards)) if i != cf_slot])
        self._agent_off = (np.arange(n) * self.dim_cat)[:, None, None]

    # ---------------------------------------------------------------- pieces
    def encode(self, patches: torch.Tensor, batch: int) -> torch.Tensor:
        """im2col patches ``[N, C*9, B*P]`` (float, 0..255) -> features ``[N, B, fc]``."""
        n, ch = self.num_agents, self.conv_channels
        x = torch.baddbmm(self.conv_b, self.conv_w, patches, alpha=1.0 / 255.0).relu_()
        if batch > 1:  # [N, ch, B*P] -> [N, B, ch*P]
            x = x.reshape(n, ch, batch, -1).transpose(1, 2)
        x = x.reshape(n, batch, -1)
        x = torch.tanh(_lin(self.fc1, x))  # small tensors: plain tanh is fine here
        return torch.tanh(_lin(self.fc2, x))

    def rows(self, idx: np.ndarray, drop_cf: bool = False) -> torch.Tensor:
        """Raw slot values ``[N, B, S]`` (numpy) -> flat row indices of their one-hot weights in
        ``cat_table`` (shape ``[N*B*S']``; the counterfactual slot left out when ``drop_cf``)."""
        if drop_cf:
            idx = idx[..., self.keep_slots] + self.offsets[self.keep_slots]
        else:
            idx = idx + self.offsets
        return torch.from_numpy((idx + self._agent_off).reshape(-1))

    def embed(self, rows: torch.Tensor, n: int, b: int) -> torch.Tensor:
        """Sum of the one-hot weights of ``rows`` (from :meth:`rows`) -> ``[N, B, 4H]``."""
        return self.cat_table.index_select(0, rows).view(n, b, -1, self.cat_table.shape[1]).sum(2)

    def pre_activations(self, feat: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``[N, B, 4H + C]``: LSTM gates without the one-hot input, then self-model logits."""
        return torch.baddbmm(_lin(self.in_x, feat), h, self.in_h.weight)

    def cell(self, gates: torch.Tensor, c: torch.Tensor, prescaled: bool = False):
        """LSTM cell on precomputed gates (layout i, f, o, g).

        tanh(g) is computed as 2 sigmoid(2g) - 1 so that one sigmoid covers all four gates; with
        ``prescaled`` the caller already doubled the g block (cheaper on the small tensors that
        are broadcast into ``gates``)."""
        hs = self.lstm_size
        sig = torch.sigmoid(gates if prescaled else gates * self.gate_scale)
        i, f, o = sig[..., :hs], sig[..., hs:2 * hs], sig[..., 2 * hs:3 * hs]
        g = sig[..., 3 * hs:] * 2.0 - 1.0
        c2 = torch.addcmul(f * c, i, g)
        return o * _tanh(c2), c2

    def predict(self, h: torch.Tensor) -> torch.Tensor:
        """LSTM output ``[N, B, H]`` -> logits ``[N, B, N-1, A]``."""
        out = _lin(self.head, h)
        return out.reshape(*out.shape[:-1], self.num_agents - 1, self.num_actions)

    # ---------------------------------------------------------------- counterfactual step
    def counterfactual_step(self, feat, rows, h, c):
        """One LSTM step for every counterfactual value of the own slot at once.

        ``rows``: :meth:`rows` of the slot values with ``drop_cf=True``.  Returns
        ``cf_logits [N, B, C, N-1, A]``, the per-value states ``h, c [N, B, C, H]`` and the
        self-model logits ``[N, B, C]``.
        """
        n, b = feat.shape[:2]
        h4 = 4 * self.lstm_size
        pre = self.pre_activations(feat, h)
        base, self_logits = pre[..., :h4] + self.embed(rows, n, b), pre[..., h4:]  # [N, B, 4H]
        off = self.cf_off
        cf_rows = self.cat_table.view(n, self.dim_cat, -1)[:, off:off + self.num_cf]  # [N, C, 4H]
        # scale the g block of the two small operands, not of their [N, B, C, 4H] broadcast sum
        gates = (base * self.gate_scale).unsqueeze(2) + (cf_rows * self.gate_scale).unsqueeze(1)
        h2, c2 = self.cell(gates, c.unsqueeze(2), prescaled=True)
        logits = self.predict(h2.reshape(n, b * self.num_cf, -1))
        return logits.reshape(n, b, self.num_cf, self.num_agents - 1, self.num_actions), h2, c2, self_logits


class _LSTMSequence(torch.autograd.Function):
    """L steps of :meth:`MOA.cell` on precomputed input gates, with a hand-written backward.

    Autograd through the per-step cell records ~30 tiny ops per step.  Here both directions run
    as numba loops per (agent, row) (``_lstm_fwd_numba``/``_lstm_bwd_numba``); without numba, in
    float64 or with ``FAST_LSTM = False`` as torch ops whose backward computes its elementwise
    factors once for all steps.  The forward keeps the few tensors the backward needs, and the
    recurrent weight's gradient is one matmul over all steps either way."""

    @staticmethod
    def forward(ctx, gin, w_h, h0, c0, keep, scale):
        n, L, b, G = gin.shape
        H = h0.shape[-1]
        h4 = 4 * H
        ctx.fast = _lstm_fwd_numba is not None and gin.dtype == torch.float32 and FAST_LSTM
        if ctx.fast:  # the same loop compiled (float32)
            gin, w_h, h0, c0, scale = (x.detach().contiguous() for x in (gin, w_h, h0, c0, scale))
            hs, hp, cp, tc = (torch.empty(n, L, b, H) for _ in range(4))
            sig = torch.empty(n, L, b, h4)
            self_logits = torch.empty(n, L, b, G - h4)
            kp = torch.ones(L, b) if keep is None else keep.reshape(L, b).contiguous()
            _lstm_fwd_numba(gin.numpy(), w_h.numpy(), h0.numpy(), c0.numpy(), kp.numpy(), scale.numpy(),
                            hs.numpy(), self_logits.numpy(), hp.numpy(), cp.numpy(), sig.numpy(), tc.numpy())
            ctx.save_for_backward(w_h, hp, cp, sig, tc, kp, scale)
            return hs, self_logits
        h, c = h0, c0
        hp, cp, sig, tcs, hs, self_logits = [], [], [], [], [], []
        for t in range(L):
            if t > 0 and keep is not None:  # a new episode starts here: zero its state
                h, c = h * keep[t], c * keep[t]
            pre = torch.baddbmm(gin[:, t], h, w_h)  # [N, b, 4H + C]
            s = torch.sigmoid(pre[..., :h4] * scale)  # i, f, o, and (g + 1) / 2 (g block doubled)
            g = s[..., 3 * H:] * 2.0 - 1.0
            c2 = torch.addcmul(s[..., H:2 * H] * c, s[..., :H], g)
            tc = torch.tanh(c2)
            hp.append(h)
            cp.append(c)
            sig.append(s)
            tcs.append(tc)
            self_logits.append(pre[..., h4:])  # own choice at t from (feature_t, h_{t-1})
            h, c = s[..., 2 * H:3 * H] * tc, c2
            hs.append(h)
        ctx.save_for_backward(w_h, torch.stack(hp, 1), torch.stack(cp, 1), torch.stack(sig, 1),
                              torch.stack(tcs, 1), keep, scale)
        return torch.stack(hs, 1), torch.stack(self_logits, 1)

    @staticmethod
    def backward(ctx, d_hs, d_self):
        w_h, hp, cp, sig, tc, keep, scale = ctx.saved_tensors
        n, L, b, H = hp.shape
        h4 = 4 * H
        if d_hs is None:
            d_hs = torch.zeros_like(hp)
        if d_self is None:
            d_self = torch.zeros(n, L, b, w_h.shape[-1] - h4)
        if ctx.fast:
            d_gin = torch.empty(n, L, b, w_h.shape[-1])
            _lstm_bwd_numba(d_hs.contiguous().numpy(), d_self.contiguous().numpy(), w_h.numpy(), cp.numpy(),
                            sig.numpy(), tc.numpy(), keep.numpy(), scale.numpy(), d_gin.numpy())
            d_w = torch.bmm(hp.view(n, L * b, H).transpose(1, 2), d_gin.view(n, L * b, -1))
            return d_gin, d_w, None, None, None, None
        # d pre-activation = upstream * z with z = [g, c_prev, tanh(c), i] * sigmoid' * scale^2
        # (for every gate at once; the g block's sigmoid is of 2x, and g = 2 sigmoid - 1)
        si, sf, so, sg = sig.split(H, -1)
        z = torch.cat([sg * 2.0 - 1.0, cp, tc, si], -1).mul_(sig * (1.0 - sig)).mul_(scale * scale)
        o_dtanh = so * (1.0 - tc * tc)  # d h / d c through h = o tanh(c)
        fk = sf if keep is None else sf * keep  # d c_{t-1} / d c_t, including the reset mask
        w_g, w_s = w_h[..., :h4].transpose(1, 2), w_h[..., h4:].transpose(1, 2)
        # the self-model's share of d h_{t-1}, all steps in one matmul
        dh_self = torch.bmm(d_self.reshape(n, L * b, -1), w_s).view(n, L, b, H)
        dgates = [None] * L
        dh_next = dc_next = None
        for t in reversed(range(L)):
            dh = d_hs[:, t] if dh_next is None else d_hs[:, t] + dh_next
            dc = dh * o_dtanh[:, t] if dc_next is None else torch.addcmul(dc_next, dh, o_dtanh[:, t])
            dg = torch.stack([dc, dc, dh, dc], 2).view(n, b, h4).mul_(z[:, t])
            dgates[t] = dg
            if t > 0:
                dh_next = torch.baddbmm(dh_self[:, t], dg, w_g)
                dc_next = dc * fk[:, t]
                if keep is not None:
                    dh_next = dh_next * keep[t]
        d_gin = torch.cat([torch.stack(dgates, 1), d_self], -1)  # [N, L, b, 4H + C]
        d_w = torch.bmm(hp.view(n, L * b, H).transpose(1, 2), d_gin.view(n, L * b, -1))
        return d_gin, d_w, None, None, None, None


def lstm_sequence(gin, w_h, h0, c0, keep, scale):
    """The MOA's LSTM over L steps, every chunk and world in one batch.

    ``gin`` ``[N, L, b, 4H + C]``: the input part of the gates (feature and one-hot inputs; g
    block not yet doubled) and of the self-model's logits; ``w_h`` ``[N, H, 4H + C]``: the
    recurrent weight (``MOA.in_h.weight``); ``h0, c0`` ``[N, b, H]``; ``keep`` ``[L, b, 1]`` (0
    where an episode starts at step t > 0 of the chunk: the state is zeroed) or None; ``scale``:
    ``MOA.gate_scale``.  Returns the LSTM outputs ``[N, L, b, H]`` and the self-model's logits
    ``[N, L, b, C]`` (read from (feature_t, h_{t-1}), as in :meth:`MOA.counterfactual_step`).
    Same values as looping :meth:`MOA.cell`; the backward is hand-written (:class:`_LSTMSequence`)."""
    return _LSTMSequence.apply(gin, w_h, h0, c0, keep, scale)


_MOA_METHODS = {"encode", "rows", "embed", "pre_activations", "cell", "predict", "counterfactual_step",
                "forward"}


class InfluenceEngine:
    """MOA + online training + influence computation over ``[worlds, agents]`` arrays.

    Used by :class:`wrappers.InfluenceReward` (worlds = 1), :class:`wrappers.CommunicationChannel`
    and :class:`wrappers.InfluenceRewardVecEnv`.  See the module docstring for the timing.

    Parameters mirror the wrappers'; ``num_symbols`` adds the symbol slots of the communication
    channel, and ``cf_on="symbol"`` makes the agent's own symbol (not its action) the
    counterfactual variable.
    """

    def __init__(self, num_worlds: int, num_agents: int, num_actions: int,
                 obs_shape: tuple[int, int, int], *, divergence: str = "kl", clip: float = 10.0,
                 influence_only_visible: bool = True, train_only_visible: bool = True,
                 moa_sees_hidden_actions: bool = False, num_symbols: int | None = None,
                 cf_on: str = "action", lr: float = 1e-3, train_every: int = 64, bptt: int = 8,
                 train_iters: int = 1, stats_decay: float = 0.99, lstm_size: int = 128,
                 seed: int = 0, torch_threads: int | None = 1, compile_moa: bool = False):
        if num_agents < 2:
            raise ValueError(f"influence needs at least 2 agents, got num_agents={num_agents}")
        if train_every % bptt != 0:
            raise ValueError(f"train_every ({train_every}) must be a multiple of bptt ({bptt})")
        self.W, self.N, self.A = num_worlds, num_agents, num_actions
        self.divergence, self.clip = divergence, clip
        self.influence_only_visible = influence_only_visible
        self.train_only_visible = train_only_visible
        self.moa_sees_hidden_actions = moa_sees_hidden_actions
        self.num_symbols = num_symbols
        self.cf_on = cf_on
        self.train_every, self.bptt, self.train_iters = train_every, bptt, train_iters
        self.stats_decay = stats_decay
        self.device = torch.device("cpu")  # the MOA is small: CPU only (numpy in and out every step)
        self.torch_threads = torch_threads
        n, a = num_agents, num_actions
        # slot layout per agent k: own action, others' actions (A = unknown), [own symbol, others']
        cards = [a] + [a + 1] * (n - 1)
        if num_symbols is not None:
            cards += [num_symbols] * n
        cf_slot = 0 if cf_on == "action" else n
        self.num_cf = cards[cf_slot]
        self.config = dict(num_agents=n, num_actions=a, obs_shape=tuple(obs_shape), cards=cards,
                           cf_slot=cf_slot, lstm_size=lstm_size)
        self.model = MOA(n, a, cards, cf_slot, obs_shape, lstm_size=lstm_size, seed=seed).to(self.device)
        try:  # the fused kernel saves ~15% of a training round on CPU
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - older torch builds
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.others = np.array([[j for j in range(n) if j != k] for k in range(n)], dtype=np.int64)
        self.H = lstm_size
        self._alloc_buffer(obs_shape)
        # index grids to pick entry [n, w, choice[n, w]] in one advanced-indexing op
        self._grid = (torch.arange(n)[:, None], torch.arange(self.W)[None, :])
        self.h = torch.zeros(n, self.W, self.H, device=self.device)
        self.c = torch.zeros(n, self.W, self.H, device=self.device)
        self.first = np.ones(self.W, dtype=bool)
        self._pmi_pending = None
        self._act, self._loss = self._act_core, self._loss_core
        # constant inputs of a step, allocated once (read only)
        self._all_visible = np.ones((self.W, n, n - 1), dtype=bool)
        self._all_visible_nw = np.ones((n, self.W, n - 1), dtype=bool)
        self._not_given = np.zeros((n, self.W), dtype=bool)
        self._no_policy = np.zeros((n, self.W, self.num_cf), dtype=np.float32)
        self._no_symbols = np.zeros((self.W, 0), dtype=np.int64)
        self._div_code = {"kl": 0, "jsd": 1}.get(divergence, 2)  # for the numba pass
        # numba acting pass (same outputs as ``_act_core``) unless torch.compile was asked for
        self._fast = _act_numba is not None and not compile_moa and self.W <= FAST_MAX_WORLDS
        self._fast_key, self._fast_p, self._fast_ts = None, None, None
        if compile_moa:  # opt-in: one fused graph for the acting pass (the first step compiles).
            # Compiling the training pass as well was measured: no faster, 3x the compile time.
            self._act = torch.compile(self._act_core, dynamic=False)
        # running statistics (exponential moving sums so accuracy = correct / count)
        self._loss_sum = np.zeros((n, n - 1))
        self._correct = np.zeros((n, n - 1))
        self._count = np.zeros((n, n - 1))
        self._stats = None
        self.last_train_loss = float("nan")
        self.train_steps = 0

    # ---------------------------------------------------------------- buffer
    def _alloc_buffer(self, obs_shape):
        t, w, n = self.train_every + 1, self.W, self.N
        s = len(self.config["cards"])
        self.buf_img = np.zeros((t, w, n, *obs_shape), dtype=np.uint8)
        self.buf_idx = np.zeros((t, n, w, s), dtype=np.int64)
        self.buf_h = np.zeros((t, n, w, self.H), dtype=np.float32)
        self.buf_c = np.zeros((t, n, w, self.H), dtype=np.float32)
        self.buf_first = np.zeros((t, w), dtype=bool)
        self.buf_target = np.zeros((t, n, w, n - 1), dtype=np.int64)  # others' actions at t
        self.buf_vis = np.ones((t, n, w, n - 1), dtype=bool)  # visibility in o_t
        self.buf_cf = np.zeros((t, n, w), dtype=np.int64)  # own counterfactual variable at t
        self.buf_len = 0

    def reset_worlds(self, mask=None):
        """Mark worlds (all when ``mask`` is None) as starting a new episode: the LSTM state is
        zeroed before their next step and no prediction crosses the boundary."""
        if mask is None:
            self.first[:] = True
        else:
            self.first |= np.asarray(mask, dtype=bool)

    # ---------------------------------------------------------------- statistics
    def stats(self):
        """Per agent: running cross-entropy and accuracy of its MOA (averaged over the others it
        predicts), and the per-pair accuracy matrix ``[N, N-1]``.  Updated at each training round."""
        if self._stats is None:  # cached: the wrappers read this every step
            with np.errstate(invalid="ignore", divide="ignore"):
                loss = self._loss_sum.sum(1) / self._count.sum(1)
                acc = self._correct.sum(1) / self._count.sum(1)
                pair_acc = self._correct / self._count
            self._stats = (loss, acc, pair_acc)
        return self._stats

    # ---------------------------------------------------------------- main step
    def slot_values(self, actions, vis, symbols):
        """Categorical inputs ``[N, W, S]`` for every agent's MOA (own first, then others)."""
        own = actions.T[:, :, None]  # [N, W, 1]
        oth = actions[:, self.others].transpose(1, 0, 2).copy()  # [N, W, N-1]
        if not self.moa_sees_hidden_actions:
            oth[~vis.transpose(1, 0, 2)] = self.A  # k cannot know what it cannot see
        parts = [own, oth]
        if symbols is not None:
            parts += [symbols.T[:, :, None], symbols[:, self.others].transpose(1, 0, 2)]
        return np.concatenate(parts, axis=2)

    def step(self, img, actions, vis=None, symbols=None, policy=None, policy_given=None):
        """See :meth:`_step`; runs it with torch limited to ``torch_threads`` threads."""
        before = torch.get_num_threads()
        if self.torch_threads is None or before == self.torch_threads:
            return self._step(img, actions, vis, symbols, policy, policy_given)
        torch.set_num_threads(self.torch_threads)
        try:
            return self._step(img, actions, vis, symbols, policy, policy_given)
        finally:
            torch.set_num_threads(before)

    def _step(self, img, actions, vis=None, symbols=None, policy=None, policy_given=None):
        """Process one environment step of every world.

        ``img`` uint8 ``[W, N, H, W, C]``: each agent's observation s_t (the one it acted on);
        ``actions`` int ``[W, N]``: actions taken at t; ``vis`` bool ``[W, N, N-1]``: visibility of
        the others in o_t (None = all visible); ``symbols`` int ``[W, N]`` (communication only);
        ``policy`` float ``[W, N, C]`` with ``policy_given`` bool ``[W, N]``: the agents' own
        probabilities of their counterfactual variable, where supplied.

        Returns ``(influence [W, N], per_pair [W, N, N-1])``: clipped, unweighted influence of the
        choice made at t (for PMI: of the choice made at t-1, see the module docstring).
        """
        n, w = self.N, self.W
        actions = np.asarray(actions, dtype=np.int64).reshape(w, n)
        vis = self._all_visible if vis is None else np.asarray(vis, dtype=bool).reshape(w, n, n - 1)
        if symbols is not None:
            symbols = np.asarray(symbols, dtype=np.int64).reshape(w, n)
        cf_actual = actions if self.cf_on == "action" else symbols
        pmi = self.divergence == "pmi"
        pmi_out = self._deliver_pmi(actions) if pmi else None

        # the step's inputs go straight into buffer slot t, and the acting pass reads them there
        t = self.buf_len
        self._store(img, actions, vis, symbols, cf_actual)  # also zeroes the state of new episodes
        self.h, self.c = torch.from_numpy(self.buf_h[t]), torch.from_numpy(self.buf_c[t])
        idx_np, actual = self.buf_idx[t], self.buf_cf[t]  # [N, W, S], [N, W]
        mask = self.buf_vis[t] if self.influence_only_visible else self._all_visible_nw
        given, sup = self._not_given, self._no_policy
        if policy is not None:
            given = np.ascontiguousarray(np.asarray(policy_given, dtype=bool).T)
            sup = np.ascontiguousarray(np.asarray(policy, dtype=np.float32).transpose(1, 0, 2))
        if self._fast and self._fast_ok():
            total, per_pair, new_h, new_c, cond, marg = self._act_fast_np(self.buf_img[t], idx_np, actual, sup,
                                                                         given, mask)
            self.h, self.c = torch.from_numpy(new_h), torch.from_numpy(new_c)
            if pmi:
                self._pmi_pending = (torch.from_numpy(cond), torch.from_numpy(marg),
                                     torch.from_numpy(mask.astype(np.float32)))
                total, per_pair = pmi_out
            else:
                total, per_pair = total.T, per_pair.transpose(1, 0, 2)
        else:
            with torch.no_grad():
                total, per_pair, self.h, self.c, cond, marg = self._act(
                    im2col(self.buf_img[t]), self.model.rows(idx_np, drop_cf=True), self.h, self.c,
                    torch.from_numpy(actual), torch.from_numpy(sup), torch.from_numpy(given[:, :, None]),
                    torch.from_numpy(mask.astype(np.float32)))
            if pmi:
                self._pmi_pending = (cond, marg, torch.from_numpy(mask.astype(np.float32)))
                total, per_pair = pmi_out
            else:
                total, per_pair = total.T.numpy(), per_pair.transpose(0, 1).numpy()
        self.first[:] = False
        if self.buf_len == self.train_every + 1:
            self._train()
        return np.asarray(total, dtype=np.float64), np.asarray(per_pair, dtype=np.float64)

    def _act_core(self, patches, rows, h, c, actual, sup, given, mask):
        """The acting pass on tensors only (so it can be ``torch.compile``d as one graph).

        Returns clipped total influence ``[N, W]``, masked per-pair divergence ``[N, W, N-1]``, the
        LSTM state after the choice really made, and the conditional and marginal distributions.
        """
        m = self.model
        feat = m.encode(patches, self.W)  # [N, W, fc]
        cf_logits, h2, c2, self_logits = m.counterfactual_step(feat, rows, h, c)
        # the agent's own policy where supplied, else the learned self-model
        probs = torch.where(given, sup, torch.softmax(self_logits, -1))
        ni, wi = self._grid
        new_h, new_c = h2[ni, wi, actual], c2[ni, wi, actual]  # the state of the choice really made
        cond, marg = conditional_and_marginal(torch.softmax(cf_logits, -1), actual, probs, normalised=True)
        if self.divergence == "pmi":  # needs the others' next actions: finished at t+1
            return None, None, new_h, new_c, cond, marg
        per_pair = pairwise_divergence(cond, marg, self.divergence) * mask
        return per_pair.sum(-1).clamp(-self.clip, self.clip), per_pair, new_h, new_c, cond, marg

    def _fast_ok(self) -> bool:
        """The numba pass mirrors the stock :class:`MOA` and ``_act_core``: any method replaced on
        the instance (e.g. a hand-set MOA in the tests) or a subclass sends the step to torch."""
        m = self.model
        return (type(m) is MOA and not (m.__dict__.keys() & _MOA_METHODS)
                and type(self) is InfluenceEngine and "_act_core" not in self.__dict__
                and self._act == self._act_core)

    def _fast_weights(self):
        """numpy weights for :func:`_act_numba`: views of the parameters, the matmul weights as
        transposed copies ``[N, out, in]`` (a reduction per output is the fast loop order).  Rebuilt
        after each training round and ``load`` (which reset ``_fast_key``), and when any parameter
        is edited in place (torch's version counters; the fused optimiser step does not bump them,
        hence the explicit reset).  Parameters are updated in place, never replaced."""
        ts = self._fast_ts
        if ts is None:
            m = self.model
            ts = self._fast_ts = (m.conv_w, m.conv_b, m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias,
                                  m.in_x.weight, m.in_x.bias, m.in_h.weight, m.cat_table, m.head.weight,
                                  m.head.bias, m.gate_scale)
        key = tuple([t._version for t in ts])
        if self._fast_key != key:
            with torch.no_grad():
                arrs = [t.detach().numpy() for t in ts]
            for i in (2, 4, 6, 8, 10):  # fc1, fc2, in_x, in_h, head: [N, in, out] -> [N, out, in]
                arrs[i] = np.ascontiguousarray(arrs[i].transpose(0, 2, 1))
            self._fast_p, self._fast_key = arrs, key
        return self._fast_p

    def _act_fast(self, img, idx_np, actual, sup, given, mask):
        """The acting pass of :meth:`_act_core` as one numba loop over numpy views of the current
        weights (shared memory: always the weights the torch path would use).  Same inputs and
        outputs as ``_act_core`` (torch tensors out), on numpy inputs: ``img`` ``[W, N, ...]``,
        ``idx_np`` ``[N, W, S]`` (:meth:`slot_values`), ``actual`` ``[N, W]``, ``sup`` ``[N, W, C]``,
        ``given`` ``[N, W]``, ``mask`` ``[N, W, N-1]`` (bool)."""
        out = self._act_fast_np(img, idx_np, actual, sup, given, mask)
        total, per_pair, new_h, new_c, cond, marg = (torch.from_numpy(x) for x in out)
        if self.divergence == "pmi":
            total = per_pair = None
        return total, per_pair, new_h, new_c, cond, marg

    def _act_fast_np(self, img, idx_np, actual, sup, given, mask):
        """:meth:`_act_fast` with numpy arrays out (``total``/``per_pair`` unset for PMI)."""
        m = self.model
        c = np.ascontiguousarray
        return _act_numba(c(img, dtype=np.uint8), c(idx_np, dtype=np.int64), m.offsets, m.cf_slot,
                          c(self.h.numpy()), c(self.c.numpy()), c(actual, dtype=np.int64), c(sup, dtype=np.float32),
                          c(given, dtype=bool), c(mask, dtype=bool), *self._fast_weights(), m.dim_cat, m.num_cf,
                          self.A, self._div_code, float(self.clip))

    def _deliver_pmi(self, actions_t):
        """PMI of the choice made at t-1, now that the others' actions at t are known."""
        if self._pmi_pending is None:
            return np.zeros((self.W, self.N)), np.zeros((self.W, self.N, self.N - 1))
        cond, marg, mask = self._pmi_pending
        self._pmi_pending = None
        target = torch.as_tensor(actions_t[:, self.others].transpose(1, 0, 2).copy())
        pmi = torch.nan_to_num(pointwise_mutual_information(cond, marg, target), nan=0.0, posinf=0.0, neginf=0.0)
        alive = torch.from_numpy((~self.first).astype(np.float32))[None, :, None]  # not across episodes
        full_mask = alive if mask is None else alive * mask
        total = aggregate_influence(pmi, full_mask, self.clip)
        return total.T.numpy(), (pmi * full_mask).transpose(0, 1).numpy()

    def _store(self, img, actions, vis, symbols, cf_actual):
        """Write the step into buffer slot ``buf_len``: image, slot values (:meth:`slot_values`),
        the LSTM state the step starts from (zero where an episode starts), episode-start flags,
        the others' actions, visibility and the own counterfactual value."""
        t = self.buf_len
        self.buf_img[t] = img
        self.buf_first[t] = self.first
        if _record_numba is not None:
            hidden = -1 if self.moa_sees_hidden_actions else self.A
            _record_numba(actions, vis, self._no_symbols if symbols is None else symbols, cf_actual, self.first,
                          self.h.numpy(), self.c.numpy(), self.others, hidden, self.buf_idx[t], self.buf_h[t],
                          self.buf_c[t], self.buf_target[t], self.buf_vis[t], self.buf_cf[t])
        else:  # pragma: no cover - numba is a dependency
            keep = (~self.first)[None, :, None]
            self.buf_idx[t] = self.slot_values(actions, vis, symbols)
            self.buf_h[t] = self.h.numpy() * keep
            self.buf_c[t] = self.c.numpy() * keep
            self.buf_target[t] = actions[:, self.others].transpose(1, 0, 2)
            self.buf_vis[t] = vis.transpose(1, 0, 2)
            self.buf_cf[t] = cf_actual.T
        self.buf_len += 1

    # ---------------------------------------------------------------- training
    def _train_batch(self) -> dict:
        """The buffer as training tensors in *chunk order*: the T steps are cut into T/L chunks of
        L = ``bptt`` steps, and every per-step quantity is laid out ``[N, L, nc*W, ...]`` (time
        slot l of every chunk and world side by side), so that the whole buffer goes through the
        encoder in one batch and each LSTM step reads a contiguous ``[N, nc*W, ...]`` slab."""
        T, L, n, w = self.train_every, self.bptt, self.N, self.W
        nc = T // L
        b = nc * w

        def chunked(x):  # numpy [T, N, W, ...] -> [N, L, nc*W, ...]
            x = x.reshape(nc, L, n, w, *x.shape[3:]).transpose(2, 1, 0, 3, *range(4, x.ndim + 1))
            return np.ascontiguousarray(x).reshape(n, L, b, *x.shape[4:])

        m = self.model
        # im2col of the whole buffer in chunk order: column ((l*nc + c)*W + w)*P + position
        if _im2col_chunked_numba is not None:
            hh, ww, ch = self.buf_img.shape[3:]
            patches = torch.empty(n, ch * 9, T * w * (hh - 2) * (ww - 2))
            _im2col_chunked_numba(self.buf_img, T, L, patches.numpy())
        else:  # pragma: no cover - numba is a dependency; the same as a strided view, copied
            x = torch.from_numpy(self.buf_img[:T])  # [T, W, N, h, w, C] uint8, t = c*L + l
            _, _, _, hh, ww, ch = x.shape
            st, sw_, sn, sh, sx, sc = x.stride()
            patches = x.as_strided((n, ch, 3, 3, L, nc, w, hh - 2, ww - 2),
                                   (sn, sc, sh, sx, st, L * st, sw_, sh, sx))
            patches = patches.to(torch.float32, memory_format=torch.contiguous_format).view(n, ch * 9, -1)
        valid = ~self.buf_first[1:T + 1][:, None, :, None]  # [T, 1, W, 1]: no target across episodes
        if self.train_only_visible:
            valid = valid & self.buf_vis[1:T + 1]  # visibility when the target action was taken
        valid = np.broadcast_to(valid, self.buf_target[1:T + 1].shape)
        keep = (~self.buf_first[:T]).reshape(nc, L, w).transpose(1, 0, 2).reshape(L, b, 1)
        rows = chunked(self.buf_idx[:T]) + m.offsets + m._agent_off[:, :, :, None]  # [N, L, b, S]
        return dict(
            patches=patches,
            rows=torch.from_numpy(rows.reshape(n * L * b, -1)),  # rows of cat_table, one bag per step
            target=torch.from_numpy(chunked(self.buf_target[1:T + 1])),  # others' actions at t+1
            valid=torch.from_numpy(chunked(valid).astype(np.float32)),
            # None: no episode starts inside a chunk (the usual case), so no state is ever reset
            keep=torch.from_numpy(keep.astype(np.float32)) if not keep[1:].all() else None,
            own=torch.from_numpy(chunked(self.buf_cf[:T])),  # own choice at t (self-model target)
            h0=torch.from_numpy(np.ascontiguousarray(self.buf_h[0:T:L].transpose(1, 0, 2, 3)).reshape(n, b, self.H)),
            c0=torch.from_numpy(np.ascontiguousarray(self.buf_c[0:T:L].transpose(1, 0, 2, 3)).reshape(n, b, self.H)),
        )

    def _train(self):
        """Cross-entropy on the buffer: the prediction made at t is scored against the others'
        actions at t+1 (masked by visibility at t+1 and by episode ends); the self-model against
        the agent's own choice at t.  Truncated BPTT in chunks of ``bptt`` steps, all chunks and
        worlds in one batch, each chunk starting from the state recorded while acting.

        The first forward pass uses the weights the buffer was collected with, so it reproduces
        the acting-time predictions: the running loss/accuracy come from it (held-out data)."""
        batch = self._train_batch()
        if self.train_iters == 0:  # still score the predictions, without learning
            with torch.no_grad():
                self._record_stats(*self._loss(**batch)[2:], batch)
        for it in range(self.train_iters):
            moa_loss, self_loss, ce, correct = self._loss(**batch)
            if it == 0:  # the weights the buffer was collected with: held-out statistics
                self._record_stats(ce, correct, batch)
            self.optimizer.zero_grad(set_to_none=True)
            (moa_loss + self_loss).backward()
            self.optimizer.step()
            self._fast_key = None  # the numba pass's weight copies are stale now
            self.last_train_loss = float(moa_loss.detach())
            self.train_steps += 1
        # keep the last step: its target arrives with the next step
        T = self.train_every
        for buf in (self.buf_img, self.buf_idx, self.buf_h, self.buf_c, self.buf_first,
                    self.buf_target, self.buf_vis, self.buf_cf):
            buf[0] = buf[T]
        self.buf_len = 1

    def _loss_core(self, patches, rows, target, valid, keep, own, h0, c0):
        """MOA and self-model cross-entropy on a batch from :meth:`_train_batch` (tensors only).
        Also returns the per-entry cross-entropy and correctness for the running statistics.

        The encoder, the input part of the gates and the one-hot embedding run for all T steps
        in one batch; only the recurrence loops over the L steps of a chunk
        (:func:`lstm_sequence`, same cell as :meth:`MOA.cell`)."""
        m, n, H, L = self.model, self.N, self.H, self.bptt
        q = patches.shape[-1] // ((m.obs_shape[0] - 2) * (m.obs_shape[1] - 2))  # T*W steps
        b = q // L
        h4 = 4 * H
        feat = m.encode(patches, q)  # [N, q, fc], rows in chunk order
        gx = _lin(m.in_x, feat)  # [N, q, 4H + C]: the input part of gates and self-model
        emb = F.embedding_bag(rows, m.cat_table, mode="sum").view(n, q, h4)  # one-hot inputs
        gin = torch.cat([gx[..., :h4] + emb, gx[..., h4:]], dim=-1).view(n, L, b, -1)
        hs, self_logits = lstm_sequence(gin, m.in_h.weight, h0, c0, keep, m.gate_scale)
        logits = m.predict(hs.view(n, L * b, H)).view(*target.shape, self.A)  # [N, L, b, N-1, A]
        ce = F.cross_entropy(logits.reshape(-1, self.A), target.reshape(-1), reduction="none").view(target.shape)
        moa_loss = (ce * valid).sum() / valid.sum().clamp_min(1.0)
        self_loss = F.cross_entropy(self_logits.reshape(-1, self.num_cf), own.reshape(-1))
        correct = (logits.detach().argmax(-1) == target).float()
        return moa_loss, self_loss, ce.detach(), correct

    def _record_stats(self, ce, correct, batch):
        vm = batch["valid"]
        d = self.stats_decay ** self.train_every
        self._loss_sum = d * self._loss_sum + (ce * vm).sum((1, 2)).double().numpy()
        self._correct = d * self._correct + (correct * vm).sum((1, 2)).double().numpy()
        self._count = d * self._count + vm.sum((1, 2)).double().numpy()
        self._stats = None

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Save the MOA weights, optimiser state and configuration with ``torch.save``."""
        torch.save({"config": self.config, "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict()}, path)

    def load(self, path: str | os.PathLike) -> None:
        """Load weights saved by :meth:`save`; refuses a checkpoint of a different shape."""
        ckpt = torch.load(path, map_location=self.device, weights_only=True)
        if not isinstance(ckpt, dict) or "config" not in ckpt:
            raise ValueError(f"{path} is not an MOA checkpoint saved by save_moa()")
        if ckpt["config"] != self.config:
            raise ValueError(f"MOA checkpoint {path} was saved for {ckpt['config']}, "
                             f"but this wrapper needs {self.config}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self._fast_key = None


# ---------------------------------------------------------------- numba acting pass
# The acting pass is ~90 tiny torch calls per step (6-10 us of fixed overhead each); for a few
# worlds one compiled loop over numpy views of the same weights is several times faster.  It
# computes exactly what ``InfluenceEngine._act_core`` computes (float32, up to rounding).
try:
    from numba import njit as _njit
except ImportError:  # pragma: no cover - numba is a dependency; keep torch working without it
    _njit = None


def _ftanh_py(x):
    """float32 tanh as a clamped rational function (Eigen's ``generic_fast_tanh_float``): within
    a few float32 ulp of tanh, and unlike a libm call it vectorises."""
    x = min(max(x, np.float32(-7.90531110763549805)), np.float32(7.90531110763549805))
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    p = p * x
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return p / q


def _patches_py(src, f, out, col0):
    """3x3 valid-conv patches of one uint8 image ``src`` ``[h, w, C]`` into columns
    ``col0 ..`` of ``out`` ``[C*9, ...]`` (im2col order: channel, dy, dx), via the channels-first
    float scratch ``f`` ``[C, h, w]`` (the patch rows are then slices of it)."""
    hh, ww, ch = src.shape
    oh, ow = hh - 2, ww - 2
    for y in range(hh):
        for x in range(ww):
            for cc in range(ch):
                f[cc, y, x] = np.float32(src[y, x, cc])
    for cc in range(ch):
        for dy in range(3):
            for dx in range(3):
                r = cc * 9 + dy * 3 + dx
                for i in range(oh):
                    for j in range(ow):
                        out[r, col0 + i * ow + j] = f[cc, i + dy, j + dx]


_patches = _njit(cache=True, inline="always")(_patches_py) if _njit is not None else _patches_py


def _act_numba_py(img, idx, offsets, cf_slot, h, c, actual, sup, given, mask, conv_w, conv_b, fc1_t, fc1_b,
                  fc2_t, fc2_b, inx_t, inx_b, inh_t, cat, head_t, head_b, scale,
                  dim_cat, num_cf, n_act, div_code, clip):
    """``img`` uint8 [W, N, Hh, Ww, Ch]; ``idx`` int64 [N, W, S] slot values (row of slot s of agent
    k in ``cat``: ``k * dim_cat + offsets[s] + value``; slot ``cf_slot`` is the counterfactual one);
    ``h, c`` [N, W, H]; ``actual`` int64 [N, W]; ``sup`` [N, W, C]; ``given`` bool [N, W]; ``mask``
    bool [N, W, J].  ``div_code``: 0 kl, 1 jsd, 2 pmi (divergence not computed)."""
    nw, n, hh, ww, ch = img.shape
    npos = (hh - 2) * (ww - 2)
    nch = conv_w.shape[1]
    fc = fc1_t.shape[1]
    H = h.shape[2]
    h4 = 4 * H
    nj = n - 1
    na = n_act
    ja = nj * na
    total = np.zeros((n, nw), np.float32)
    per_pair = np.zeros((n, nw, nj), np.float32)
    new_h = np.empty((n, nw, H), np.float32)
    new_c = np.empty((n, nw, H), np.float32)
    cond = np.empty((n, nw, nj, na), np.float32)
    marg = np.empty((n, nw, nj, na), np.float32)
    patch = np.empty((ch * 9, npos), np.float32)
    imgf = np.empty((ch, hh, ww), np.float32)
    conv = np.empty(nch * npos, np.float32)
    x1 = np.empty(fc, np.float32)
    x2 = np.empty(fc, np.float32)
    pre = np.empty(h4 + num_cf, np.float32)
    base = np.empty(h4, np.float32)
    h2 = np.empty((num_cf, H), np.float32)
    c2 = np.empty((num_cf, H), np.float32)
    probs_cf = np.empty((num_cf, ja), np.float32)
    pol = np.empty(num_cf, np.float32)
    inv255 = np.float32(1.0 / 255.0)
    one, two, half = np.float32(1.0), np.float32(2.0), np.float32(0.5)
    gates = np.empty(h4, np.float32)
    for k in range(n):
        for w in range(nw):
            # conv 3x3 valid (im2col order: channel, dy, dx), relu
            _patches(img[w, k], imgf, patch, 0)
            for o in range(nch):
                for p in range(npos):
                    conv[o * npos + p] = 0.0
                for r in range(ch * 9):
                    wv = conv_w[k, o, r]
                    for p in range(npos):
                        conv[o * npos + p] += wv * patch[r, p]
                bo = conv_b[k, o, 0]
                for p in range(npos):
                    v = conv[o * npos + p] * inv255 + bo
                    conv[o * npos + p] = v if v > 0.0 else np.float32(0.0)
            # fc1, fc2 (tanh)
            for q in range(fc):  # the *_t weights are transposed: [out, in], a reduction per output
                acc = np.float32(0.0)
                for r in range(nch * npos):
                    acc += conv[r] * fc1_t[k, q, r]
                x1[q] = acc + fc1_b[k, 0, q]
            for q in range(fc):
                x1[q] = np.tanh(x1[q])
            for q in range(fc):
                acc = np.float32(0.0)
                for r in range(fc):
                    acc += x1[r] * fc2_t[k, q, r]
                x2[q] = acc + fc2_b[k, 0, q]
            for q in range(fc):
                x2[q] = np.tanh(x2[q])
            # gates + self-model logits
            for q in range(h4 + num_cf):
                acc = np.float32(0.0)
                for r in range(fc):
                    acc += x2[r] * inx_t[k, q, r]
                acc2 = np.float32(0.0)
                for r in range(H):
                    acc2 += h[k, w, r] * inh_t[k, q, r]
                pre[q] = (acc + inx_b[k, 0, q]) + acc2
            for q in range(h4):
                base[q] = pre[q]
            for s in range(idx.shape[2]):
                if s == cf_slot:
                    continue
                rr = k * dim_cat + offsets[s] + idx[k, w, s]
                for q in range(h4):
                    base[q] += cat[rr, q]
            for q in range(h4):
                base[q] *= scale[q]
            # one LSTM cell per counterfactual value
            cf0 = k * dim_cat + offsets[cf_slot]
            for a in range(num_cf):
                for q in range(h4):  # one sigmoid over all four gates (g block pre-doubled)
                    gates[q] = half + half * _ftanh(half * (base[q] + cat[cf0 + a, q] * scale[q]))
                for q in range(H):
                    cv = gates[H + q] * c[k, w, q] + gates[q] * (two * gates[3 * H + q] - one)
                    c2[a, q] = cv
                    h2[a, q] = gates[2 * H + q] * _ftanh(cv)
                # head -> logits [J*A], softmax over A
                for q in range(ja):
                    acc = np.float32(0.0)
                    for r in range(H):
                        acc += h2[a, r] * head_t[k, q, r]
                    probs_cf[a, q] = acc + head_b[k, 0, q]
                for jj in range(nj):
                    mx = probs_cf[a, jj * na]
                    for b in range(1, na):
                        mx = max(mx, probs_cf[a, jj * na + b])
                    ssum = 0.0
                    for b in range(na):
                        e = np.exp(probs_cf[a, jj * na + b] - mx)
                        probs_cf[a, jj * na + b] = e
                        ssum += e
                    for b in range(na):
                        probs_cf[a, jj * na + b] /= ssum
            act = actual[k, w]
            for q in range(H):
                new_h[k, w, q] = h2[act, q]
                new_c[k, w, q] = c2[act, q]
            # the agent's own policy where supplied, else the self-model's softmax
            if given[k, w]:
                for a in range(num_cf):
                    pol[a] = sup[k, w, a]
            else:
                mx = pre[h4]
                for a in range(1, num_cf):
                    mx = max(mx, pre[h4 + a])
                ssum = 0.0
                for a in range(num_cf):
                    e = np.exp(pre[h4 + a] - mx)
                    pol[a] = e
                    ssum += e
                for a in range(num_cf):
                    pol[a] /= ssum
            for jj in range(nj):
                for b in range(na):
                    cond[k, w, jj, b] = probs_cf[act, jj * na + b]
                    mv = 0.0
                    for a in range(num_cf):
                        mv += pol[a] * probs_cf[a, jj * na + b]
                    marg[k, w, jj, b] = mv
            if div_code == 2:
                continue
            tot = 0.0
            for jj in range(nj):
                d = 0.0
                for b in range(na):
                    p = cond[k, w, jj, b]
                    q = marg[k, w, jj, b]
                    if div_code == 0:
                        if p > 0.0:
                            d += p * (np.log(p) - np.log(max(q, 1e-20)))
                    else:
                        m = 0.5 * (p + q)
                        if p > 0.0:
                            d += 0.5 * p * (np.log(p) - np.log(max(m, 1e-20)))
                        if q > 0.0:
                            d += 0.5 * q * (np.log(q) - np.log(max(m, 1e-20)))
                if not np.isfinite(d):
                    d = 0.0
                if not mask[k, w, jj]:
                    d = 0.0
                per_pair[k, w, jj] = d
                tot += d
            total[k, w] = min(max(tot, -clip), clip)
    return total, per_pair, new_h, new_c, cond, marg


# fastmath without the no-NaN/no-inf assumptions: the divergence's non-finite check must stay
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
if _njit is not None:
    _ftanh = _njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")(_ftanh_py)
    _act_numba = _njit(cache=True, fastmath=_FASTMATH, error_model="numpy")(_act_numba_py)
else:  # pragma: no cover
    _ftanh = _act_numba = None


def _record_py(actions, vis, symbols, cf, first, h, c, others, hidden, b_idx, b_h, b_c, b_target, b_vis, b_cf):
    """One step into buffer slot views ``b_* = buf_*[t]`` (what ``InfluenceEngine._store``'s numpy
    fallback writes): slot values as :meth:`InfluenceEngine.slot_values` (``hidden``: the value of
    an action k cannot see, -1 when hidden actions are shown; ``symbols`` ``[W, 0]`` when there are
    none), the LSTM state zeroed where ``first``, the others' actions, visibility, own cf value."""
    nw, n = actions.shape
    nj = n - 1
    H = h.shape[2]
    has_sym = symbols.shape[1] > 0
    for k in range(n):
        for w in range(nw):
            b_idx[k, w, 0] = actions[w, k]
            for jj in range(nj):
                a = actions[w, others[k, jj]]
                v = vis[w, k, jj]
                b_target[k, w, jj] = a
                b_vis[k, w, jj] = v
                b_idx[k, w, 1 + jj] = a if v or hidden < 0 else hidden
            if has_sym:
                b_idx[k, w, n] = symbols[w, k]
                for jj in range(nj):
                    b_idx[k, w, n + 1 + jj] = symbols[w, others[k, jj]]
            b_cf[k, w] = cf[w, k]
            keep = np.float32(0.0) if first[w] else np.float32(1.0)
            for q in range(H):
                b_h[k, w, q] = h[k, w, q] * keep
                b_c[k, w, q] = c[k, w, q] * keep


_record_numba = _njit(cache=True)(_record_py) if _njit is not None else None


# ---------------------------------------------------------------- numba LSTM sequence (training)
# The training pass's recurrence is L steps of a [N, b, H] x [N, H, 4H + C] matmul plus ~15
# elementwise ops on [N, b, H]-sized tensors, forward and backward: torch's per-op overhead on such
# small tensors costs more than the arithmetic.  These loops do the same per (agent, row), with the
# recurrent weight of one agent (H x (4H + C) floats) staying in cache.
def _lstm_fwd_py(gin, w, h0, c0, keep, scale, hs, self_logits, hp, cp, sig, tc):
    """Forward of :class:`_LSTMSequence`: fills ``hs``, ``self_logits`` and the saved tensors
    ``hp`` (h_{t-1} after the reset mask), ``cp`` (same for c), ``sig`` (gate sigmoids), ``tc``
    (tanh of the new cell state).  ``keep`` float32 ``[L, b]`` (1 where the state is kept)."""
    n, L, b, G = gin.shape
    H = h0.shape[2]
    h4 = 4 * H
    half, one, two = np.float32(0.5), np.float32(1.0), np.float32(2.0)
    pre = np.empty(G, np.float32)
    h = np.empty(H, np.float32)
    c = np.empty(H, np.float32)
    for k in range(n):
        for r in range(b):
            for j in range(H):
                h[j] = h0[k, r, j]
                c[j] = c0[k, r, j]
            for t in range(L):
                if t > 0:
                    kp = keep[t, r]
                    for j in range(H):
                        h[j] *= kp
                        c[j] *= kp
                for j in range(H):
                    hp[k, t, r, j] = h[j]
                    cp[k, t, r, j] = c[j]
                for q in range(G):
                    pre[q] = gin[k, t, r, q]
                for j in range(H):
                    hv = h[j]
                    for q in range(G):
                        pre[q] += hv * w[k, j, q]
                for q in range(G - h4):
                    self_logits[k, t, r, q] = pre[h4 + q]
                for q in range(h4):  # sigmoid(x) = (1 + tanh(x / 2)) / 2
                    sig[k, t, r, q] = half + half * _ftanh(half * pre[q] * scale[q])
                for j in range(H):
                    g = two * sig[k, t, r, 3 * H + j] - one
                    cv = sig[k, t, r, H + j] * c[j] + sig[k, t, r, j] * g
                    tv = _ftanh(cv)
                    tc[k, t, r, j] = tv
                    c[j] = cv
                    h[j] = sig[k, t, r, 2 * H + j] * tv
                    hs[k, t, r, j] = h[j]


def _lstm_bwd_py(d_hs, d_self, w, cp, sig, tc, keep, scale, d_gin):
    """Backward of :class:`_LSTMSequence` except the recurrent weight's gradient (one matmul,
    left to torch): fills ``d_gin`` ``[N, L, b, 4H + C]``."""
    n, L, b, G = d_gin.shape
    H = cp.shape[3]
    h4 = 4 * H
    one, two = np.float32(1.0), np.float32(2.0)
    dh = np.empty(H, np.float32)
    dc = np.empty(H, np.float32)
    dh_next = np.empty(H, np.float32)
    dc_next = np.empty(H, np.float32)
    for k in range(n):
        for r in range(b):
            for j in range(H):
                dh_next[j] = 0.0
                dc_next[j] = 0.0
            for t in range(L - 1, -1, -1):
                for j in range(H):
                    si = sig[k, t, r, j]
                    sf = sig[k, t, r, H + j]
                    so = sig[k, t, r, 2 * H + j]
                    sg = sig[k, t, r, 3 * H + j]
                    tv = tc[k, t, r, j]
                    dhv = d_hs[k, t, r, j] + dh_next[j]
                    dcv = dc_next[j] + dhv * so * (one - tv * tv)
                    d_gin[k, t, r, j] = dcv * (two * sg - one) * si * (one - si) * scale[j] * scale[j]
                    d_gin[k, t, r, H + j] = dcv * cp[k, t, r, j] * sf * (one - sf) * scale[H + j] * scale[H + j]
                    d_gin[k, t, r, 2 * H + j] = dhv * tv * so * (one - so) * scale[2 * H + j] * scale[2 * H + j]
                    d_gin[k, t, r, 3 * H + j] = dcv * si * sg * (one - sg) * scale[3 * H + j] * scale[3 * H + j]
                    dc[j] = dcv * sf
                for q in range(G - h4):
                    d_gin[k, t, r, h4 + q] = d_self[k, t, r, q]
                if t > 0:
                    kp = keep[t, r]
                    for j in range(H):
                        acc = np.float32(0.0)
                        for q in range(G):
                            acc += d_gin[k, t, r, q] * w[k, j, q]
                        dh_next[j] = acc * kp
                        dc_next[j] = dc[j] * kp


if _njit is not None:
    _lstm_fwd_numba = _njit(cache=True, fastmath=_FASTMATH, error_model="numpy")(_lstm_fwd_py)
    _lstm_bwd_numba = _njit(cache=True, fastmath=_FASTMATH, error_model="numpy")(_lstm_bwd_py)
else:  # pragma: no cover
    _lstm_fwd_numba = _lstm_bwd_numba = None


def _im2col_chunked_py(img, T, L, out):
    """:func:`im2col` of steps ``0..T-1`` of the buffer ``img`` ``[T+1, W, N, h, w, C]`` (uint8),
    columns in the training's chunk order: step t = c*L + l of world w at column block
    ``(l * (T // L) + c) * W + w``.  ``out``: float32 ``[N, C*9, T*W*(h-2)*(w-2)]``."""
    _, nw, n, hh, ww, ch = img.shape
    npos = (hh - 2) * (ww - 2)
    nc = T // L
    f = np.empty((ch, hh, ww), np.float32)
    for t in range(T):
        for w in range(nw):
            col0 = (((t % L) * nc + t // L) * nw + w) * npos
            for k in range(n):
                _patches(img[t, w, k], f, out[k], col0)


_im2col_chunked_numba = _njit(cache=True)(_im2col_chunked_py) if _njit is not None else None
