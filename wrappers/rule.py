"""What a reward rule is (:class:`Rule`: it knows nothing of dicts, agent names or env APIs), and
the helpers its two adapters (:mod:`wrappers.parallel`, :mod:`wrappers.vec`) share."""

from __future__ import annotations

import inspect

import numpy as np
from gymnasium import spaces


class Rule:
    """Base of the reward rules.

    An adapter calls :meth:`bind` once, :meth:`reset` at every reset (``mask=None``) and, on the
    VecEnv face, for the worlds whose episode just ended, and :meth:`step` after every env step
    with the rewards ``e`` (float64 ``[W, N]``), the actions (int ``[W, N]``) if ``needs_actions``,
    and, if ``reader`` (an :class:`ObsReader`) is set, the image ``[W, N, H, W, C]`` and visibility
    ``[W, N, N-1]`` (or None) acted on.  ``step`` returns ``(rewards [W, N] or None for unchanged,
    info)``, info values being one for all or arrays broadcasting to ``[W, N]``.  A rule with an
    ``obs_key`` has ``obs_space()`` (``[N]``) and ``observation()`` (``[W, N]``), whose row ``w``
    goes under that key into world ``w``'s observations (a non-Dict one becomes a Dict).
    """

    obs_key: str | None = None
    needs_actions = False
    reader: ObsReader | None = None

    def bind(self, wrapper: str, num_worlds: int, num_agents: int, obs_space: spaces.Space,
             action_spaces: list) -> None:
        """Check the env's spaces (errors name ``wrapper``) and allocate the per-world state."""
        self.num_worlds, self.num_agents = num_worlds, num_agents

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in the worlds where ``mask`` [W] is True (None: in all)."""

    def step(self, e: np.ndarray, actions=None, img=None, vis=None):
        raise NotImplementedError


def rule_attr(name: str) -> property:
    """A face's attribute that reads and writes its rule's attribute ``name``."""
    return property(lambda self: getattr(self.rule, name), lambda self, v: setattr(self.rule, name, v))


def rule_keywords(rule_class):
    """Decorator of a face's ``__init__(self, env, *args, **kwargs)`` that passes everything after
    ``env`` to ``rule_class``: shows the rule's parameters as the face's own (``help``,
    ``inspect.signature``), so a rule's options and defaults are written only on the rule."""
    def decorate(init):
        head = list(inspect.signature(init).parameters.values())[:2]
        init.__signature__ = inspect.Signature(head + list(inspect.signature(rule_class).parameters.values()))
        return init
    return decorate


def extend_dict_space(space: spaces.Space, key: str, extra: spaces.Space) -> spaces.Dict:
    """``space`` plus one more key; a non-Dict space becomes ``{"observation": space, key: extra}``."""
    if isinstance(space, spaces.Dict):
        if key in space.spaces:
            raise ValueError(f"observation space already has a key {key!r}")
        return spaces.Dict({**space.spaces, key: extra})
    return spaces.Dict({"observation": space, key: extra})


def extend_obs(obs, key: str, value):
    """The observation matching :func:`extend_dict_space`: ``obs`` plus ``key: value``."""
    return {**obs, key: value} if isinstance(obs, dict) else {"observation": obs, key: value}


class ObsReader:
    """Pulls the image the MOA sees and the visibility mask out of observations.

    Dict observations: the image is ``obs[obs_key]`` and visibility ``obs[visibility_key]`` when
    present (ssd_gym: ``"rgb"`` and ``"others_visible"``).  Box observations: the image is the
    observation itself and every other agent counts as visible.
    """

    def __init__(self, space: spaces.Space, obs_key: str, visibility_key: str, num_agents: int, wrapper: str):
        self.obs_key, self.vis_key = obs_key, visibility_key
        self.is_dict = isinstance(space, spaces.Dict)
        if self.is_dict and obs_key not in space.spaces:
            raise ValueError(f"{wrapper}: observation has no key {obs_key!r} for the MOA's image "
                             f"(keys: {list(space.spaces)}); pass obs_key=")
        img_space = space.spaces[obs_key] if self.is_dict else space
        self.has_vis = self.is_dict and visibility_key in space.spaces
        if not isinstance(img_space, spaces.Box) or len(img_space.shape) != 3 or min(img_space.shape[:2]) < 3:
            raise ValueError(f"{wrapper}: the MOA needs an image observation Box of shape (H, W, C) "
                             f"with H, W >= 3, got {img_space}")
        self.shape = tuple(int(x) for x in img_space.shape)
        self._img = np.empty((1, num_agents, *self.shape), dtype=np.uint8)  # for read_agents
        self._vis = np.ones((1, num_agents, num_agents - 1), dtype=bool) if self.has_vis else None

    def read_agents(self, obs: dict, agents) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-agent observations (PettingZoo) -> image ``[1, N, H, W, C]`` and visibility
        ``[1, N, N-1]`` (None: all visible), written into arrays reused by the next call."""
        img, vis = self._img, self._vis
        for i, a in enumerate(agents):
            o = obs[a]
            img[0, i] = o[self.obs_key] if self.is_dict else o
            if vis is not None:
                vis[0, i] = o[self.vis_key]  # nonzero -> True, as astype(bool)
        return img, vis

    def read_slots(self, obs, num_worlds: int, num_agents: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Stacked slot observations (VecEnv, slot = world * N + agent) -> the same arrays."""
        img = np.asarray(obs[self.obs_key] if self.is_dict else obs).reshape(num_worlds, num_agents, *self.shape)
        if not self.has_vis:
            return img, None
        return img, np.asarray(obs[self.vis_key]).astype(bool).reshape(num_worlds, num_agents, num_agents - 1)


def as_float_array(x) -> np.ndarray:
    """float64 NumPy array of ``x``; a torch tensor (recognised by ``detach``/``cpu``, so the
    wrappers need no torch import) is detached from its graph and copied to the CPU first."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def check_probs(name: str, probs, size: int) -> np.ndarray:
    """Validate probability vectors: finite, non-negative, right length, sum > 0; renormalised.
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


def policy_from_agents(name: str, probs: dict, index: dict, size: int):
    """``{agent: probs [size]}`` for any subset of agents -> ``(probs [1, N, size], given [1, N])``,
    or None for an empty dict; checked in full before anything is returned."""
    checked = {}
    for a, p in probs.items():
        if a not in index:
            raise KeyError(f"{name}: unknown agent {a!r}")
        checked[index[a]] = check_probs(f"{name}[{a!r}]", p, size)
    if not checked:
        return None
    out, given = np.zeros((1, len(index), size)), np.zeros((1, len(index)), dtype=bool)
    out[0, list(checked)], given[0, list(checked)] = list(checked.values()), True
    return out, given


def policy_from_slots(name: str, probs, num_worlds: int, num_agents: int, size: int):
    """Slot probabilities ``[W * N, size]`` (an all-NaN row: not given) -> ``(probs [W, N, size],
    given [W, N])``."""
    p = as_float_array(probs)
    if p.shape != (num_worlds * num_agents, size):
        raise ValueError(f"{name}: expected shape {(num_worlds * num_agents, size)}, got {p.shape}")
    given = ~np.all(np.isnan(p), axis=1)
    out = np.zeros_like(p)
    if given.any():
        out[given] = check_probs(name, p[given], size)
    return out.reshape(num_worlds, num_agents, size), given.reshape(num_worlds, num_agents)
