"""Gymnasium face: the joint game as one ``gymnasium.Env``.

Observation: a flat ``Dict`` keyed by agent. In ``obs_mode="rgb"`` each value is that agent's
view; in ``obs_mode="dict"`` the per-agent fields are flattened to keys ``"<agent>/<field>"``
(``agent_0/rgb``, ``agent_0/prev_action``, ...), because SB3 rejects nested Dict spaces.
Action: ``MultiDiscrete`` with one entry per agent. Reward: the collective reward (sum over
agents); ``info["rewards"]`` holds the per-agent rewards and ``info["extrinsic_reward"]`` the
same array, and on the last step ``info["episode_metrics"]`` the social-outcome metrics
(``info["episode"]`` is left to Gymnasium's ``RecordEpisodeStatistics``).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..metrics import INFO_KEY
from .parallel import SSDParallelEnv
from .spaces import check_seed


class SSDJointEnv(gym.Env):
    """One sequential social dilemma as a single-agent Gymnasium env over the joint action."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 8}

    def __init__(self, game: str = "cleanup", obs_mode: str = "dict", render_mode: str | None = None,
                 render_scale: int = 16, **options: Any):
        self.par = SSDParallelEnv(game=game, obs_mode=obs_mode, render_mode=render_mode,
                                  render_scale=render_scale, **options)
        self.render_mode = render_mode
        self.agents = list(self.par.possible_agents)
        A = self.par.game.num_actions
        self.action_space = spaces.MultiDiscrete(np.full(len(self.agents), A, dtype=np.int64))
        per_agent = self.par.observation_space(self.agents[0])
        if isinstance(per_agent, spaces.Dict):
            self._fields = list(per_agent.spaces)
            self.observation_space = spaces.Dict(
                {f"{a}/{k}": per_agent.spaces[k] for a in self.agents for k in self._fields})
        else:
            self._fields = None
            self.observation_space = spaces.Dict({a: per_agent for a in self.agents})

    def _flatten(self, obs: dict) -> dict:
        if self._fields is None:
            return dict(obs)
        return {f"{a}/{k}": obs[a][k] for a in self.agents for k in self._fields}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        seed = check_seed(seed)
        super().reset(seed=seed)
        obs, _ = self.par.reset(seed=seed, options=options)
        return self._flatten(obs), {}

    def step(self, action):
        a = np.asarray(action)
        if a.shape != (len(self.agents),):
            raise ValueError(f"the joint action must have shape ({len(self.agents)},), got {a.shape}")
        obs, rewards, _, truncations, infos = self.par.step({ag: a[i] for i, ag in enumerate(self.agents)})
        r = np.array([rewards[ag] for ag in self.agents], dtype=np.float64)
        info: dict[str, Any] = {"rewards": r, "extrinsic_reward": r.copy()}
        if INFO_KEY in infos[self.agents[0]]:
            episode = dict(infos[self.agents[0]][INFO_KEY])
            episode.pop("agent_return", None)  # per-agent; the joint env has all in "returns"
            info[INFO_KEY] = episode
        truncated = bool(truncations[self.agents[0]])
        return self._flatten(obs), float(r.sum()), False, truncated, info

    def render(self):
        return self.par.render()

    def close(self):
        self.par.close()
