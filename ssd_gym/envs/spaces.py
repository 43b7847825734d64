"""Observation and action spaces shared by the PettingZoo, Gymnasium and VecEnv faces."""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

OBS_MODES = ("dict", "rgb")


def agent_observation_space(num_agents: int, num_actions: int, view_size: int, obs_mode: str) -> spaces.Space:
    """One agent's observation space.

    ``"rgb"``: the egocentric view, Box(0, 255, (V, V, 3), uint8).
    ``"dict"``: ``rgb``; ``prev_action`` (own previous action, ``num_actions`` = none yet);
    ``others_prev_actions`` (the other agents' previous actions in agent-index order skipping
    self, ``num_actions`` when the other agent is not in view or has not acted yet);
    ``others_visible`` (1 if the other agent is inside the view window now). The two "others"
    keys are left out when there is a single agent.
    """
    rgb = spaces.Box(0, 255, (view_size, view_size, 3), dtype=np.uint8)
    if obs_mode == "rgb":
        return rgb
    parts: dict[str, spaces.Space] = {"rgb": rgb, "prev_action": spaces.Discrete(num_actions + 1)}
    if num_agents > 1:
        parts["others_prev_actions"] = spaces.MultiDiscrete(np.full(num_agents - 1, num_actions + 1, dtype=np.int64))
        parts["others_visible"] = spaces.MultiBinary(num_agents - 1)
    return spaces.Dict(parts)


def check_obs_mode(obs_mode) -> str:
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
    return obs_mode


def _whole(value, must: str) -> int:
    """``value`` as a Python int if it is a Python int, a NumPy integer or a 0-d integer array;
    else a TypeError ``"<must>, got <type> <value>"`` (bools, floats, even integral ones, and
    strings are refused)."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        shown = value.item() if isinstance(value, np.generic) else value
        raise TypeError(f"{must}, got {type(value).__name__} {shown!r}")
    return int(value)


def check_action(value, num_actions: int, who: str) -> int:
    """One action as a Python int in ``[0, num_actions)``, or a clear error. Every face (AEC,
    parallel, Gymnasium, VecEnv) accepts and refuses the same values (see :func:`_whole`)."""
    action = _whole(value, f"action for {who} must be an integer in [0, {num_actions})")
    if not 0 <= action < num_actions:
        raise ValueError(f"action for {who} is out of range: {action} not in [0, {num_actions})")
    return action


def check_seed(seed) -> int | None:
    """``None`` or a non-negative integer (Python or NumPy) as a Python int, or a clear error;
    Gymnasium's seeding only takes Python ints, so NumPy integers are converted here."""
    if seed is None:
        return None
    must = "seed must be None or a non-negative integer"
    seed = _whole(seed, must)
    if seed < 0:
        raise ValueError(f"{must}, got {seed}")
    return seed
