"""Shared plumbing of the PettingZoo faces: input checks, info handling, observation reading."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo.utils.env import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper


def check_parallel_env(env, wrapper: str) -> None:
    """Raise ``TypeError`` naming the problem unless ``env`` is a PettingZoo ``ParallelEnv``."""
    try:  # imported lazily: SB3 is only needed for the VecEnv faces
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError:  # pragma: no cover
        VecEnv = ()
    if VecEnv and isinstance(env, VecEnv):
        raise TypeError(f"{wrapper} wraps a PettingZoo ParallelEnv, but got an SB3 VecEnv "
                        f"({type(env).__name__}); use the VecEnv face of this wrapper instead")
    if isinstance(env, AECEnv):
        raise TypeError(f"{wrapper} wraps a PettingZoo ParallelEnv, but got an AEC env "
                        f"({type(env).__name__}); convert it with "
                        "pettingzoo.utils.conversions.aec_to_parallel(env) or use parallel_env()")
    if isinstance(env, gymnasium.Env):
        raise TypeError(f"{wrapper} wraps a PettingZoo ParallelEnv, but got a single-agent "
                        f"gymnasium.Env ({type(env).__name__})")
    if not isinstance(env, ParallelEnv):
        needed = ("reset", "step", "possible_agents", "observation_space", "action_space")
        missing = [a for a in needed if not hasattr(env, a)]
        if missing:
            raise TypeError(f"{wrapper} wraps a PettingZoo ParallelEnv, but got "
                            f"{type(env).__name__}, which lacks {missing}")


class SocialWrapper(BaseParallelWrapper):
    """Base of the wrappers: a ``ParallelEnv`` around a ``ParallelEnv``.

    Keeps the reward the wrapped env returned in ``info[agent]["extrinsic_reward"]`` unless a
    wrapper further in already put the env's own reward there (so stacking keeps the raw one).
    """

    def __init__(self, env):
        check_parallel_env(env, type(self).__name__)
        super().__init__(env)
        self.possible_agents = list(env.possible_agents)
        self._index = {a: i for i, a in enumerate(self.possible_agents)}

    @property
    def agents(self):  # forwarded explicitly: ParallelEnv declares it as a class annotation only
        return self.env.agents

    @property
    def num_agents(self) -> int:
        return len(self.env.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    def __str__(self) -> str:
        return f"{type(self).__name__}<{self.env}>"

    @staticmethod
    def _copy_infos(infos, rewards):
        out = {a: dict(i) for a, i in infos.items()}
        for a, r in rewards.items():
            out.setdefault(a, {}).setdefault("extrinsic_reward", float(r))
        return out

    def _reward_vector(self, rewards) -> np.ndarray:
        """Rewards dict -> ``[1, N]`` over possible_agents (absent agents count as 0)."""
        e = np.zeros((1, len(self.possible_agents)))
        for a, r in rewards.items():
            e[0, self._index[a]] = r
        return e


def extend_dict_space(space: spaces.Space, key: str, extra: spaces.Space,
                      base_key: str = "observation") -> spaces.Dict:
    """``space`` plus one more key; a non-Dict space becomes ``{base_key: space, key: extra}``."""
    if isinstance(space, spaces.Dict):
        if key in space.spaces:
            raise ValueError(f"observation space already has a key {key!r}")
        return spaces.Dict({**space.spaces, key: extra})
    return spaces.Dict({base_key: space, key: extra})


def extend_obs(obs, key: str, value, base_key: str = "observation"):
    if isinstance(obs, dict):
        return {**obs, key: value}
    return {base_key: obs, key: value}


class ObsReader:
    """Pulls the image the MOA sees and the visibility mask out of per-agent observations.

    Dict observations: the image is ``obs[obs_key]`` and visibility ``obs[visibility_key]`` when
    present (ssd_gym: ``"rgb"`` and ``"others_visible"``).  Box observations: the image is the
    observation itself and every other agent counts as visible.
    """

    def __init__(self, space: spaces.Space, obs_key: str, visibility_key: str, num_agents: int, wrapper: str):
        self.obs_key, self.vis_key = obs_key, visibility_key
        if isinstance(space, spaces.Dict):
            if obs_key not in space.spaces:
                raise ValueError(f"{wrapper}: observation has no key {obs_key!r} for the MOA's image "
                                 f"(keys: {list(space.spaces)}); pass obs_key=")
            img_space = space.spaces[obs_key]
            self.has_vis = visibility_key in space.spaces
            self.is_dict = True
        else:
            img_space, self.has_vis, self.is_dict = space, False, False
        if not isinstance(img_space, spaces.Box) or len(img_space.shape) != 3 or min(img_space.shape[:2]) < 3:
            raise ValueError(f"{wrapper}: the MOA needs an image observation Box of shape (H, W, C) "
                             f"with H, W >= 3, got {img_space}")
        self.shape = tuple(int(x) for x in img_space.shape)
        self._img = np.empty((1, num_agents, *self.shape), dtype=np.uint8)  # for read_all
        self._vis = np.ones((1, num_agents, num_agents - 1), dtype=bool) if self.has_vis else None

    def read_all(self, obs: dict, agents) -> tuple[np.ndarray, np.ndarray | None]:
        """Every agent's image and visibility as ``[1, N, H, W, C]`` and ``[1, N, N-1]`` (None when
        the observation has no visibility: all visible).  Written into arrays owned by the reader
        and reused by the next call: the caller copies what it keeps."""
        img, vis = self._img, self._vis
        for i, a in enumerate(agents):
            o = obs[a]
            img[0, i] = o[self.obs_key] if self.is_dict else o
            if vis is not None:
                vis[0, i] = o[self.vis_key]  # nonzero -> True, as astype(bool)
        return img, vis


def as_float_array(x) -> np.ndarray:
    """float64 NumPy array of ``x``; a torch tensor (recognised by ``detach``/``cpu``, so the
    wrappers need no torch import) is detached from its graph and copied to the CPU first."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def check_probs(name: str, probs, size: int) -> np.ndarray:
    """Validate one agent's probability vector: finite, non-negative, right length, sum > 0.
    NumPy arrays, sequences and torch tensors (detached) are all accepted."""
    p = as_float_array(probs)
    if p.shape[-1:] != (size,):
        raise ValueError(f"{name}: expected probabilities over {size} choices, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name}: probabilities must be finite and >= 0")
    s = p.sum(-1, keepdims=True)
    if np.any(s <= 0):
        raise ValueError(f"{name}: probabilities sum to 0")
    return p / s
