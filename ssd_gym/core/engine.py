"""The simulation engine: B worlds of one game stepped together in arrays.

A step is the shared step of every game (:func:`.kernels.step_agents`: turns, moves, apples,
beams) followed by the game's own rules (``game.apply_rules``: regrowth, waste, boxes), both
numba kernels over all worlds. The single PettingZoo env is this engine with B = 1 and the SB3
VecEnv is the same engine with B > 1, so the two cannot drift apart. Randomness: each world owns a splitmix64 stream whose
state is drawn, at every reset of that world, from the world's ``numpy.random.Generator``
(seeded by ``reset(seed=...)``); nothing touches numpy's global RNG.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium.utils import seeding

from . import constants as C
from . import kernels as K


@dataclass
class ObsBatch:
    """Observation arrays for all agents of all worlds (fresh arrays every step)."""

    rgb: np.ndarray            # uint8[B, N, V, V, 3]
    prev_action: np.ndarray    # int64[B, N]
    others_prev_actions: np.ndarray  # int64[B, N, N-1]
    others_visible: np.ndarray  # int8[B, N, N-1]


class Engine:
    """Batched state and step of one game.

    The state arrays are attributes (``grid``, ``pos``, ``orient``...; shapes in
    :mod:`.kernels`), changed in place only; a game keeps its own per-world arrays here too
    (``Game.init_rule_state``). ``step(actions)`` takes int64[B, N] action indices (already validated) and returns the
    float64[B, N] rewards of the step. Episode bookkeeping (returns, statistics) lives here too.
    """

    def __init__(self, game, num_worlds: int = 1):
        if isinstance(num_worlds, bool) or not isinstance(num_worlds, (int, np.integer)) or num_worlds < 1:
            raise ValueError(f"num_worlds must be a positive integer, got {num_worlds!r}")
        self.game = game
        self.num_worlds = B = int(num_worlds)
        self.num_agents = N = game.num_agents
        lay = game.layout
        H, W = lay.height, lay.width
        self.kinds = np.array(game.action_kinds, dtype=np.int64)
        self.none_action = len(game.action_kinds)
        self.view_size = 2 * game.view_radius + 1
        self.agent_colours = C.agent_colours(N)
        self.palette = (C.CELL_COLOURS, C.BEAM_COLOURS, self.agent_colours)
        groups, agent_group = game.spawn_groups()
        max_s = max(len(g) for g in groups)
        self._spawn_cells = np.zeros((len(groups), max_s, 2), dtype=np.int64)
        self._spawn_count = np.array([len(g) for g in groups], dtype=np.int64)
        for g, cells in enumerate(groups):
            self._spawn_cells[g, : len(cells)] = cells
        self._agent_group = np.asarray(agent_group, dtype=np.int64)

        self.grid = np.zeros((B, H, W), dtype=np.uint8)
        self.beam = np.zeros((B, H, W), dtype=np.uint8)
        self.occ = -np.ones((B, H, W), dtype=np.int64)
        self.pos = np.zeros((B, N, 2), dtype=np.int64)
        self.orient = np.zeros((B, N), dtype=np.int64)
        self.rng = np.zeros(B, dtype=np.uint64)
        self.t = np.zeros(B, dtype=np.int64)
        self.prev_actions = np.full((B, N), self.none_action, dtype=np.int64)
        self.rewards = np.zeros((B, N), dtype=np.float64)
        self.returns = np.zeros((B, N), dtype=np.float64)
        self.reward_time_sum = np.zeros((B, N), dtype=np.float64)
        self.stats = np.zeros((B, N, C.NUM_STATS), dtype=np.int64)
        # The same arrays grouped as the kernels take them (see :mod:`.kernels`). They are only
        # ever changed in place, so the tuples and the attributes stay one state.
        self.world = (self.grid, self.beam, self.occ, self.pos, self.orient, self.rng, self.t,
                      self.prev_actions)
        self.tally = (self.rewards, self.returns, self.reward_time_sum, self.stats)
        # one Generator per world, created on first use (seed_world or the first reset)
        self.np_randoms: list[np.random.Generator | None] = [None] * B
        game.init_rule_state(self)

    # ---- seeding and reset -----------------------------------------------------------------
    def seed_world(self, b: int, seed: int | None) -> None:
        """Re-seed world b's generator (``seed=None`` draws fresh entropy)."""
        self.np_randoms[b], _ = seeding.np_random(seed)

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start a new episode in the worlds selected by the boolean ``mask`` (default: all)."""
        if mask is None:
            mask = np.ones(self.num_worlds, dtype=np.bool_)
        for b in np.flatnonzero(mask):
            if self.np_randoms[b] is None:
                self.np_randoms[b], _ = seeding.np_random(None)
            self.rng[b] = self.np_randoms[b].integers(0, 2**64, dtype=np.uint64)
        K.reset_worlds(mask, self.game.layout.grid, self._spawn_cells, self._spawn_count,
                       self._agent_group, self.world)
        self.prev_actions[mask] = self.none_action
        self.t[mask] = 0
        for a in self.tally:
            a[mask] = 0
        self.game.reset_rule_state(self, mask)

    def set_agents(self, b: int, positions, orientations=None) -> None:
        """Place world b's agents by hand (scripted scenarios and tests).

        ``positions``: N (row, col) cells, distinct, inside the map and not walls;
        ``orientations``: N values in 0..3 (UP, RIGHT, DOWN, LEFT), default: unchanged.
        """
        N = self.num_agents
        pos = np.asarray(positions, dtype=np.int64)
        if pos.shape != (N, 2):
            raise ValueError(f"positions must be {N} (row, col) pairs, got shape {pos.shape}")
        H, W = self.grid.shape[1:]
        for i, (r, c) in enumerate(pos):
            if not (0 <= r < H and 0 <= c < W):
                raise ValueError(f"agent {i} position {(int(r), int(c))} is outside the {H}x{W} map")
            if self.grid[b, r, c] in (C.WALL, C.BOX_WALL):
                raise ValueError(f"agent {i} position {(int(r), int(c))} is a wall")
        if len({(int(r), int(c)) for r, c in pos}) != N:
            raise ValueError("two agents cannot share a cell")
        if orientations is not None:
            o = np.asarray(orientations, dtype=np.int64)
            if o.shape != (N,) or o.min() < 0 or o.max() > 3:
                raise ValueError(f"orientations must be {N} values in 0..3, got {orientations!r}")
            self.orient[b] = o
        self.occ[b] = -1
        self.pos[b] = pos
        for i, (r, c) in enumerate(pos):
            self.occ[b, r, c] = i

    # ---- stepping ----------------------------------------------------------------------------
    def step(self, actions: np.ndarray) -> np.ndarray:
        """Advance every world one step with int64[B, N] actions; return the rewards."""
        self.game.before_moves(self, actions)
        K.step_agents(actions, self.kinds, self.game.beam_length, self.world, self.tally)
        self.game.apply_rules(self, actions)
        self.t += 1
        return self.rewards

    def observe(self) -> ObsBatch:
        """Fresh observation arrays of every agent in every world."""
        B, N, V = self.num_worlds, self.num_agents, self.view_size
        obs = ObsBatch(
            rgb=np.empty((B, N, V, V, 3), dtype=np.uint8),
            prev_action=np.empty((B, N), dtype=np.int64),
            others_prev_actions=np.empty((B, N, N - 1), dtype=np.int64),
            others_visible=np.empty((B, N, N - 1), dtype=np.int8),
        )
        K.observe(self.world, self.palette, self.game.view_radius, self.game.beams_visible,
                  self.none_action, (obs.rgb, obs.prev_action, obs.others_prev_actions,
                                     obs.others_visible))
        self.game.edit_observation(self, obs)
        return obs

    def truncated(self) -> np.ndarray:
        """bool[B]: worlds whose episode reached ``max_cycles``."""
        return self.t >= self.game.max_cycles

    # ---- metrics ---------------------------------------------------------------------------
    def episode_metrics(self, b: int) -> dict:
        """Social-outcome metrics of world b's episode so far (see :mod:`ssd_gym.metrics`)."""
        from .. import metrics

        T = int(self.t[b])
        st = self.stats[b]
        out = metrics.social_metrics(
            self.returns[b], episode_length=T, reward_time_sum=self.reward_time_sum[b],
            reward_count=st[:, C.ST_REWARD_STEPS], tagged_steps=st[:, C.ST_TAGGED_STEPS])
        out.update({
            "apples_eaten": st[:, C.ST_APPLES].tolist(),
            "beams_fired": st[:, C.ST_FIRES].tolist(),
            "hits_taken": st[:, C.ST_HITS_TAKEN].tolist(),
            "hits_given": st[:, C.ST_HITS_GIVEN].tolist(),
            "clean_beams": st[:, C.ST_CLEANS].tolist(),
            "waste_cleaned": st[:, C.ST_CLEANED].tolist(),
        })
        out.update(self.game.episode_metrics(self, b))
        return out

    # ---- rendering -------------------------------------------------------------------------
    def world_image(self, b: int = 0, show_beams: bool = True) -> np.ndarray:
        """uint8[H, W, 3] picture of world b at one pixel per cell (agents on top)."""
        img = C.CELL_COLOURS[self.grid[b]]
        if show_beams:
            mask = self.beam[b] != C.NO_BEAM
            img[mask] = C.BEAM_COLOURS[self.beam[b][mask]]
        for i in range(self.num_agents):
            r, c = self.pos[b, i]
            img[r, c] = self.agent_colours[i]
        return img
