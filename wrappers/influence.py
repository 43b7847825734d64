"""Social influence reward from a learned Model of Other Agents (Jaques et al. 2019, Exp. III)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from gymnasium import spaces

from ._base import ObsReader, SocialWrapper, check_probs
from .core import check_divergence, check_int, check_weight, curriculum_weight
from .moa import InfluenceEngine


@dataclass(frozen=True)
class InfluenceOptions:
    """Every option of the influence reward, validated on construction (``TypeError``/``ValueError``
    naming the field), so bad input fails before a wrapper builds any state.  Passed whole as
    ``options=`` to :class:`InfluenceReward`, :class:`~wrappers.InfluenceRewardVecEnv` and
    :class:`~wrappers.CommunicationChannel`; each field is also a keyword shortcut of those
    constructors.  Meanings: see :class:`InfluenceReward`."""

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
        check_divergence(self.divergence)
        if self.train_every % self.bptt:
            raise ValueError(f"train_every ({self.train_every}) must be a multiple of bptt ({self.bptt})")
        if self.torch_threads is not None:
            put("torch_threads", check_int("torch_threads", self.torch_threads, minimum=1))
        for name in ("influence_only_visible", "train_only_visible", "moa_sees_hidden_actions", "compile_moa"):
            put(name, bool(getattr(self, name)))

    @classmethod
    def from_args(cls, args: dict) -> InfluenceOptions:  # transitional: removed with the old faces
        return cls(**{f.name: args[f.name] for f in fields(cls)})

    def engine_kwargs(self) -> dict:
        """The keyword arguments of :class:`~wrappers.InfluenceEngine` (all but the reward weights
        and the observation keys)."""
        kw = asdict(self)
        for k in ("beta", "alpha", "curriculum_steps", "obs_key", "visibility_key"):
            del kw[k]
        return kw


class InfluenceMixin:
    """Options, curriculum weight, MOA access and persistence shared by the influence wrappers
    (both faces)."""

    engine: InfluenceEngine
    beta: float
    curriculum_steps: int
    global_step: int

    def _set_options(self, opts: InfluenceOptions) -> None:
        """Keep the reward weights and the divergence of the validated options as attributes."""
        self.beta, self.alpha, self.curriculum_steps = opts.beta, opts.alpha, opts.curriculum_steps
        self.divergence = opts.divergence

    @property
    def influence_weight(self) -> float:
        """The current weight beta * min(1, global_step / curriculum_steps)."""
        return curriculum_weight(self.beta, self.global_step, self.curriculum_steps)

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
        of each agent's MOA at predicting the others' next actions (pair ``[k, i]`` is the i-th other
        agent of k in agent-index order).  Scored on each new batch before the MOA trains on it,
        so they are held-out numbers; updated every ``train_every`` steps, NaN before the first."""
        return self.engine.stats()


class InfluenceReward(InfluenceMixin, SocialWrapper):
    """Decentralised social influence reward from a learned MOA (Jaques et al. 2019, Exp. III).

    Reward of agent k at step t::

        r_k = alpha * e_k + w(t) * clip(sum_{j != k, j visible to k at t} D[ p(a_{t+1}^j | a_t^k, s_t^k)
                                                    || sum_a~ pi_k(a~ | s_t^k) p(a_{t+1}^j | a~, s_t^k) ], ±clip)
        w(t) = beta * min(1, t / curriculum_steps)         (constant beta if curriculum_steps == 0)

    where ``p`` is agent k's own MOA (conditioned on its observation, its MOA history and the joint
    action at t, of which only k's entry is varied) and ``D`` is KL(cond || marg), JSD, or PMI
    (``log p(a^j_{t+1} | a^k_t) / p(a^j_{t+1})`` at j's realised next action, which is only known at
    t+1: **PMI influence is therefore added one step late**, to the reward of step t+1).

    Policy probabilities pi_k: call ``env.set_action_probs({agent: probs})`` before ``step``; they are
    used for that step only.  For agents that did not supply them, the wrapper's learned self-model
    (a head trained by cross-entropy on k's own actions) gives pi_k.

    The MOA (conv 3x3x6, FC 32-32, LSTM 128; one per agent, batched) sees the image observation
    (``obs[obs_key]``) and everyone's actions at t, own first then the others in agent-index order;
    others outside k's view are fed as "unknown" unless ``moa_sees_hidden_actions``.  It is trained
    online every ``train_every`` steps on the steps since the last round (``train_iters`` Adam
    steps at rate ``lr``; truncated BPTT of ``bptt`` steps), by cross-entropy on the others' next
    actions, only where they are visible (at t+1) when ``train_only_visible`` (paper Table 3:
    True).  ``influence_only_visible`` (paper: True) restricts the sum over j to agents visible at t
    (when k acted).  ``train_iters=0`` freezes the MOA (e.g. after ``load_moa``).

    ``e`` is the reward of the wrapped env, so stacking composes (e.g. over ProsocialReward).
    ``info[agent]`` per step: ``extrinsic_reward`` (the game's own reward, kept from further in),
    ``influence_reward`` (the clipped, unweighted influence c_k), ``influence_weight`` (w),
    ``moa_loss`` and ``moa_accuracy`` (this agent's MOA, running, held-out: see :meth:`moa_stats`;
    NaN before the first training round), ``policy_source`` ("given" or "self_model").

    Defaults: ``beta = 1.0`` and ``curriculum_steps = 0`` (no ramp); the paper's best beta is 0.620
    (Cleanup) / 2.521 (Harvest) with a curriculum of C = 40 / 226 (units unstated, likely 1e6
    steps); the reference repo uses weight 1.0 / 2.521.  ``clip = 10`` as in the reference repo.
    ``torch_threads`` (default 1): torch's thread count while the MOA runs, set and restored around
    each step (the tensors are tiny, so extra intra-op threads only add synchronisation, and on a
    busy machine they can make each step 10x slower); ``None`` leaves torch's setting alone.
    The acting pass (MOA forward over all counterfactuals, divergences) runs as one numba-compiled
    loop over the MOA's weights, equal to the torch pass up to float32 rounding and about 3x
    faster for one world (compiled on first use, then cached on disk by numba).  A training round
    runs the encoder over all buffered steps at once and the LSTM recurrence as compiled loops with
    a hand-written backward (same gradients as autograd, up to float32 rounding).
    ``compile_moa=True`` (experimental, opt-in) runs the acting pass through ``torch.compile`` as one
    fused graph instead: the first step compiles (about 10-30 s; needs a C++ compiler), later steps
    were about 35% faster than the eager torch pass and about 13% faster end-to-end on the 2-core dev
    machine.  Keep ``torch_threads=1`` with it: the compiled kernels use OpenMP, which spins badly
    on a busy machine.  Results match the eager pass up to float32 rounding.
    ``seed`` fixes the MOA's initial weights.  Needs the same ``Discrete`` action space for every
    agent: stack it inside :class:`~wrappers.CommunicationChannel`, not outside.
    """

    def __init__(self, env, beta: float = 1.0, divergence: str = "kl", alpha: float = 1.0,
                 curriculum_steps: int = 0, clip: float = 10.0, influence_only_visible: bool = True,
                 train_only_visible: bool = True, moa_sees_hidden_actions: bool = False,
                 lr: float = 1e-3, train_every: int = 64, bptt: int = 8, train_iters: int = 1,
                 obs_key: str = "rgb", visibility_key: str = "others_visible", seed: int = 0,
                 torch_threads: int | None = 1, compile_moa: bool = False):
        opts = InfluenceOptions.from_args(locals())
        super().__init__(env)
        agents = self.possible_agents
        if len(agents) < 2:
            raise ValueError(f"InfluenceReward needs at least 2 agents, the env has {len(agents)}")
        acts = [env.action_space(a) for a in agents]
        if not all(isinstance(s, spaces.Discrete) for s in acts) or len({int(s.n) for s in acts}) != 1:
            raise ValueError(f"InfluenceReward needs the same Discrete action space for every agent, got {acts}")
        self.num_actions = int(acts[0].n)
        self.reader = ObsReader(env.observation_space(agents[0]), obs_key, visibility_key, len(agents),
                                "InfluenceReward")
        self._set_options(opts)
        self.engine = InfluenceEngine(1, len(agents), self.num_actions, self.reader.shape, **opts.engine_kwargs())
        self.global_step = 0
        self._obs = None
        self._probs = None

    def set_action_probs(self, probs: dict) -> None:
        """Give agents' policy probabilities pi_k(. | s_t) for the next ``step`` only.

        ``probs``: ``{agent: array of shape [A]}``; any subset of agents (the rest use the learned
        self-model).  Probabilities are renormalised; invalid ones raise ``ValueError``.
        """
        checked = {}
        for a, p in probs.items():
            if a not in self._index:
                raise KeyError(f"set_action_probs: unknown agent {a!r}")
            checked[a] = check_probs(f"set_action_probs[{a!r}]", p, self.num_actions)
        self._probs = checked

    def reset(self, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        self.engine.reset_worlds()
        self._obs, self._probs = obs, None
        return obs, infos

    def step(self, actions):
        if self._obs is None:
            raise RuntimeError("InfluenceReward.step() called before reset()")
        agents = self.possible_agents
        missing = [a for a in agents if a not in actions]
        if missing:
            raise ValueError(f"InfluenceReward needs an action for every agent each step; missing {missing}")
        act = np.array([[int(actions[a]) for a in agents]])
        img, vis = self.reader.read_all(self._obs, agents)
        probs, given = None, None
        if self._probs:
            probs = np.zeros((1, len(agents), self.num_actions))
            given = np.zeros((1, len(agents)), dtype=bool)
            for a, p in self._probs.items():
                probs[0, self._index[a]], given[0, self._index[a]] = p, True

        obs, rew, term, trunc, infos = self.env.step(actions)  # env first: a failing step changes nothing here
        infos = self._copy_infos(infos, rew)
        influence, _ = self.engine.step(img, act, vis, policy=probs, policy_given=given)
        w = self.influence_weight
        loss, acc, _ = self.engine.stats()
        infl = influence[0].tolist()
        out = {}
        for a in rew:
            i = self._index[a]
            out[a] = self.alpha * float(rew[a]) + w * infl[i]
            infos[a].update(influence_reward=infl[i], influence_weight=w,
                            moa_loss=float(loss[i]), moa_accuracy=float(acc[i]),
                            policy_source="given" if given is not None and given[0, i] else "self_model")
        self.global_step += 1
        self._obs, self._probs = obs, None
        return obs, out, term, trunc, infos
