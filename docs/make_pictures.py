"""Regenerate the README pictures: each game after 30 random steps, with agents' views.

    python docs/make_pictures.py
"""
from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np

import ssd_gym
from ssd_gym.rendering import _frame, draw_world

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    banner = []
    for name in ssd_gym.GAMES:
        env = ssd_gym.parallel_env(name, render_mode="rgb_array", render_scale=12)
        env.reset(seed=1)
        rng = np.random.default_rng(1)
        # Box Trapped: keep the box shut for the picture (OPEN_BOX is the last action)
        n = env.action_space("agent_0").n - (1 if name == "box_trapped" else 0)
        for _ in range(30):
            env.step({a: int(rng.integers(n)) for a in env.agents})
        path = os.path.join(HERE, "images", f"{name}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        iio.imwrite(path, _frame(env, with_views=True))
        print(path)
        if name in ("cleanup", "harvest", "box_trapped"):
            banner.append(draw_world(env.engine, 0, 10))
    h = max(im.shape[0] for im in banner)
    padded = [np.pad(im, ((0, h - im.shape[0]), (0, 12), (0, 0)), constant_values=255) for im in banner]
    iio.imwrite(os.path.join(HERE, "images", "banner.png"), np.concatenate(padded, axis=1))


if __name__ == "__main__":
    main()
