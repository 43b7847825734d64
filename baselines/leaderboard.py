"""Train the zoo on several games and seeds and rank it: ``ssd-leaderboard`` / ``python -m baselines.leaderboard``.

    ssd-leaderboard --preset demo                       # ~2-3 minutes, prints the table
    ssd-leaderboard --preset quick                      # small maps, ~20 minutes on 2 CPU cores
    ssd-leaderboard --preset paper --total-steps 5e7    # paper maps, 5 agents, 1000-step episodes

Writes to ``--out`` (default ``leaderboard/<preset>``): ``leaderboard.md`` and ``leaderboard.csv``
(collective return, equality, R*(1-G), sustainability, peace per game and config: mean and 95%
interval over seeds), ``curves_<game>.png`` (learning curves of collective return, equality, R*(1-G) and
sustainability: mean and range over seeds) with their points per run in ``curves_<game>.csv``,
``results/*.json`` (one per finished run) and ``runs/`` (the training runs). ``leaderboard.md`` ends
each game with a verdict: the configs whose 95% interval lies above a3c's.

A run's score is the mean over the episodes that finished in the last 20% of its budget. Runs go
one per CPU core (``--jobs``; about 0.6 GB of memory each), each on one torch thread. Every file is
written atomically (temp file + ``os.replace``); run it again after an interruption and it skips
finished runs and resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import multiprocessing as mp
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from baselines.checkpoint import atomic_write_json, atomic_write_text
from baselines.cli import integer, report, time_left, usable_cores
from baselines.config import GAMES, ConfigError
from baselines.curves import final_scores, read_curve, run_curve, steps_to_positive
from baselines.envs import METRIC_TITLES, METRICS

ZOO = ("a3c", "visible_actions", "prosocial", "inequity_aversion", "influence_moa", "influence_basic", "influence_comm",
       "comm_baseline")
#: the paper's influence and communication agents (Experiments I-III) next to the selfish baseline
SOCIAL = ("a3c", "influence_moa", "influence_basic", "influence_comm", "comm_baseline")
#: the slowest configs per agent-step, started first: a shorter makespan when runs go several at a time
SLOWEST_FIRST = ("influence_comm", "comm_baseline", "influence_moa", "influence_basic")
CURVE_METRICS = ("collective_return", "equality", "equality_weighted_return", "sustainability")
#: influence agents' extra columns (empty for the others)
INFLUENCE_METRICS = ("influence_reward", "moa_accuracy")
#: how fast a config leaves the random-firing phase (first logging point with a positive return)
LEARNING_METRICS = ("steps_to_positive",)
SCORES = METRICS + INFLUENCE_METRICS + LEARNING_METRICS
#: the verdict compares every config with a3c on these
VERDICT_METRICS = ("collective_return", "equality", "equality_weighted_return")
FINAL_FRACTION = 0.2  # score = mean over episodes in the last 20% of the budget


@dataclass
class Preset:
    """What a leaderboard trains: zoo x games x seeds at one budget."""

    games: tuple[str, ...]
    agents: tuple[str, ...] = ZOO
    seeds: int = 2
    first_seed: int = 0  # seeds first_seed, first_seed + 1, ...: pilot on other seeds than you report
    total_steps: int | None = None  # agent-steps per run; None: the user must give it
    game_steps: dict[str, int] = field(default_factory=dict)  # a game's own budget, where it needs another
    num_worlds: int = 16
    num_agents: int | None = None
    max_cycles: int | None = None
    checkpoint_every: int = 50_000
    overrides: tuple[str, ...] = ()

    def budget(self, game: str) -> int | None:
        """Agent-steps per run on ``game``."""
        return self.game_steps.get(game, self.total_steps)


PRESETS: dict[str, Preset] = {
    # the README's main job (<= 3 minutes with the install): the selfish and the prosocial learner on
    # harvest_small, 4 seeds, stopped where the two differ most: the prosocial learners have stopped
    # fining each other and harvest, the selfish ones are still climbing out of the random-firing phase
    # (at 200k+ some a3c seeds catch up and the 95% intervals overlap; benchmarks/RESULTS.md)
    "demo": Preset(games=("harvest_small",), agents=("a3c", "prosocial"), seeds=4, total_steps=150_000,
                   num_worlds=32, checkpoint_every=50_000),
    # the dilemma on the small maps (3 agents, 200-step episodes): the selfish learner, the two
    # social-preference agents and the MOA influence agent, 5 seeds. harvest_small gets longer: a3c's
    # orchard collapse (its return falling after the peak) comes at 300-600k steps. Five seeds, not
    # three: the seeds' spread is 5-9 points, and with three (t = 4.3) the 95% intervals of a 10-15
    # point gap overlapped in most draws (benchmarks/RESULTS.md)
    "quick": Preset(games=("cleanup_small", "harvest_small"),
                    agents=("a3c", "prosocial", "inequity_aversion", "influence_moa"),
                    seeds=5, total_steps=500_000, game_steps={"harvest_small": 700_000}, num_worlds=32,
                    checkpoint_every=250_000),
    # quick's maps and budgets with the paper's three influence agents and the communication baseline
    # next to a3c (comm agents train a second learner per agent: about twice a3c's time)
    "social": Preset(games=("cleanup_small", "harvest_small"), agents=SOCIAL, seeds=3, total_steps=500_000,
                     game_steps={"harvest_small": 700_000}, num_worlds=32, checkpoint_every=250_000),
    # the paper's maps, 5 agents, 1000-step episodes; the budget is the user's (--total-steps)
    "paper": Preset(games=("cleanup", "harvest"), seeds=5, total_steps=None, num_worlds=16, num_agents=5,
                    max_cycles=1000, checkpoint_every=1_000_000),
}


# ----------------------------------------------------------------------------------------------
# one run


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (agent, game, seed) run (resuming if a checkpoint exists) and write its result JSON."""
    import torch

    torch.set_num_threads(1)
    from baselines.train import run_training

    result_path = Path(job["result_path"])
    if result_path.exists():
        return json.loads(result_path.read_text())
    # run_training locks the run dir: a second board on the same --out stops at a run the first trains
    summary = run_training(train_args(job))
    rows = read_curve(Path(job["run_dir"]) / "progress.csv")
    final = {**final_scores(rows, job["total_steps"], SCORES, FINAL_FRACTION), "steps_to_positive": steps_to_positive(rows)}
    result = {**{k: job[k] for k in ("agent", "game", "seed", "total_steps")}, "final": final,
              "agent_steps_per_s": summary["agent_steps_per_s"], "wall_s": summary["wall_s_this_process"],
              "run_dir": job["run_dir"]}
    atomic_write_json(result_path, result)
    return result


def train_args(job: dict[str, Any]):
    """The ``TrainArgs`` of one job of :func:`plan` (a job is their fields and ``result_path``)."""
    from baselines.train import TrainArgs

    return TrainArgs(**{f.name: job[f.name] for f in fields(TrainArgs)})


# ----------------------------------------------------------------------------------------------
# the board


def plan(preset: Preset, out: Path) -> list[dict[str, Any]]:
    """The board's jobs, one per (game, agent, seed); each (game, agent) is checked as ``ssd-train``
    checks a run (:func:`baselines.train.check_run`: names, budget, overrides, agents vs. map)."""
    from baselines.train import TrainArgs, check_run

    if any(preset.budget(game) is None for game in preset.games):
        raise ConfigError("this preset has no default budget: pass --total-steps (agent-steps per run)")
    if preset.seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {preset.seeds}")
    if preset.first_seed < 0:
        raise ConfigError(f"first seed must be >= 0, got {preset.first_seed}")
    if not preset.games or not preset.agents:
        raise ConfigError(f"nothing to train: games {list(preset.games)}, agents {list(preset.agents)}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    jobs = []
    for game in preset.games:
        for agent in preset.agents:
            name = Path(agent).stem
            for seed in range(preset.first_seed, preset.first_seed + preset.seeds):
                args = TrainArgs(agent=agent, game=game, seed=seed, total_steps=int(preset.budget(game)),
                                 num_worlds=preset.num_worlds, num_agents=preset.num_agents, max_cycles=preset.max_cycles,
                                 checkpoint_every=preset.checkpoint_every, overrides=list(preset.overrides),
                                 run_dir=str(out / "runs" / game / name / f"seed{seed}"), progress=False)
                jobs.append({**asdict(args), "result_path": str(out / "results" / f"{game}__{name}__seed{seed}.json")})
            try:  # the seeds differ in nothing a check looks at
                check_run(train_args(jobs[-1]))
            except ConfigError as exc:
                raise ConfigError(f"{game} / {agent}: {exc}") from None
    return jobs


def run_leaderboard(preset: Preset, out: Path, jobs: int | None = None, verbose: bool = True) -> dict[str, Any]:
    """Train what is missing, then write the table, CSV and plots. Returns the aggregated rows.

    ``jobs``: runs at a time (None: one per core). Everything is checked (:func:`plan`) before ``out``
    is created or anything trains."""
    jobs = usable_cores() if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    todo = plan(preset, out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "preset.json", asdict(preset))
    missing = [j for j in todo if not Path(j["result_path"]).exists()]
    missing.sort(key=lambda j: SLOWEST_FIRST.index(Path(j["agent"]).stem) if Path(j["agent"]).stem in SLOWEST_FIRST
                 else len(SLOWEST_FIRST))
    jobs = min(jobs, max(len(missing), 1))  # no idle workers
    t0 = time.time()
    if verbose:
        print(f"leaderboard: {len(todo)} runs ({len(todo) - len(missing)} already done), {jobs} at a time", flush=True)
    if missing:
        pool = mp.get_context("spawn").Pool(jobs) if jobs > 1 else None
        try:
            results = pool.imap_unordered(run_one, missing) if pool else map(run_one, missing)
            pending = {(j["game"], Path(j["agent"]).stem, j["seed"]): (Path(j["agent"]).stem, j["total_steps"])
                       for j in missing}  # the runs not finished yet: (config, agent-steps)
            rates: dict[str, list[float]] = {}  # agent-steps/s of each config's finished runs
            for i, res in enumerate(results, 1):
                name = Path(res["agent"]).stem
                pending.pop((res["game"], name, res["seed"]), None)
                rates.setdefault(name, []).append(res["agent_steps_per_s"])
                if verbose:
                    f = res["final"]
                    left = time_left(list(pending.values()), {k: sum(v) / len(v) for k, v in rates.items()}, jobs)
                    print(f"[{time.time() - t0:6.0f}s] {i}/{len(missing)} {res['game']} {res['agent']} seed {res['seed']}: "
                          f"R={f['collective_return']:.1f} eq={f['equality']:.2f} ({res['agent_steps_per_s']:.0f} agent-steps/s)"
                          + left, flush=True)
        except BaseException:
            if pool:  # a run failed (e.g. its run dir is locked by another board) or Ctrl-C: stop the others
                pool.terminate()
            raise
        if pool:
            pool.close()
            pool.join()
    results = [json.loads(Path(j["result_path"]).read_text()) for j in todo]
    rows = aggregate(results)
    write_table(out, rows, preset)
    for game in preset.games:
        plot_curves(out, game, [j for j in todo if j["game"] == game], preset.budget(game))
    if verbose:
        print((out / "leaderboard.md").read_text())
        print(f"written: {out / 'leaderboard.md'}, {out / 'leaderboard.csv'}, "
              + ", ".join(str(out / f'curves_{g}.png') for g in preset.games) + f"  ({time.time() - t0:.0f} s)")
    return {"rows": rows, "wall_s": time.time() - t0}


def aggregate(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from baselines.evaluate import mean_ci95

    rows = []
    keys = sorted({(r["game"], Path(r["agent"]).stem) for r in results}, key=lambda k: (k[0], ZOO.index(k[1]) if k[1] in ZOO else 99, k[1]))
    for game, agent in keys:
        runs = [r for r in results if r["game"] == game and Path(r["agent"]).stem == agent]
        row: dict[str, Any] = {"game": game, "config": agent, "seeds": len(runs)}
        for m in SCORES:
            mean, half = mean_ci95([r["final"].get(m, math.nan) for r in runs])
            row[m] = mean
            row[f"{m}_ci95"] = half
        rows.append(row)
    return rows


def write_table(out: Path, rows: list[dict[str, Any]], preset: Preset) -> None:
    """``leaderboard.csv`` (every row) and ``leaderboard.md`` (a table and a verdict per game)."""
    fields = ["game", "config", "seeds"] + [x for m in SCORES for x in (m, f"{m}_ci95")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(out / "leaderboard.csv", buf.getvalue())

    lines = [f"Score = mean over the episodes of the last {FINAL_FRACTION:.0%} of a run's budget; "
             "± = 95% interval over seeds (Student t).", ""]
    for game in dict.fromkeys(r["game"] for r in rows):
        game_rows = [r for r in rows if r["game"] == game]
        metrics = list(METRICS) + [m for m in INFLUENCE_METRICS if any(not math.isnan(r[m]) for r in game_rows)]
        metrics += LEARNING_METRICS
        lines += [f"### {game}", "", f"Budget {preset.budget(game):,} agent-steps per run.", "",
                  "| config | seeds | " + " | ".join(METRIC_TITLES.get(m, m) for m in metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for r in game_rows:
            lines.append(f"| {r['config']} | {r['seeds']} | " + " | ".join(_cell(r, m) for m in metrics) + " |")
        lines += ["", verdict(game_rows), ""]
    atomic_write_text(out / "leaderboard.md", "\n".join(lines))


def _cell(r: dict[str, Any], m: str) -> str:
    mean, half = r[m], r[f"{m}_ci95"]
    if math.isnan(mean):
        return ""
    if m == "influence_reward":  # nats per step, often 1e-4 early in training
        return f"{mean:.2e}" + (f" ± {half:.1e}" if not math.isnan(half) else "")
    if m == "steps_to_positive":
        return f"{mean / 1000:.0f}k" + (f" ± {half / 1000:.0f}k" if not math.isnan(half) else "")
    digits = 2 if m in ("equality", "moa_accuracy") else 1
    return f"{mean:.{digits}f}" + (f" ± {half:.{digits}f}" if not math.isnan(half) else "")


def verdict(game_rows: list[dict[str, Any]]) -> str:
    """One line per game: the configs whose 95% interval lies wholly above (or below) a3c's."""
    base = next((r for r in game_rows if r["config"] == "a3c"), None)
    game = game_rows[0]["game"]
    if base is None:
        return f"Verdict ({game}): no a3c row to compare with."
    parts = []
    for m in VERDICT_METRICS:
        lo_base, hi_base = base[m] - base[f"{m}_ci95"], base[m] + base[f"{m}_ci95"]
        if math.isnan(lo_base):
            parts.append(f"{METRIC_TITLES[m]}: a3c has fewer than 2 seeds, no intervals to compare")
            continue
        above = [r for r in game_rows if r is not base and r[m] - r[f"{m}_ci95"] > hi_base]
        below = [r for r in game_rows if r is not base and r[m] + r[f"{m}_ci95"] < lo_base]
        d = 2 if m == "equality" else 1
        text = f"{METRIC_TITLES[m]}: " + (", ".join(f"**{r['config']}** ({r[m]:.{d}f} ± {r[f'{m}_ci95']:.{d}f})" for r in above)
                                          + f" above a3c ({base[m]:.{d}f} ± {base[f'{m}_ci95']:.{d}f})"
                                          if above else f"no config's interval lies above a3c's ({base[m]:.{d}f} ± {base[f'{m}_ci95']:.{d}f})")
        if below:
            text += "; below it: " + ", ".join(r["config"] for r in below)
        parts.append(text)
    m = "steps_to_positive"
    faster = [r for r in game_rows if r is not base and r[m] + r[f"{m}_ci95"] < base[m] - base[f"{m}_ci95"]]
    if faster:
        parts.append("out of the random-firing phase sooner than a3c "
                     f"({base[m] / 1000:.0f}k ± {base[f'{m}_ci95'] / 1000:.0f}k agent-steps): "
                     + ", ".join(f"**{r['config']}** ({r[m] / 1000:.0f}k ± {r[f'{m}_ci95'] / 1000:.0f}k)" for r in faster))
    return f"Verdict ({game}): " + "; ".join(parts) + "."


def plot_curves(out: Path, game: str, jobs: list[dict[str, Any]], total_steps: int) -> Path:
    """Learning curves (collective return, equality, R*(1-G), sustainability) per config against
    agent-steps: mean over seeds, band = range over seeds; the shaded last 20% is what the table
    scores. The points of every run go to ``curves_<game>.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(4.6 * len(CURVE_METRICS), 3.8))
    agents = list(dict.fromkeys(Path(j["agent"]).stem for j in jobs))
    seeds = 0
    points = io.StringIO()
    writer = csv.writer(points)
    writer.writerow(["config", "seed", "metric", "agent_steps", "value"])
    for agent in agents:
        agent_jobs = [j for j in jobs if Path(j["agent"]).stem == agent and (Path(j["run_dir"]) / "progress.csv").exists()]
        runs = [read_curve(Path(j["run_dir"]) / "progress.csv") for j in agent_jobs]
        seeds = max(seeds, len(runs))
        for ax, m in zip(axes, CURVE_METRICS):
            per_run = [run_curve(rows, m) for rows in runs]
            for job, (xs, ys) in zip(agent_jobs, per_run):
                writer.writerows([agent, job["seed"], m, int(x), round(float(y), 4)] for x, y in zip(xs, ys))
            curves = [c for c in per_run if len(c[0]) > 1]
            if not curves:
                continue
            grid = np.linspace(max(c[0][0] for c in curves), min(c[0][-1] for c in curves), 100)
            arr = np.array([np.interp(grid, x, y) for x, y in curves])
            mean = arr.mean(axis=0)
            line, = ax.plot(grid, mean, label=agent, lw=1.6)
            if len(arr) > 1:  # the range over seeds (with 2-3 seeds a t-band would dwarf the curves)
                ax.fill_between(grid, arr.min(axis=0), arr.max(axis=0), color=line.get_color(), alpha=0.18, lw=0)
    for ax, m in zip(axes, CURVE_METRICS):
        ax.set_title(METRIC_TITLES[m])
        ax.set_xlabel("agent-steps")
        ax.set_xlim(0, total_steps)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1M
        ax.axvspan((1 - FINAL_FRACTION) * total_steps, total_steps, color="0.9", zorder=0)
        ax.grid(alpha=0.3)
        if m in ("collective_return", "equality_weighted_return") and ax.get_ylim()[0] < -100:
            # the random-firing phase (~-1000) on a log scale, so that it does not flatten the rest; linear
            # within +-100, where the configs' final returns (and a3c's fall after its Harvest peak) lie
            ax.set_yscale("symlog", linthresh=100)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    else:  # e.g. a budget of a few rollouts: a curve needs two logged points
        axes[0].text(0.5, 0.5, "no run has a curve yet (fewer than 2 points)", ha="center", transform=axes[0].transAxes)
    fig.suptitle(f"{game}: mean over {seeds} seed(s), band = range over seeds; grey: the scored last {FINAL_FRACTION:.0%}")
    atomic_write_text(out / f"curves_{game}.csv", points.getvalue())
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    path = out / f"curves_{game}.png"
    atomic_write_text(path, png.getvalue())
    return path


# ----------------------------------------------------------------------------------------------
# CLI


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssd-leaderboard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--total-steps", type=integer, default=None,
                   help="agent-steps per run, every game (overrides the preset's budgets; 5e7 is fine)")
    p.add_argument("--seeds", type=integer, default=None, help="how many seeds (default: the preset's)")
    p.add_argument("--first-seed", type=integer, default=None,
                   help="seeds first-seed, first-seed + 1, ... (default: 0); choose settings on other seeds than you report")
    p.add_argument("--agents", default=None, help=f"comma-separated configs (default: {','.join(ZOO)})")
    p.add_argument("--games", default=None, help=f"comma-separated games from {','.join(GAMES)}")
    p.add_argument("--num-worlds", type=integer, default=None)
    p.add_argument("--jobs", type=integer, default=usable_cores(),
                   help="runs in parallel, one torch thread each (default: this machine's cores, %(default)s)")
    p.add_argument("--out", default=None, help="output directory (default: leaderboard/<preset>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable)")
    return p


def preset_from_args(ns: argparse.Namespace) -> Preset:
    preset = PRESETS[ns.preset]
    # ranges are checked with the rest, by plan
    changes: dict[str, Any] = {k: getattr(ns, k) for k in ("total_steps", "seeds", "first_seed", "num_worlds") if getattr(ns, k) is not None}
    if ns.total_steps is not None:  # one budget for every game
        changes["game_steps"] = {}
    for key in ("agents", "games"):
        if getattr(ns, key):
            changes[key] = tuple(x.strip() for x in getattr(ns, key).split(",") if x.strip())
    if ns.overrides:
        changes["overrides"] = tuple(preset.overrides) + tuple(ns.overrides)
    return replace(preset, **changes)


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        preset = preset_from_args(ns)
        out = Path(ns.out or Path("leaderboard") / ns.preset)
        run_leaderboard(preset, out, jobs=ns.jobs)
    except ConfigError as exc:  # bad arguments or combinations (before anything is written), a locked run dir
        return report("ssd-leaderboard", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
