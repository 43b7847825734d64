"""Influence measured on the learners' own policies (Jaques et al. 2019, Experiments I and II).

The paper's basic influence agent and its influential-communication agent are *centralised*: the
influence of agent k on agent j is read off j's real policy network, re-run from j's current
LSTM state for every counterfactual value of k's action (or message), with no model of j learnt.
So they live with the zoo's lockstep driver, which holds every learner's policy at step time.
The divergence, the marginal, the clip and the curriculum are the wrappers' (:mod:`wrappers.core`).

* ``influence_basic`` (Experiment I): agents ``0..influencers-1`` act first; the others see their
  *current* actions (observation key ``influencer_actions``, filled in by the driver between the
  two phases) and act second. Influencer k gets ``alpha e_k + w(t) clip(sum_j D[p(a^j | a^k, s^j)
  || sum_a p(a^j | a, s^j) p(a | s^k)])`` over the influencees j (all of them, or the visible ones
  with ``influence_only_visible``); with ``influencee_reward`` each influencee also gets
  ``w(t) clip(sum_k D_kj)``, the influence exerted on it (Table 1's "influencee reward", as we read it).
* ``influence_comm`` (Experiment II): every agent has a second learner, its message policy, which
  emits one of ``vocab_size`` symbols each step; everyone sees all symbols at the next step
  (:class:`wrappers.CommunicationChannelVecEnv`, observation key ``symbols``). The message learner
  of k is trained on ``alpha e_k + w(t) c_k`` with ``c_k = clip(sum_{j != k} D[p(a^j_{t+1} | m^k_t)
  || sum_m p(a^j_{t+1} | m) pi_m^k(m)])``, computed right after the env step from j's next
  observation and LSTM state; the action learners on ``e`` alone. ``comm_baseline``: beta = 0.

The paper's message policy is a second head on the agent's LSTM; sb3-contrib trains one policy per
learner, so here it is a network of its own (the same conv/FC/LSTM, its own PPO and entropy weight,
``communication.embedding`` units before its logits). It sees what the action policy sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnvWrapper

from wrappers.core import (
    aggregate_influence,
    conditional_and_marginal,
    curriculum_weight,
    pairwise_divergence,
    pointwise_mutual_information,
)
from wrappers.rule import extend_dict_space, extend_obs

INFLUENCER_KEY = "influencer_actions"
SYMBOL_KEY = "symbols"  # wrappers.CommunicationChannelVecEnv's observation key
VISIBILITY_KEY = "others_visible"


class InfluencerActionsInput(VecEnvWrapper):
    """Adds the observation key ``influencer_actions``, ``MultiDiscrete([A] * num_influencers)``:
    the influencers' actions of the *current* step. The env cannot know them (they are chosen in
    the same step), so it emits 0s, also in ``terminal_observation``; the lockstep driver writes the
    real ones into the influencees' observations once the influencers have acted."""

    def __init__(self, venv, num_influencers: int):
        n = int(venv.num_agents)
        if not 1 <= num_influencers <= n - 1:
            raise ValueError(f"influence_basic needs 1 <= influencers <= num_agents - 1 = {n - 1}, "
                             f"got {num_influencers} (influencers and influencees are disjoint)")
        self.num_influencers = int(num_influencers)
        extra = spaces.MultiDiscrete([int(venv.action_space.n)] * self.num_influencers)
        super().__init__(venv, observation_space=extend_dict_space(venv.observation_space, INFLUENCER_KEY, extra))
        self.num_worlds, self.num_agents = venv.num_worlds, n

    def _add(self, obs):
        return extend_obs(obs, INFLUENCER_KEY, np.zeros((self.num_envs, self.num_influencers), dtype=np.int64))

    def reset(self):
        return self._add(self.venv.reset())

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = extend_obs(info["terminal_observation"], INFLUENCER_KEY,
                                                          np.zeros(self.num_influencers, dtype=np.int64))
        return self._add(obs), rewards, dones, infos


@th.no_grad()
def counterfactual_probs(policy: Any, obs: dict, lstm_states: Any, episode_starts: th.Tensor, key: str,
                         columns: list[int], num_values: int) -> th.Tensor:
    """The policy's action probabilities with ``obs[key][:, c]`` replaced by each value
    ``v < num_values``, for each column ``c`` in ``columns``: ``[len(columns), num_values, B, A]``.

    One acting step from ``lstm_states`` (no sampling, no state kept). The conv, and the first FC
    layer's image part, run once; only the rest of the FC layers, the LSTM cell and the head see the
    ``len(columns) * num_values`` variants."""
    pre = preprocess_obs(obs, policy.observation_space, normalize_images=policy.normalize_images)
    ext = policy.features_extractor
    image = ext.image_features(pre)  # [B, C]
    vector = ext.vector(pre)  # [B, D]
    part = ext.vector_slice(key)
    width = int(policy.observation_space[key].nvec[0])  # one-hot width of one column
    n_cols, n_vals, batch = len(columns), num_values, image.shape[0]
    variants = vector.unsqueeze(0).repeat(n_cols * n_vals, 1, 1)  # [n_cols * n_vals, B, D]
    for i, c in enumerate(columns):
        lo = part.start + c * width
        block = variants[i * n_vals:(i + 1) * n_vals]
        block[:, :, lo:lo + width] = 0.0
        block[th.arange(n_vals), :, lo + th.arange(n_vals)] = 1.0
    rows = n_cols * n_vals
    features = ext.head_variants(image, variants)  # [rows * B, F]
    states = tuple(s.repeat(1, rows, 1) for s in lstm_states.pi)
    latent, _ = policy._process_sequence(features, states, episode_starts.repeat(rows), policy.lstm_actor)
    logits = policy.action_net(policy.mlp_extractor.forward_actor(latent))
    return th.softmax(logits, dim=-1).reshape(n_cols, n_vals, batch, -1)


@dataclass
class TeamView:
    """What the learners see at one moment: per learner, its observation (as its policy takes it),
    its LSTM states and its episode-start flags."""

    obs: list[Any]
    states: list[Any]
    starts: list[np.ndarray]


class CentralisedInfluence:
    """Base of the two rewards: curriculum, divergence settings, the per-step influence log.

    The driver calls :meth:`acted` after each learner acted (learner order: influencers first) and
    :meth:`stepped` after the env step, which returns every learner's reward for the step."""

    def __init__(self, cfg: Any, learners: list[Any], num_worlds: int, num_agents: int, curriculum_steps: int) -> None:
        inf = cfg.influence
        self.beta, self.alpha, self.divergence, self.clip = inf.beta, inf.alpha, inf.divergence, inf.clip
        self.only_visible = inf.influence_only_visible
        self.curriculum_steps = int(curriculum_steps)
        self.learners = learners  # learner i acts for agent i (and, for comm, N + i speaks for it)
        self.num_worlds, self.num_agents = num_worlds, num_agents
        self.global_step = 0  # env steps (num_worlds per step), the wrappers' curriculum unit

    @property
    def influence_weight(self) -> float:
        return curriculum_weight(self.beta, self.global_step, self.curriculum_steps)

    def _cf(self, j: int, team: TeamView, key: str, columns: list[int], num_values: int) -> th.Tensor:
        learner = self.learners[j]
        starts = th.as_tensor(np.asarray(team.starts[j], dtype=np.float32), device=learner.device)
        return counterfactual_probs(learner.policy, obs_as_tensor(team.obs[j], learner.device), team.states[j], starts,
                                    key, columns, num_values)

    def _visible(self, team: TeamView, k: int, others: list[int]) -> th.Tensor | None:
        """Whether agent k sees each of ``others`` (its ``others_visible`` bits), ``[W, len(others)]``."""
        if not self.only_visible or VISIBILITY_KEY not in team.obs[k]:
            return None
        seen = np.asarray(team.obs[k][VISIBILITY_KEY]).astype(bool)  # [W, N-1], agent order without k
        return th.as_tensor(seen[:, [j - (j > k) for j in others]])

    def _per_pair(self, cf: th.Tensor, actual: th.Tensor, policy: th.Tensor, outcome: th.Tensor | None) -> th.Tensor:
        cond, marg = conditional_and_marginal(cf, actual, policy)
        if self.divergence == "pmi":
            return th.nan_to_num(pointwise_mutual_information(cond, marg, outcome), nan=0.0, posinf=0.0, neginf=0.0)
        return pairwise_divergence(cond, marg, self.divergence)

    def _log(self, infos: list[dict], influence: np.ndarray) -> None:
        """``info["influence_reward"]`` of every slot: the raw (clipped) influence, ``[W, N]``."""
        for s, value in enumerate(influence.reshape(-1).tolist()):
            infos[s]["influence_reward"] = value


class BasicInfluence(CentralisedInfluence):
    """Experiment I (module docstring): learners ``0..K-1`` are the influencers."""

    def __init__(self, cfg: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.num_influencers = cfg.influence.influencers
        self.influencee_reward = cfg.influence.influencee_reward
        self.influencees = list(range(self.num_influencers, self.num_agents))
        self.actions: list[np.ndarray | None] = [None] * self.num_agents
        self.probs: list[th.Tensor | None] = [None] * self.num_agents
        self.cf: list[th.Tensor] = []

    def acted(self, k: int, actions: np.ndarray, probs: th.Tensor, team: TeamView) -> None:
        self.actions[k], self.probs[k] = actions, probs
        if k < self.num_influencers:
            for j in self.influencees:
                team.obs[j][INFLUENCER_KEY][:, k] = actions
        if k == self.num_influencers - 1:  # the influencees' policies given every counterfactual action
            n_actions = probs.shape[1]
            self.cf = [self._cf(j, team, INFLUENCER_KEY, list(range(self.num_influencers)), n_actions)
                       for j in self.influencees]
            self.visible = [self._visible(team, k, self.influencees) for k in range(self.num_influencers)]

    def stepped(self, rewards: np.ndarray, dones: np.ndarray, infos: list[dict], after: TeamView) -> list[np.ndarray]:
        w, n, ni = self.num_worlds, self.num_agents, self.num_influencers
        e = np.asarray(rewards, dtype=np.float64).reshape(w, n)
        # cf [W, influencers, A (counterfactual), influencees, A]
        cf = th.stack(self.cf, dim=0).permute(3, 1, 2, 0, 4)
        actual = th.as_tensor(np.stack(self.actions[:ni], axis=1))
        policy = th.stack(self.probs[:ni], dim=1).to(cf.dtype)
        outcome = th.as_tensor(np.stack([self.actions[j] for j in self.influencees], axis=1))
        per_pair = self._per_pair(cf, actual, policy, outcome.unsqueeze(1).expand(-1, ni, -1))  # [W, ni, J]
        masks = [m for m in self.visible if m is not None]
        mask = th.stack(masks, dim=1) if len(masks) == ni else None
        influence = np.zeros((w, n))
        influence[:, :ni] = aggregate_influence(per_pair, mask, self.clip).cpu().numpy()
        weight = self.influence_weight
        out = e.copy()
        out[:, :ni] = self.alpha * e[:, :ni] + weight * influence[:, :ni]
        if self.influencee_reward:
            exerted = per_pair if mask is None else per_pair * mask
            on_influencee = exerted.sum(1).clamp(-self.clip, self.clip).cpu().numpy()
            out[:, ni:] += weight * on_influencee
        self._log(infos, influence)
        self.global_step += w
        return [out[:, k].astype(np.float32) for k in range(n)]


class CommInfluence(CentralisedInfluence):
    """Experiment II (module docstring): learners ``0..N-1`` act, ``N..2N-1`` speak."""

    def __init__(self, cfg: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.vocab_size = cfg.communication.vocab_size
        self.symbols: list[np.ndarray | None] = [None] * self.num_agents
        self.symbol_probs: list[th.Tensor | None] = [None] * self.num_agents

    def acted(self, k: int, actions: np.ndarray, probs: th.Tensor, team: TeamView) -> None:
        if k >= self.num_agents:
            self.symbols[k - self.num_agents], self.symbol_probs[k - self.num_agents] = actions, probs

    def stepped(self, rewards: np.ndarray, dones: np.ndarray, infos: list[dict], after: TeamView) -> list[np.ndarray]:
        w, n, v = self.num_worlds, self.num_agents, self.vocab_size
        e = np.asarray(rewards, dtype=np.float64).reshape(w, n)
        influence = np.zeros((w, n))
        if self.beta > 0:
            # each listener j's next action given every counterfactual symbol of every speaker k != j
            cf = {j: self._cf(j, after, SYMBOL_KEY, [k for k in range(n) if k != j], v) for j in range(n)}
            per_speaker = []
            for k in range(n):
                listeners = [j for j in range(n) if j != k]
                # cf[j][k - (k > j)]: speaker k's block among j's columns -> [W, V, listeners, A]
                per_speaker.append(th.stack([cf[j][k - (k > j)] for j in listeners], dim=2).permute(1, 0, 2, 3))
            cfs = th.stack(per_speaker, dim=1)  # [W, N, V, N-1, A]
            actual = th.as_tensor(np.stack(self.symbols, axis=1))
            policy = th.stack(self.symbol_probs, dim=1).to(cfs.dtype)
            per_pair = self._per_pair(cfs, actual, policy, None)
            masks = [self._visible(after, k, [j for j in range(n) if j != k]) for k in range(n)]
            mask = th.stack(masks, dim=1) if all(m is not None for m in masks) else None
            influence = aggregate_influence(per_pair, mask, self.clip).cpu().numpy()
            # a message sent in an episode's last step reaches nobody: the next observation is a new episode's
            influence[np.asarray(dones, dtype=bool).reshape(w, n).any(axis=1)] = 0.0
        message = self.alpha * e + self.influence_weight * influence
        self._log(infos, influence)
        self.global_step += w
        return [e[:, k].astype(np.float32) for k in range(n)] + [message[:, k].astype(np.float32) for k in range(n)]


def make_social(cfg: Any, learners: list[Any], num_worlds: int, num_agents: int,
                curriculum_steps: int) -> CentralisedInfluence | None:
    """The config's centralised influence reward, or None for the other agents."""
    kinds = {"influence_basic": BasicInfluence, "influence_comm": CommInfluence}
    if cfg.reward not in kinds:
        return None
    return kinds[cfg.reward](cfg, learners, num_worlds, num_agents, curriculum_steps)
