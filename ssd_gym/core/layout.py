"""ASCII maps as data: parsing and validation into the static arrays the engine uses.

Map characters (one per cell, all rows the same length):

=====  ==================================================================
char   meaning
=====  ==================================================================
``@``  wall (impassable, stops beams)
`` ``  empty floor
``P``  spawn point (floor)
``T``  spawn point of the trapped agent (Box Trapped; floor)
``A``  apple cell that starts with an apple (Harvest, Box Trapped)
``B``  apple cell that starts empty (Cleanup's orchard)
``H``  river cell that starts polluted with waste (Cleanup)
``R``  clean river cell (Cleanup)
``S``  stream cell (Cleanup; never receives waste)
``X``  removable box wall (Box Trapped)
=====  ==================================================================
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import constants as C

CHAR_TO_CELL = {
    "@": C.WALL,
    " ": C.EMPTY,
    "P": C.EMPTY,
    "T": C.EMPTY,
    "A": C.APPLE,
    "B": C.EMPTY,
    "H": C.WASTE,
    "R": C.RIVER,
    "S": C.STREAM,
    "X": C.BOX_WALL,
}
MAP_CHARACTERS = frozenset(CHAR_TO_CELL)


class MapError(ValueError):
    """A malformed ASCII map."""


@dataclass(frozen=True)
class Layout:
    """The static part of a map: initial grid and the cell lists the rules iterate over."""

    rows: tuple[str, ...]
    grid: np.ndarray              # uint8[H, W] initial cell codes
    spawn_points: np.ndarray      # int64[S, 2] ``P`` cells
    trapped_spawn_points: np.ndarray  # int64[S', 2] ``T`` cells
    apple_cells: np.ndarray       # int64[K, 2] ``A`` and ``B`` cells (where apples can grow)
    waste_cells: np.ndarray       # int64[M, 2] ``H`` and ``R`` cells (potential waste area)
    box_cells: np.ndarray         # int64[X, 2] ``X`` cells

    @property
    def height(self) -> int:
        return self.grid.shape[0]

    @property
    def width(self) -> int:
        return self.grid.shape[1]

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"Layout({self.height}x{self.width}, spawn={len(self.spawn_points)})"


def _cells(rows: list[str], chars: str) -> np.ndarray:
    out = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch in chars]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def parse_map(text: str | list[str] | tuple[str, ...], allowed: str | None = None) -> Layout:
    """Parse an ASCII map (a string with one row per line, or a list of row strings).

    ``allowed`` restricts the characters a game accepts (default: all of ``MAP_CHARACTERS``).
    Raises :class:`MapError` naming the problem on malformed input.
    """
    if isinstance(text, str):
        rows = text.split("\n")
        # Drop leading/trailing blank lines so that triple-quoted maps work.
        while rows and rows[0].strip() == "":
            rows.pop(0)
        while rows and rows[-1].strip() == "":
            rows.pop()
    elif isinstance(text, (list, tuple)) and all(isinstance(r, str) for r in text):
        rows = list(text)
    else:
        raise MapError(f"a map must be a string or a list of row strings, got {type(text).__name__}")
    if not rows:
        raise MapError("the map is empty")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        bad = [i for i, r in enumerate(rows) if len(r) != len(rows[0])]
        raise MapError(
            f"all map rows must have the same length; row 0 has {len(rows[0])} characters "
            f"but rows {bad[:5]} differ"
        )
    if len(rows[0]) == 0:
        raise MapError("the map has zero columns")
    allowed_set = MAP_CHARACTERS if allowed is None else frozenset(allowed)
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch not in allowed_set:
                raise MapError(
                    f"unknown map character {ch!r} at row {r}, column {c}; "
                    f"allowed characters are {''.join(sorted(allowed_set))!r}"
                )
    grid = np.array([[CHAR_TO_CELL[ch] for ch in row] for row in rows], dtype=np.uint8)
    spawn = _cells(rows, "P")
    if len(spawn) == 0:
        raise MapError("the map has no spawn points ('P')")
    return Layout(
        rows=tuple(rows),
        grid=grid,
        spawn_points=spawn,
        trapped_spawn_points=_cells(rows, "T"),
        apple_cells=_cells(rows, "AB"),
        waste_cells=_cells(rows, "HR"),
        box_cells=_cells(rows, "X"),
    )
