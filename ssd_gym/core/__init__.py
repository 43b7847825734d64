"""The simulation core: constants, ASCII layouts, numba kernels, the batched engine."""
from .engine import Engine, ObsBatch
from .layout import Layout, MapError, parse_map

__all__ = ["Engine", "ObsBatch", "Layout", "MapError", "parse_map"]
