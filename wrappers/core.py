"""The wrappers' formulas as pure functions over arrays (leading axes ``[worlds, agents]``), and
the argument checks; nothing here knows about dicts, agent names or environments."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

DIVERGENCES = ("kl", "jsd", "pmi")

# Probabilities are clamped to this before taking logs, so a prediction of exactly 0 gives a large
# but finite divergence instead of inf/NaN (the influence is clipped anyway).
_EPS = 1e-20


# ---- argument validation (shared by every wrapper: bad input fails before any state changes)

def check_weight(name: str, value, *, allow_zero: bool = True) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming ``name`` if it is not a finite,
    non-negative (or positive, when ``allow_zero`` is False) real number."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_int(name: str, value, *, minimum: int) -> int:
    """Return ``value`` as an int, or raise naming ``name`` if it is not an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# ---- prosocial (Jaques et al. 2019, ICML, arXiv 1810.08647, supp. 10.5.2)

def prosocial_rewards(rewards: np.ndarray, eta: float) -> np.ndarray:
    """r_k = e_k + eta * sum_{i != k} e_i over the last axis (agents) of ``rewards [..., agents]``."""
    e = np.asarray(rewards, dtype=np.float64)
    others = e.sum(axis=-1, keepdims=True) - e
    return e + eta * others


# ---- inequity aversion (Hughes et al. 2018, NeurIPS, arXiv 1803.08884, with temporal smoothing)

def smooth_rewards(traces: np.ndarray, rewards: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """One step of the smoothed-reward trace: e_hat(t) = gamma * lam * e_hat(t-1) + e(t)."""
    return gamma * lam * np.asarray(traces, dtype=np.float64) + np.asarray(rewards, dtype=np.float64)


def inequity_aversion_rewards(rewards: np.ndarray, traces: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """r_i = e_i - alpha/(N-1) * sum_{j!=i} max(h_j - h_i, 0) - beta/(N-1) * sum_{j!=i} max(h_i - h_j, 0)
    from raw rewards ``e`` and smoothed traces ``h`` (this step's included), ``[..., agents]``; one
    agent: unchanged."""
    e = np.asarray(rewards, dtype=np.float64)
    h = np.asarray(traces, dtype=np.float64)
    n = h.shape[-1]
    if n < 2:
        return e.copy()
    diff = h[..., None, :] - h[..., :, None]  # diff[..., i, j] = h_j - h_i
    envy = np.maximum(diff, 0.0).sum(axis=-1)  # j ahead of i (the j == i term is 0)
    guilt = np.maximum(-diff, 0.0).sum(axis=-1)  # i ahead of j
    return e - (alpha * envy + beta * guilt) / (n - 1)


# ---- social influence (Jaques et al. 2019, Eqs. 1-4 and supp. 10.1)

def curriculum_weight(beta: float, step: int, curriculum_steps: int) -> float:
    """beta * min(1, step / curriculum_steps); the full ``beta`` when ``curriculum_steps`` is 0."""
    if curriculum_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, max(0, step) / curriculum_steps)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last axis (p: conditional, q: marginal in the influence reward)."""
    # xlogy keeps 0 * log 0 = 0 exactly; only q is clamped (q = 0 where p > 0 would be infinite)
    return (torch.xlogy(p, p) - torch.xlogy(p, q.clamp_min(_EPS))).sum(-1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (natural log) over the last axis; lies in [0, ln 2]."""
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def pointwise_mutual_information(p: torch.Tensor, q: torch.Tensor, outcome: torch.Tensor) -> torch.Tensor:
    """log p(outcome) / q(outcome) (Jaques et al. supp. Eq. 4) for ``p``/``q`` ``[..., A]`` (conditional
    and marginal) at the realised ``outcome`` (integer ``[...]``)."""
    idx = outcome.long().unsqueeze(-1)
    pa = p.gather(-1, idx).squeeze(-1).clamp_min(_EPS)
    qa = q.gather(-1, idx).squeeze(-1).clamp_min(_EPS)
    return pa.log() - qa.log()


def conditional_and_marginal(cf_probs: torch.Tensor, actual: torch.Tensor, policy: torch.Tensor,
                             normalised: bool = False):
    """conditional = cf_probs[actual];  marginal = sum_c policy[c] * cf_probs[c].

    ``cf_probs [..., C, J, A]``: for each of k's C counterfactual values, the predicted next-action
    distribution of each of J other agents; ``actual`` integer ``[...]``: the value k chose;
    ``policy [..., C]``: k's probability of each value (renormalised unless ``normalised``).
    """
    c, j, a = cf_probs.shape[-3:]
    lead = cf_probs.shape[:-3]
    idx = actual.long().reshape(*lead, 1, 1, 1).expand(*lead, 1, j, a)
    cond = cf_probs.gather(-3, idx).squeeze(-3)
    pol = policy if normalised else policy / policy.sum(-1, keepdim=True).clamp_min(_EPS)
    # a mixture of distributions with normalised weights is normalised: no second division
    marg = torch.bmm(pol.reshape(-1, 1, c), cf_probs.reshape(-1, c, j * a)).reshape(*lead, j, a)
    return cond, marg


def pairwise_divergence(cond: torch.Tensor, marg: torch.Tensor, divergence: str) -> torch.Tensor:
    """Per-pair divergence ``[..., J]`` for "kl" or "jsd" (for PMI: :func:`pointwise_mutual_information`);
    non-finite entries become 0 (the reference code zeroes the whole batch)."""
    fn = {"kl": kl_divergence, "jsd": js_divergence}.get(divergence)
    if fn is None:
        raise ValueError(f"pairwise_divergence handles 'kl' and 'jsd', got {divergence!r}")
    return torch.nan_to_num(fn(cond, marg), nan=0.0, posinf=0.0, neginf=0.0)


def aggregate_influence(per_pair: torch.Tensor, mask: torch.Tensor | None, clip: float) -> torch.Tensor:
    """Sum per-pair influence ``[..., J]`` over the (optionally masked) others and clip to ±clip."""
    if mask is not None:
        per_pair = per_pair * mask.to(per_pair.dtype)
    total = per_pair.sum(-1)
    return total.clamp(-clip, clip)
