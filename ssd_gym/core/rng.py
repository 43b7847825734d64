"""Per-world random streams for the numba kernels: one splitmix64 state per world (``rng[b]``).

A world draws only from its own stream, so its trajectory depends on its seed alone, whatever the
batch size. The engine seeds ``rng[b]`` from world b's ``numpy.random.Generator`` at each reset.
Every kernel that needs randomness, the shared step and the games' rules alike, uses these.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def next_u64(rng, b):
    """splitmix64: advance world b's stream and return 64 random bits."""
    rng[b] += _GOLDEN
    z = rng[b]
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def uniform(rng, b):
    """A float in [0, 1) with 53 random bits."""
    return float(next_u64(rng, b) >> _S11) * _INV53


@njit(cache=True, inline="always")
def randint(rng, b, n):
    """An integer in [0, n)."""
    return min(int(uniform(rng, b) * n), n - 1)


@njit(cache=True, inline="always")
def shuffle_prefix(arr, n, rng, b):
    """Fisher-Yates shuffle of arr[:n] in place with world b's stream."""
    for s in range(n - 1, 0, -1):
        j = randint(rng, b, s + 1)
        tmp = arr[s]
        arr[s] = arr[j]
        arr[j] = tmp
