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
