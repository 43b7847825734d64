"""Social-outcome metrics of an episode (Perolat et al. 2017; Jaques et al. 2019, supp. Eq. 6).

Definitions used throughout ssd-gym, for per-agent episode returns R_1..R_N over T steps:

* collective return: sum_i R_i.
* Gini: G = sum_i sum_j |R_i - R_j| / (2 N sum_i |R_i|). With non-negative returns this is the
  paper's Eq. 6; using |R_i| in the denominator keeps G in [0, 1] when fines make returns
  negative. G = 0 when all returns are equal (including all zero).
* equality: 1 - G.  equality-weighted return: R * (1 - G) with R the collective return.
* sustainability: mean over agents of the average time step at which the agent received a
  positive reward; an agent that never did counts as T (Perolat's S, never-rewarded agents at
  the episode's end rather than dropped, so that S is always defined).
* peace: (N*T - number of (agent, step) pairs in which the agent was hit by a fining beam) / T.
  The SSD games fine instead of removing agents, so "tagged" means "hit this step"; peace is N
  when nobody is ever hit.
"""
from __future__ import annotations

import numpy as np


def gini(returns) -> float:
    """Gini coefficient of per-agent returns (0 = perfect equality), see module docstring."""
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size == 0:
        raise ValueError("gini needs at least one return")
    denom = 2.0 * r.size * np.abs(r).sum()
    if denom == 0.0:
        return 0.0
    return float(np.abs(r[:, None] - r[None, :]).sum() / denom)


def equality(returns) -> float:
    """1 - Gini."""
    return 1.0 - gini(returns)


def equality_weighted_return(returns) -> float:
    """Collective return times (1 - Gini): the paper's R*(1-G)."""
    r = np.asarray(returns, dtype=np.float64)
    return float(r.sum() * (1.0 - gini(r)))


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
        "equality_weighted_return": float(r.sum() * (1.0 - g)),
        "sustainability": sustainability(reward_time_sum, reward_count, episode_length),
        "peace": peace(tagged_steps, episode_length),
    }
