"""Throughput of the social-reward wrappers: env-steps/s of each game bare and wrapped.

    python benchmarks/bench_wrappers.py                    # all games, median of 5 runs
    python benchmarks/bench_wrappers.py --games cleanup --steps 3000 --repeats 7
    python benchmarks/bench_wrappers.py --json out.json    # also write the numbers

PettingZoo face: one env, random actions precomputed, episodes reset as they end, observations
included; InfluenceReward with its defaults (MOA acting every step and training every 64 steps).
VecEnv face: ``ssd_gym.vector_env`` with each of ``--worlds`` world counts, bare and under
InfluenceRewardVecEnv (env-steps/s = worlds x vector steps/s).  Each number is the median over
``--repeats`` fresh runs; the machine's load average is printed because the runs share the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ssd_gym  # noqa: E402

from wrappers import (  # noqa: E402
    CommunicationChannel,
    InequityAversionReward,
    InfluenceReward,
    InfluenceRewardVecEnv,
    ProsocialReward,
)

GAMES = ["cleanup", "harvest", "box_trapped", "cleanup_small", "harvest_small"]

PARALLEL = {
    "bare": lambda e: e,
    "prosocial": lambda e: ProsocialReward(e),
    "inequity_aversion": lambda e: InequityAversionReward(e, observe_smoothed_rewards=True),
    "communication": lambda e: CommunicationChannel(e, vocab_size=8),
    "influence": lambda e: InfluenceReward(e),
    # opt-in torch.compile of the MOA's acting pass (compiles on its first step; warm-up covers it)
    "influence_compiled": lambda e: InfluenceReward(e, compile_moa=True),
}
DEFAULT_WRAPPERS = ["bare", "prosocial", "inequity_aversion", "communication", "influence"]


def run_parallel(game: str, wrap, steps: int, warmup: int = 50) -> float:
    env = wrap(ssd_gym.parallel_env(game))
    env.reset(seed=0)
    agents = env.possible_agents
    rng = np.random.default_rng(0)
    spaces = [env.action_space(a) for a in agents]
    if hasattr(spaces[0], "nvec"):  # communication: (env action, symbol)
        acts = [{a: rng.integers(s.nvec) for a, s in zip(agents, spaces)} for _ in range(steps + warmup)]
    else:
        acts = [{a: int(rng.integers(s.n)) for a, s in zip(agents, spaces)} for _ in range(steps + warmup)]
    for i in range(warmup):
        env.step(acts[i])
        if not env.agents:
            env.reset()
    t = time.perf_counter()
    for i in range(warmup, warmup + steps):
        env.step(acts[i])
        if not env.agents:
            env.reset()
    return steps / (time.perf_counter() - t)


def run_vector(game: str, worlds: int, influence: bool, steps: int, warmup: int = 20) -> float:
    venv = ssd_gym.vector_env(game, worlds)
    if influence:
        venv = InfluenceRewardVecEnv(venv)
    venv.seed(0)
    venv.reset()
    rng = np.random.default_rng(0)
    acts = rng.integers(venv.action_space.n, size=(steps + warmup, venv.num_envs))
    for i in range(warmup):
        venv.step(acts[i])
    t = time.perf_counter()
    for i in range(warmup, warmup + steps):
        venv.step(acts[i])
    return steps * worlds / (time.perf_counter() - t)


def median_of(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", nargs="+", default=GAMES, choices=GAMES)
    ap.add_argument("--wrappers", nargs="+", default=DEFAULT_WRAPPERS, choices=list(PARALLEL),
                    help="default: all but influence_compiled (which compiles for ~10-30 s per run)")
    ap.add_argument("--steps", type=int, default=1000, help="timed env steps per run (default 1000)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per number; the median is reported")
    ap.add_argument("--worlds", type=int, nargs="*", default=[8, 32],
                    help="world counts for the VecEnv face (none to skip); default 8 32")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    print(f"# bench_wrappers: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, load average before: {os.getloadavg()[0]:.2f}")
    print(f"# env-steps/s, median of {args.repeats} runs of {args.steps} steps\n")
    cols = list(args.wrappers)
    vec_cols = [f"vec{w}_{kind}" for w in args.worlds for kind in ("bare", "influence")]
    print("| game | agents | " + " | ".join(cols + vec_cols) + " |")
    print("|---|---|" + "---|" * (len(cols) + len(vec_cols)))
    results = {}
    for game in args.games:
        n = len(ssd_gym.parallel_env(game).possible_agents)
        row = {}
        for name in cols:
            row[name] = median_of(lambda: run_parallel(game, PARALLEL[name], args.steps), args.repeats)
        for w in args.worlds:
            vsteps = max(64, args.steps // w)  # at least one MOA training round per run
            for kind in ("bare", "influence"):
                row[f"vec{w}_{kind}"] = median_of(
                    lambda: run_vector(game, w, kind == "influence", vsteps), args.repeats)
        results[game] = {"agents": n, **row}
        print(f"| {game} | {n} | " + " | ".join(f"{row[c]:,.0f}" for c in cols + vec_cols) + " |", flush=True)
    print(f"\n# load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "repeats": args.repeats, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
