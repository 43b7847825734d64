"""Numba kernels of what every game shares: reset, the agents' step (turns, moves, apples, beams)
and the observations. Each loops over a batch of B worlds; the games' own rules (regrowth, waste,
boxes) are kernels in their game modules, run after :func:`step_agents`.

These kernels take the engine's state as one plain tuple ``world`` of arrays and unpack it:

    grid, beam, occ, pos, orient, rng, t, prev_actions = world

=============  ===================  =========================================================
grid           uint8[B, H, W]       cell codes (``constants``)
beam           uint8[B, H, W]       beam drawn on each cell in this step (NO_BEAM, FIRE_BEAM...)
occ            int64[B, H, W]       index of the agent on each cell, -1 if none
pos            int64[B, N, 2]       (row, col) of each agent
orient         int64[B, N]          facing of each agent, index into ``DIRECTIONS``
rng            uint64[B]            one splitmix64 stream per world (:mod:`.rng`)
t              int64[B]             steps taken in the current episode
prev_actions   int64[B, N]          last action of each agent (``none_action`` after reset)
=============  ===================  =========================================================

The episode bookkeeping is a second tuple ``tally = (rewards, returns, reward_time_sum, stats)``:
float64[B, N] rewards of the last step, returns and sums of the (1-based) step numbers of
positive rewards, and int64[B, N, NUM_STATS] counters (``constants.ST_*``).

Why plain tuples: numba unboxes a plain tuple of arrays per call nearly as cheaply as the same
arrays passed one by one, while a NamedTuple or a jitclass costs several microseconds per call,
much of a small world's step. For the same reason the games' kernels take only the few arrays
they need.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .constants import (
    APPLE, APPLE_REWARD, BOX_WALL, CLEAN, CLEAN_BEAM, DIRECTIONS, FIRE, FIRE_BEAM, FIRE_COST,
    HIT_PENALTY, MOVE_DOWN, MOVE_RIGHT, MOVE_UP, RIVER, ST_APPLES, ST_CLEANED, ST_CLEANS, ST_FIRES,
    ST_HITS_GIVEN, ST_HITS_TAKEN, ST_REWARD_STEPS, ST_TAGGED_STEPS, TURN_CCW, TURN_CW, WALL, WASTE,
)
from .rng import randint, shuffle_prefix, uniform


@njit(cache=True, inline="always")
def facing(o):
    """(forward row, forward col, right row, right col) of orientation o; the agent's right is
    its facing turned clockwise: (dr, dc) -> (dc, -dr)."""
    fr = DIRECTIONS[o, 0]
    fc = DIRECTIONS[o, 1]
    return fr, fc, fc, -fr


@njit(cache=True, inline="always")
def blocks(cell):
    """Walls and box walls stop agents and beams."""
    return cell == WALL or cell == BOX_WALL


@njit(cache=True)
def reset_worlds(mask, base_grid, spawn_cells, spawn_count, agent_group, world):
    """Reset every world b with mask[b]: fresh grid, agents on distinct random spawn points of
    their group (``spawn_cells[g, :spawn_count[g]]`` for the agents i with agent_group[i] == g),
    uniformly random orientations."""
    grid, beam, occ, pos, orient, rng, t, prev_actions = world
    B = grid.shape[0]
    N = pos.shape[1]
    G = spawn_cells.shape[0]
    order = np.empty(spawn_cells.shape[1], dtype=np.int64)
    for b in range(B):
        if not mask[b]:
            continue
        grid[b] = base_grid
        occ[b] = -1
        beam[b] = 0
        for g in range(G):
            n_s = spawn_count[g]
            for s in range(n_s):
                order[s] = s
            shuffle_prefix(order, n_s, rng, b)  # a random order of this group's spawn points
            used = 0
            for i in range(N):
                if agent_group[i] != g:
                    continue
                s = order[used]
                used += 1
                r = spawn_cells[g, s, 0]
                c = spawn_cells[g, s, 1]
                pos[b, i, 0] = r
                pos[b, i, 1] = c
                occ[b, r, c] = i
        for i in range(N):
            orient[b, i] = randint(rng, b, 4)


@njit(cache=True)
def step_agents(actions, kinds, beam_length, world, tally):
    """Turns, moves with conflict resolution, apple consumption and beams, for every world.

    ``actions`` int64[B, N] are action indices, ``kinds[a]`` what index a does. The tally's
    rewards are overwritten with this step's rewards and its bookkeeping updated for the step
    numbered t[b] + 1; ``prev_actions`` becomes ``actions``. Conflict rules: each agent that
    moves targets one cell; a cell wanted by several movers goes to one of them uniformly at
    random; a move fails if its target holds an agent that does not leave (it stays, turns,
    fires, lost its own contest or is itself blocked) or if two agents would swap; chains and
    cycles of three or more move together. No two agents ever share a cell.
    """
    grid, beam, occ, pos, orient, rng, t, prev_actions = world
    rewards, returns, reward_time_sum, stats = tally
    B, N = actions.shape
    H = grid.shape[1]
    W = grid.shape[2]
    tr = np.empty(N, dtype=np.int64)
    tc = np.empty(N, dtype=np.int64)
    moving = np.zeros(N, dtype=np.bool_)
    prio = np.empty(N, dtype=np.float64)
    perm = np.empty(N, dtype=np.int64)
    hit = np.zeros(N, dtype=np.bool_)
    for b in range(B):
        beam[b] = 0
        for i in range(N):
            rewards[b, i] = 0.0
        # ---- 1. turns and move targets -------------------------------------------------------
        for i in range(N):
            k = kinds[actions[b, i]]
            r = pos[b, i, 0]
            c = pos[b, i, 1]
            tr[i] = r
            tc[i] = c
            moving[i] = False
            o = orient[b, i]
            if k == TURN_CW:
                orient[b, i] = (o + 1) % 4
            elif k == TURN_CCW:
                orient[b, i] = (o + 3) % 4
            elif k <= MOVE_DOWN:  # MOVE_LEFT/RIGHT/UP/DOWN: egocentric, rotated by facing
                fr, fc, rr, rc = facing(o)
                if k == MOVE_UP:
                    dr, dc = fr, fc
                elif k == MOVE_DOWN:
                    dr, dc = -fr, -fc
                elif k == MOVE_RIGHT:
                    dr, dc = rr, rc
                else:
                    dr, dc = -rr, -rc
                nr = r + dr
                nc = c + dc
                if 0 <= nr < H and 0 <= nc < W and not blocks(grid[b, nr, nc]):
                    tr[i] = nr
                    tc[i] = nc
                    moving[i] = True
        # ---- 2. random tie-break among movers wanting the same cell ---------------------------
        for i in range(N):
            prio[i] = uniform(rng, b)
        for i in range(N):
            if not moving[i]:
                continue
            for j in range(N):
                if j != i and moving[j] and tr[j] == tr[i] and tc[j] == tc[i]:
                    if prio[j] > prio[i] or (prio[j] == prio[i] and j < i):
                        moving[i] = False
                        break
        # Losers are reset only after every contest is decided.
        for i in range(N):
            if not moving[i]:
                tr[i] = pos[b, i, 0]
                tc[i] = pos[b, i, 1]
        # ---- 3. propagate failures: blocked by a non-mover, or a swap -------------------------
        changed = True
        while changed:
            changed = False
            for i in range(N):
                if not moving[i]:
                    continue
                j = occ[b, tr[i], tc[i]]
                if j < 0:
                    continue
                if (not moving[j]) or (tr[j] == pos[b, i, 0] and tc[j] == pos[b, i, 1]):
                    moving[i] = False
                    tr[i] = pos[b, i, 0]
                    tc[i] = pos[b, i, 1]
                    changed = True
        # ---- 4. apply the surviving moves (chains and cycles alike) ---------------------------
        for i in range(N):
            if moving[i]:
                occ[b, pos[b, i, 0], pos[b, i, 1]] = -1
        for i in range(N):
            if moving[i]:
                pos[b, i, 0] = tr[i]
                pos[b, i, 1] = tc[i]
                occ[b, tr[i], tc[i]] = i
        # ---- 5. consumption, in agent order ---------------------------------------------------
        for i in range(N):
            r = pos[b, i, 0]
            c = pos[b, i, 1]
            if grid[b, r, c] == APPLE:
                grid[b, r, c] = 0
                rewards[b, i] += APPLE_REWARD
                stats[b, i, ST_APPLES] += 1
        # ---- 6. beams, shooters in random order -----------------------------------------------
        for i in range(N):
            perm[i] = i
        shuffle_prefix(perm, N, rng, b)
        for q in range(N):
            i = perm[q]
            k = kinds[actions[b, i]]
            if k != FIRE and k != CLEAN:
                continue
            if k == FIRE:
                rewards[b, i] += FIRE_COST
                stats[b, i, ST_FIRES] += 1
                btype = FIRE_BEAM
            else:
                stats[b, i, ST_CLEANS] += 1
                btype = CLEAN_BEAM
            fr, fc, rr, rc = facing(orient[b, i])
            pr = pos[b, i, 0]
            pc = pos[b, i, 1]
            for lane in range(-1, 2):
                # centre lane: 1..L ahead; side lanes start beside the shooter: 0..L-1 ahead
                k0 = 1 if lane == 0 else 0
                for step in range(k0, k0 + beam_length):
                    r = pr + lane * rr + step * fr
                    c = pc + lane * rc + step * fc
                    if r < 0 or r >= H or c < 0 or c >= W or blocks(grid[b, r, c]):
                        break
                    beam[b, r, c] = btype
                    was_waste = grid[b, r, c] == WASTE
                    if btype == CLEAN_BEAM and was_waste:
                        grid[b, r, c] = RIVER
                        stats[b, i, ST_CLEANED] += 1
                    j = occ[b, r, c]
                    if j >= 0:
                        if btype == FIRE_BEAM:
                            rewards[b, j] += HIT_PENALTY
                            hit[j] = True
                            stats[b, j, ST_HITS_TAKEN] += 1
                            stats[b, i, ST_HITS_GIVEN] += 1
                        break
                    if btype == CLEAN_BEAM and was_waste:
                        break
        # ---- 7. bookkeeping ------------------------------------------------------------------
        for i in range(N):
            r_i = rewards[b, i]
            returns[b, i] += r_i
            if r_i > 0.0:
                stats[b, i, ST_REWARD_STEPS] += 1
                reward_time_sum[b, i] += t[b] + 1
            prev_actions[b, i] = actions[b, i]
            if hit[i]:
                stats[b, i, ST_TAGGED_STEPS] += 1
                hit[i] = False


@njit(cache=True)
def observe(world, palette, radius, draw_beams, none_action, out):
    """Egocentric views and the visible-action channel of every agent of every world, written
    into ``out = (rgb, own_prev, others_prev, others_visible)`` (see ``engine.ObsBatch``).
    ``palette = (cell_colours, beam_colours, agent_colours)``, uint8[k, 3] each (passed rather
    than read as frozen globals, which numba compiles to markedly slower code here).

    In the view the agent always faces up: view[radius - f, radius + s] shows the cell f ahead
    and s to the right of the agent. Cells outside the map are black. Each world is first
    painted once into a black-padded colour image; views are then gathered from it. Agent j is
    visible to i when it is inside i's view window; i sees j's previous action only then.
    """
    grid, beam, occ, pos, orient, rng, t, prev_actions = world
    cell_colours, beam_colours, agent_colours = palette
    rgb, own_prev, others_prev, others_visible = out
    B = grid.shape[0]
    N = pos.shape[1]
    H = grid.shape[1]
    W = grid.shape[2]
    V = 2 * radius + 1
    P = radius
    img = np.zeros((H + 2 * P, W + 2 * P, 3), dtype=np.uint8)
    for b in range(B):
        for r in range(H):
            for c in range(W):
                a = occ[b, r, c]
                if a >= 0:
                    col = agent_colours[a]
                elif draw_beams and beam[b, r, c] != 0:
                    col = beam_colours[beam[b, r, c]]
                else:
                    col = cell_colours[grid[b, r, c]]
                img[r + P, c + P, 0] = col[0]
                img[r + P, c + P, 1] = col[1]
                img[r + P, c + P, 2] = col[2]
        for i in range(N):
            fr, fc, rr, rc = facing(orient[b, i])
            # padded-image coordinates of view cell (0, 0), and the steps along a view row/col
            r0 = pos[b, i, 0] + P + radius * fr - radius * rr
            c0 = pos[b, i, 1] + P + radius * fc - radius * rc
            for vi in range(V):
                r = r0 - vi * fr
                c = c0 - vi * fc
                for vj in range(V):
                    rgb[b, i, vi, vj, 0] = img[r, c, 0]
                    rgb[b, i, vi, vj, 1] = img[r, c, 1]
                    rgb[b, i, vi, vj, 2] = img[r, c, 2]
                    r += rr
                    c += rc
            own_prev[b, i] = prev_actions[b, i]
            pr = pos[b, i, 0]
            pc = pos[b, i, 1]
            q = 0
            for j in range(N):
                if j == i:
                    continue
                dr = abs(pos[b, j, 0] - pr)
                dc = abs(pos[b, j, 1] - pc)
                vis = dr <= radius and dc <= radius
                others_visible[b, i, q] = 1 if vis else 0
                others_prev[b, i, q] = prev_actions[b, j] if vis else none_action
                q += 1
