"""Social-outcome metrics of an episode (Perolat et al. 2017; Jaques et al. 2019, supp. Eq. 6).

Definitions used throughout ssd-gym, for per-agent episode returns R_1..R_N over T steps:

* collective return: R = sum_i R_i.
* Gini: G = min(1, sum_i sum_j |R_i - R_j| / (2 N |R|)), and G = 0 when all returns are equal
  (all zero included). For non-negative returns this is exactly the paper's Eq. 6,
  sum_ij |R_i - R_j| / (2 N sum_i R_i), which never exceeds (N - 1) / N, so the clip never acts.
  Eq. 6 assumes R_i >= 0; fines make returns negative. Dividing by |R|, a function of the total
  alone, keeps G sound for any sign: for a fixed total, moving return from a poorer agent to a
  richer one never lowers G (the numerator grows, the denominator stays). (Dividing by
  sum_i |R_i| instead, as ssd-gym did before, breaks this: [20, -5, -5] scored as more equal than
  [10, 0, 0].) The clip keeps G in [0, 1] when mixed signs give a total near zero.
* equality: 1 - G, in [0, 1].
* equality-weighted return: R - |R| G, i.e. R * (1 - G) (the paper's) when R >= 0 and R * (1 + G)
  when R < 0. Inequality always costs: for a fixed total the score never rises as the split
  grows more unequal. (R * (1 - G) with R < 0 would reward inequality: [-30, -30, -30] would
  score -90 and [-90, 0, 0] -30.)
* sustainability: mean over agents of the average time step at which the agent received a
  positive reward; an agent that never did counts as T (Perolat's S, never-rewarded agents at
  the episode's end rather than dropped, so that S is always defined).
* peace: (N*T - number of (agent, step) pairs in which the agent was hit by a fining beam) / T.
  The SSD games fine instead of removing agents, so "tagged" means "hit this step"; peace is N
  when nobody is ever hit.
"""
from __future__ import annotations

import numpy as np

#: The info key under which every face puts these metrics on an episode's last step. ``"episode"``
#: is left to the ecosystem: SB3's Monitor/VecMonitor and Gymnasium's RecordEpisodeStatistics own it.
INFO_KEY = "episode_metrics"


def gini(returns) -> float:
    """Gini coefficient of per-agent returns, in [0, 1] (0 = perfect equality); sound for returns of
    any sign (module docstring)."""
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size == 0:
        raise ValueError("gini needs at least one return")
    spread = np.abs(r[:, None] - r[None, :]).sum()
    if spread == 0.0:
        return 0.0
    total = abs(r.sum())
    return 1.0 if total == 0.0 else float(min(1.0, spread / (2.0 * r.size * total)))


def equality(returns) -> float:
    """1 - Gini."""
    return 1.0 - gini(returns)


def equality_weighted_return(returns) -> float:
    """R - |R| * Gini: the paper's R*(1-G) for R >= 0, R*(1+G) for R < 0 (module docstring)."""
    r = np.asarray(returns, dtype=np.float64)
    total = float(r.sum())
    return total - abs(total) * gini(r)


def sustainability(reward_time_sum, reward_count, episode_length: int) -> float:
    """Mean over agents of the average step of positive rewards (T for never-rewarded agents)."""
    s = np.asarray(reward_time_sum, dtype=np.float64)
    n = np.asarray(reward_count, dtype=np.float64)
    per_agent = np.where(n > 0, s / np.maximum(n, 1), float(episode_length))
    return float(per_agent.mean())


def peace(tagged_steps, episode_length: int) -> float:
    """(N*T - tagged agent-steps) / T."""
    tagged = np.asarray(tagged_steps, dtype=np.float64)
    if episode_length <= 0:
        return float(tagged.size)
    return float((tagged.size * episode_length - tagged.sum()) / episode_length)


def social_metrics(returns, episode_length: int, reward_time_sum, reward_count,
                   tagged_steps) -> dict:
    """All of the above for one episode, as a plain dict (JSON-friendly)."""
    r = np.asarray(returns, dtype=np.float64)
    g = gini(r)
    return {
        "episode_length": int(episode_length),
        "returns": r.tolist(),
        "collective_return": float(r.sum()),
        "gini": g,
        "equality": 1.0 - g,
        "equality_weighted_return": equality_weighted_return(r),
        "sustainability": sustainability(reward_time_sum, reward_count, episode_length),
        "peace": peace(tagged_steps, episode_length),
    }
