"""Box Trapped reproduction (Jaques et al. 2019, supplement section 3, Figs. 4-5).

Trains ``a3c``, ``influence_moa`` and ``influence_basic`` on Box Trapped (5 seeds each, same
budget, two processes at a time), then evaluates every seed for 100 episodes and writes to ``--out``:

* ``box_trapped_table.md`` / ``.csv``: share of episodes in which the influencer opens the box, per
  config and seed (sampled actions, i.e. the trained stochastic policy, and greedy actions);
* ``box_trapped_open_step.png``: histogram of the step at which the box is opened (paper Fig. 4);
* ``box_trapped_influence.png``: influence reward of the influencer over one trajectory (Fig. 5);
* ``box_trapped_diagnose.json``: per run, the trapped agent's policy in the step of a forced opening
  and one step after it, against the box kept shut, the true influence of opening in that step and
  the next next to the MOA's estimate or the centralised reward, and the
  influencer's return when it opens at once or never (``diagnose``).

    python benchmarks/box_trapped_repro.py                   # 600k agent-steps per run, seeds 0-4
    python benchmarks/box_trapped_repro.py --first-seed 100 --seeds 2   # pilot seeds, to choose settings on
    python benchmarks/box_trapped_repro.py --phase eval      # evaluate already trained runs
    python benchmarks/box_trapped_repro.py --phase diagnose  # does OPEN_BOX change the trapped agent's
                              # next action, does the MOA see it, what does opening cost the influencer?

Paper: a selfish A3C influencer opens the box in 0% of trajectories, the influence agent in 88%.
Training resumes from checkpoints, so an interrupted run can simply be started again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = ("a3c", "influence_moa", "influence_basic")
INFLUENCE = ("influence_moa", "influence_basic")


def _train_one(job: tuple[str, int, int, int, str, list[str]]) -> dict:
    agent, seed, total, worlds, root, overrides = job
    import torch

    torch.set_num_threads(1)
    from baselines.train import TrainArgs, run_training

    run_dir = Path(root) / agent / f"seed{seed}"
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        s = json.loads(summary_path.read_text())
        if s.get("agent_steps", 0) >= total:
            return s
    args = TrainArgs(agent=agent, game="box_trapped", total_steps=total, seed=seed, num_worlds=worlds,
                     run_dir=str(run_dir), checkpoint_every=max(total // 5, 1), progress=False,
                     overrides=list(overrides))
    return run_training(args)


def seeds(args: argparse.Namespace) -> range:
    return range(args.first_seed, args.first_seed + args.seeds)


def train(args: argparse.Namespace) -> None:
    jobs = [(agent, seed, args.total_steps, args.num_worlds, args.runs, args.overrides)
            for agent in args.configs for seed in seeds(args)]
    t0 = time.time()
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for s in pool.imap_unordered(_train_one, jobs):
            print(f"[{time.time() - t0:7.1f}s] trained {s['agent']} seed {s['seed']}: {s['agent_steps']} agent-steps, "
                  f"{s.get('agent_steps_per_s', '?')} agent-steps/s", flush=True)
    print(f"training wall time: {time.time() - t0:.0f} s")


def evaluate_all(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baselines.evaluate import evaluate_run

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    open_steps: dict[str, list[int]] = {c: [] for c in args.configs}
    traces: dict[str, dict] = {}
    for agent in args.configs:
        for seed in seeds(args):
            run_dir = Path(args.runs) / agent / f"seed{seed}"
            row = {"config": agent, "seed": seed}
            for mode, greedy in (("sampled", False), ("greedy", True)):
                res = evaluate_run(run_dir, episodes=args.episodes, seed=10_000 + seed, deterministic=greedy,
                                   num_worlds=min(args.episodes, 50), record_influence=(agent in INFLUENCE))
                eps = res["episodes"]
                opened = [e["box_opened"] for e in eps]
                row[f"open_share_{mode}"] = float(np.mean(opened))
                steps = [int(e["box_open_step"]) for e in eps if e["box_opened"]]
                row[f"median_open_step_{mode}"] = float(np.median(steps)) if steps else float("nan")
                if mode == "sampled":
                    open_steps[agent] += steps
                    if agent in INFLUENCE and agent not in traces and res.get("influence_trace") is not None:
                        traces[agent] = res["influence_trace"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    _write_table(out, rows, args)
    fig, axes = plt.subplots(1, len(args.configs), figsize=(5 * len(args.configs), 3.5), sharey=True, squeeze=False)
    for ax, agent in zip(axes[0], args.configs):
        ax.hist(open_steps[agent], bins=np.arange(0, 101, 2), color="tab:purple")
        n_eps = args.episodes * args.seeds
        ax.set_title(f"{agent}: box opened in {len(open_steps[agent])}/{n_eps} episodes")
        ax.set_xlabel("step at which the box is opened")
    axes[0, 0].set_ylabel("episodes (sampled actions)")
    fig.tight_layout()
    fig.savefig(out / "box_trapped_open_step.png", dpi=110)
    plt.close(fig)
    if traces:
        fig, axes = plt.subplots(1, len(traces), figsize=(7 * len(traces), 3), squeeze=False)
        for ax, (agent, trace) in zip(axes[0], traces.items()):
            ax.plot([step[0] for step in trace["influence"]], color="tab:purple", label="influencer's influence reward")
            if trace.get("open_step") is not None:
                ax.axvline(trace["open_step"], color="k", ls="--", lw=1, label=f"box opened (step {trace['open_step']})")
            ax.set_title(agent)
            ax.set_xlabel("step")
            ax.set_ylabel("influence reward (raw, unweighted)")
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / "box_trapped_influence.png", dpi=110)
        plt.close(fig)


def diagnose(args: argparse.Namespace, agent: str = "influence_moa", seed: int = 0, worlds: int = 32) -> dict:
    """Does OPEN_BOX change the trapped agent's next action, does the MOA see it, what does it cost?

    Plays the trained pair of ``agent``/``seed`` for one episode in ``worlds`` worlds: at step 0 the
    influencer is made to OPEN_BOX in half the worlds and to STAY in the other half, where the box
    then stays shut all episode (any later OPEN_BOX is replaced by STAY). Reports the trapped
    agent's policy at step 0 (the step of the opening: only influence_basic's trapped agent sees
    the influencer's action then) and at step 1 in both halves, and the true influence of the opening
    in each, KL(policy of the opened worlds || mean policy with the box shut) averaged over the opened
    worlds (at step 1: what a perfect MOA would give), next to the influence reward of step 0 (the
    learned MOA's or the centralised one), and the influencer's and trapped agent's episode returns
    in both halves: what opening at once costs a selfish influencer. (With ``momentary_door`` the
    box of an opened world shuts again if the trapped agent did not step out at step 0.)
    """
    import torch as th

    from baselines.envs import base_of
    from baselines.evaluate import load_run, restore_players

    th.set_num_threads(1)
    loaded = load_run(Path(args.runs) / agent / f"seed{seed}")
    players = restore_players(loaded, worlds, 777, learner_seed=0)
    venv, infl = players.venv, players.infl
    game = base_of(venv).game
    names = list(game.action_names)
    open_action, stay = names.index("OPEN_BOX"), names.index("STAY")
    obs = venv.reset()
    lstm = players.initial_lstm_states()
    acts = np.zeros(venv.num_envs, dtype=np.int64)
    probs = np.zeros((venv.num_envs, venv.action_space.n), dtype=np.float32)
    opened = np.arange(worlds) % 2 == 0

    def steer(t: int):
        """The influencer (learner 0) opens at step 0 in half the worlds and never in the others."""
        def edit(k: int, actions: np.ndarray) -> np.ndarray:
            if k != 0:
                return actions
            if t == 0:
                return np.where(opened, open_action, stay)
            return np.where((~opened) & (actions == open_action), stay, actions)
        return edit

    returns = np.zeros((worlds, 2))
    res = {"config": agent, "seed": seed}
    for t in range(game.max_cycles):
        players.act(obs, lstm, [np.full(len(g), t == 0) for g in players.groups], acts, probs, edit=steer(t))
        if t <= 1:  # t 0: the trapped agent's policy in the opening step (what influence_basic sees); t 1: after it
            trapped = probs[1::2].astype(np.float64)
            shut_mean = trapped[~opened].mean(0)
            kl = np.sum(trapped[opened] * np.log(trapped[opened] / shut_mean), axis=1).mean()
            when = "in_opening_step" if t == 0 else "after_opening"
            res.update({f"trapped_policy_{when}": [round(float(x), 3) for x in trapped[opened].mean(0)],
                        f"trapped_policy_box_shut_{when}": [round(float(x), 3) for x in shut_mean],
                        f"true_influence_of_opening_{when}_nats": round(float(kl), 4)})
        if infl is not None:
            venv.set_action_probs(probs)
        obs, rewards, dones, infos = venv.step(acts)
        players.stepped(obs, lstm, rewards, dones, infos)
        returns += np.array([i.get("extrinsic_reward", r) for i, r in zip(infos, rewards)]).reshape(worlds, 2)
        if t == 0 and "influence_reward" in infos[0]:  # the learned MOA's estimate, or the centralised value
            source = "moa" if infl is not None else "centralised"
            reward = np.array([infos[2 * w]["influence_reward"] for w in range(worlds)])
            res.update({f"{source}_influence_reward_opening": round(float(reward[opened].mean()), 5),
                        f"{source}_influence_reward_staying": round(float(reward[~opened].mean()), 5),
                        "influence_weight": (infl or players.social).influence_weight})
    res.update(influencer_return_opened=round(float(returns[opened, 0].mean()), 2),
               influencer_return_shut=round(float(returns[~opened, 0].mean()), 2),
               trapped_return_opened=round(float(returns[opened, 1].mean()), 2),
               actions=names)
    print(json.dumps(res))
    return res


def _write_table(out: Path, rows: list[dict], args: argparse.Namespace) -> None:
    import csv

    keys = list(rows[0])
    with open(out / "box_trapped_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    extra = f", overrides {' '.join(args.overrides)}" if args.overrides else ""
    lines = [f"Box Trapped, {args.total_steps} agent-steps per run, {args.episodes} evaluation episodes per seed{extra}", "",
             "| config | seed | box opened (sampled) | median open step (sampled) | box opened (greedy) | median open step (greedy) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['seed']} | {r['open_share_sampled']:.0%} | {r['median_open_step_sampled']:.0f} | "
                     f"{r['open_share_greedy']:.0%} | {r['median_open_step_greedy']:.0f} |")
    for agent in args.configs:
        sub = [r for r in rows if r["config"] == agent]
        lines.append(f"| **{agent} mean** | {len(sub)} seeds | {np.mean([r['open_share_sampled'] for r in sub]):.0%} | | "
                     f"{np.mean([r['open_share_greedy'] for r in sub]):.0%} | |")
    (out / "box_trapped_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", choices=("all", "train", "eval", "diagnose"), default="all")
    p.add_argument("--total-steps", type=int, default=600_000, help="agent-steps per run (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=5, help="how many seeds (default: %(default)s)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ... (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--num-worlds", type=int, default=32)
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--runs", default="runs/box_trapped_repro")
    p.add_argument("--out", default="benchmarks/results/box_trapped")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS),
                   help="only these configs (default: all three)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every config, e.g. --set ppo.ent_coef=0.03 (repeatable)")
    args = p.parse_args(argv)
    if args.phase in ("all", "train"):
        train(args)
    if args.phase in ("all", "eval"):
        evaluate_all(args)
    if args.phase in ("all", "diagnose"):
        rows = [diagnose(args, agent, seed) for agent in args.configs for seed in seeds(args)]
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "box_trapped_diagnose.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
