"""Training throughput of the zoo and where its wall time goes.

    python benchmarks/bench_training.py                         # a3c and influence_moa on cleanup_small
    python benchmarks/bench_training.py --game cleanup --num-agents 5 --agents a3c,influence_moa

For each config: builds the real training stack (batched env + reward wrapper + lockstep
RecurrentPPO learners), runs one warm-up iteration, then times ``--iterations`` iterations of
rollout + PPO update on one torch thread. Reports agent-steps/s and the share of wall time spent in
the game engine and in the reward wrappers (the MOA's forward, counterfactuals and training live in
the influence wrapper), and influence_moa's wall time relative to a3c.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench(agent: str, game: str, num_worlds: int, iterations: int, num_agents: int | None, seed: int = 0) -> dict:
    import torch

    torch.set_num_threads(1)
    from baselines.config import load_agent_config
    from baselines.envs import base_of
    from baselines.train import TrainArgs, build

    args = TrainArgs(agent=agent, game=game, total_steps=10**9, num_worlds=num_worlds, num_agents=num_agents, seed=seed)
    cfg = load_agent_config(agent, game, ["influence.curriculum_fraction=0.0"])
    venv, trainer, _ = build(cfg, args, env_seed=seed)
    base = base_of(venv)
    engine_s = [0.0]
    raw_step_wait = base.step_wait

    def timed_step_wait():  # time the game engine alone, under the wrappers
        t = time.perf_counter()
        out = raw_step_wait()
        engine_s[0] += time.perf_counter() - t
        return out

    base.step_wait = timed_step_wait
    trainer.reset()
    trainer.collect_rollouts()  # warm-up: numba/torch first calls
    trainer.train()
    engine_s[0] = 0.0
    trainer.stats.env_s = trainer.stats.policy_s = trainer.stats.buffer_s = 0.0
    steps0 = trainer.num_timesteps
    t0 = time.perf_counter()
    train_s = 0.0
    for _ in range(iterations):
        trainer.collect_rollouts()
        t = time.perf_counter()
        trainer.train()
        train_s += time.perf_counter() - t
    wall = time.perf_counter() - t0
    steps = trainer.num_timesteps - steps0
    env_and_wrappers = trainer.stats.env_s
    return {
        "agent": agent, "game": game, "num_agents": int(venv.num_agents), "num_worlds": num_worlds,
        "agent_steps": steps, "wall_s": round(wall, 2), "agent_steps_per_s": round(steps / wall, 1),
        "engine_share": round(engine_s[0] / wall, 4),
        "wrapper_share": round((env_and_wrappers - engine_s[0]) / wall, 4),
        "env_and_wrappers_share": round(env_and_wrappers / wall, 4),
        "policy_forward_share": round(trainer.stats.policy_s / wall, 4),
        "buffer_share": round(trainer.stats.buffer_s / wall, 4),
        "ppo_update_share": round(train_s / wall, 4),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", default="a3c,influence_moa")
    p.add_argument("--game", default="cleanup_small")
    p.add_argument("--num-agents", type=int, default=None)
    p.add_argument("--num-worlds", type=int, default=16)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rows = [bench(a.strip(), args.game, args.num_worlds, args.iterations, args.num_agents) for a in args.agents.split(",")]
    base = next((r for r in rows if r["agent"] == "a3c"), rows[0])
    print(f"game {args.game}, {rows[0]['num_agents']} agents, {args.num_worlds} worlds, one torch thread, "
          f"{args.iterations} iterations after a warm-up\n")
    print("| config | agent-steps/s | wall time vs a3c | env (engine) | reward wrappers | env + wrappers | policy forward | buffers | PPO update |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rel = base["agent_steps_per_s"] / r["agent_steps_per_s"]
        print(f"| {r['agent']} | {r['agent_steps_per_s']:.0f} | {rel:.2f}x | {r['engine_share']:.1%} | {r['wrapper_share']:.1%} | "
              f"{r['env_and_wrappers_share']:.1%} | {r['policy_forward_share']:.1%} | {r['buffer_share']:.1%} | {r['ppo_update_share']:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
