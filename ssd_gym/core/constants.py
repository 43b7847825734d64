"""Cell codes, action kinds, orientations, rewards, statistics and colours: the vocabulary the
engine and every game share, defined once.

The numba kernels read these module globals directly: numba freezes global scalars and arrays
into the compiled code, so naming a constant costs nothing at run time. Numba's on-disk cache
checks only the kernel's own source file, so after changing a value here (or a helper in
``rng``/``kernels`` that game kernels inline) delete the ``*.nbi``/``*.nbc`` files under the
``__pycache__`` folders of ``core`` and ``games``.
"""
from __future__ import annotations

import numpy as np

# --- cell codes stored in the world grid -------------------------------------------------------
EMPTY = 0
WALL = 1       # impassable, stops beams
APPLE = 2      # an apple is present (walkable, eaten on entry)
WASTE = 3      # Cleanup pollution on a river cell (walkable; blocks the cleaning beam)
RIVER = 4      # Cleanup clean river cell (walkable, can receive waste)
STREAM = 5     # Cleanup stream (walkable decoration, never receives waste)
BOX_WALL = 6   # Box Trapped removable wall (impassable, stops beams, removed by OPEN_BOX)
NUM_CELL_TYPES = 7

# --- action kinds (what an action index does); each game maps its indices onto these ---------
MOVE_LEFT = 0
MOVE_RIGHT = 1
MOVE_UP = 2        # forward
MOVE_DOWN = 3      # backward
STAY = 4
TURN_CW = 5
TURN_CCW = 6
FIRE = 7           # fining beam: -1 to the shooter, -50 to each agent hit
CLEAN = 8          # cleaning beam: first waste cell per lane becomes river
OPEN_BOX = 9       # Box Trapped: removes the box walls (influencer only)

ACTION_KIND_NAMES = (
    "MOVE_LEFT", "MOVE_RIGHT", "MOVE_UP", "MOVE_DOWN", "STAY",
    "TURN_CLOCKWISE", "TURN_COUNTERCLOCKWISE", "FIRE", "CLEAN", "OPEN_BOX",
)

# --- orientations, clockwise order so that turning is +-1 mod 4 ------------------------------
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
ORIENTATION_NAMES = ("UP", "RIGHT", "DOWN", "LEFT")
# (d_row, d_col) of each facing direction; the agent's right is its facing turned clockwise
DIRECTIONS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)

# --- beams ------------------------------------------------------------------------------------
NO_BEAM = 0
FIRE_BEAM = 1
CLEAN_BEAM = 2

# --- rewards (reference values) ---------------------------------------------------------------
APPLE_REWARD = 1.0    # to the agent that steps onto an apple
FIRE_COST = -1.0      # to the agent that fires the fining beam
HIT_PENALTY = -50.0   # to each agent the fining beam hits

# --- per-agent episode counters: indices into the engine's int64[B, N, NUM_STATS] ``stats`` ------
ST_APPLES = 0        # apples eaten
ST_FIRES = 1         # fining beams fired
ST_HITS_TAKEN = 2    # times hit by a fining beam
ST_HITS_GIVEN = 3    # agents hit with own fining beams
ST_CLEANS = 4        # cleaning beams fired
ST_CLEANED = 5       # waste cells cleaned
ST_TAGGED_STEPS = 6  # steps in which the agent was hit at least once
ST_REWARD_STEPS = 7  # steps with a positive reward
NUM_STATS = 8

# --- colours ----------------------------------------------------------------------------------
# Terrain colours follow the reference implementation (see README's differences table).
CELL_COLOURS = np.array(
    [
        (0, 0, 0),        # EMPTY
        (180, 180, 180),  # WALL
        (0, 255, 0),      # APPLE
        (99, 156, 194),   # WASTE
        (113, 75, 24),    # RIVER
        (113, 75, 24),    # STREAM (same as river, as in the reference)
        (120, 120, 200),  # BOX_WALL
    ],
    dtype=np.uint8,
)
BEAM_COLOURS = np.array([(0, 0, 0), (255, 255, 0), (100, 255, 255)], dtype=np.uint8)

# The reference's nine agent colours, except agent 5 whose colour equalled the cleaning beam.
_BASE_AGENT_COLOURS = [
    (0, 0, 255), (2, 81, 154), (204, 0, 204), (216, 30, 54), (254, 151, 0),
    (255, 105, 180), (99, 99, 255), (250, 204, 255), (238, 223, 16), (128, 0, 64),
]


def agent_colours(num_agents: int) -> np.ndarray:
    """Distinct RGB colours for ``num_agents`` agents, none equal to a terrain or beam colour."""
    reserved = {tuple(int(v) for v in c) for c in CELL_COLOURS} | {
        tuple(int(v) for v in c) for c in BEAM_COLOURS
    }
    colours: list[tuple[int, int, int]] = []
    for c in _BASE_AGENT_COLOURS:
        if len(colours) == num_agents:
            break
        colours.append(c)
    # Beyond the hand-picked palette walk the hue circle by the golden ratio.
    k = 0
    while len(colours) < num_agents:
        h = (k * 0.6180339887) % 1.0
        s = 0.55 + 0.4 * ((k * 0.37) % 1.0)
        v = 0.6 + 0.4 * ((k * 0.71) % 1.0)
        rgb = _hsv_to_rgb(h, s, v)
        k += 1
        if rgb not in reserved and rgb not in colours:
            colours.append(rgb)
    return np.array(colours, dtype=np.uint8).reshape(num_agents, 3)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(round(r * 255)), int(round(g * 255)), int(round(b * 255)))
