"""What the zoo's tests run on: the real engine on a tiny Harvest map, with fast PPO settings.

The map is 5x2 cells of apples with 3 spawn points; 2 agents and 8-step episodes by default. The
views are the usual 15x15, so the network is the paper's; a random policy fires into its neighbour
often (-50 a hit), so a learner that stops firing shows up within a few thousand agent-steps.
"""

from __future__ import annotations

import json

import ssd_gym

GAME = "harvest_small"
TINY_MAP = ["@@@@@@@", "@PAAAP@", "@AAPAA@", "@@@@@@@"]
#: the config values that make 8-step episodes learnable in seconds (short horizon, high lr) and
#: one rollout 32 steps long
FAST = ["ppo.ent_coef=0.01", "ppo.lr_init=0.003", "ppo.lr_end=0.0003", "ppo.gamma=0.5", "ppo.n_steps=32",
        "ppo.batch_size=64"]
#: the tiny map as config overrides (``--set``), with 2 agents and 8-step episodes
MAP = [f"env.ascii_map={json.dumps(TINY_MAP)}", "env.num_agents=2", "env.max_cycles=8"]
TINY = MAP + FAST


def set_flags(overrides: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [x for o in overrides for x in ("--set", o)]


def tiny_env(num_worlds: int = 2, num_agents: int = 2, max_cycles: int = 8, obs_mode: str = "dict", seed: int = 0):
    """The batched env (``ssd_gym.vector_env``) on the tiny map, seeded."""
    env = ssd_gym.vector_env(GAME, num_worlds, ascii_map=TINY_MAP, num_agents=num_agents, max_cycles=max_cycles,
                             obs_mode=obs_mode)
    env.seed(seed)
    return env
