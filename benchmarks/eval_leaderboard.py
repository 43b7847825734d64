"""Sampled and greedy play of every finished run of a leaderboard, side by side.

    python benchmarks/eval_leaderboard.py leaderboard/quick --episodes 32 --out eval.md

The leaderboard scores a run by the episodes it played while training (sampled actions, the policy
still changing). This script loads each run's last checkpoint and plays ``--episodes`` fresh
episodes twice, once sampling the policy and once taking its argmax (``ssd-eval`` and
``ssd-eval --greedy``), and prints per game and config the mean over seeds of each run's mean,
with a 95% interval over seeds, and every seed's value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.config import ConfigError  # noqa: E402
from baselines.envs import METRIC_TITLES  # noqa: E402
from baselines.evaluate import evaluate_run, mean_ci95  # noqa: E402

METRICS = (("collective_return", 1), ("equality", 2), ("sustainability", 1))  # (metric, decimals)


def run_dirs(board: Path) -> list[Path]:
    """The board's training runs that have a checkpoint: ``runs/<game>/<config>/seed<k>``."""
    return sorted(p for p in (board / "runs").glob("*/*/seed*") if (p / "checkpoints").is_dir())


def evaluate_board(board: Path, episodes: int, seed: int) -> list[dict]:
    rows = []
    for run in run_dirs(board):
        for greedy in (False, True):
            res = evaluate_run(run, episodes=episodes, seed=seed, deterministic=greedy)
            rows.append({"game": res["game"], "config": res["agent"], "seed": int(run.name.removeprefix("seed")),
                         "mode": "greedy" if greedy else "sampled",
                         **{m: res["summary"][m][0] for m, _ in METRICS}})
            print(f"{run}: {rows[-1]['mode']} R={rows[-1]['collective_return']:.1f}", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict], episodes: int) -> str:
    lines = [f"Each run's last checkpoint, {episodes} fresh episodes per mode; mean over seeds of the runs' means "
             "± 95% interval over seeds (Student t); per seed in brackets.", ""]
    for game in dict.fromkeys(r["game"] for r in rows):
        lines += [f"### {game}", "", "| config | mode | seeds | " + " | ".join(METRIC_TITLES[m] for m, _ in METRICS) + " |",
                  "|---|---|---|" + "---|" * len(METRICS)]
        for config in dict.fromkeys(r["config"] for r in rows if r["game"] == game):
            for mode in ("sampled", "greedy"):
                runs = sorted((r for r in rows if (r["game"], r["config"], r["mode"]) == (game, config, mode)),
                              key=lambda r: r["seed"])
                cells = []
                for m, d in METRICS:
                    mean, half = mean_ci95([r[m] for r in runs])
                    seeds = ", ".join(f"{r[m]:.{d}f}" for r in runs)
                    cells.append(f"{mean:.{d}f} ± {half:.{d}f} ({seeds})")
                lines.append(f"| {config} | {mode} | {len(runs)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("board", type=Path, help="a leaderboard's --out directory (holds runs/)")
    p.add_argument("--episodes", type=int, default=32, help="episodes per run and mode (default: %(default)s)")
    p.add_argument("--seed", type=int, default=12345, help="the evaluation envs' seed (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    args = p.parse_args(argv)
    if not run_dirs(args.board):
        p.error(f"{args.board} holds no training runs with checkpoints (expected runs/<game>/<config>/seed<k>/)")
    try:  # evaluate_run checks its arguments before it plays
        text = table(evaluate_board(args.board, args.episodes, args.seed), args.episodes)
    except ConfigError as exc:
        p.error(str(exc))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
