"""The games: each a small module with a map, an action set and its rules."""
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
