"""Cheap-talk channel with optional influential-communication reward (Jaques et al. 2019, Exp. II)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from ._base import ObsReader, SocialWrapper, check_probs, extend_dict_space, extend_obs
from .core import check_int
from .influence import InfluenceMixin, InfluenceOptions
from .moa import InfluenceEngine


class CommunicationChannel(InfluenceMixin, SocialWrapper):
    """Every agent's action becomes ``(env_action, symbol)`` with ``symbol`` in ``range(vocab_size)``.

    * Action space per agent: ``MultiDiscrete([A, vocab_size])``; the wrapped env receives only
      ``env_action``.
    * Observation: key ``"symbols"`` (``MultiDiscrete([vocab_size + 1] * N)``, agent-index order,
      own symbol included) holds the symbols everyone emitted at the previous step;
      ``vocab_size`` means "none yet" (after reset).  A non-Dict observation becomes
      ``{"observation": obs, "symbols": ...}``.
    * ``beta > 0`` adds the influence of k's symbol on the others' next actions as reward: the
      same MOA/influence engine as :class:`~wrappers.InfluenceReward`, with k's *symbol* as the
      counterfactual variable (its env action stays as observed), marginalised over k's symbol
      policy (``set_symbol_probs``, else a learned self-model).  Symbols are broadcast, so they
      are never masked; the sum over j is restricted to visible j when
      ``influence_only_visible``.  Reward: ``alpha * e + w * c`` as in InfluenceReward; info keys
      are prefixed ``symbol_`` (``symbol_influence_reward``, ``symbol_moa_loss``,
      ``symbol_moa_accuracy``) so this stacks with InfluenceReward.  With ``beta = 0`` (the
      default) no MOA is built and rewards pass through unchanged (``alpha`` is then unused).

    The paper trains the message policy on ``alpha e + beta c`` and the action policy on ``e``
    only; a wrapper returns one reward, so split them with ``info["extrinsic_reward"]`` if needed.
    Paper's best: vocab 9 / 7, beta 2.752 / 4.825, alpha 0 / 1 (Cleanup / Harvest).
    """

    OBS_KEY = "symbols"

    def __init__(self, env, vocab_size: int, beta: float = 0.0, divergence: str = "kl",
                 alpha: float = 1.0, curriculum_steps: int = 0, clip: float = 10.0,
                 influence_only_visible: bool = True, train_only_visible: bool = True,
                 moa_sees_hidden_actions: bool = False, lr: float = 1e-3, train_every: int = 64,
                 bptt: int = 8, train_iters: int = 1, obs_key: str = "rgb",
                 visibility_key: str = "others_visible", seed: int = 0,
                 torch_threads: int | None = 1, compile_moa: bool = False):
        vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        opts = InfluenceOptions.from_args(locals())
        super().__init__(env)
        agents = self.possible_agents
        acts = [env.action_space(a) for a in agents]
        if not all(isinstance(s, spaces.Discrete) for s in acts):
            raise ValueError(f"CommunicationChannel needs Discrete env action spaces, got {acts}")
        self.vocab_size = vocab_size
        self._set_options(opts)
        n = len(agents)
        self._act_spaces = {a: spaces.MultiDiscrete([int(s.n), vocab_size]) for a, s in zip(agents, acts)}
        sym_space = spaces.MultiDiscrete([vocab_size + 1] * n)
        self._obs_spaces = {a: extend_dict_space(env.observation_space(a), self.OBS_KEY, sym_space)
                            for a in agents}
        self.symbols = np.full(n, vocab_size, dtype=np.int64)
        self.engine = None
        if opts.beta > 0:
            if n < 2:
                raise ValueError("CommunicationChannel influence reward needs at least 2 agents")
            if len({int(s.n) for s in acts}) != 1:
                raise ValueError(f"influence needs the same action space for every agent, got {acts}")
            self.reader = ObsReader(env.observation_space(agents[0]), obs_key, visibility_key, n,
                                    "CommunicationChannel")
            self.engine = InfluenceEngine(1, n, int(acts[0].n), self.reader.shape,
                                          num_symbols=vocab_size, cf_on="symbol", **opts.engine_kwargs())
        self.global_step = 0
        self._obs = None
        self._probs = None

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _augment(self, obs):
        return {a: extend_obs(o, self.OBS_KEY, self.symbols.copy()) for a, o in obs.items()}

    def set_symbol_probs(self, probs: dict) -> None:
        """Give agents' symbol-policy probabilities (``{agent: array [vocab_size]}``) for the next
        step only; agents left out use the learned self-model."""
        checked = {}
        for a, p in probs.items():
            if a not in self._index:
                raise KeyError(f"set_symbol_probs: unknown agent {a!r}")
            checked[a] = check_probs(f"set_symbol_probs[{a!r}]", p, self.vocab_size)
        self._probs = checked

    def reset(self, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        self.symbols[:] = self.vocab_size
        if self.engine is not None:
            self.engine.reset_worlds()
        self._obs, self._probs = obs, None
        return self._augment(obs), infos

    def step(self, actions):
        env_actions, symbols = {}, self.symbols.copy()
        for a, act in actions.items():
            arr = np.asarray(act).reshape(-1)
            if arr.shape != (2,):
                raise ValueError(f"CommunicationChannel: action of {a!r} must be (env_action, symbol), got {act!r}")
            if not 0 <= arr[1] < self.vocab_size:
                raise ValueError(f"CommunicationChannel: symbol of {a!r} must be in [0, {self.vocab_size}), got {arr[1]}")
            env_actions[a] = int(arr[0])
            symbols[self._index[a]] = int(arr[1])
        if self.engine is not None:
            missing = [a for a in self.possible_agents if a not in actions]
            if missing:
                raise ValueError(f"CommunicationChannel influence needs every agent's action; missing {missing}")
            agents = self.possible_agents
            act = np.array([[env_actions[a] for a in agents]])
            img, vis = self.reader.read_all(self._obs, agents)

        obs, rew, term, trunc, infos = self.env.step(env_actions)
        infos = self._copy_infos(infos, rew)
        self.symbols = symbols
        if self.engine is not None:
            probs, given = None, None
            if self._probs:
                probs = np.zeros((1, len(agents), self.vocab_size))
                given = np.zeros((1, len(agents)), dtype=bool)
                for a, p in self._probs.items():
                    probs[0, self._index[a]], given[0, self._index[a]] = p, True
            influence, _ = self.engine.step(img, act, vis, symbols=symbols[None], policy=probs, policy_given=given)
            w = self.influence_weight
            loss, acc, _ = self.engine.stats()
            out = {}
            for a in rew:
                i = self._index[a]
                out[a] = self.alpha * float(rew[a]) + w * float(influence[0, i])
                infos[a].update(symbol_influence_reward=float(influence[0, i]), symbol_influence_weight=w,
                                symbol_moa_loss=float(loss[i]), symbol_moa_accuracy=float(acc[i]))
            rew = out
            self.global_step += 1
            self._obs, self._probs = obs, None
        return self._augment(obs), rew, term, trunc, infos
