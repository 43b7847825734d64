"""The influence engine: the MOA's online training and the influence reward, over ``[worlds, agents]``.

Each :meth:`InfluenceEngine.step` stores the step in a short buffer and runs the MOA once for all
C counterfactual values of each agent's own slot; every ``train_every`` steps the MOA trains on the
buffer (:meth:`InfluenceEngine._train`).

Timing (the classic off-by-one pitfalls): the influence returned at t is that of the action taken
at t, from inputs at t, so the wrapper adds it to the reward of that same step.  Only PMI needs
j's realised next action, so PMI for the action at t is delivered one step later.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from .core import (
    aggregate_influence,
    conditional_and_marginal,
    pairwise_divergence,
    pointwise_mutual_information,
)
from .moa import MOA

STATS_DECAY = 0.99  # per step, of the running MOA loss and accuracy (exponential moving sums)


def _softmax(x: torch.Tensor) -> torch.Tensor:
    """``torch.softmax`` over the last axis, eagerly as exp / sum without the max shift (faster on
    CPU for short rows) while every row's sum is a normal float, else ``torch.softmax``."""
    if torch.compiler.is_compiling():
        return torch.softmax(x, -1)
    e = x.exp()
    total = e.sum(-1, keepdim=True)
    lo, hi = torch.aminmax(total)
    if not (lo >= 1e-30 and hi <= 1e30):  # an overflow, or every entry of a row tiny
        return torch.softmax(x, -1)
    return e.div_(total)


class InfluenceEngine:
    """An :class:`~wrappers.moa.MOA`, its optimiser and trajectory buffer, and the influence
    computation over ``[worlds, agents]`` arrays (for the influence wrappers and the channel).

    Parameters mirror :class:`~wrappers.InfluenceOptions`; ``num_symbols`` adds the symbol slots of
    the communication channel, and ``cf_on="symbol"`` makes the own symbol the counterfactual.
    """

    def __init__(self, num_worlds: int, num_agents: int, num_actions: int,
                 obs_shape: tuple[int, int, int], *, divergence: str = "kl", clip: float = 10.0,
                 influence_only_visible: bool = True, train_only_visible: bool = True,
                 moa_sees_hidden_actions: bool = False, num_symbols: int | None = None,
                 cf_on: str = "action", lr: float = 1e-3, train_every: int = 64, bptt: int = 8,
                 train_iters: int = 1, lstm_size: int = 128, seed: int = 0, torch_threads: int | None = 1,
                 compile_moa: bool = False):
        if num_agents < 2:
            raise ValueError(f"influence needs at least 2 agents, got num_agents={num_agents}")
        if train_every % bptt != 0:
            raise ValueError(f"train_every ({train_every}) must be a multiple of bptt ({bptt})")
        self.W, self.N, self.A, self.H = num_worlds, num_agents, num_actions, lstm_size
        self.divergence, self.clip = divergence, clip
        self.influence_only_visible, self.train_only_visible = influence_only_visible, train_only_visible
        self.moa_sees_hidden_actions, self.cf_on = moa_sees_hidden_actions, cf_on
        self.train_every, self.bptt, self.train_iters = train_every, bptt, train_iters
        self.torch_threads = torch_threads
        n, a = num_agents, num_actions
        # slots per agent k: own action, the others' actions (value A = not visible), [own symbol, others']
        cards = [a] + [a + 1] * (n - 1)
        if num_symbols is not None:
            cards += [num_symbols] * n
        cf_slot = 0 if cf_on == "action" else n
        self.config = dict(num_agents=n, num_actions=a, obs_shape=tuple(obs_shape), cards=cards,
                           cf_slot=cf_slot, lstm_size=lstm_size)
        self.model = MOA(n, a, cards, cf_slot, obs_shape, lstm_size=lstm_size, seed=seed)
        try:  # one fused kernel instead of ~10 ops per parameter (CPU support since torch 2.4)
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - older torch
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.others = np.array([[j for j in range(n) if j != k] for k in range(n)], dtype=np.int64)
        t, w = train_every + 1, num_worlds  # the buffer: the steps since the last round, and one more
        self.buf_img = np.zeros((t, w, n, *obs_shape), dtype=np.uint8)
        self.buf_slots = np.zeros((t, n, w, len(cards)), dtype=np.int64)
        self.buf_h = np.zeros((t, n, w, self.H), dtype=np.float32)  # the state the step starts from
        self.buf_c = np.zeros((t, n, w, self.H), dtype=np.float32)
        self.buf_first = np.zeros((t, w), dtype=bool)
        self.buf_target = np.zeros((t, n, w, n - 1), dtype=np.int64)  # the others' actions at t
        self.buf_vis = np.ones((t, n, w, n - 1), dtype=bool)  # their visibility in o_t
        self.buf_cf = np.zeros((t, n, w), dtype=np.int64)  # the own counterfactual variable at t
        self.buf_len = 0
        self.h, self.c = torch.zeros(n, w, self.H), torch.zeros(n, w, self.H)
        self.first = np.ones(w, dtype=bool)
        self._pmi_pending = None
        self._compiled = bool(compile_moa)
        self._workspace = {}  # the acting pass's kept buffers (see MOA.counterfactuals)
        self._act = torch.compile(self._act_core, dynamic=False) if compile_moa else self._act_core
        # running statistics (exponential moving sums so accuracy = correct / count)
        self._loss_sum = np.zeros((n, n - 1))
        self._correct = np.zeros((n, n - 1))
        self._count = np.zeros((n, n - 1))
        self._stats = None

    # ---------------------------------------------------------------- buffer
    def _store(self, img, actions, vis, symbols, cf_actual):
        """Write the step into buffer slot ``buf_len``; the LSTM state is zeroed where an episode
        starts.  Slot values of agent k: its own action, the others' (value A where k cannot see
        them, unless ``moa_sees_hidden_actions``), then its own symbol and the others'."""
        t = self.buf_len
        vis_k = vis.transpose(1, 0, 2)  # [N, W, N-1]
        others = actions[:, self.others].transpose(1, 0, 2)
        self.buf_img[t] = img
        self.buf_first[t] = self.first
        self.buf_target[t] = others
        self.buf_vis[t] = vis_k
        self.buf_cf[t] = cf_actual.T
        slots = self.buf_slots[t]
        slots[:, :, 0] = actions.T
        slots[:, :, 1:self.N] = others if self.moa_sees_hidden_actions else np.where(vis_k, others, self.A)
        if symbols is not None:
            slots[:, :, self.N] = symbols.T
            slots[:, :, self.N + 1:] = symbols[:, self.others].transpose(1, 0, 2)
        keep = (~self.first)[None, :, None]
        np.multiply(self.h.numpy(), keep, out=self.buf_h[t])
        np.multiply(self.c.numpy(), keep, out=self.buf_c[t])
        self.buf_len += 1

    def reset_worlds(self, mask=None):
        """Mark worlds (all when ``mask`` is None) as starting a new episode: the LSTM state is
        zeroed before their next step and no prediction crosses the boundary."""
        self.first[slice(None) if mask is None else np.asarray(mask, dtype=bool)] = True

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
    def step(self, img, actions, vis=None, symbols=None, policy=None, policy_given=None):
        """One env step of every world: ``img`` uint8 ``[W, N, H, W, C]`` (the observations acted
        on), ``actions`` int ``[W, N]``, ``vis`` bool ``[W, N, N-1]`` (the others' visibility; None:
        all visible), ``symbols`` int ``[W, N]`` (communication only), ``policy`` ``[W, N, C]`` where
        ``policy_given`` ``[W, N]``: the agents' own probabilities of their counterfactual variable.

        Returns the clipped, unweighted ``(influence [W, N], per_pair [W, N, N-1])`` (timing: see
        the module docstring), with torch on ``torch_threads`` threads meanwhile.
        """
        before = torch.get_num_threads()
        if self.torch_threads is not None and before != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        try:
            return self._step(img, actions, vis, symbols, policy, policy_given)
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)

    def _step(self, img, actions, vis, symbols, policy, policy_given):
        n, w = self.N, self.W
        actions = np.asarray(actions, dtype=np.int64).reshape(w, n)
        vis = np.ones((w, n, n - 1), dtype=bool) if vis is None else np.asarray(vis, dtype=bool).reshape(w, n, n - 1)
        if symbols is not None:
            symbols = np.asarray(symbols, dtype=np.int64).reshape(w, n)
        cf_actual = actions if self.cf_on == "action" else symbols
        pmi_out = self._deliver_pmi(actions) if self.divergence == "pmi" else None

        t = self.buf_len
        self._store(img, actions, vis, symbols, cf_actual)
        mask = self.buf_vis[t] if self.influence_only_visible else None
        if mask is not None:
            mask = torch.from_numpy(mask).to(torch.float32)
        sup = given = None
        if policy is not None:
            given = torch.from_numpy(np.ascontiguousarray(np.asarray(policy_given, dtype=bool).T[:, :, None]))
            sup = torch.from_numpy(np.ascontiguousarray(np.asarray(policy, dtype=np.float32).transpose(1, 0, 2)))
        with torch.inference_mode():
            total, per_pair, self.h, self.c, cond, marg = self._act(
                torch.from_numpy(self.buf_img[t]), torch.from_numpy(self.buf_slots[t]),
                torch.from_numpy(self.buf_h[t]), torch.from_numpy(self.buf_c[t]),
                torch.from_numpy(self.buf_cf[t]), sup, given, mask)
        if pmi_out is not None:
            self._pmi_pending = (cond, marg, torch.ones(n, w, n - 1) if mask is None else mask)
            total, per_pair = pmi_out
        else:
            total, per_pair = total.T.numpy(), per_pair.transpose(0, 1).numpy()
        self.first[:] = False
        if self.buf_len == self.train_every + 1:
            self._train()
        return np.asarray(total, dtype=np.float64), np.asarray(per_pair, dtype=np.float64)

    def _act_core(self, img, slots, h, c, actual, sup, given, mask):
        """The acting pass on tensors only (one graph for ``torch.compile``): ``sup`` where ``given``
        (None: nowhere) the supplied policies, ``mask`` ``[N, W, N-1]`` visibility (None: all) ->
        the clipped total ``[N, W]`` and masked per-pair ``[N, W, N-1]`` influence (None for PMI),
        the LSTM state after the choice made, and the conditional and marginal."""
        model = self.model
        if self._compiled:
            cf_logits, h2, c2, self_logits = model.counterfactuals(img, slots, h, c)
        else:  # the large intermediates in kept buffers: only gathered from below, never kept
            model.workspace = self._workspace
            try:
                cf_logits, h2, c2, self_logits = model.counterfactuals(img, slots, h, c)
            finally:
                model.workspace = None
        probs = _softmax(self_logits)
        if given is not None:
            probs = torch.where(given, sup, probs)  # supplied, else the self-model
        pick = actual[:, :, None, None].expand(-1, -1, 1, h2.shape[-1])
        new_h, new_c = h2.gather(2, pick).squeeze(2), c2.gather(2, pick).squeeze(2)
        cond, marg = conditional_and_marginal(_softmax(cf_logits), actual, probs, normalised=True)
        if self.divergence == "pmi":
            return None, None, new_h, new_c, cond, marg
        per_pair = pairwise_divergence(cond, marg, self.divergence)
        if mask is not None:
            per_pair = per_pair * mask
        return per_pair.sum(-1).clamp(-self.clip, self.clip), per_pair, new_h, new_c, cond, marg

    def _deliver_pmi(self, actions_t):
        """PMI of the choice made at t-1, now that the others' actions at t are known."""
        if self._pmi_pending is None:
            return np.zeros((self.W, self.N)), np.zeros((self.W, self.N, self.N - 1))
        cond, marg, mask = self._pmi_pending
        self._pmi_pending = None
        target = torch.from_numpy(actions_t[:, self.others].transpose(1, 0, 2).copy())
        pmi = torch.nan_to_num(pointwise_mutual_information(cond, marg, target), nan=0.0, posinf=0.0, neginf=0.0)
        alive = torch.from_numpy((~self.first).astype(np.float32))[None, :, None]  # not across episodes
        full_mask = alive * mask
        total = aggregate_influence(pmi, full_mask, self.clip)
        return total.T.numpy(), (pmi * full_mask).transpose(0, 1).numpy()

    # ---------------------------------------------------------------- training
    def _train_batch(self) -> dict:
        """The buffer as training tensors: the T steps cut into T/L chunks of L = ``bptt`` steps,
        the chunks of every world side by side as the batch (b = T/L * W sequences)."""
        T, L, n, w = self.train_every, self.bptt, self.N, self.W
        nc = T // L

        def seq(x, agent_first=True):  # [T, (N,) W, ...] -> [N, L, nc*W, ...] (or [L, nc*W, ...])
            x = torch.from_numpy(x[:T]).unflatten(0, (nc, L))  # [nc, L, (N,) W, ...]
            if agent_first:
                x = x.movedim(2, 0).movedim(1, 2)  # [N, L, nc, W, ...]
                return x.flatten(2, 3).contiguous()
            return x.movedim(0, 1).flatten(1, 2).contiguous()

        valid = ~self.buf_first[1:T + 1][:, None, :, None]  # no target across an episode end
        if self.train_only_visible:
            valid = valid & self.buf_vis[1:T + 1]  # visibility when the target action was taken
        valid = np.array(np.broadcast_to(valid, self.buf_target[1:T + 1].shape))
        keep = seq(~self.buf_first, agent_first=False)[..., None]  # [L, b, 1]
        starts = slice(0, T, L)
        return dict(
            img=seq(self.buf_img, agent_first=False),  # [L, b, N, h, w, C]
            slots=seq(self.buf_slots),
            target=seq(self.buf_target[1:]),  # the others' actions at t+1
            valid=seq(valid).float(),
            keep=keep.float() if not keep[1:].all() else None,  # None: no episode starts inside a chunk
            own=seq(self.buf_cf),  # the own choice at t (the self-model's target)
            h0=torch.from_numpy(self.buf_h[starts]).movedim(0, 1).flatten(1, 2),
            c0=torch.from_numpy(self.buf_c[starts]).movedim(0, 1).flatten(1, 2),
        )

    def _train(self):
        """Cross-entropy on the buffer: the prediction made at t against the others' actions at t+1
        (masked by visibility at t+1 and episode ends), the self-model against the own choice at t;
        each chunk starts from the state recorded while acting.  The first pass, with the weights
        the buffer was collected with, gives the running (held-out) loss and accuracy."""
        batch = self._train_batch()
        if self.train_iters == 0:  # still score the predictions, without learning
            with torch.no_grad():
                self._record_stats(*self._loss(**batch)[2:], batch["valid"])
        for it in range(self.train_iters):
            moa_loss, self_loss, ce, correct = self._loss(**batch)
            if it == 0:
                self._record_stats(ce, correct, batch["valid"])
            self.optimizer.zero_grad(set_to_none=True)
            (moa_loss + self_loss).backward()
            self.optimizer.step()
        # keep the last step: its target arrives with the next step
        T = self.train_every
        for buf in (self.buf_img, self.buf_slots, self.buf_h, self.buf_c, self.buf_first,
                    self.buf_target, self.buf_vis, self.buf_cf):
            buf[0] = buf[T]
        self.buf_len = 1

    def _loss(self, img, slots, target, valid, keep, own, h0, c0):
        """MOA and self-model cross-entropy on a batch from :meth:`_train_batch`, and the per-entry
        cross-entropy and correctness for the running statistics."""
        logits, self_logits = self.model.sequence(img, slots, h0, c0, keep)  # [N, L, b, N-1, A]
        ce = F.cross_entropy(logits.flatten(0, -2), target.flatten(), reduction="none").view(target.shape)
        moa_loss = (ce * valid).sum() / valid.sum().clamp_min(1.0)
        self_loss = F.cross_entropy(self_logits.flatten(0, -2), own.flatten())
        correct = (logits.detach().argmax(-1) == target).float()
        return moa_loss, self_loss, ce.detach(), correct

    def _record_stats(self, ce, correct, valid):
        d = STATS_DECAY ** self.train_every
        self._loss_sum = d * self._loss_sum + (ce * valid).sum((1, 2)).double().numpy()
        self._correct = d * self._correct + (correct * valid).sum((1, 2)).double().numpy()
        self._count = d * self._count + valid.sum((1, 2)).double().numpy()
        self._stats = None

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> None:
        """Save the MOA weights, optimiser state and configuration with ``torch.save``."""
        torch.save({"config": self.config, "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict()}, path)

    def load(self, path: str | os.PathLike) -> None:
        """Load weights saved by :meth:`save`; refuses a checkpoint of a different shape."""
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "config" not in ckpt:
            raise ValueError(f"{path} is not an MOA checkpoint saved by save_moa()")
        if ckpt["config"] != self.config:
            raise ValueError(f"MOA checkpoint {path} was saved for {ckpt['config']}, "
                             f"but this wrapper needs {self.config}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
