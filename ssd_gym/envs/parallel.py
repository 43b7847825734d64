"""PettingZoo ``ParallelEnv`` face of the engine (one world)."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium.utils import EzPickle
from pettingzoo import ParallelEnv

from ..core.engine import Engine
from ..games import make_game
from ..metrics import INFO_KEY
from ..rendering import Renderer, check_render_mode
from .spaces import agent_observation_space, check_action, check_obs_mode, check_seed


def agent_ids(num_agents: int) -> list[str]:
    return [f"agent_{i}" for i in range(num_agents)]


def actions_to_array(actions: Any, agents: list[str], index: dict[str, int], num_actions: int) -> np.ndarray:
    """Validate a {agent: action} dict and return int64[N]; raise before anything changes."""
    if not isinstance(actions, dict):
        raise TypeError(f"actions must be a dict mapping agent ids to actions, got {type(actions).__name__}")
    unknown = [a for a in actions if a not in index]
    if unknown:
        raise KeyError(f"unknown agent id(s) {unknown!r}; the agents are {agents}")
    missing = [a for a in agents if a not in actions]
    if missing:
        raise KeyError(f"missing actions for agent(s) {missing}; every live agent must act each step")
    out = np.empty(len(agents), dtype=np.int64)
    for a in agents:
        out[index[a]] = check_action(actions[a], num_actions, a)
    return out


class SSDParallelEnv(ParallelEnv, EzPickle):
    """A sequential social dilemma as a PettingZoo ``ParallelEnv``.

    Args:
        game: "cleanup", "harvest", "box_trapped", "cleanup_small" or "harvest_small".
        obs_mode: "dict" (view + visible-action channel) or "rgb" (view only).
        render_mode: None, "rgb_array" or "human".
        render_scale: pixels per cell for ``rgb_array``/``human`` rendering.
        **options: the game's options (``num_agents``, ``max_cycles``, ``rules``, ``ascii_map``,
            ``beams_visible``, and the game-specific ones; see the game classes).

    Every step returns, per agent, ``info["extrinsic_reward"]`` (the game's reward, which
    reward wrappers leave untouched). The episode's last step (a time-limit truncation) adds
    ``info["episode_metrics"]``, the social-outcome metrics (:mod:`ssd_gym.metrics`) plus
    ``agent_return``, and ``info["TimeLimit.truncated"] = True``, the flag SB3 reads (through
    SuperSuit's vec env) to bootstrap the value at a time limit rather than treat it as a terminal.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "name": "ssd_v0", "is_parallelizable": True,
                "render_fps": 8}

    def __init__(self, game: str = "cleanup", obs_mode: str = "dict", render_mode: str | None = None,
                 render_scale: int = 16, **options: Any):
        EzPickle.__init__(self, game=game, obs_mode=obs_mode, render_mode=render_mode,
                          render_scale=render_scale, **options)
        self.obs_mode = check_obs_mode(obs_mode)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.game = make_game(game, **options)
        self.metadata = dict(self.metadata, name=f"{self.game.name}_v0")
        self.engine = Engine(self.game, num_worlds=1)
        self.possible_agents = agent_ids(self.game.num_agents)
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        n, A = self.game.num_agents, self.game.num_actions
        obs_space = agent_observation_space(n, A, self.engine.view_size, self.obs_mode)
        from gymnasium import spaces
        act_space = spaces.Discrete(A)
        self.observation_spaces = {a: obs_space for a in self.possible_agents}
        self.action_spaces = {a: act_space for a in self.possible_agents}
        lay = self.game.layout
        self.state_space = spaces.Box(0, 255, (lay.height, lay.width, 3), dtype=np.uint8)
        self.renderer = Renderer(self.engine, render_mode=self.render_mode, scale=render_scale,
                                 fps=self.metadata["render_fps"], title=self.metadata["name"])
        self._has_reset = False

    # PettingZoo requires the same space object on every call.
    def observation_space(self, agent: str):
        return self.observation_spaces[self._check_agent(agent)]

    def action_space(self, agent: str):
        return self.action_spaces[self._check_agent(agent)]

    def _check_agent(self, agent: str) -> str:
        if agent not in self._index:
            raise KeyError(f"unknown agent id {agent!r}; the agents are {self.possible_agents}")
        return agent

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.game.action_names

    @property
    def max_cycles(self) -> int:
        return self.game.max_cycles

    @max_cycles.setter
    def max_cycles(self, value: int) -> None:
        from ..games.base import check_int

        self.game.max_cycles = check_int("max_cycles", value)
        self.game.init_rule_state(self.engine)  # per-episode buffers are sized by max_cycles
        self._has_reset = False  # buffers were re-allocated: a reset is needed

    # ---- API -----------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        seed = check_seed(seed)
        if seed is not None:
            self.engine.seed_world(0, seed)
        elif not self._has_reset:
            self.engine.seed_world(0, None)
        self._has_reset = True
        self.engine.reset()
        self.agents = list(self.possible_agents)
        obs = self._observations()
        infos = {a: {} for a in self.agents}
        if self.render_mode == "human":
            self.render()
        return obs, infos

    def step(self, actions: dict):
        if not self._has_reset:
            raise RuntimeError("call reset() before step()")
        if not self.agents:
            raise RuntimeError("the episode is over (all agents truncated); call reset()")
        arr = actions_to_array(actions, self.agents, self._index, self.game.num_actions)
        rewards_arr = self.engine.step(arr[None, :])[0]
        obs = self._observations()
        done = bool(self.engine.truncated()[0])
        rewards, infos = {}, {}
        for i, a in enumerate(self.agents):
            r = float(rewards_arr[i])
            rewards[a] = r
            infos[a] = {"extrinsic_reward": r}
        if done:
            m = self.engine.episode_metrics(0)
            for i, a in enumerate(self.agents):
                infos[a][INFO_KEY] = dict(m, agent_return=m["returns"][i])
                infos[a]["TimeLimit.truncated"] = True
        terminations = {a: False for a in self.agents}
        truncations = {a: done for a in self.agents}
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def _observations(self) -> dict:
        ob = self.engine.observe()
        agents = self.possible_agents
        if self.obs_mode == "rgb":
            return {a: ob.rgb[0, i] for i, a in enumerate(agents)}
        out = {}
        multi = len(agents) > 1
        for i, a in enumerate(agents):
            d = {"rgb": ob.rgb[0, i], "prev_action": ob.prev_action[0, i]}
            if multi:
                d["others_prev_actions"] = ob.others_prev_actions[0, i]
                d["others_visible"] = ob.others_visible[0, i]
            out[a] = d
        return out

    def render(self):
        if self.render_mode is None:
            import gymnasium

            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        return self.renderer.render()

    def agent_views(self) -> dict[str, np.ndarray]:
        """Each agent's current egocentric RGB view (what it observes)."""
        ob = self.engine.observe()
        return {a: ob.rgb[0, i] for i, a in enumerate(self.possible_agents)}

    def state(self) -> np.ndarray:
        """The full map as an RGB image (one pixel per cell)."""
        return self.engine.world_image(0)

    def close(self):
        self.renderer.close()
