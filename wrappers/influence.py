"""Social influence reward from a learned Model of Other Agents (Jaques et al. 2019, Exp. III):
its options, its rule and the rule's two faces."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from gymnasium import spaces

from .core import DIVERGENCES, check_int, check_weight, curriculum_weight
from .moa import InfluenceEngine
from .parallel import RuleParallelEnv
from .rule import ObsReader, Rule, policy_from_agents, policy_from_slots, rule_attr, rule_keywords
from .vec import RuleVecEnv


@dataclass(frozen=True)
class InfluenceOptions:
    """Every option of the influence reward, validated on construction (``TypeError``/``ValueError``
    naming the field), so bad input fails before a wrapper builds any state.  Passed whole as
    ``options=`` to the influence faces and :class:`~wrappers.CommunicationChannel`; each field is
    also a keyword shortcut of those constructors.  Meanings: see :class:`InfluenceRule`."""

    beta: float = 1.0
    alpha: float = 1.0
    curriculum_steps: int = 0
    divergence: str = "kl"
    clip: float = 10.0
    influence_only_visible: bool = True
    train_only_visible: bool = True
    moa_sees_hidden_actions: bool = False
    lr: float = 1e-3
    train_every: int = 64
    bptt: int = 8
    train_iters: int = 1
    obs_key: str = "rgb"
    visibility_key: str = "others_visible"
    seed: int = 0
    torch_threads: int | None = 1
    compile_moa: bool = False

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name in ("beta", "alpha"):
            put(name, check_weight(name, getattr(self, name)))
        for name in ("clip", "lr"):
            put(name, check_weight(name, getattr(self, name), allow_zero=False))
        for name, minimum in (("curriculum_steps", 0), ("train_every", 1), ("bptt", 1), ("train_iters", 0)):
            put(name, check_int(name, getattr(self, name), minimum=minimum))
        put("seed", int(self.seed))
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"unknown divergence {self.divergence!r}; choose one of {DIVERGENCES}")
        if self.train_every % self.bptt:
            raise ValueError(f"train_every ({self.train_every}) must be a multiple of bptt ({self.bptt})")
        if self.torch_threads is not None:
            put("torch_threads", check_int("torch_threads", self.torch_threads, minimum=1))
        for name in ("influence_only_visible", "train_only_visible", "moa_sees_hidden_actions", "compile_moa"):
            put(name, bool(getattr(self, name)))

    @classmethod
    def merge(cls, options: InfluenceOptions | None, shortcuts: dict, base: InfluenceOptions | None = None):
        """``options`` (default ``base``, default the field defaults) with the keyword shortcuts
        ``shortcuts`` replacing fields, validated; an unknown keyword is a ``TypeError``."""
        if options is not None and not isinstance(options, cls):
            raise TypeError(f"options must be an InfluenceOptions, got {type(options).__name__} ({options!r})")
        return dataclasses.replace(options or base or cls(), **shortcuts)


def option_keywords(base: InfluenceOptions):
    """Decorator of ``__init__(..., options=None, **shortcuts)``: shows each option as a keyword
    (default: its value in ``base``) in ``help`` and ``inspect.signature``."""
    def decorate(init):
        sig = inspect.signature(init)
        head = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        head += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=getattr(base, f.name))
                 for f in fields(base)]
        init.__signature__ = sig.replace(parameters=head)
        return init
    return decorate


class InfluenceRule(Rule):
    """Decentralised social influence reward from a learned MOA, over ``[worlds, agents]``; its
    options are an :class:`InfluenceOptions`.  Reward of agent k at step t::

        r_k = alpha * e_k + w(t) * clip(sum_{j != k, j visible to k at t} D[cond || marg], ±clip)
        cond = p(a_{t+1}^j | a_t^k, s_t^k),   marg = sum_a~ pi_k(a~ | s_t^k) p(a_{t+1}^j | a~, s_t^k)
        w(t) = beta * min(1, t / curriculum_steps)         (constant beta if curriculum_steps == 0)

    where ``p`` is agent k's own MOA (of which only k's action at t is varied) and ``D`` is
    KL(cond || marg), JSD, or PMI (``log p(a^j_{t+1} | a^k_t) / p(a^j_{t+1})`` at j's realised next
    action, known only at t+1: **PMI influence is added one step late**, to the reward of t+1).
    pi_k: the face's ``set_action_probs`` for the next step, else the learned self-model.

    The MOA (:mod:`wrappers.moa`) sees ``obs[obs_key]`` and everyone's actions at t; others outside
    k's view are fed as "unknown" unless ``moa_sees_hidden_actions``.  It is trained online every
    ``train_every`` steps (``train_iters`` Adam steps at rate ``lr``, truncated BPTT of ``bptt``
    steps) on the others' next actions, only where visible at t+1 if ``train_only_visible`` (paper
    Table 3: True); ``influence_only_visible`` (paper: True) sums over the j visible at t.
    ``train_iters=0`` freezes the MOA (e.g. after ``load_moa``).

    ``e`` is the reward of the wrapped env, so stacking composes (e.g. over ProsocialReward).  Info
    per agent and step: ``influence_reward`` (c_k), ``influence_weight`` (w), ``moa_loss`` and
    ``moa_accuracy`` (see ``moa_stats``), ``policy_source`` ("given" or "self_model").

    Defaults: ``beta = 1.0``, ``curriculum_steps = 0`` (no ramp), ``clip = 10`` (the reference
    repo's); the paper's best: beta 0.620 / 2.521, C = 40 / 226 (Cleanup / Harvest; README).
    ``torch_threads`` (default 1): torch's thread count while the MOA runs, set and restored around
    each step (the tensors are tiny: more threads only add synchronisation); ``None`` leaves it.
    ``compile_moa=True`` runs the MOA's acting pass through ``torch.compile`` (needs a C++
    compiler; equal to the eager pass up to float32 rounding; keep ``torch_threads=1`` with it).
    ``seed`` fixes the MOA's initial weights.
    """

    needs_actions = True

    @option_keywords(InfluenceOptions())
    def __init__(self, options: InfluenceOptions | None = None, **shortcuts):
        self.options = o = InfluenceOptions.merge(options, shortcuts)
        self.beta, self.alpha = o.beta, o.alpha
        self.curriculum_steps, self.divergence = o.curriculum_steps, o.divergence
        self.engine_extra = {}  # more InfluenceEngine keywords (the communication channel's)

    def bind(self, wrapper, num_worlds, num_agents, obs_space, action_spaces):
        super().bind(wrapper, num_worlds, num_agents, obs_space, action_spaces)
        if num_agents < 2:
            raise ValueError(f"{wrapper} needs at least 2 agents, the env has {num_agents}")
        if (not all(isinstance(s, spaces.Discrete) for s in action_spaces)
                or len({int(s.n) for s in action_spaces}) != 1):
            raise ValueError(f"{wrapper} needs the same Discrete action space for every agent, got {action_spaces}")
        self.num_actions = int(action_spaces[0].n)
        o = self.options
        self.reader = ObsReader(obs_space, o.obs_key, o.visibility_key, num_agents, wrapper)
        skip = ("beta", "alpha", "curriculum_steps", "obs_key", "visibility_key")  # not the engine's options
        self.engine = InfluenceEngine(num_worlds, num_agents, self.num_actions, self.reader.shape,
                                      **{k: v for k, v in asdict(o).items() if k not in skip}, **self.engine_extra)
        self.global_step = 0
        self.policy = None  # (probs [W, N, C], given [W, N]) for the next step only

    @property
    def influence_weight(self) -> float:
        """The current weight beta * min(1, global_step / curriculum_steps)."""
        return curriculum_weight(self.beta, self.global_step, self.curriculum_steps)

    def reset(self, mask=None):
        self.engine.reset_worlds(mask)
        if mask is None:
            self.policy = None

    def step(self, e, actions, img, vis, symbols=None):
        probs, given = self.policy or (None, None)
        c, _ = self.engine.step(img, actions, vis, symbols=symbols, policy=probs, policy_given=given)
        w = self.influence_weight
        loss, acc, _ = self.engine.stats()
        info = dict(influence_reward=c, influence_weight=w, moa_loss=loss[None],
                    moa_accuracy=acc[None],  # [1, N]: the same in every world
                    policy_source="self_model" if given is None else np.where(given, "given", "self_model"))
        self.global_step += self.num_worlds
        self.policy = None
        return self.alpha * e + w * c, info


class InfluenceFace:
    """What both influence faces show of their rule: options, curriculum, the MOA."""

    engine, beta, alpha, curriculum_steps, divergence, global_step, num_actions, options, influence_weight = map(
        rule_attr, ("engine", "beta", "alpha", "curriculum_steps", "divergence", "global_step", "num_actions",
                    "options", "influence_weight"))

    @property
    def moa(self) -> torch.nn.Module:
        """The MOA network (one set of weights per agent, evaluated in one batch)."""
        return self.engine.model

    def save_moa(self, path) -> None:
        """Save the MOA's weights and optimiser state (``torch.save``)."""
        self.engine.save(path)

    def load_moa(self, path) -> None:
        """Load MOA weights saved by :meth:`save_moa` (same agents, actions and observation)."""
        self.engine.load(path)

    def moa_stats(self):
        """``(loss [N], accuracy [N], pair_accuracy [N, N-1])``: running cross-entropy and accuracy
        of each agent's MOA (pair ``[k, i]``: k's i-th other agent), held-out (scored on each batch
        before training on it); updated every ``train_every`` steps, NaN before the first."""
        return self.engine.stats()


class InfluenceReward(InfluenceFace, RuleParallelEnv):
    """PettingZoo face of :class:`InfluenceRule`: ``InfluenceReward(env, options=InfluenceOptions(...))``
    or with the options as keywords.  Needs the same ``Discrete`` action space for every agent:
    stack it inside :class:`~wrappers.CommunicationChannel`, not outside."""

    @rule_keywords(InfluenceRule)
    def __init__(self, env, *args, **kwargs):
        super().__init__(env, InfluenceRule(*args, **kwargs))

    def set_action_probs(self, probs: dict) -> None:
        """Give agents' policy probabilities pi_k(. | s_t), ``{agent: array [A]}`` for any subset
        (the rest use the self-model), for the next ``step`` only; renormalised, checked."""
        self.rule.policy = policy_from_agents("set_action_probs", probs, self._index, self.num_actions)


class InfluenceRewardVecEnv(InfluenceFace, RuleVecEnv):
    """SB3 VecEnv face of :class:`InfluenceRule`: one MOA per agent index, shared by and trained on
    all worlds; ``global_step`` counts env steps (``num_worlds`` per call), as on the other face."""

    @rule_keywords(InfluenceRule)
    def __init__(self, venv, *args, **kwargs):
        super().__init__(venv, InfluenceRule(*args, **kwargs))

    def set_action_probs(self, probs) -> None:
        """Policy probabilities ``[num_slots, A]`` for the next step (all-NaN row = not given);
        a NumPy array or a torch tensor (detached)."""
        self.rule.policy = policy_from_slots("set_action_probs", probs, self.num_worlds, self.num_agents,
                                             self.num_actions)
