"""The Model of Other Agents (Jaques et al. 2019, Exp. III): agent k's MOA predicts every other
agent's next action from k's own observation and everyone's current actions.  The network is the
paper's (supp. 10.4, as in the reference SSD repo):

    obs uint8 / 255 -> conv 3x3, 6 channels, valid, relu -> FC 32 (tanh) -> FC 32 (tanh)
    -> LSTM 128, whose input is that feature concatenated with one-hots of the categorical slots
       (own action at t, then the others' actions at t in agent-index order, then optionally the
       symbols of the communication channel)
    -> logits of every other agent's action at t+1.

A self-model head reads (feature_t, h_{t-1}), what k knew before choosing, and predicts k's own
choice at t (the marginal's weights when k does not supply its policy).  The N agents' networks are
one module whose layers hold a leading agent axis (``nn.LSTMCell`` cannot be: ``torch.func.vmap``
has no rule for ``aten::lstm_cell``); tensors are ``[agents, batch, ...]``.  The trainer is
:class:`~wrappers.moa_training.InfluenceEngine` (importable from here too).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


_IM2COL_MAX_BATCH = 256  # encode(): im2col + bmm up to this many images per agent, else a conv per agent


class AgentLinear(nn.Module):
    """One linear layer per agent, applied with one batched matmul: ``[N, ..., in] -> [N, ..., out]``;
    initialised like ``nn.Linear`` (uniform in +-1/sqrt(fan_in), biases too)."""

    def __init__(self, num_agents: int, fan_in: int, fan_out: int, gen: torch.Generator, bias: bool = True):
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = nn.Parameter(_uniform((num_agents, fan_in, fan_out), bound, gen))
        self.bias = nn.Parameter(_uniform((num_agents, 1, fan_out), bound, gen)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.flatten(1, -2)
        out = torch.bmm(rows, self.weight) if self.bias is None else torch.baddbmm(self.bias, rows, self.weight)
        return out.view(*x.shape[:-1], -1)


def _uniform(shape, bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


class AgentLSTMCell(nn.Module):
    """``nn.LSTMCell`` with one set of weights per agent, whose input is a feature vector and the
    one-hots of S categorical slots: ``feat [N, ..., fc]``, ``slots [N, ..., S]`` (each slot's value
    already offset into ``0..num_values-1``), state ``h, c [N, B, H]``.  The one-hots' weight is an
    embedding table (one row per slot value, summed); gates in ``nn.LSTMCell``'s order, the forget
    gate's bias 1."""

    def __init__(self, num_agents: int, feat_size: int, num_values: int, hidden_size: int, gen: torch.Generator):
        super().__init__()
        self.hidden_size, self.num_values = hidden_size, num_values
        self.ih = AgentLinear(num_agents, feat_size, 4 * hidden_size, gen)
        bound = 1.0 / math.sqrt(feat_size + num_values)
        self.slot_weight = nn.Parameter(_uniform((num_agents * num_values, 4 * hidden_size), bound, gen))
        self.hh = AgentLinear(num_agents, hidden_size, 4 * hidden_size, gen, bias=False)
        with torch.no_grad():
            self.ih.bias[..., hidden_size:2 * hidden_size] = 1.0
        agent_rows = torch.arange(num_agents).view(-1, 1, 1) * num_values  # agent k's rows of slot_weight
        self.register_buffer("agent_rows", agent_rows, persistent=False)

    def forward(self, feat: torch.Tensor, slots: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        return self.step(self.input_gates(feat, slots), h, c)

    def input_gates(self, feat: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """The input's part of the gates, ``[N, ..., 4H]`` (it does not depend on the state, so a
        sequence computes it for all its steps in one batch)."""
        n, s = slots.shape[0], slots.shape[-1]
        bags = (slots.reshape(n, -1, s) + self.agent_rows).view(-1, s)
        onehots = F.embedding_bag(bags, self.slot_weight, mode="sum").view(*slots.shape[:-1], -1)
        return onehots + self.ih(feat)

    def step(self, gin: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """The cell from the input's part of the gates ``gin`` (:meth:`input_gates`) and the state."""
        i, f, g, o = torch.baddbmm(gin, h, self.hh.weight).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * _tanh(g)
        return torch.sigmoid(o) * _tanh(c), c

    def counterfactual_step(self, feat, slots, h, c, cf_slot: int, slot_starts: list[int],
                            workspace: dict | None = None):
        """:meth:`forward` for every value of one slot at once: ``feat [N, B, fc]``, ``slots
        [N, B, S]`` (raw values, not offset; slot ``cf_slot`` is ignored), state ``[N, B, H]``,
        ``slot_starts`` each slot's first row among the ``num_values`` -> ``h, c [N, B, C, H]`` for
        the C values of slot ``cf_slot``.

        The part of the gates shared by the C values is computed once, and one sigmoid covers all
        four gates (the cell gate's pre-activation doubled: tanh(x) = 2 sigmoid(2x) - 1).  Acting
        only (no autograd): it writes into the buffers of ``workspace`` (fresh when None)."""
        n, b, s = slots.shape
        hs, nv = self.hidden_size, self.num_values
        start = slot_starts[cf_slot]
        num_cf = (slot_starts[cf_slot + 1] if cf_slot + 1 < s else nv) - start
        others = [k for k in range(s) if k != cf_slot]
        key = (cf_slot, tuple(slot_starts))
        if getattr(self, "_cf_key", None) != key:  # the other slots' offsets and the gate scaling
            self._cf_key = key
            self._cf_index = torch.tensor(others, device=slots.device)
            self._cf_shift = self.agent_rows + torch.tensor([slot_starts[k] for k in others], device=slots.device)
            scale = torch.ones(4, hs)
            scale[2] = 2.0
            self._cf_scale = scale.view(-1)
        rest = slots.index_select(-1, self._cf_index) + self._cf_shift  # [N, B, S-1] rows of slot_weight
        emb = F.embedding_bag(rest.view(-1, s - 1), self.slot_weight, mode="sum").view(n, b, -1)
        rows = self.slot_weight.view(n, nv, -1)[:, start:start + num_cf] * self._cf_scale  # [N, C, 4H]
        shape = (n, b, num_cf, 4 * hs)
        ws = {} if workspace is None else workspace
        shared = _scratch(ws, "shared", (n, b, 4 * hs))
        torch.baddbmm(self.ih.bias, feat, self.ih.weight, out=shared).baddbmm_(h, self.hh.weight)
        shared.add_(emb).mul_(self._cf_scale)
        gates = _scratch(ws, "gates", shape)
        torch.add(shared.unsqueeze(2), rows.unsqueeze(1), out=gates).sigmoid_()
        i, f, g, o = gates.chunk(4, dim=-1)
        c2 = _scratch(ws, "c2", shape[:-1] + (hs,))
        torch.mul(f, c.unsqueeze(2), out=c2).addcmul_(i, g, value=2.0).sub_(i)  # f c + i (2 sig(2g) - 1)
        h2 = _scratch(ws, "h2", shape[:-1] + (hs,))
        torch.mul(c2, 2.0, out=h2).sigmoid_().mul_(2.0).sub_(1.0).mul_(o)  # o (2 sig(2c) - 1)
        return h2, c2


def _scratch(workspace: dict, name: str, shape: tuple) -> torch.Tensor:
    """A kept buffer of this shape (reallocated when the shape changes)."""
    buf = workspace.get(name)
    if buf is None or buf.shape != shape:
        buf = workspace[name] = torch.empty(shape)
    return buf


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) as 2 sigmoid(2x) - 1 (torch's CPU sigmoid is faster than its tanh)."""
    return torch.sigmoid(2.0 * x) * 2.0 - 1.0


class MOA(nn.Module):
    """Every agent's MOA network (see the module docstring).  ``cards``: the cardinality of each
    categorical input slot, the same for every agent (own action, the others' actions, optionally
    symbols); ``cf_slot``: the slot varied counterfactually.  Slot values are int64 ``[N, B, S]``.
    """

    def __init__(self, num_agents: int, num_actions: int, cards: list[int], cf_slot: int,
                 obs_shape: tuple[int, int, int], conv_channels: int = 6, fc_size: int = 32,
                 lstm_size: int = 128, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        n, a = num_agents, num_actions
        h, w, ch = obs_shape
        self.num_agents, self.num_actions, self.obs_shape = n, a, tuple(obs_shape)
        self.cards, self.cf_slot, self.num_cf = list(cards), cf_slot, cards[cf_slot]
        self.lstm_size = lstm_size
        self.conv = nn.Conv2d(n * ch, n * conv_channels, 3, groups=n)
        bound = 1.0 / math.sqrt(ch * 9)
        with torch.no_grad():  # seeded like the other layers (nn.Conv2d's bound for this fan-in)
            self.conv.weight.copy_(_uniform(self.conv.weight.shape, bound, gen))
            self.conv.bias.copy_(_uniform(self.conv.bias.shape, bound, gen))
        self.fc1 = AgentLinear(n, conv_channels * (h - 2) * (w - 2), fc_size, gen)
        self.fc2 = AgentLinear(n, fc_size, fc_size, gen)
        self.lstm = AgentLSTMCell(n, fc_size, sum(self.cards), lstm_size, gen)
        self.head = AgentLinear(n, lstm_size, (n - 1) * a, gen)
        self.self_model = AgentLinear(n, fc_size + lstm_size, self.num_cf, gen)
        offsets = torch.tensor([0] + self.cards[:-1]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)  # slot s's one-hot starts here
        self._slot_starts = [int(v) for v in offsets]
        self.workspace: dict | None = None  # see counterfactuals()

    def encode(self, img: torch.Tensor, workspace: dict | None = None) -> torch.Tensor:
        """Observations uint8 ``[B, N, h, w, C]`` (agent k's own view in ``[:, k]``) -> features
        ``[N, B, fc]``.  The grouped conv is computed as im2col + one batched matmul up to
        ``_IM2COL_MAX_BATCH`` images per agent (acting), else as one plain conv per agent (training):
        the same function, the faster way on CPU for each.  ``workspace`` (acting only): a dict that
        keeps the patch buffer between calls."""
        b, n, hh, ww, ch = img.shape
        oh, ow = hh - 2, ww - 2
        co, npos = self.conv.out_channels // n, oh * ow
        if b > _IM2COL_MAX_BATCH:  # the training batch
            x = img.permute(1, 0, 4, 2, 3).to(torch.float32, memory_format=torch.contiguous_format)  # [N, B, C, h, w]
            weight = (self.conv.weight * (1.0 / 255.0)).view(n, co, ch, 3, 3)  # the uint8 scaling, on the kernel
            bias = self.conv.bias.view(n, co)
            y = torch.stack([F.conv2d(x[k], weight[k], bias[k]) for k in range(n)]).relu_().flatten(2)
            return torch.tanh(self.fc2(torch.tanh(self.fc1(y))))
        ws = {} if workspace is None else workspace  # None: fresh buffers
        x = _scratch(ws, "img", (n, ch, b, hh, ww)).copy_(img.permute(1, 4, 0, 2, 3))  # [N, C, B, h, w]
        s = x.stride()
        view = x.as_strided((n, ch, 3, 3, b, oh, ow), (s[0], s[1], s[3], s[4], s[2], s[3], s[4]))
        patches = _scratch(ws, "patches", (n, ch * 9, b * npos))  # rows in the kernel's order
        patches.view(view.shape).copy_(view)
        weight = self.conv.weight.view(n, co, ch * 9) * (1.0 / 255.0)  # the uint8 scaling, on the kernel
        bias = self.conv.bias.view(n, co, 1)
        if workspace is None:  # (autograd allows no out=)
            conv = torch.relu(torch.baddbmm(bias, weight, patches))
        else:
            conv = torch.baddbmm(bias, weight, patches, out=_scratch(ws, "conv", (n, co, b * npos))).relu_()
        y = _scratch(ws, "conv_t", (n, b, co * npos))
        y.view(n, b, co, npos).copy_(conv.view(n, co, b, npos).transpose(1, 2))
        return torch.tanh(self.fc2(torch.tanh(self.fc1(y))))

    def self_logits(self, feat: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The self-model: ``(feature_t, h_{t-1})`` -> logits ``[N, B, C]`` of the own choice at t
        (a linear layer on their concatenation, applied as two chained matmuls without the concat)."""
        sm, fc = self.self_model, feat.shape[-1]
        out = torch.baddbmm(sm.bias, feat.flatten(1, -2), sm.weight[:, :fc])
        return torch.baddbmm(out, h.flatten(1, -2), sm.weight[:, fc:]).view(*feat.shape[:-1], -1)

    def counterfactuals(self, img: torch.Tensor, slots: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                        workspace: dict | None = None):
        """One step for every value C of the counterfactual slot: ``img [B, N, h, w, C]``, ``slots
        [N, B, S]``, state ``h, c [N, B, H]`` -> the predictions ``[N, B, C, N-1, A]``, the new
        states ``h, c [N, B, C, H]`` and the self-model's logits ``[N, B, C]``.

        ``workspace`` (acting only, no autograd; default: the attribute ``workspace``, which
        :class:`InfluenceEngine` sets while it acts): a dict keeping the large intermediates and
        the returned tensors, overwritten by the next call with it.
        """
        workspace = self.workspace if workspace is None else workspace
        feat = self.encode(img, workspace)
        h2, c2 = self.lstm.counterfactual_step(feat, slots, h, c, self.cf_slot, self._slot_starts, workspace)
        n, b, num_cf, hs = h2.shape
        logits = _scratch({} if workspace is None else workspace, "logits", (n, b * num_cf, self.head.weight.shape[-1]))
        torch.baddbmm(self.head.bias, h2.view(n, b * num_cf, hs), self.head.weight, out=logits)
        logits = logits.view(n, b, num_cf, self.num_agents - 1, self.num_actions)
        return logits, h2, c2, self.self_logits(feat, h)

    def sequence(self, img: torch.Tensor, slots: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                 keep: torch.Tensor | None = None):
        """L steps of B sequences (the training pass).

        ``img`` ``[L, B, N, h, w, C]``, ``slots`` ``[N, L, B, S]`` (the values actually taken),
        initial state ``h, c`` ``[N, B, H]``, ``keep`` ``[L, B, 1]`` (0 where an episode starts at
        step l > 0: the state is zeroed there) or None.  Returns the predictions
        ``[N, L, B, N-1, A]`` and the self-model's logits ``[N, L, B, C]``.
        """
        steps, b = img.shape[:2]
        feat = self.encode(img.flatten(0, 1)).unflatten(1, (steps, b))  # the encoder in one batch
        gin = self.lstm.input_gates(feat, slots + self.offsets)  # [N, L, B, 4H]: all steps in one batch
        gin = gin.unbind(1)  # (not gin[:, t]: each slice's backward would zero a whole copy of gin)
        h_prev, hs = [], []
        for t in range(steps):
            if t > 0 and keep is not None:
                h, c = h * keep[t], c * keep[t]
            h_prev.append(h)
            h, c = self.lstm.step(gin[t], h, c)
            hs.append(h)
        logits = self.head(torch.stack(hs, 1)).unflatten(-1, (self.num_agents - 1, self.num_actions))
        return logits, self.self_logits(feat, torch.stack(h_prev, 1))


from .moa_training import InfluenceEngine  # noqa: E402  (the trainer builds on MOA)

__all__ = ["MOA", "AgentLinear", "AgentLSTMCell", "InfluenceEngine"]
