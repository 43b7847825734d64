"""Numba kernels of the simulation engine. Every kernel loops over a batch of B worlds.

The arrays are the engine's state (see :mod:`ssd_gym.core.engine`); the kernels know nothing of
PettingZoo or Gymnasium. Randomness comes from one splitmix64 stream per world (``rng[b]``), so a
world's trajectory depends only on its own seed, whatever the batch size.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .constants import (
    APPLE, BOX_WALL, CLEAN, CLEAN_BEAM, FIRE, FIRE_BEAM, MOVE_DOWN, MOVE_LEFT, MOVE_RIGHT,
    MOVE_UP, OPEN_BOX, RIVER, STAY, TURN_CCW, TURN_CW, WALL, WASTE,
)

# Indices into the per-agent integer statistics array stats[B, N, NUM_STATS].
ST_APPLES = 0
ST_FIRES = 1
ST_HITS_TAKEN = 2
ST_HITS_GIVEN = 3
ST_CLEANS = 4
ST_CLEANED = 5
NUM_STATS = 6

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0

# facing vectors, clockwise order UP, RIGHT, DOWN, LEFT
_DR = np.array([-1, 0, 1, 0], dtype=np.int64)
_DC = np.array([0, 1, 0, -1], dtype=np.int64)


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


@njit(cache=True, inline="always")
def _blocks(cell):
    return cell == WALL or cell == BOX_WALL


@njit(cache=True)
def reset_worlds(mask, base_grid, spawn_cells, spawn_count, agent_group, grid, pos, orient, occ,
                 beam, rng):
    """Reset every world b with mask[b]: fresh grid, agents on distinct random spawn points of
    their group, uniformly random orientations."""
    B = grid.shape[0]
    N = pos.shape[1]
    G = spawn_cells.shape[0]
    max_s = spawn_cells.shape[1]
    order = np.empty(max_s, dtype=np.int64)
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
def step_agents(actions, kinds, grid, pos, orient, occ, beam, rng, rewards, stats,
                beam_length, t, prev_actions, returns, tagged_steps, reward_count,
                reward_time_sum):
    """Turns, moves with conflict resolution, apple consumption and beams, for every world.

    ``rewards[B, N]`` is overwritten with this step's rewards; the episode bookkeeping
    (returns, steps in which each agent was hit, count and time of positive rewards, previous
    actions) is updated here too, for the step numbered t[b] + 1. Conflict rules: each agent that
    moves targets one cell; a cell wanted by several movers goes to one of them uniformly at
    random; a move fails if its target holds an agent that does not leave (it stays, turns,
    fires, lost its own contest or is itself blocked) or if two agents would swap; chains and
    cycles of three or more move together. No two agents ever share a cell.
    """
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
                fr = _DR[o]
                fc = _DC[o]
                rr = fc    # the agent's right = facing rotated clockwise: (dr, dc) -> (dc, -dr)
                rc = -fr
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
                if 0 <= nr < H and 0 <= nc < W and not _blocks(grid[b, nr, nc]):
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
                rewards[b, i] += 1.0
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
                rewards[b, i] -= 1.0
                stats[b, i, ST_FIRES] += 1
                btype = FIRE_BEAM
            else:
                stats[b, i, ST_CLEANS] += 1
                btype = CLEAN_BEAM
            o = orient[b, i]
            fr = _DR[o]
            fc = _DC[o]
            rr = fc
            rc = -fr
            pr = pos[b, i, 0]
            pc = pos[b, i, 1]
            for lane in range(-1, 2):
                # centre lane: 1..L ahead; side lanes start beside the shooter: 0..L-1 ahead
                k0 = 1 if lane == 0 else 0
                for step in range(k0, k0 + beam_length):
                    r = pr + lane * rr + step * fr
                    c = pc + lane * rc + step * fc
                    if r < 0 or r >= H or c < 0 or c >= W or _blocks(grid[b, r, c]):
                        break
                    beam[b, r, c] = btype
                    was_waste = grid[b, r, c] == WASTE
                    if btype == CLEAN_BEAM and was_waste:
                        grid[b, r, c] = RIVER
                        stats[b, i, ST_CLEANED] += 1
                    j = occ[b, r, c]
                    if j >= 0:
                        if btype == FIRE_BEAM:
                            rewards[b, j] -= 50.0
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
                reward_count[b, i] += 1
                reward_time_sum[b, i] += t[b] + 1
            prev_actions[b, i] = actions[b, i]
            if hit[i]:
                tagged_steps[b, i] += 1
                hit[i] = False


@njit(cache=True)
def observe(grid, beam, occ, pos, orient, prev_actions, cell_colours, beam_colours,
            agent_colours, radius, draw_beams, none_action, rgb, own_prev, others_prev,
            others_visible):
    """Egocentric views and the visible-action channel for every agent of every world.

    In the view the agent always faces up: view[radius - f, radius + s] shows the cell f ahead
    and s to the right of the agent. Cells outside the map are black. Each world is first
    painted once into a black-padded colour image; views are then gathered from it.
    """
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
            o = orient[b, i]
            fr = _DR[o]
            fc = _DC[o]
            rr = fc
            rc = -fr
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


@njit(cache=True)
def regrow_neighbourhood(grid, occ, rng, apple_cells, neighbours, probs):
    """Harvest regrowth: an empty apple cell with no agent on it grows an apple with
    probability probs[min(n, len(probs)-1)], n = apples among its neighbour cells, all cells
    deciding from the map as it was before this pass."""
    B = grid.shape[0]
    K = apple_cells.shape[0]
    M = neighbours.shape[1]
    P = probs.shape[0]
    grow = np.zeros(K, dtype=np.bool_)
    for b in range(B):
        for k in range(K):
            u = uniform(rng, b)   # one draw per cell, always, to keep streams aligned
            r = apple_cells[k, 0]
            c = apple_cells[k, 1]
            grow[k] = False
            if grid[b, r, c] == APPLE or occ[b, r, c] >= 0:
                continue
            n = 0
            for m in range(M):
                nr = neighbours[k, m, 0]
                if nr < 0:
                    break
                if grid[b, nr, neighbours[k, m, 1]] == APPLE:
                    n += 1
            if u < probs[min(n, P - 1)]:
                grow[k] = True
        for k in range(K):
            if grow[k]:
                grid[b, apple_cells[k, 0], apple_cells[k, 1]] = APPLE


@njit(cache=True)
def cleanup_dynamics(grid, occ, rng, apple_cells, waste_cells, depletion, restoration,
                     waste_prob, apple_prob, retry_waste, waste_density, waste_history, t):
    """Cleanup: apples regrow at a rate that falls linearly with the river's waste density and
    stops at the depletion threshold; waste reappears while the river is below it.

    retry_waste=False (v0): with probability waste_prob one uniformly random clean river cell
    becomes waste. retry_waste=True (the reference code): a spawn is retried over every clean
    cell, so a cell is added with probability 1 - (1 - waste_prob)^free_cells.
    ``waste_density[b]`` receives the density after this step, as does
    ``waste_history[b, t[b] + 1]``.
    """
    B = grid.shape[0]
    K = apple_cells.shape[0]
    M = waste_cells.shape[0]
    for b in range(B):
        n_waste = 0
        for m in range(M):
            if grid[b, waste_cells[m, 0], waste_cells[m, 1]] == WASTE:
                n_waste += 1
        density = n_waste / M if M > 0 else 0.0
        if density >= depletion:
            p_apple = 0.0
            p_waste = 0.0
        else:
            p_apple = apple_prob * (1.0 - (density - restoration) / (depletion - restoration))
            p_waste = waste_prob
        for k in range(K):
            u = uniform(rng, b)
            r = apple_cells[k, 0]
            c = apple_cells[k, 1]
            if grid[b, r, c] != APPLE and occ[b, r, c] < 0 and u < p_apple:
                grid[b, r, c] = APPLE
        u_spawn = uniform(rng, b)
        u_cell = uniform(rng, b)
        free = M - n_waste
        if free > 0 and p_waste > 0.0:
            if retry_waste:
                p = 1.0 - (1.0 - p_waste) ** free
            else:
                p = p_waste
            if u_spawn < p:
                target = min(int(u_cell * free), free - 1)
                seen = 0
                for m in range(M):
                    r = waste_cells[m, 0]
                    c = waste_cells[m, 1]
                    if grid[b, r, c] != WASTE:
                        if seen == target:
                            grid[b, r, c] = WASTE
                            n_waste += 1
                            break
                        seen += 1
        waste_density[b] = n_waste / M if M > 0 else 0.0
        waste_history[b, min(t[b] + 1, waste_history.shape[1] - 1)] = waste_density[b]


@njit(cache=True)
def box_dynamics(actions, kinds, can_open, grid, occ, pos, box_cells, apple_cells, regrow_timer,
                 regrow_delay, require_adjacent, box_open_step, t):
    """Box Trapped: OPEN_BOX by an agent allowed to open removes the box walls; an eaten apple
    grows back ``regrow_delay`` steps later (once its cell is free)."""
    B, N = actions.shape
    X = box_cells.shape[0]
    K = apple_cells.shape[0]
    for b in range(B):
        if box_open_step[b] < 0:
            for i in range(N):
                if not can_open[i] or kinds[actions[b, i]] != OPEN_BOX:
                    continue
                ok = True
                if require_adjacent:
                    ok = False
                    for x in range(X):
                        if (abs(box_cells[x, 0] - pos[b, i, 0]) + abs(box_cells[x, 1] - pos[b, i, 1])) == 1:
                            ok = True
                            break
                if ok:
                    for x in range(X):
                        grid[b, box_cells[x, 0], box_cells[x, 1]] = 0
                    box_open_step[b] = t[b]
                    break
        for k in range(K):
            r = apple_cells[k, 0]
            c = apple_cells[k, 1]
            if grid[b, r, c] == APPLE:
                regrow_timer[b, k] = 0
            else:
                regrow_timer[b, k] += 1
                if regrow_timer[b, k] >= regrow_delay and occ[b, r, c] < 0:
                    grid[b, r, c] = APPLE
                    regrow_timer[b, k] = 0
