"""Environment throughput: env-steps/s and agent-steps/s with random actions, observations
produced, for Cleanup and Harvest with 5 agents.

    python benchmarks/bench_env.py [--steps 2000] [--repeats 5] [--batch 1 16 64 256]

Prints the median of ``--repeats`` timed runs (after a warm-up that also compiles the kernels):
* "pettingzoo": one env through the PettingZoo ParallelEnv API (dict actions in, dict
  observations/rewards/infos out);
* "batched B": the SB3 VecEnv over B worlds x 5 agents (obs dict of arrays).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import ssd_gym


def bench_parallel(game: str, steps: int, seed: int = 0) -> float:
    env = ssd_gym.parallel_env(game, max_cycles=10**9)
    env.reset(seed=seed)
    agents = env.possible_agents
    A = env.action_space(agents[0]).n
    acts = np.random.default_rng(seed).integers(0, A, size=(steps, len(agents)))
    action_dicts = [dict(zip(agents, row.tolist())) for row in acts]
    t0 = time.perf_counter()
    for d in action_dicts:
        env.step(d)
    return steps / (time.perf_counter() - t0)


def bench_vec(game: str, num_worlds: int, steps: int, seed: int = 0) -> float:
    venv = ssd_gym.vector_env(game, num_worlds)
    venv.seed(seed)
    venv.reset()
    A = venv.action_space.n
    acts = np.random.default_rng(seed).integers(0, A, size=(steps, venv.num_envs))
    t0 = time.perf_counter()
    for a in acts:
        venv.step_async(a)
        venv.step_wait()
    return steps * num_worlds / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2000, help="env steps per timed run (batched: per world)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--games", nargs="+", default=["cleanup", "harvest"])
    args = p.parse_args()
    N = 5
    print(f"| game | face | env-steps/s | agent-steps/s |")
    print(f"|---|---|---:|---:|")
    for game in args.games:
        bench_parallel(game, 200)  # warm-up / compile
        runs = [bench_parallel(game, args.steps, seed=r) for r in range(args.repeats)]
        med = statistics.median(runs)
        print(f"| {game} | pettingzoo (1 env) | {med:,.0f} | {med * N:,.0f} |", flush=True)
        for B in args.batch:
            steps = max(50, args.steps // max(1, B // 4))
            bench_vec(game, B, 20)
            runs = [bench_vec(game, B, steps, seed=r) for r in range(args.repeats)]
            med = statistics.median(runs)
            print(f"| {game} | batched B={B} | {med:,.0f} | {med * N:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
