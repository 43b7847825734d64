"""Several sb3-contrib ``RecurrentPPO`` learners stepping one batched VecEnv in lockstep.

The batched env has ``num_worlds * num_agents`` slots (slot = world * N + agent). Each learner owns a
group of slots:

* independent learners (default): learner i owns slots ``i, i + N, i + 2N, ...`` (agent i in every
  world), so its RecurrentPPO has ``n_envs = num_worlds``;
* parameter sharing: one learner owns every slot (``n_envs = num_worlds * N``).

One thread, one loop. Every step: each learner runs its policy on its own slots (no gradients), the
actions are scattered into one array, the env steps all worlds x agents at once, and each learner's
``RecurrentRolloutBuffer.add`` gets its slice. After ``n_steps`` each learner computes its returns and
runs its own ``RecurrentPPO.train()``. This mirrors ``RecurrentPPO.collect_rollouts`` of sb3-contrib
2.9.2 line by line (LSTM states, episode starts, timeout bootstrapping); only the env step is shared.
PPO itself (loss, minibatching over sequences, optimiser) is sb3-contrib's, untouched.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecTransposeImage

from baselines.centralised import INFLUENCER_KEY, SYMBOL_KEY, TeamView
from baselines.config import AgentConfig
from baselines.network import SSDLstmPolicy, policy_kwargs


class SpacesOnly(gym.Env):
    """An env that has only spaces: RecurrentPPO sizes its buffers from an env at construction; the
    lockstep driver does the stepping (``step`` and ``reset`` raise NotImplementedError)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space


class LinearSchedule:
    """lr(progress_remaining) = end + (init - end) * progress_remaining  (SB3 calls it with 1 -> 0).

    Progress is clipped to [0, 1], so the rate never leaves [end, init]."""

    def __init__(self, init: float, end: float) -> None:
        self.init, self.end = float(init), float(end)

    def __call__(self, progress_remaining: float) -> float:
        return self.end + (self.init - self.end) * min(max(float(progress_remaining), 0.0), 1.0)


class ReturnScaler:
    """Divides a learner's rewards by the running standard deviation of its discounted return.

    SB3's ``VecNormalize(norm_reward=True)`` rule (without its clipping), applied on the learner's side
    of the shared env: the game's fines (-50 a hit) make returns of hundreds early on, and a value
    loss of that size, flowing into the trunk it shares with the policy, saturates the tanh layers
    (the policy then no longer depends on the observation). The env, the metrics and ``info`` keep
    the raw rewards; only what the learner trains on is scaled.
    """

    def __init__(self, num_slots: int, gamma: float) -> None:
        self.gamma = float(gamma)
        self.rms = RunningMeanStd(shape=())
        self.returns = np.zeros(num_slots, dtype=np.float64)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns)
        self.returns[dones] = 0.0
        return (rewards / np.sqrt(self.rms.var + 1e-8)).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": float(self.rms.mean), "var": float(self.rms.var), "count": float(self.rms.count),
                "returns": self.returns.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rms.mean, self.rms.var, self.rms.count = state["mean"], state["var"], state["count"]
        self.returns = np.asarray(state["returns"], dtype=np.float64)


def slot_groups(num_worlds: int, num_agents: int, sharing: str) -> list[np.ndarray]:
    """Slot indices owned by each learner (see module docstring)."""
    if sharing == "shared":
        return [np.arange(num_worlds * num_agents)]
    return [np.arange(num_worlds) * num_agents + i for i in range(num_agents)]


@dataclass
class Role:
    """One learner's part: the slots it owns, the action space it acts in, the column of the env's
    action array it fills (None: the array is one action per slot), the observation keys its
    network reads beside the image (and the visible actions), and its own entropy weight and
    policy layers where they differ from the config's."""

    group: np.ndarray
    action_space: spaces.Discrete
    column: int | None = None
    extra_keys: tuple[str, ...] = ()
    ent_coef: float | None = None
    policy_layers: tuple[int, ...] = ()


def team_roles(cfg: AgentConfig, num_worlds: int, num_agents: int, action_space: spaces.Space) -> list[Role]:
    """The learners of a config: one per agent (or one for all with parameter sharing); the
    centralised influence agents (baselines.centralised) need more than one kind."""
    groups = slot_groups(num_worlds, num_agents, cfg.sharing)
    if cfg.reward == "influence_comm":  # action learners, then message learners, on the same slots
        com = cfg.communication
        acts = spaces.Discrete(int(action_space.nvec[0]))
        return ([Role(g, acts, 0, (SYMBOL_KEY,)) for g in groups]
                + [Role(g, spaces.Discrete(com.vocab_size), 1, (SYMBOL_KEY,), com.ent_coef, (com.embedding,))
                   for g in groups])
    if cfg.reward == "influence_basic":  # the influencees see the influencers' current actions
        return [Role(g, action_space, None, (INFLUENCER_KEY,) if i >= cfg.influence.influencers else ())
                for i, g in enumerate(groups)]
    return [Role(g, action_space) for g in groups]


def make_learners(
    cfg: AgentConfig,
    observation_space: spaces.Space,
    roles: list[Role],
    seed: int,
    device: str = "cpu",
) -> list[RecurrentPPO]:
    """One RecurrentPPO per role, with the paper's network and the config's PPO settings."""
    p, net = cfg.ppo, cfg.network
    ppo_kwargs = {k: getattr(p, k) for k in ("n_steps", "n_epochs", "gamma", "gae_lambda", "clip_range",
                                             "vf_coef", "max_grad_norm")}
    learners = []
    for i, role in enumerate(roles):
        n_envs = len(role.group)
        learner = RecurrentPPO(
            SSDLstmPolicy,
            DummyVecEnv([lambda: SpacesOnly(observation_space, role.action_space)] * n_envs),
            learning_rate=LinearSchedule(p.lr_init, p.lr_end),
            batch_size=min(p.batch_size, p.n_steps * n_envs),  # RecurrentPPO needs batch_size <= buffer size
            ent_coef=p.ent_coef if role.ent_coef is None else role.ent_coef,
            policy_kwargs=policy_kwargs(conv_channels=net.conv_channels, fc_sizes=net.fc_sizes,
                                        lstm_hidden_size=net.lstm_hidden_size, critic=net.critic,
                                        use_actions=cfg.policy_inputs == "rgb+actions",
                                        extra_keys=role.extra_keys, policy_layers=role.policy_layers),
            seed=seed * 1000 + i, device=device, verbose=0, **ppo_kwargs,
        )
        # losses are read from name_to_value by the trainer; no SB3 output formats needed
        learner.set_logger(Logger(folder=None, output_formats=[]))
        learners.append(learner)
    return learners


@th.no_grad()
def policy_step(policy: Any, obs: Any, lstm_states: RNNStates, episode_starts: th.Tensor, deterministic: bool = False):
    """``RecurrentActorCriticPolicy.forward`` plus the action probabilities (for the influence wrapper).

    The same computation as sb3-contrib's ``forward`` (and the same random draw: ``multinomial`` on the
    softmax, as ``Categorical.sample``), with the categorical distribution written out rather than
    a ``torch.distributions.Categorical`` built every step.
    """
    features = policy.extract_features(obs)
    latent_pi, states_pi = policy._process_sequence(features, lstm_states.pi, episode_starts, policy.lstm_actor)
    if policy.lstm_critic is not None:
        latent_vf, states_vf = policy._process_sequence(features, lstm_states.vf, episode_starts, policy.lstm_critic)
    else:  # one LSTM under both heads
        latent_vf, states_vf = latent_pi, states_pi
    values = policy.value_net(policy.mlp_extractor.forward_critic(latent_vf))
    logits = policy.action_net(policy.mlp_extractor.forward_actor(latent_pi))
    probs = th.softmax(logits, dim=1)
    actions = th.argmax(probs, dim=1) if deterministic else th.multinomial(probs, 1, True).flatten()
    log_prob = th.log_softmax(logits, dim=1).gather(1, actions.view(-1, 1)).flatten()
    return actions, values, log_prob, RNNStates(states_pi, states_vf), probs


def empty_actions(venv: VecEnv) -> np.ndarray:
    """The env's action array: one action per slot, or a row of columns for a MultiDiscrete space
    (the communication channel's ``(env_action, symbol)``)."""
    space = venv.action_space
    shape = (venv.num_envs, len(space.nvec)) if isinstance(space, spaces.MultiDiscrete) else (venv.num_envs,)
    return np.zeros(shape, dtype=np.int64)


def put_actions(actions_all: np.ndarray, role: Role, actions: np.ndarray) -> None:
    """Write one learner's actions into its slots (and column) of the env's action array."""
    if role.column is None:
        actions_all[role.group] = actions
    else:
        actions_all[role.group, role.column] = actions


def take(obs: Any, idx: np.ndarray | slice) -> Any:
    """Rows ``idx`` of a (dict of) batched observation array(s)."""
    return {k: v[idx] for k, v in obs.items()} if isinstance(obs, dict) else obs[idx]


def learner_obs(learners: list[RecurrentPPO], groups: list[np.ndarray], obs: Any) -> list[Any]:
    """Each learner's rows of the env's batched observation, as its policy takes them."""
    return [as_learner_obs(lrn, take(obs, g)) for lrn, g in zip(learners, groups)]


def as_learner_obs(learner: RecurrentPPO, obs: Any) -> Any:
    """Channels-last env images -> what the learner's policy was built for (SB3 transposes images)."""
    return learner.env.transpose_observations(obs) if isinstance(learner.env, VecTransposeImage) else obs


def _tensor(learner: RecurrentPPO, x: Any, dtype: Any = None) -> Any:
    return obs_as_tensor(x, learner.device) if dtype is None else th.tensor(x, dtype=dtype, device=learner.device)


@dataclass
class RolloutStats:
    """Where the wall time of the rollouts went (seconds)."""

    env_s: float = 0.0
    policy_s: float = 0.0
    buffer_s: float = 0.0
    social_s: float = 0.0  # the centralised influence's counterfactual passes (not in the other three)


class LockstepTrainer:
    """Drive ``learners`` (RecurrentPPO) on ``venv`` in lockstep; see the module docstring.

    ``on_step(infos, dones)`` is called after every env step with the full infos list (for episode
    metrics). If ``venv`` has ``set_action_probs`` (the influence wrapper) it receives every step the
    action probabilities of all slots, shape ``[num_slots, A]``, before ``step``. ``social`` (a
    :class:`baselines.centralised.CentralisedInfluence`) is told what each learner did, in learner
    order, and gives every learner's reward after the env step.
    """

    def __init__(self, venv: VecEnv, learners: list[RecurrentPPO], roles: list[Role], total_timesteps: int,
                 on_step: Callable[[list[dict], np.ndarray], None] | None = None, normalize_reward: bool = False,
                 social: Any = None) -> None:
        for column in sorted({r.column for r in roles}, key=str):
            if sum(len(r.group) for r in roles if r.column == column) != venv.num_envs:
                raise ValueError("the learners of each action column must cover the env's slots exactly once")
        self.n_steps = learners[0].n_steps
        if any(lrn.n_steps != self.n_steps for lrn in learners):
            raise ValueError("lockstep learners must share n_steps")
        self.venv, self.learners, self.roles, self.social = venv, learners, roles, social
        self.groups = [r.group for r in roles]
        self.total_timesteps = int(total_timesteps)  # agent-steps over all learners
        self.on_step = on_step
        self.wants_probs = callable(getattr(venv, "set_action_probs", None))
        self.stats = RolloutStats()
        self.reward_scalers = [ReturnScaler(len(g), lrn.gamma) for lrn, g in zip(learners, self.groups)] if normalize_reward else None

    def rollouts_in_budget(self) -> int:
        """Rollouts the run makes: the budget rounded up to whole rollouts of every slot. Schedules
        (lr) are laid over exactly these, so the last update runs at ``lr_end``."""
        return -(-self.total_timesteps // (self.n_steps * self.venv.num_envs))

    @property
    def budget_steps(self) -> int:
        """The agent-steps the run takes: the budget rounded up to whole rollouts."""
        return self.rollouts_in_budget() * self.n_steps * self.venv.num_envs

    @property
    def num_timesteps(self) -> int:
        """Agent-steps done, summed over the learners that choose the env actions (a message
        learner takes its agent's steps again)."""
        return int(sum(lrn.num_timesteps for lrn, r in zip(self.learners, self.roles) if r.column in (None, 0)))

    def reset(self) -> None:
        """Start fresh episodes (also after a resume: LSTM states and episode starts are reset)."""
        obs = self.venv.reset()
        for learner, group in zip(self.learners, self.groups):
            learner._last_obs = as_learner_obs(learner, take(obs, group))
            learner._last_episode_starts = np.ones(len(group), dtype=bool)
            zeros = lambda states: tuple(th.zeros_like(s) for s in states)  # noqa: E731
            learner._last_lstm_states = RNNStates(zeros(learner._last_lstm_states.pi), zeros(learner._last_lstm_states.vf))
            learner._total_timesteps = self.rollouts_in_budget() * self.n_steps * len(group)
            if learner.ep_info_buffer is None:  # made by RecurrentPPO.learn, which the trainer never calls
                learner.ep_info_buffer = deque(maxlen=learner._stats_window_size)
                learner.ep_success_buffer = deque(maxlen=learner._stats_window_size)

    def collect_rollouts(self) -> None:
        """Fill every learner's rollout buffer with ``n_steps`` steps (RecurrentPPO.collect_rollouts)."""
        for learner in self.learners:
            learner.policy.set_training_mode(False)
            learner.rollout_buffer.reset()
        actions_all = empty_actions(self.venv)
        probs_all: np.ndarray | None = None
        step_out: list[tuple] = [()] * len(self.learners)
        learners, social = self.learners, self.social
        for _ in range(self.n_steps):
            acted_s = stepped_s = 0.0
            t0 = time.perf_counter()
            before = None if social is None else TeamView([l._last_obs for l in learners],
                                                          [l._last_lstm_states for l in learners],
                                                          [l._last_episode_starts for l in learners])
            for k, (learner, role) in enumerate(zip(learners, self.roles)):
                starts = _tensor(learner, learner._last_episode_starts, th.float32)
                actions, values, log_probs, states, probs = policy_step(
                    learner.policy, _tensor(learner, learner._last_obs), learner._last_lstm_states, starts)
                actions = actions.cpu().numpy()
                put_actions(actions_all, role, actions)
                if self.wants_probs and role.column in (None, 0):
                    if probs_all is None:
                        probs_all = np.zeros((self.venv.num_envs, probs.shape[1]), dtype=np.float32)
                    probs_all[role.group] = probs.cpu().numpy()
                if social is not None:
                    ts = time.perf_counter()
                    social.acted(k, actions, probs, before)
                    acted_s += time.perf_counter() - ts
                step_out[k] = (actions, values, log_probs, states)
            t1 = time.perf_counter()
            if self.wants_probs:
                self.venv.set_action_probs(probs_all)
            new_obs, rewards, dones, infos = self.venv.step(actions_all)
            t2 = time.perf_counter()
            next_obs = learner_obs(learners, self.groups, new_obs)
            learner_rewards = [rewards[g] for g in self.groups]
            if social is not None:
                ts = time.perf_counter()
                after = TeamView(next_obs, [out[3] for out in step_out], [np.asarray(dones[g], dtype=bool) for g in self.groups])
                learner_rewards = social.stepped(rewards, dones, infos, after)
                stepped_s = time.perf_counter() - ts
            if self.on_step is not None:
                self.on_step(infos, dones)
            for k, (learner, group) in enumerate(zip(learners, self.groups)):
                actions, values, log_probs, states = step_out[k]
                g_dones = np.asarray(dones[group], dtype=bool)
                if self.reward_scalers is not None:
                    g_rewards = self.reward_scalers[k](np.asarray(learner_rewards[k], dtype=np.float64), g_dones)
                else:
                    g_rewards = np.asarray(learner_rewards[k], dtype=np.float32).copy()
                g_infos = [infos[s] for s in group]
                learner.num_timesteps += len(group)
                learner._update_info_buffer(g_infos, g_dones)
                self._bootstrap_timeouts(learner, g_rewards, g_dones, g_infos, states)
                learner.rollout_buffer.add(learner._last_obs, actions.reshape(-1, 1),  # Discrete: a column
                                           g_rewards, learner._last_episode_starts, values, log_probs,
                                           lstm_states=learner._last_lstm_states)
                learner._last_obs = next_obs[k]
                learner._last_episode_starts = g_dones
                learner._last_lstm_states = states
            t3 = time.perf_counter()
            self.stats.policy_s += t1 - t0 - acted_s
            self.stats.env_s += t2 - t1
            self.stats.buffer_s += t3 - t2 - stepped_s
            self.stats.social_s += acted_s + stepped_s
        for learner in self.learners:
            with th.no_grad():
                starts = _tensor(learner, learner._last_episode_starts, th.float32)
                values = learner.policy.predict_values(_tensor(learner, learner._last_obs),
                                                       learner._last_lstm_states.vf, starts)
            learner.rollout_buffer.compute_returns_and_advantage(last_values=values, dones=learner._last_episode_starts)

    @staticmethod
    def _bootstrap_timeouts(learner: RecurrentPPO, rewards: np.ndarray, dones: np.ndarray, infos: list[dict],
                            states: RNNStates) -> None:
        """Truncated episodes: add gamma * V(terminal_obs) (sb3 issue #633), batched over slots."""
        idx = [i for i, d in enumerate(dones) if d and infos[i].get("terminal_observation") is not None
               and infos[i].get("TimeLimit.truncated", False)]
        if not idx:
            return
        terminal = [infos[i]["terminal_observation"] for i in idx]
        terminal = ({k: np.stack([o[k] for o in terminal]) for k in terminal[0]} if isinstance(terminal[0], dict)
                    else np.stack(terminal))
        with th.no_grad():
            vf_states = (states.vf[0][:, idx, :].contiguous(), states.vf[1][:, idx, :].contiguous())
            starts = th.zeros(len(idx), dtype=th.float32, device=learner.device)
            values = learner.policy.predict_values(_tensor(learner, as_learner_obs(learner, terminal)), vf_states, starts)
        rewards[idx] += learner.gamma * values.flatten().cpu().numpy()

    def train(self) -> dict[str, float]:
        """One PPO update per learner (sb3-contrib's ``RecurrentPPO.train``). Returns mean losses."""
        logs: dict[str, list[float]] = {}
        for learner in self.learners:
            learner._update_current_progress_remaining(learner.num_timesteps, learner._total_timesteps)
            learner.train()
            for key, value in learner.logger.name_to_value.items():
                logs.setdefault(key, []).append(float(value))
            for d in (learner.logger.name_to_value, learner.logger.name_to_count, learner.logger.name_to_excluded):
                d.clear()
        return {k: float(np.mean(v)) for k, v in logs.items()}

    def current_lr(self) -> float:
        """The learning rate of the last update (all learners share the schedule and progress)."""
        lrn = self.learners[0]
        return lrn.lr_schedule(lrn._current_progress_remaining)
