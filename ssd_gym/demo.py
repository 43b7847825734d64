"""A quick look at every game: one random-policy episode each, a metrics table, and a GIF.

    python -m ssd_gym.demo [--out ssd_demo] [--steps 200]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import ssd_gym


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="ssd_demo", help="folder for the GIFs")
    p.add_argument("--steps", type=int, default=200, help="steps per episode (max_cycles)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    print("| game | agents | collective return | equality | R*(1-G) | sustainability | peace | beams | GIF |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in ssd_gym.GAMES:
        env = ssd_gym.parallel_env(name, render_mode="rgb_array", render_scale=8,
                                   max_cycles=min(args.steps, ssd_gym.GAMES[name].default_max_cycles))
        rng = np.random.default_rng(args.seed)

        def policy(agent, obs):
            return int(rng.integers(env.action_space(agent).n))

        frames = ssd_gym.record_episode(env, policy, seed=args.seed)
        path = ssd_gym.write_video(frames, os.path.join(args.out, f"{name}.gif"), fps=10)
        ep = env.engine.episode_metrics(0)
        print(f"| {name} | {env.game.num_agents} | {ep['collective_return']:.0f} | {ep['equality']:.2f} | "
              f"{ep['equality_weighted_return']:.0f} | {ep['sustainability']:.0f} | {ep['peace']:.2f} | "
              f"{sum(ep['beams_fired'])} | {path} |")


if __name__ == "__main__":
    main()
