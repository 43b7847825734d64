"""The simulation core: what every game shares, and nothing that only one game needs.

* ``constants``: cell codes, action kinds, ``DIRECTIONS``, rewards (``APPLE_REWARD``,
  ``FIRE_COST``, ``HIT_PENALTY``), per-agent counters (``ST_*``) and colours, defined once.
* ``layout``: ASCII maps parsed into the static arrays a game's rules iterate over.
* ``rng``: one splitmix64 stream per world, used by every kernel (the games' too).
* ``kernels``: numba kernels of the shared mechanics: reset, the agents' step (turns, moves and
  their conflicts, apples, beams) and the egocentric observations; the state layout they take.
* ``engine``: ``Engine``, B worlds of one game in arrays; a step is the shared kernel, then the
  game's ``apply_rules`` (see :mod:`ssd_gym.games`).
"""
from .engine import Engine, ObsBatch
from .layout import Layout, MapError, parse_map

__all__ = ["Engine", "ObsBatch", "Layout", "MapError", "parse_map"]
