"""The games: each a small module that owns its rules, beside the shared engine in ``core``.

* ``base``: ``Game``, what a game is (map, actions, options, the hooks the engine calls) and
  the option checks; ``load_map`` reads ``maps/<name>.txt``.
* ``harvest``: apple regrowth by neighbourhood (kernel ``regrow``); ``HarvestSmall``.
* ``cleanup``: waste in the river and an orchard that grows only while it is clean (kernel
  ``river_and_orchard``); ``CleanupSmall``.
* ``box_trapped``: the box, OPEN_BOX, regrowing apples and the dark box's view (kernel
  ``box_and_apples``).

A game's kernel runs after the shared step (``core.kernels.step_agents``) on the engine's state
arrays, with the per-world arrays the game keeps on the engine (``init_rule_state``).
"""
from .base import Game, RULE_SETS, load_map
from .box_trapped import BoxTrapped
from .cleanup import Cleanup, CleanupSmall
from .harvest import Harvest, HarvestSmall

GAMES: dict[str, type[Game]] = {
    cls.name: cls for cls in (Cleanup, Harvest, BoxTrapped, CleanupSmall, HarvestSmall)
}


def make_game(name: str, **options) -> Game:
    """Build a game by name with its options; unknown names raise a clear error."""
    if not isinstance(name, str) or name not in GAMES:
        raise ValueError(f"unknown game {name!r}; available games: {sorted(GAMES)}")
    return GAMES[name](**options)


__all__ = ["GAMES", "Game", "make_game", "load_map", "RULE_SETS", "Cleanup", "CleanupSmall",
           "Harvest", "HarvestSmall", "BoxTrapped"]
