"""ssd-gym: sequential social dilemmas (Cleanup, Harvest, Box Trapped) for PettingZoo,
Gymnasium and Stable-Baselines3.

    import ssd_gym
    env = ssd_gym.parallel_env("cleanup")           # PettingZoo ParallelEnv
    aec = ssd_gym.env("harvest")                     # PettingZoo AEC env
    venv = ssd_gym.vector_env("cleanup_small", 64)   # SB3 VecEnv, slots = (world, agent)
    gym.make("SSD/Cleanup-v0")                       # Gymnasium, joint game

Importing the package registers the Gymnasium ids ``SSD/<Game>-v0``.

What lives where: one engine, thin game modules, thin API faces.

* ``core/``: what every game shares: the vocabulary (``constants``: cells, action kinds,
  directions, rewards, counters, colours), ASCII maps (``layout``), per-world random streams
  (``rng``), the numba kernels of the shared step and the observations (``kernels``) and the
  batched ``Engine`` that runs them and then the game's rules.
* ``games/``: one module per game with its actions, options, rules (a numba kernel beside it)
  and metrics; ``base`` says what a game is; the ASCII maps are in ``games/maps``.
* ``envs/``: the faces over the engine: PettingZoo ``parallel``, SB3 ``vector``, Gymnasium
  ``gym_env``, and their ``spaces``; ``_factory`` and the ``<game>_v0`` modules build them.
* ``metrics`` (social outcomes), ``analysis`` (communication: speaker consistency, instantaneous
  coordination), ``rendering`` (images, windows, videos), ``demo``.
"""
from __future__ import annotations

from . import analysis, metrics
from ._factory import env, parallel_env, raw_env, vector_env
from .core.layout import MapError, parse_map
from .games import GAMES, make_game
from .rendering import draw_world, record_episode, save_episode_video, write_video

__version__ = "0.1.0"

# Gymnasium ids -> game names
GYM_IDS = {
    "SSD/Cleanup-v0": "cleanup",
    "SSD/Harvest-v0": "harvest",
    "SSD/BoxTrapped-v0": "box_trapped",
    "SSD/CleanupSmall-v0": "cleanup_small",
    "SSD/HarvestSmall-v0": "harvest_small",
}


def _register_gym_envs() -> None:
    import gymnasium

    for env_id, game in GYM_IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="ssd_gym.envs.gym_env:SSDJointEnv",
            kwargs={"game": game},
            # no max_episode_steps: the env truncates itself after max_cycles, and a TimeLimit set
            # to the default would cut a longer max_cycles short (without the episode's metrics)
            disable_env_checker=False,
        )


_register_gym_envs()

# PettingZoo-style versioned modules, also reachable as attributes (ssd_gym.cleanup_v0 ...)
from . import box_trapped_v0, cleanup_small_v0, cleanup_v0, harvest_small_v0, harvest_v0  # noqa: E402

__all__ = ["parallel_env", "env", "raw_env", "vector_env", "GAMES", "GYM_IDS", "make_game",
           "analysis", "metrics", "parse_map", "MapError", "draw_world", "record_episode",
           "save_episode_video", "write_video", "cleanup_v0", "harvest_v0", "box_trapped_v0",
           "cleanup_small_v0", "harvest_small_v0"]
