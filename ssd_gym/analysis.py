"""Communication analyses of recorded episodes (Jaques et al. 2019, section 5.1 and supp. Eq. 5).

All functions take integer arrays laid out ``[T, N]`` (one episode: T steps, N agents) or
``[E, T, N]`` (E episodes of equal length) and use plug-in (empirical) probabilities; entropies and
mutual information are in nats.

* :func:`speaker_consistency`: how close a speaker's symbol and its own action are to a 1:1
  correspondence. The paper's Eq. 5 sums ``1 - H / H_max`` over symbols, over actions and over agents,
  which is not bounded by 1 as printed although it is called "a normalized score in [0, 1]". Here the
  sums over symbols c and actions a are **means over the values that occur**, and the score is given
  **per agent**:

      SC_k = 0.5 * ( mean_c [1 - H(p(a^k | m^k = c)) / log |A|] + mean_a [1 - H(p(m^k | a^k = a)) / log |M|] )

  in [0, 1]: 1 when the symbol is a one-to-one function of the action, about 0 when they are
  independent (the plug-in entropy is biased low by about (K - 1) / (2 n) nats for n samples of K
  values, so a finite sample of independent symbols scores slightly above 0).
* :func:`mutual_information`: I(X; Y) of paired samples.
* :func:`instantaneous_coordination`: I(x_t^k; a_{t+1}^j) for every ordered pair of agents k != j,
  with x the symbols (symbol/action IC) or the actions (action/action IC), pooled over the steps of
  every episode (never across an episode's end); ``moments`` restricts it to chosen steps t, e.g.
  the "influential moments" where the influence reward is at least its mean. The paper reports the
  maximum over pairs: ``np.nanmax(ic)``.
"""

from __future__ import annotations

import numpy as np


def _values(name: str, x, num_values: int) -> np.ndarray:
    """``x`` as an int64 array, its values checked against ``range(num_values)``."""
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_values):
        raise ValueError(f"{name} must lie in [0, {num_values}), got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def _as_episodes(name: str, x, num_values: int) -> np.ndarray:
    """``x`` as a checked int array ``[E, T, N]`` (``[T, N]``: one episode)."""
    arr = np.asarray(x)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be laid out [T, N] or [E, T, N], got shape {arr.shape}")
    arr = _values(name, arr, num_values)
    return arr[None] if arr.ndim == 2 else arr


def _check_sizes(**sizes: int) -> None:
    for name, k in sizes.items():
        if k < 2:
            raise ValueError(f"{name} must be >= 2 (an entropy bound of log 1 = 0 normalises nothing), got {k}")


def _joint(x: np.ndarray, y: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """Empirical joint distribution of paired samples, ``[nx, ny]``."""
    counts = np.bincount(x * ny + y, minlength=nx * ny).reshape(nx, ny).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the distributions along the last axis (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(-1)


def mutual_information(x, y, num_x: int, num_y: int) -> float:
    """Plug-in mutual information I(X; Y) in nats of paired samples ``x``, ``y`` (any equal shapes)."""
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must pair up, got {x.size} and {y.size} samples")
    if x.size == 0:
        raise ValueError("mutual_information needs at least one sample")
    return _mutual_information(_values("x", x, num_x), _values("y", y, num_y), num_x, num_y)


def _mutual_information(x: np.ndarray, y: np.ndarray, num_x: int, num_y: int) -> float:
    joint = _joint(x, y, num_x, num_y)
    return float(_entropy(joint.sum(1)) + _entropy(joint.sum(0)) - _entropy(joint.ravel()))


def speaker_consistency(actions, symbols, num_actions: int, num_symbols: int) -> np.ndarray:
    """Per-agent speaker consistency ``[N]`` in [0, 1] of each agent's symbol at t against its own
    action at t (module docstring: the paper's Eq. 5 with means instead of sums)."""
    _check_sizes(num_actions=num_actions, num_symbols=num_symbols)
    a, m = _as_episodes("actions", actions, num_actions), _as_episodes("symbols", symbols, num_symbols)
    if a.shape != m.shape:
        raise ValueError(f"actions and symbols must have the same shape, got {a.shape} and {m.shape}")
    scores = []
    for k in range(a.shape[-1]):
        joint = _joint(m[..., k].ravel(), a[..., k].ravel(), num_symbols, num_actions)  # [symbols, actions]
        per_symbol, per_action = joint.sum(1), joint.sum(0)
        seen_c, seen_a = per_symbol > 0, per_action > 0
        h_a_given_c = _entropy(joint[seen_c] / per_symbol[seen_c, None]) / np.log(num_actions)
        h_c_given_a = _entropy((joint[:, seen_a] / per_action[seen_a]).T) / np.log(num_symbols)
        scores.append(0.5 * ((1 - h_a_given_c).mean() + (1 - h_c_given_a).mean()))
    return np.array(scores)


def instantaneous_coordination(signals, actions, num_signals: int, num_actions: int, moments=None) -> np.ndarray:
    """``ic[k, j] = I(signal_t^k; action_{t+1}^j)`` for k != j (NaN on the diagonal), ``[N, N]``.

    ``signals``: the symbols (symbol/action IC) or the actions themselves (action/action IC), laid
    out like ``actions``. ``moments``: optional bools laid out like ``actions`` (per speaker k) or
    without its agent axis, choosing the steps t that count; pairs (t, t+1) never cross an
    episode's end."""
    x, a = _as_episodes("signals", signals, num_signals), _as_episodes("actions", actions, num_actions)
    if x.shape != a.shape:
        raise ValueError(f"signals and actions must have the same shape, got {x.shape} and {a.shape}")
    e, t, n = a.shape
    if t < 2:
        raise ValueError(f"instantaneous coordination needs episodes of at least 2 steps, got {t}")
    keep = np.ones((e, t - 1, n), dtype=bool)
    if moments is not None:
        mom, shape = np.asarray(moments, dtype=bool), np.shape(actions)
        if mom.shape == shape[:-1]:  # the same steps for every speaker
            mom = mom[..., None]
        elif mom.shape != shape:
            raise ValueError(f"moments must be laid out like actions {shape} or without its agent axis "
                             f"{shape[:-1]}, got shape {mom.shape}")
        keep = np.broadcast_to(mom.reshape(e, t, -1)[:, : t - 1], keep.shape)
    ic = np.full((n, n), np.nan)
    for k in range(n):
        chosen = keep[..., k]
        if not chosen.any():
            continue
        for j in range(n):
            if j != k:
                ic[k, j] = _mutual_information(x[:, :-1, k][chosen], a[:, 1:, j][chosen], num_signals, num_actions)
    return ic
