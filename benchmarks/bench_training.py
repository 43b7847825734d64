"""Training throughput of the zoo, against the code before and against plain sb3-contrib.

    python benchmarks/bench_training.py                  # a3c, influence_moa, the old zoo, plain sb3-contrib
    python benchmarks/bench_training.py --no-baseline --no-plain --agents a3c,prosocial

Everything runs on ``--game`` (default ``cleanup_small``) in ``--num-worlds`` worlds (32) on one torch
thread, and is timed as ``--iterations`` rollouts + PPO updates after a warm-up one. The three
measurements are interleaved ``--repeats`` times (so load on a shared machine hits all of them) and
the table gives medians:

* the zoo (``baselines``) as it is here, for each of ``--agents``, with the wall-time shares of the
  game engine, the reward wrappers (for influence_moa: the MOA; for influence_basic and influence_comm:
  their counterfactual passes through the others' policies), the policy's forward pass, the
  rollout buffers and the PPO update;
* the same measurement of the zoo at git revision ``--baseline-rev`` (default: the last commit before
  the training speed-up), checked out in a temporary git worktree and run with its own configs;
* plain sb3-contrib, as a user would run it without the zoo: ``RecurrentPPO("CnnLstmPolicy").learn()``
  on the game's PettingZoo env through SuperSuit (``pettingzoo_env_to_vec_env_v1`` +
  ``concat_vec_envs_v1``) and ``VecMonitor``, with the paper's network (our features extractor,
  LSTM 128) and the a3c config's PPO settings (rollout length, minibatch, epochs), once with
  sb3-contrib's default critic (a second LSTM) and once with its cheapest (``shared_lstm=True``: the
  value head on the detached policy LSTM).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAIN = {True: "plain sb3-contrib (its default critic LSTM)", False: "plain sb3-contrib (shared_lstm, detached critic)"}
#: the last commit before the training speed-up (issue: "the zoo shows the social dilemma on a CPU")
BASELINE_REV = "eaa9787"


def bench(agent: str, game: str, num_worlds: int, iterations: int, num_agents: int | None, seed: int = 0,
          overrides: tuple[str, ...] = ()) -> dict:
    """The zoo's agent-steps/s and where the time goes (one config, this checkout)."""
    import torch

    torch.set_num_threads(1)
    from baselines.config import load_agent_config
    from baselines.envs import base_of
    from baselines.train import TrainArgs, build

    args = TrainArgs(agent=agent, game=game, total_steps=10**9, num_worlds=num_worlds, num_agents=num_agents, seed=seed)
    cfg = load_agent_config(agent, game, ["influence.curriculum_fraction=0.0", *overrides])
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
    trainer.stats.env_s = trainer.stats.policy_s = trainer.stats.buffer_s = trainer.stats.social_s = 0.0
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
    venv.close()
    return {
        "agent": agent, "game": game, "num_agents": int(venv.num_agents), "num_worlds": num_worlds,
        "agent_steps": steps, "wall_s": round(wall, 2), "agent_steps_per_s": round(steps / wall, 1),
        "engine_share": round(engine_s[0] / wall, 4),
        # the reward wrappers (influence_moa: its MOA) and the centralised agents' counterfactual passes
        "wrapper_share": round((trainer.stats.env_s - engine_s[0] + trainer.stats.social_s) / wall, 4),
        "policy_forward_share": round(trainer.stats.policy_s / wall, 4),
        "buffer_share": round(trainer.stats.buffer_s / wall, 4),
        "ppo_update_share": round(train_s / wall, 4),
    }


def bench_plain_sb3(game: str, num_worlds: int, iterations: int, critic_lstm: bool, seed: int = 0,
                    overrides: tuple[str, ...] = ()) -> dict:
    """Plain sb3-contrib ``RecurrentPPO.learn()`` through SuperSuit, with the a3c config's settings;
    ``critic_lstm``: sb3-contrib's default critic (an LSTM of its own), else its cheapest shared one."""
    import supersuit as ss
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import VecMonitor

    import ssd_gym
    from baselines.config import load_agent_config
    from baselines.network import SSDFeaturesExtractor

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    p = load_agent_config("a3c", game, list(overrides)).ppo
    env = ss.pettingzoo_env_to_vec_env_v1(ssd_gym.parallel_env(game, obs_mode="rgb"))
    venv = VecMonitor(ss.concat_vec_envs_v1(env, num_worlds, num_cpus=0, base_class="stable_baselines3"))
    model = RecurrentPPO(
        "CnnLstmPolicy", venv, n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs, gamma=p.gamma,
        gae_lambda=p.gae_lambda, clip_range=p.clip_range, ent_coef=p.ent_coef, vf_coef=p.vf_coef,
        max_grad_norm=p.max_grad_norm, learning_rate=p.lr_init, device="cpu",  # seed=: SuperSuit's ConcatVecEnv has no seed()
        policy_kwargs=dict(features_extractor_class=SSDFeaturesExtractor, features_extractor_kwargs=dict(use_actions=False),
                           net_arch=[], lstm_hidden_size=128, shared_lstm=not critic_lstm, enable_critic_lstm=critic_lstm),
    )
    rollout = p.n_steps * venv.num_envs
    model.learn(rollout)  # warm-up
    t0 = time.perf_counter()
    model.learn(rollout * iterations, reset_num_timesteps=False)
    wall = time.perf_counter() - t0
    venv.close()
    return {"agent": PLAIN[critic_lstm], "agent_steps": rollout * iterations, "wall_s": round(wall, 2),
            "agent_steps_per_s": round(rollout * iterations / wall, 1)}


def bench_revision(worktree: Path, agents: str, game: str, num_worlds: int, iterations: int) -> list[dict]:
    """This script's measurement of the zoo checked out in ``worktree`` (that revision's own
    bench_training.py, in a subprocess so that it imports that revision's packages)."""
    out = worktree / "bench.json"
    subprocess.run([sys.executable, str(worktree / "benchmarks" / "bench_training.py"), "--agents", agents,
                    "--game", game, "--num-worlds", str(num_worlds), "--iterations", str(iterations), "--json", str(out)],
                   check=True, cwd=worktree, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def make_worktree(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="ssd-bench-rev-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", default="a3c,influence_moa")
    p.add_argument("--game", default="cleanup_small")
    p.add_argument("--num-agents", type=int, default=None)
    p.add_argument("--num-worlds", type=int, default=32)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the table gives medians")
    p.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision to compare with (default: %(default)s)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the old revision")
    p.add_argument("--no-plain", dest="plain", action="store_false", help="skip plain sb3-contrib")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for this checkout's zoo and plain sb3-contrib's PPO settings (repeatable)")
    p.add_argument("--json", default=None, help="write the table's rows here (this revision's, one per config)")
    args = p.parse_args(argv)
    agents = [a.strip() for a in args.agents.split(",")]
    runs: dict[str, list[dict]] = {}
    worktree = make_worktree(args.baseline_rev) if args.baseline else None
    try:
        for r in range(args.repeats):
            for agent in agents:
                runs.setdefault(agent, []).append(bench(agent, args.game, args.num_worlds, args.iterations, args.num_agents,
                                                         overrides=tuple(args.overrides)))
            if worktree is not None:
                for row in bench_revision(worktree, args.agents, args.game, args.num_worlds, args.iterations):
                    runs.setdefault(f"{row['agent']} @ {args.baseline_rev}", []).append(row)
            if args.plain:
                for critic_lstm in (True, False):
                    row = bench_plain_sb3(args.game, args.num_worlds, args.iterations, critic_lstm, overrides=tuple(args.overrides))
                    runs.setdefault(row["agent"], []).append(row)
            print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]['agent_steps_per_s']:.0f}" for k, v in runs.items()),
                  file=sys.stderr, flush=True)
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)

    def med(name: str, key: str = "agent_steps_per_s") -> float:
        return statistics.median(row[key] for row in runs[name])

    a3c = med("a3c") if "a3c" in runs else None
    settings = f", settings {' '.join(args.overrides)}" if args.overrides else ""
    print(f"game {args.game}, {args.num_worlds} worlds{settings}, one torch thread, {args.iterations} rollouts + updates after a "
          f"warm-up, median of {args.repeats} interleaved repeats (agent-steps/s)\n")
    print("| what | agent-steps/s (median) | all repeats | wall time vs a3c | env (engine) | reward wrappers / influence | policy forward | buffers | PPO update |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for name, rows in runs.items():
        speed = med(name)
        rel = f"{a3c / speed:.2f}x" if a3c and name in agents else ""
        shares = ["", "", "", "", ""]
        if "engine_share" in rows[0]:
            shares = [f"{med(name, k):.1%}" for k in ("engine_share", "wrapper_share", "policy_forward_share",
                                                       "buffer_share", "ppo_update_share")]
        repeats = ", ".join(f"{row['agent_steps_per_s']:.0f}" for row in rows)
        print(f"| {name} | {speed:,.0f} | {repeats} | {rel} | " + " | ".join(shares) + " |")
    if a3c:
        print()
        for name in runs:
            if name not in agents and not name.startswith("influence"):
                print(f"a3c vs {name}: {a3c / med(name):.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps([{**rows[0], "agent_steps_per_s": med(a)} for a, rows in runs.items() if a in agents], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
