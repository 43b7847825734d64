"""Box Trapped (Jaques et al. 2019, supp. 10.3): agent_0, the influencer, can OPEN_BOX to free
agent_1, who starts inside a box of walls; apples outside are inexhaustible (by default an eaten
apple is back the step after its eater leaves the cell). A selfish learner has no reason to open
the box: it costs the influencer a step and releases a competitor.

The paper gives no map, so the design is ours, chosen so that releasing the trapped agent changes
what it does next, which is the effect the influence reward measures:

* the trapped agent sits in a one-cell box, facing up, so none of its moves succeeds until it is
  released; the apples fill the three rows along the top of the map, two steps up from it;
* the box is dark (``opaque_box``): while it is shut the trapped agent sees only its own cell and
  the walls around it, not the influencer or the apples.

Once out, the trapped agent's way to the apples is straight up; while boxed, it sees nothing of
them and its choices change nothing. (A first design let it see out of a 3x3 box with apples all around:
trained, it acted the same whether or not the box was open, and OPEN_BOX had almost no measurable
influence; benchmarks/RESULTS.md.)
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from ..core import constants as C
from ..core.layout import MapError
from .base import BASE_ACTION_KINDS, BASE_ACTION_NAMES, Game, check_bool, check_cost, check_int

INFLUENCER = 0
TRAPPED = 1


@njit(cache=True)
def box_and_apples(actions, kinds, can_open, grid, occ, pos, t, box_cells, apple_cells,
                   regrow_timer, regrow_delay, require_adjacent, box_open_step, do_open, do_apples):
    """OPEN_BOX by an agent allowed to open (``can_open[i]``) removes the box walls and records
    the step in ``box_open_step[b]`` (if ``do_open``); an eaten apple grows back ``regrow_delay``
    steps later, once its cell is free (if ``do_apples``)."""
    B, N = actions.shape
    X = box_cells.shape[0]
    K = apple_cells.shape[0]
    for b in range(B):
        if do_open and box_open_step[b] < 0:
            for i in range(N):
                if not can_open[i] or kinds[actions[b, i]] != C.OPEN_BOX:
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
                        grid[b, box_cells[x, 0], box_cells[x, 1]] = C.EMPTY
                    box_open_step[b] = t[b]
                    break
        if not do_apples:
            continue
        for k in range(K):
            r = apple_cells[k, 0]
            c = apple_cells[k, 1]
            if grid[b, r, c] == C.APPLE:
                regrow_timer[b, k] = 0
            else:
                regrow_timer[b, k] += 1
                if regrow_timer[b, k] >= regrow_delay and occ[b, r, c] < 0:
                    grid[b, r, c] = C.APPLE
                    regrow_timer[b, k] = 0


class BoxTrapped(Game):
    """Box Trapped. Options:

    * ``apple_regrow_delay`` (default 1): an eaten apple grows back this many steps later, as
      soon as its cell is free (1: inexhaustible, back the step after its eater leaves);
    * ``opaque_box`` (default True): while the box is shut the trapped agent sees only the cells
      next to it (the rest of its view is black and the influencer is not visible to it);
    * ``open_requires_adjacency`` (default False: OPEN_BOX works from anywhere);
    * ``open_before_moves`` (default False): OPEN_BOX takes effect before the step's moves, so a
      trapped agent that moves up in the very step the box opens gets out at once. Its action then
      depends on the influencer's *current* action, the same-step influence that the centralised
      influence agent (``influence_basic``, whose influencee sees that action) is rewarded for; by
      default the box opens after the moves and the trapped agent can leave from the next step.
    * ``shut_move_cost`` (default 0.0): what the trapped agent pays for every move it tries while the
      box is shut (pushing against the walls). With it, standing still is the trapped agent's best
      action in the shut box and moving up its best one once the box opens, so what it does depends
      on whether the influencer opens; with ``open_before_moves`` that happens in the same step.
    * ``momentary_door`` (default False; needs ``open_before_moves``): the box shuts again after the
      step in which it was opened unless the trapped agent stepped out in that very step, so the
      trapped agent is released only if it moves as the influencer opens. ``box_opened`` and
      ``box_open_step`` then record the release.

    The trapped agent always starts facing up; the influencer's facing is random.
    """

    name = "box_trapped"
    action_names = BASE_ACTION_NAMES + ("OPEN_BOX",)
    action_kinds = BASE_ACTION_KINDS + (C.OPEN_BOX,)
    default_map = "box_trapped"
    default_num_agents = 2
    default_max_cycles = 100
    map_characters = "@ PTAX"
    rule_options = {"beams_visible": (True, True)}  # no beams in this game

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {"apple_regrow_delay": 1, "opaque_box": True, "open_requires_adjacency": False,
                "open_before_moves": False, "shut_move_cost": 0.0,
                "momentary_door": False}

    def validate(self) -> None:
        if self.num_agents != 2:
            raise ValueError(f"box_trapped is a two-agent game, got num_agents={self.num_agents}")
        lay = self.layout
        if len(lay.spawn_points) < 1:
            raise MapError("box_trapped needs a spawn point 'P' for the influencer")
        if len(lay.trapped_spawn_points) < 1:
            raise MapError("box_trapped needs a spawn point 'T' for the trapped agent")
        if len(lay.box_cells) == 0:
            raise MapError("box_trapped needs box walls 'X'")
        opts = self.options
        opts["apple_regrow_delay"] = check_int("apple_regrow_delay", opts["apple_regrow_delay"])
        opts["open_requires_adjacency"] = check_bool("open_requires_adjacency", opts["open_requires_adjacency"])
        opts["opaque_box"] = check_bool("opaque_box", opts["opaque_box"])
        opts["open_before_moves"] = check_bool("open_before_moves", opts["open_before_moves"])
        opts["shut_move_cost"] = check_cost("shut_move_cost", opts["shut_move_cost"])
        opts["momentary_door"] = check_bool("momentary_door", opts["momentary_door"])
        if opts["momentary_door"] and not opts["open_before_moves"]:
            raise ValueError("momentary_door=True needs open_before_moves=True (a door that opens after the moves "
                             "and shuts again could never be walked through)")
        self.can_open = np.array([True, False])

    def spawn_groups(self) -> tuple[list[np.ndarray], np.ndarray]:
        return ([self.layout.spawn_points, self.layout.trapped_spawn_points],
                np.array([INFLUENCER, TRAPPED], dtype=np.int64))

    def init_rule_state(self, engine) -> None:
        engine.box_open_step = -np.ones(engine.num_worlds, dtype=np.int64)
        engine.regrow_timer = np.zeros((engine.num_worlds, len(self.layout.apple_cells)), dtype=np.int64)

    def reset_rule_state(self, engine, mask: np.ndarray) -> None:
        engine.box_open_step[mask] = -1
        engine.regrow_timer[mask] = 0
        engine.orient[mask, TRAPPED] = C.UP

    def before_moves(self, engine, actions: np.ndarray) -> None:
        if self.options["open_before_moves"]:
            if self.options["momentary_door"]:  # to tell, after the moves, who stepped out
                engine.trapped_pos_before = engine.pos[:, TRAPPED].copy()
            self._box_and_apples(engine, actions, do_open=True, do_apples=False)

    def apply_rules(self, engine, actions: np.ndarray) -> None:
        cost = self.options["shut_move_cost"]
        if cost:
            # kinds up to MOVE_DOWN are the four moves (the movement kernel's own test)
            pushed = (engine.box_open_step < 0) & (engine.kinds[actions[:, TRAPPED]] <= C.MOVE_DOWN)
            engine.rewards[pushed, TRAPPED] -= cost
            engine.returns[pushed, TRAPPED] -= cost
        self._box_and_apples(engine, actions, do_open=not self.options["open_before_moves"], do_apples=True)
        if self.options["momentary_door"]:
            stayed = (engine.pos[:, TRAPPED] == engine.trapped_pos_before).all(axis=1)
            reshut = np.flatnonzero((engine.box_open_step == engine.t) & stayed)
            if reshut.size:  # nobody stands in the walls: the influencer opened, the trapped agent stayed put
                box = self.layout.box_cells
                engine.grid[reshut[:, None], box[:, 0], box[:, 1]] = C.BOX_WALL
                engine.box_open_step[reshut] = -1

    def _box_and_apples(self, engine, actions: np.ndarray, do_open: bool, do_apples: bool) -> None:
        box_and_apples(actions, engine.kinds, self.can_open, engine.grid, engine.occ, engine.pos,
                       engine.t, self.layout.box_cells, self.layout.apple_cells, engine.regrow_timer,
                       self.options["apple_regrow_delay"], self.options["open_requires_adjacency"],
                       engine.box_open_step, do_open, do_apples)

    def edit_observation(self, engine, obs) -> None:
        """The dark box: a shut-in trapped agent sees its own cell and the walls next to it."""
        if not self.options["opaque_box"]:
            return
        shut = engine.box_open_step < 0
        if not shut.any():
            return
        R = self.view_radius
        lo = max(R - 1, 0)
        view = obs.rgb[shut, TRAPPED]
        near = view[:, lo:R + 2, lo:R + 2].copy()
        view[:] = 0
        view[:, lo:R + 2, lo:R + 2] = near
        obs.rgb[shut, TRAPPED] = view
        obs.others_visible[shut, TRAPPED] = 0
        obs.others_prev_actions[shut, TRAPPED] = engine.none_action

    def episode_metrics(self, engine, b: int) -> dict[str, Any]:
        step = int(engine.box_open_step[b])
        return {"box_opened": step >= 0, "box_open_step": step}
