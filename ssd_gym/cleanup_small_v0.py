"""PettingZoo-style module for cleanup_small (version 0 rules; see the README)."""
from ._factory import make_module_functions
from .games import GAMES

parallel_env, env, raw_env = make_module_functions("cleanup_small")
metadata = {"name": "cleanup_small_v0", "render_modes": ["human", "rgb_array"], "is_parallelizable": True, "render_fps": 8}
game_class = GAMES["cleanup_small"]

__all__ = ["parallel_env", "env", "raw_env", "metadata"]
