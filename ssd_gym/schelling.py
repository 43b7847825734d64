"""Schelling diagrams of Cleanup and Harvest from scripted policies (Jaques et al. 2019, supp. Fig. 2).

    python -m ssd_gym.schelling --game harvest_small --episodes 16 --out schelling_harvest_small.png

R_c(l) and R_d(l) are the mean episode returns of a focal cooperator and of a focal defector when
l of the other N-1 agents cooperate (the rest defect), l = 0..N-1. The game is a social dilemma
(Hughes et al. 2018, section 2) when

1. R_c(N-1) > R_d(0): mutual cooperation beats mutual defection;
2. R_c(N-1) > R_c(0): a cooperator among cooperators beats an exploited one;
3. fear, R_d(0) > R_c(0), or greed, R_d(N-1) > R_c(N-1): defecting pays where the others defect
   (fear) or where they cooperate (greed).

The scripted policies read the engine's state (they are analysis tools, not agents to learn
from) and never fire the fining beam:

* **Harvest**: a defector walks to the nearest apple; a cooperator only to apples with at least
  ``keep`` apples in their regrowth neighbourhood (an apple's last neighbours are what regrows it),
  and waits while there is none.
* **Cleanup**: a defector walks to the nearest apple; a cooperator cleans while the river's waste
  density is above ``clean_above`` (it walks towards the nearest waste, turns to face waste in
  beam range and fires the cleaning beam) and harvests like a defector otherwise.

Each row is averaged over ``episodes`` episodes, run as that many worlds of one batched engine; the
focal agent's index rotates over the episodes, so no spawn point is favoured.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from .core import constants as C
from .core.engine import Engine
from .games import Cleanup, Harvest, make_game

ROLES = ("cooperate", "defect")


def _beside(mask: np.ndarray) -> np.ndarray:
    """Cells with a 4-neighbour in ``mask``."""
    out = np.zeros_like(mask)
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def distance_field(walkable: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Steps from every cell to the nearest target over walkable cells (4-neighbour moves);
    unreachable cells get H*W."""
    h, w = walkable.shape
    dist = np.where(targets, 0, h * w)
    frontier, d = targets.copy(), 0
    while frontier.any():
        d += 1
        frontier = _beside(frontier) & walkable & (dist == h * w)
        dist[frontier] = d
    return dist


class ScriptedPolicy:
    """Actions of scripted cooperators and defectors in every world of an engine (module docstring)."""

    def __init__(self, engine: Engine, keep: int = 3, clean_above: float = 0.1):
        game = engine.game
        if not isinstance(game, (Cleanup, Harvest)):
            raise ValueError(f"scripted policies exist for Cleanup and Harvest games, not {game.name!r}")
        self.engine, self.keep, self.clean_above = engine, keep, clean_above
        kinds = list(game.action_kinds)
        self.index = {kind: kinds.index(kind) for kind in set(kinds)}
        # a move in facing-relative terms: forward, right, backward, left = orientation + 0..3
        self.relative_moves = [self.index[k] for k in (C.MOVE_UP, C.MOVE_RIGHT, C.MOVE_DOWN, C.MOVE_LEFT)]
        self.cleans = isinstance(game, Cleanup)

    def actions(self, roles: np.ndarray) -> np.ndarray:
        """int64[B, N] actions for ``roles`` bool[B, N] (True: cooperate)."""
        e = self.engine
        out = np.full(roles.shape, self.index[C.STAY], dtype=np.int64)
        walkable = ~np.isin(e.grid, (C.WALL, C.BOX_WALL))
        for b in range(e.num_worlds):
            apples = e.grid[b] == C.APPLE
            fields = {"defect": distance_field(walkable[b], apples)}
            if roles[b].any():
                fields["cooperate"] = self._cooperator_field(b, walkable[b], apples)
            if fields.get("cooperate") is None and roles[b].any():  # cleaners: towards the waste
                fields["clean"] = self._waste_field(b, walkable[b])
            for i in range(e.num_agents):
                field = fields["cooperate" if roles[b, i] else "defect"]
                if field is None:  # a cleaner: face waste in range and fire, or walk to it
                    out[b, i] = self._clean_step(b, i, walkable[b], fields["clean"])
                else:
                    out[b, i] = self._walk(b, i, field)
        return out

    def _cooperator_field(self, b: int, walkable: np.ndarray, apples: np.ndarray):
        e, game = self.engine, self.engine.game
        if self.cleans:
            return None if e.waste_density[b] > self.clean_above else distance_field(walkable, apples)
        cells, neighbours = game.layout.apple_cells, game.neighbours
        nr, nc = neighbours[..., 0], neighbours[..., 1]
        count = np.where(nr >= 0, apples[nr.clip(0), nc.clip(0)], False).sum(1)
        ripe = np.zeros_like(apples)
        ok = apples[cells[:, 0], cells[:, 1]] & (count >= self.keep)
        ripe[cells[ok, 0], cells[ok, 1]] = True
        return distance_field(walkable, ripe)

    def _walk(self, b: int, i: int, field: np.ndarray) -> int:
        """The move to the neighbour cell nearest the targets (STAY where none is reachable)."""
        e = self.engine
        r, c = e.pos[b, i]
        h, w = field.shape
        best, best_d = None, field[r, c] if field[r, c] < h * w else h * w
        for d, (dr, dc) in enumerate(C.DIRECTIONS):
            rr, cc = r + dr, c + dc
            if 0 <= rr < h and 0 <= cc < w and field[rr, cc] < best_d:
                best, best_d = d, field[rr, cc]
        if best is None:
            return self.index[C.STAY]
        return self.relative_moves[(best - e.orient[b, i]) % 4]

    def _waste_field(self, b: int, walkable: np.ndarray) -> np.ndarray:
        """Distances to the cells next to waste: from there it is in the cleaning beam's range."""
        waste = self.engine.grid[b] == C.WASTE
        beside = _beside(waste) & walkable & ~waste
        return distance_field(walkable, beside if beside.any() else waste)

    def _waste_ahead(self, b: int, r: int, c: int, d: int, walkable: np.ndarray) -> bool:
        grid = self.engine.grid[b]
        dr, dc = C.DIRECTIONS[d]
        for k in range(1, self.engine.game.beam_length + 1):
            rr, cc = r + k * dr, c + k * dc
            if not (0 <= rr < grid.shape[0] and 0 <= cc < grid.shape[1]) or not walkable[rr, cc]:  # walls stop beams
                return False
            if grid[rr, cc] == C.WASTE:
                return True
        return False

    def _clean_step(self, b: int, i: int, walkable: np.ndarray, waste_field: np.ndarray) -> int:
        e = self.engine
        (r, c), o = e.pos[b, i], int(e.orient[b, i])
        if self._waste_ahead(b, r, c, o, walkable):
            return self.index[C.CLEAN]
        for turn, kind in ((1, C.TURN_CW), (3, C.TURN_CCW), (2, C.TURN_CW)):
            if self._waste_ahead(b, r, c, (o + turn) % 4, walkable):
                return self.index[kind]
        return self._walk(b, i, waste_field)


@dataclass
class SchellingDiagram:
    """Focal returns by role and number of cooperating others, with the dilemma conditions."""

    game: str
    num_agents: int
    episodes: int
    cooperator: np.ndarray  # R_c(l), l = 0..N-1
    defector: np.ndarray    # R_d(l)
    cooperator_sem: np.ndarray
    defector_sem: np.ndarray

    def conditions(self) -> dict[str, bool]:
        rc, rd = self.cooperator, self.defector
        fear, greed = bool(rd[0] > rc[0]), bool(rd[-1] > rc[-1])
        return {"mutual cooperation beats mutual defection: R_c(N-1) > R_d(0)": bool(rc[-1] > rd[0]),
                "cooperating among cooperators beats being exploited: R_c(N-1) > R_c(0)": bool(rc[-1] > rc[0]),
                f"fear (R_d(0) > R_c(0): {fear}) or greed (R_d(N-1) > R_c(N-1): {greed})": fear or greed}

    def is_social_dilemma(self) -> bool:
        return all(self.conditions().values())

    def table(self) -> str:
        lines = [f"Schelling diagram, {self.game}: focal return by role, {self.episodes} episodes per row "
                 "(± standard error)", "", "| cooperating others | R_c (focal cooperator) | R_d (focal defector) |",
                 "|---:|---:|---:|"]
        for l in range(self.num_agents):
            lines.append(f"| {l} | {self.cooperator[l]:.1f} ± {self.cooperator_sem[l]:.1f} | "
                         f"{self.defector[l]:.1f} ± {self.defector_sem[l]:.1f} |")
        lines += [""] + [f"- {text}: {'yes' if ok else 'no'}" for text, ok in self.conditions().items()]
        lines.append(f"- a social dilemma by these scripted policies: {'yes' if self.is_social_dilemma() else 'no'}")
        return "\n".join(lines)

    def plot(self, path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        l = np.arange(self.num_agents)
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
        for values, sem, label in ((self.cooperator, self.cooperator_sem, "focal cooperator R_c"),
                                   (self.defector, self.defector_sem, "focal defector R_d")):
            ax.errorbar(l, values, yerr=sem, marker="o", capsize=3, label=label)
        ax.set_xlabel("cooperators among the other agents")
        ax.set_ylabel("focal agent's episode return")
        ax.set_xticks(l)
        ax.set_title(f"{self.game}: Schelling diagram (scripted policies)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def schelling_diagram(game: str, episodes: int = 16, seed: int = 0, keep: int = 3, clean_above: float = 0.1,
                      **game_options) -> SchellingDiagram:
    """Play every (focal role, cooperating others) row for ``episodes`` episodes (module docstring)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    engine = Engine(make_game(game, **game_options), num_worlds=episodes)
    policy = ScriptedPolicy(engine, keep=keep, clean_above=clean_above)
    n = engine.num_agents
    focal = np.arange(episodes) % n
    means, sems = {}, {}
    for role in ROLES:
        for l in range(n):
            roles = np.zeros((episodes, n), dtype=bool)
            for b in range(episodes):
                others = [j for j in range(n) if j != focal[b]]
                roles[b, others[:l]] = True
                roles[b, focal[b]] = role == "cooperate"
            for b in range(episodes):
                engine.seed_world(b, seed * 1_000_003 + b)
            engine.reset()
            while not engine.truncated().all():
                engine.step(policy.actions(roles))
            ret = engine.returns[np.arange(episodes), focal]
            means[role, l] = ret.mean()
            sems[role, l] = ret.std(ddof=1) / np.sqrt(episodes) if episodes > 1 else np.nan
    pick = lambda table, role: np.array([table[role, l] for l in range(n)])
    return SchellingDiagram(game, n, episodes, pick(means, "cooperate"), pick(means, "defect"),
                            pick(sems, "cooperate"), pick(sems, "defect"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ssd_gym.schelling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--game", default="harvest_small", help="cleanup, harvest, cleanup_small or harvest_small")
    p.add_argument("--episodes", type=int, default=16, help="episodes per row (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=int, default=3, help="Harvest cooperator: apples it leaves around each apple it takes")
    p.add_argument("--clean-above", type=float, default=0.1, help="Cleanup cooperator: waste density it cleans above")
    p.add_argument("--out", default=None, help="PNG to write (default: schelling_<game>.png)")
    ns = p.parse_args(argv)
    try:
        diagram = schelling_diagram(ns.game, ns.episodes, ns.seed, keep=ns.keep, clean_above=ns.clean_above)
    except ValueError as exc:
        print(f"schelling: error: {exc}", file=sys.stderr)
        return 2
    out = ns.out or f"schelling_{ns.game}.png"
    diagram.plot(out)
    print(diagram.table())
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
