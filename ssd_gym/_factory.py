"""Constructors shared by the package's top level and the versioned PettingZoo modules."""
from __future__ import annotations

from typing import Any

from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec

from .envs.parallel import SSDParallelEnv
from .envs.spaces import check_action


def parallel_env(name: str = "cleanup", **options: Any) -> SSDParallelEnv:
    """A PettingZoo ``ParallelEnv`` of game ``name`` (see ``ssd_gym.GAMES``)."""
    return SSDParallelEnv(game=name, **options)


def raw_env(name: str = "cleanup", **options: Any):
    """The AEC env without PettingZoo's safety wrappers."""
    return parallel_to_aec(parallel_env(name, **options))


class CheckedActions(wrappers.BaseWrapper):
    """Refuses a bad action at once, with the parallel env's message (PettingZoo's
    ``AssertOutOfBoundsWrapper`` raises a bare ``AssertionError``; and without a check here the
    AEC env would only see the action when the last agent of the cycle has acted)."""

    def step(self, action) -> None:
        agent = self.agent_selection
        if action is None and (self.terminations[agent] or self.truncations[agent]):
            return super().step(None)  # PettingZoo's "dead step" of a finished agent
        return super().step(check_action(action, self.action_space(agent).n, agent))


def env(name: str = "cleanup", **options: Any):
    """The AEC env, wrapped like PettingZoo's own envs (action checks, call order)."""
    e = raw_env(name, **options)
    e = CheckedActions(e)
    e = wrappers.OrderEnforcingWrapper(e)
    return e


def vector_env(name: str = "cleanup", num_envs: int = 1, **options: Any):
    """An SB3 ``VecEnv`` of ``num_envs`` worlds whose slots are (world, agent) pairs."""
    from .envs.vector import SSDVecEnv

    return SSDVecEnv(game=name, num_envs=num_envs, **options)


def make_module_functions(game: str):
    """``parallel_env``, ``env`` and ``raw_env`` bound to one game, for a ``<game>_v0`` module."""

    def _parallel_env(**options: Any) -> SSDParallelEnv:
        return parallel_env(game, **options)

    def _raw_env(**options: Any):
        return raw_env(game, **options)

    def _env(**options: Any):
        return env(game, **options)

    for fn, what in ((_parallel_env, "ParallelEnv"), (_raw_env, "raw AEC env"), (_env, "AEC env")):
        fn.__doc__ = f"The {what} of {game!r}; options as in :class:`ssd_gym.envs.SSDParallelEnv`."
    return _parallel_env, _env, _raw_env
