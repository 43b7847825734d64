"""Cheap-talk channel with optional influential-communication reward (Jaques et al. 2019, Exp. II)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .core import check_int
from .influence import InfluenceFace, InfluenceOptions, InfluenceRule, option_keywords
from .parallel import RuleParallelEnv
from .rule import Rule, policy_from_agents, policy_from_slots, rule_attr, rule_keywords
from .vec import RuleVecEnv


CHANNEL_DEFAULTS = InfluenceOptions(beta=0.0)  # the channel's defaults: no influence reward


class SymbolRule(InfluenceRule):
    """The channel's rule: everyone's last symbols as observation and, with ``beta > 0``, the
    influence of each agent's symbol as reward (the symbol is the counterfactual variable; info
    keys prefixed ``symbol_``).  Actions: ``(env actions [W, N] or None, symbols [W, N])``."""

    obs_key = "symbols"

    @option_keywords(CHANNEL_DEFAULTS)
    def __init__(self, vocab_size: int, options: InfluenceOptions | None = None, **shortcuts):
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=2)
        super().__init__(InfluenceOptions.merge(options, shortcuts, base=CHANNEL_DEFAULTS))
        self.engine_extra = dict(num_symbols=self.vocab_size, cf_on="symbol")

    def bind(self, wrapper, num_worlds, num_agents, obs_space, action_spaces):
        Rule.bind(self, wrapper, num_worlds, num_agents, obs_space, action_spaces)
        if not all(isinstance(s, spaces.Discrete) for s in action_spaces):
            raise ValueError(f"{wrapper} needs Discrete env action spaces, got {action_spaces}")
        self.engine = self.reader = self.policy = None
        self.global_step = 0
        if self.beta > 0:
            super().bind(wrapper, num_worlds, num_agents, obs_space, action_spaces)
        self.symbols = np.full((num_worlds, num_agents), self.vocab_size, dtype=np.int64)

    def obs_space(self):
        return spaces.MultiDiscrete([self.vocab_size + 1] * self.num_agents)

    def observation(self):
        return self.symbols

    def reset(self, mask=None):
        self.symbols[slice(None) if mask is None else mask] = self.vocab_size
        if self.engine is not None:
            super().reset(mask)

    def step(self, e, actions, img=None, vis=None):
        env_actions, self.symbols = actions
        if self.engine is None:
            return None, {}
        r, info = super().step(e, env_actions, img, vis, symbols=self.symbols)
        return r, {"symbol_" + k: v for k, v in info.items() if k != "policy_source"}


class CommunicationChannel(InfluenceFace, RuleParallelEnv):
    """Every agent's action becomes ``(env_action, symbol)``, ``symbol`` in ``range(vocab_size)``.

    * Action space: ``MultiDiscrete([A, vocab_size])``; the wrapped env receives ``env_action``.
    * Observation key ``"symbols"`` (``MultiDiscrete([vocab_size + 1] * N)``, agent-index order, own
      included): everyone's symbols of the previous step, ``vocab_size`` = none yet (after reset).
    * ``beta > 0`` adds the influence of k's symbol on the others' next actions as reward: the
      engine and options of :class:`~wrappers.InfluenceReward` with k's *symbol* as the
      counterfactual (its env action as observed), marginalised over ``set_symbol_probs`` or a
      learned self-model; the sum is over visible j when ``influence_only_visible``.  Info keys
      are prefixed ``symbol_`` (so this stacks with InfluenceReward).  ``beta = 0`` (the
      default): no MOA, rewards unchanged.

    The paper trains the message policy on ``alpha e + beta c`` and the action policy on ``e``
    only: split them with ``info["extrinsic_reward"]``.  Paper's best: vocab 9 / 7, beta 2.752 /
    4.825, alpha 0 / 1 (Cleanup / Harvest).
    """

    vocab_size = rule_attr("vocab_size")

    @rule_keywords(SymbolRule)
    def __init__(self, env, *args, **kwargs):
        super().__init__(env, SymbolRule(*args, **kwargs))
        self._act_spaces = {a: spaces.MultiDiscrete([int(env.action_space(a).n), self.vocab_size])
                            for a in self.possible_agents}

    @property
    def symbols(self) -> np.ndarray:
        """The symbols everyone emitted at the last step (``vocab_size``: none yet)."""
        return self.rule.symbols[0]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def set_symbol_probs(self, probs: dict) -> None:
        """Give agents' symbol-policy probabilities (``{agent: array [vocab_size]}``) for the next
        step only; agents left out use the learned self-model."""
        self.rule.policy = policy_from_agents("set_symbol_probs", probs, self._index, self.vocab_size)

    def _split_actions(self, actions):
        symbols, env_actions = self.rule.symbols.copy(), {}
        for a, x in actions.items():
            arr = np.asarray(x).reshape(-1)
            if arr.shape != (2,):
                raise ValueError(f"CommunicationChannel: action of {a!r} must be (env_action, symbol), got {x!r}")
            if not 0 <= arr[1] < self.vocab_size:
                raise ValueError(f"CommunicationChannel: symbol of {a!r} must be in [0, {self.vocab_size}), "
                                 f"got {arr[1]}")
            env_actions[a] = int(arr[0])
            symbols[0, self._index[a]] = int(arr[1])
        act = None
        if self.rule.engine is not None:  # the influence needs every agent's env action
            env_actions, act = super()._split_actions(env_actions)
        return env_actions, (act, symbols)


class CommunicationChannelVecEnv(InfluenceFace, RuleVecEnv):
    """SB3 VecEnv face of the channel (same rule, options, spaces and info keys as
    :class:`CommunicationChannel`): ``step`` takes ``[num_slots, 2]`` rows of ``(env_action,
    symbol)``; each slot observes its world's symbols (``vocab_size`` after the world's reset)."""

    vocab_size = rule_attr("vocab_size")

    @rule_keywords(SymbolRule)
    def __init__(self, venv, *args, **kwargs):
        super().__init__(venv, SymbolRule(*args, **kwargs))
        self.action_space = spaces.MultiDiscrete([int(venv.action_space.n), self.vocab_size])

    def step_async(self, actions):
        a = np.asarray(actions)
        if a.shape != (self.num_envs, 2) or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{type(self).__name__}: actions must be integer (env_action, symbol) rows of "
                             f"shape {(self.num_envs, 2)}, got {a.dtype} {a.shape}")
        if a[:, 1].min() < 0 or a[:, 1].max() >= self.vocab_size:
            raise ValueError(f"{type(self).__name__}: symbols must be in [0, {self.vocab_size}), got {a[:, 1]}")
        self.venv.step_async(a[:, 0])  # validates the env actions: a refused step leaves no trace here
        w, n = self.num_worlds, self.num_agents
        env = a[:, 0].reshape(w, n).astype(np.int64) if self.rule.engine is not None else None
        self._actions = (env, a[:, 1].reshape(w, n).astype(np.int64))

    def set_symbol_probs(self, probs) -> None:
        """Symbol-policy probabilities ``[num_slots, vocab_size]`` for the next step (all-NaN row:
        not given, the learned self-model stands in)."""
        self.rule.policy = policy_from_slots("set_symbol_probs", probs, self.num_worlds, self.num_agents,
                                             self.vocab_size)
