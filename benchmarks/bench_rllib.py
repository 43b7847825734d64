"""RLlib throughput (needs the rllib extra): sampling with 0, 1 and 2 env runners, and full PPO
iterations, next to our own env faces without RLlib.

    python benchmarks/bench_rllib.py [--game cleanup_small] [--agent a3c] [--runners 0 1 2]
        [--envs-per-runner 1 8] [--repeats 5]

Setting: the zoo's training benchmark (``benchmarks/bench_training.py``): cleanup_small, 3 agents,
the a3c config (the paper's network, independent learners: one module per agent), a train batch of
1,600 env-steps (4,800 agent-steps: the zoo's 32 worlds x 50-step rollouts), minibatch 1,600, 4
epochs, LSTM sequences of 50 steps; the driver (and its local learner) uses one torch thread, as the
zoo's benchmark does. Medians of ``--repeats`` after a warm-up:

* "RLlib sampling, R runners x E envs": ``env_runner.sample()`` of ``--sample-steps`` env-steps on
  every runner at once (each runner steps its E env copies as one batch) (policy forward passes included; the episodes stay on the runners), total env-steps
  over wall time; R = 0 samples in the driver process;
* "RLlib PPO iteration, R runners x E envs": ``algo.train()`` (sampling, moving the episodes to the learner,
  GAE, 4 epochs of SGD, weight sync), agent-steps per iteration over ``time_this_iter_s``;
* "adapter, random actions": our ``SSDMultiAgentEnv`` (the PettingZoo env + observation copies)
  stepped in a loop with random actions, no RLlib: the env's share of a runner's time;
* "VecEnv, 32 worlds, random actions": ``ssd_gym.vector_env`` (what the zoo trains on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def bench_adapter(game: str, steps: int, seed: int = 0) -> float:
    from baselines.rllib.env import env_creator

    env = env_creator({"game": game, "env_options": {"max_cycles": 10**9}})
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    acts = rng.integers(0, env.action_spaces[env.possible_agents[0]].n, size=(steps, len(env.possible_agents)))
    dicts = [dict(zip(env.possible_agents, row.tolist())) for row in acts]
    t0 = time.perf_counter()
    for d in dicts:
        env.step(d)
    return steps / (time.perf_counter() - t0)


def bench_vec(game: str, worlds: int, steps: int, seed: int = 0) -> float:
    import ssd_gym

    venv = ssd_gym.vector_env(game, worlds, obs_mode="rgb")
    venv.seed(seed)
    venv.reset()
    acts = np.random.default_rng(seed).integers(0, venv.action_space.n, size=(steps, venv.num_envs))
    t0 = time.perf_counter()
    for a in acts:
        venv.step_async(a)
        venv.step_wait()
    return steps * worlds / (time.perf_counter() - t0)


def _sample(n: int):
    def run(env_runner):
        episodes = env_runner.sample(num_timesteps=n)
        return sum(len(e) for e in episodes), sum(e.agent_steps() for e in episodes)
    return run


def bench_rllib(args, runners: int, envs: int) -> tuple[list[float], list[float], int]:
    """(sampling env-steps/s per repeat, PPO agent-steps/s per repeat, agents)."""
    from baselines.config import load_agent_config
    from baselines.rllib.algo import agents_of, ppo_config

    cfg = load_agent_config(args.agent, args.game)
    n = len(agents_of(args.game, cfg.env))
    pc = ppo_config(cfg, args.game, total_env_steps=10**8, num_env_runners=runners, envs_per_runner=envs,
                    train_batch=args.train_batch, minibatch=args.minibatch)
    algo = pc.build_algo()
    try:
        group = algo.env_runner_group
        remote = runners > 0
        sample = []
        for r in range(args.repeats + 1):
            t0 = time.perf_counter()
            counts = group.foreach_env_runner(_sample(args.sample_steps), local_env_runner=not remote)
            dt = time.perf_counter() - t0
            if r:  # the first is a warm-up
                sample.append(sum(c[0] for c in counts) / dt)
        ppo = []
        for r in range(args.repeats + 1):
            result = algo.train()
            agent_steps = sum(result["env_runners"]["num_agent_steps_sampled"].values())
            if r:
                ppo.append(agent_steps / result["time_this_iter_s"])
        return sample, ppo, n
    finally:
        algo.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--game", default="cleanup_small")
    p.add_argument("--agent", default="a3c")
    p.add_argument("--runners", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--envs-per-runner", type=int, nargs="+", default=[1, 8],
                   help="env copies per runner (each runner steps them as one batch)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sample-steps", type=int, default=800, help="env-steps per runner per sampling repeat")
    p.add_argument("--train-batch", type=int, default=1600, help="env-steps per PPO iteration")
    p.add_argument("--minibatch", type=int, default=1600, help="agent-steps per SGD minibatch")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    args = p.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)
    print(f"load average at the start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; ray {ray.__version__}")
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    rows = []
    bench_adapter(args.game, 200)
    runs = [bench_adapter(args.game, 2000, seed=r) for r in range(args.repeats)]
    rows.append(("adapter (PettingZoo env + copies), random actions", runs, "env"))
    bench_vec(args.game, 32, 50)
    runs = [bench_vec(args.game, 32, 500, seed=r) for r in range(args.repeats)]
    rows.append(("VecEnv, 32 worlds, random actions", runs, "env"))
    ppo_rows = []
    for envs in args.envs_per_runner:
        for runners in args.runners:
            sample, ppo, n = bench_rllib(args, runners, envs)
            what = f"{runners} env runner{'s' if runners != 1 else ''} x {envs} env{'s' if envs != 1 else ''}"
            rows.append((f"RLlib sampling, {what}", sample, "env"))
            ppo_rows.append((f"RLlib PPO iteration, {what}", ppo))
    ray.shutdown()
    print(f"\ngame {args.game}, agent {args.agent}, {n} agents; medians of {args.repeats} after a warm-up\n")
    print("| what | env-steps/s (median) | agent-steps/s | all repeats (env-steps/s) |")
    print("|---|---:|---:|---|")
    for name, runs, _ in rows:
        m = statistics.median(runs)
        print(f"| {name} | {m:,.0f} | {m * n:,.0f} | {', '.join(f'{r:.0f}' for r in runs)} |")
    print("\n| what | agent-steps/s (median) | all repeats |")
    print("|---|---:|---|")
    for name, runs in ppo_rows:
        print(f"| {name} | {statistics.median(runs):,.0f} | {', '.join(f'{r:.0f}' for r in runs)} |")


if __name__ == "__main__":
    main()
