"""A run's learning curve, ``progress.csv``: one row per finished episode, written by ``ssd-train`` and
read by ``ssd-leaderboard`` (scores, plots) and ``ssd-eval`` (episode records)."""

from __future__ import annotations

import csv
import io
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from baselines.checkpoint import atomic_write_text
from ssd_gym.metrics import INFO_KEY, equality, equality_weighted_return

CURVE_FIELDS = ("agent_steps", "wall_s", "world", "collective_return", "equality", "equality_weighted_return",
                "sustainability", "peace", "box_opened", "box_open_step", "episode_length",
                # influence agents: mean raw influence reward per agent-step of the episode, MOA accuracy
                "influence_reward", "moa_accuracy",
                # the PPO update that ended the rollout the episode finished in (mean over learners)
                "explained_variance", "value_loss", "entropy")


def episode_record(ep: dict[str, Any], returns: list[float]) -> dict[str, Any]:
    """The zoo's metrics of one episode from the env's ``info["episode_metrics"]`` (computed if missing)."""
    rets = np.asarray(ep.get("returns", returns), dtype=np.float64)
    step = ep.get("box_open_step")
    return {
        "collective_return": float(ep.get("collective_return", rets.sum())),
        "equality": float(ep.get("equality", equality(rets))),
        "equality_weighted_return": float(ep.get("equality_weighted_return", equality_weighted_return(rets))),
        "sustainability": float(ep.get("sustainability", math.nan)),
        "peace": float(ep.get("peace", math.nan)),
        "episode_length": int(ep.get("episode_length", ep.get("l", 0))),
        "box_opened": int(bool(ep["box_opened"])) if "box_opened" in ep else "",
        "box_open_step": "" if "box_opened" not in ep or step is None or step < 0 else int(step),
    }


class EpisodeLog:
    """Collects finished episodes (one record per world) for the curve, TensorBoard and the bar."""

    def __init__(self, num_agents: int, window: int = 20) -> None:
        self.num_agents = num_agents
        self.pending: list[dict[str, Any]] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=window)
        self.agent_steps = 0
        self.t0 = time.time()
        self.wall_offset = 0.0
        self._influence: np.ndarray | None = None  # per slot, summed since its episode began

    def on_step(self, infos: list[dict], dones: np.ndarray) -> None:
        N = self.num_agents
        if "influence_reward" in infos[0]:
            step = np.fromiter((i["influence_reward"] for i in infos), dtype=np.float64, count=len(infos))
            self._influence = step if self._influence is None else self._influence + step
        for slot in np.flatnonzero(np.asarray(dones).reshape(-1)[::N]) * N:
            agents = infos[slot:slot + N]
            if INFO_KEY not in agents[0]:
                continue
            rec = episode_record(agents[0][INFO_KEY], [i.get(INFO_KEY, {}).get("agent_return", math.nan) for i in agents])
            rec.update(agent_steps=self.agent_steps, world=int(slot // N),
                       wall_s=round(self.wall_offset + time.time() - self.t0, 2))
            if self._influence is not None:
                rec["influence_reward"] = float(self._influence[slot:slot + N].mean() / max(rec["episode_length"], 1))
                acc = [a for a in (i.get("moa_accuracy", math.nan) for i in agents) if not math.isnan(a)]
                rec["moa_accuracy"] = float(np.mean(acc)) if acc else math.nan  # nan before the MOA's first round
                self._influence[slot:slot + N] = 0.0
            self.pending.append(rec)
            self.recent.append(rec)

    def stamp(self, agent_steps: int, losses: dict[str, float]) -> None:
        """Mark the pending episodes with the step count and the stats of the update that followed."""
        update = {"explained_variance": losses.get("train/explained_variance", math.nan),
                  "value_loss": losses.get("train/value_loss", math.nan),
                  "entropy": -losses.get("train/entropy_loss", math.nan)}  # SB3 logs the entropy's negative
        for rec in self.pending:
            rec.update(update, agent_steps=agent_steps)

    def mean(self, key: str) -> float:
        vals = [r[key] for r in self.recent if isinstance(r.get(key), (int, float)) and not math.isnan(r[key])]
        return float(np.mean(vals)) if vals else math.nan


class CurveWriter:
    """Append-only ``progress.csv``; on resume, rows past the checkpoint are dropped (atomically)."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        rows = []
        if resume_step is not None and path.exists():
            # a kill -9 can cut the last appended line short: keep only complete rows up to the checkpoint
            rows = [r for r in csv.DictReader(io.StringIO(path.read_text()))
                    if None not in r.values() and 0 <= _steps(r) <= resume_step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CURVE_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(path, buf.getvalue())

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CURVE_FIELDS, extrasaction="ignore")
            for rec in records:  # 6 significant digits: influence rewards are ~1e-5
                w.writerow({k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in rec.items()})


def _steps(row: dict[str, Any]) -> int:
    try:
        return int(float(row["agent_steps"]))
    except (TypeError, ValueError):
        return -1


def read_curve(path: Path) -> list[dict[str, float]]:
    """The rows of a ``progress.csv`` as floats (nan for empty cells)."""
    return [{k: (float(v) if v not in ("", None) else math.nan) for k, v in r.items()}
            for r in csv.DictReader(io.StringIO(path.read_text()))]


def run_curve(rows: list[dict[str, float]], metric: str, max_points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(agent-steps, mean of ``metric``) per logging point (episodes are stamped at rollout ends),
    merged into at most ``max_points`` consecutive groups."""
    steps = np.array([r["agent_steps"] for r in rows])
    vals = np.array([r.get(metric, math.nan) for r in rows])
    ok = ~np.isnan(vals)
    xs = np.unique(steps[ok])
    if len(xs) == 0:
        return xs, xs
    ys = np.array([vals[ok & (steps == x)].mean() for x in xs])
    if len(xs) > max_points:
        groups = np.array_split(np.arange(len(xs)), max_points)
        xs, ys = np.array([xs[g].mean() for g in groups]), np.array([ys[g].mean() for g in groups])
    return xs, ys


def steps_to_positive(rows: list[dict[str, float]]) -> float:
    """Agent-steps at the first logging point whose mean collective return is above zero: how long
    the config took to leave the random-firing phase (nan if it never did)."""
    xs, ys = run_curve(rows, "collective_return", max_points=10**9)
    hit = np.flatnonzero(ys > 0)
    return float(xs[hit[0]]) if len(hit) else math.nan


def final_scores(rows: list[dict[str, float]], total_steps: int, metrics: tuple[str, ...],
                 final_fraction: float) -> dict[str, float]:
    """Mean of each metric over the episodes that ended in the last ``final_fraction`` of the budget."""
    if not rows:
        return {m: math.nan for m in metrics}
    cut = min(max(r["agent_steps"] for r in rows), (1.0 - final_fraction) * total_steps)
    tail = [r for r in rows if r["agent_steps"] >= cut] or rows[-1:]
    values = {m: [r.get(m, math.nan) for r in tail] for m in metrics}
    return {m: float(np.nanmean(v)) if any(not math.isnan(x) for x in v) else math.nan for m, v in values.items()}
