"""SB3 ``VecEnvWrapper`` faces over the batched simulator (slots = worlds x agents).

Contract of the wrapped VecEnv (``ssd_gym.vector_env``): ``num_envs = num_worlds * num_agents``
slots, slot index ``world * num_agents + agent``; attributes ``num_worlds`` and ``num_agents``;
rewards ``[num_slots]``; auto-reset, with ``infos[slot]["terminal_observation"]`` at episode ends
(all agents of a world end together).  Every reward rule is the same array code as the
PettingZoo face, with ``worlds = num_worlds``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from ._base import ObsReader, as_float_array, check_probs, extend_dict_space
from .core import (
    check_weight,
    inequity_aversion_rewards,
    prosocial_rewards,
    smooth_rewards,
)
from .influence import InfluenceMixin, InfluenceOptions
from .moa import InfluenceEngine


def _layout(venv, wrapper: str) -> tuple[int, int]:
    """(num_worlds, num_agents) of a batched VecEnv, with a clear error for anything else."""
    if not isinstance(venv, VecEnv):
        raise TypeError(f"{wrapper} wraps an SB3 VecEnv (ssd_gym.vector_env), got {type(venv).__name__}; "
                        "for a PettingZoo ParallelEnv use the ParallelEnv wrapper")
    try:
        w, n = int(getattr(venv, "num_worlds")), int(getattr(venv, "num_agents"))
    except AttributeError as exc:
        raise TypeError(f"{wrapper} needs a batched VecEnv with attributes num_worlds and num_agents "
                        f"(slot = world * num_agents + agent): {exc}") from None
    if w * n != venv.num_envs:
        raise ValueError(f"{wrapper}: num_worlds ({w}) x num_agents ({n}) != num_envs ({venv.num_envs})")
    return w, n


def _keep_extrinsic(infos, rewards):
    for info, r in zip(infos, rewards):
        info.setdefault("extrinsic_reward", float(r))


def _ends(dones: np.ndarray, w: int, n: int) -> np.ndarray:
    """Worlds whose episode ended this step."""
    return np.asarray(dones, dtype=bool).reshape(w, n).any(axis=1)


class ProsocialRewardVecEnv(VecEnvWrapper):
    """VecEnv face of :class:`wrappers.ProsocialReward`: r_k = e_k + eta * sum_{i!=k} e_i per world."""

    def __init__(self, venv, eta: float = 0.85):
        eta = check_weight("eta", eta)
        self.num_worlds, self.num_agents = _layout(venv, type(self).__name__)
        super().__init__(venv)
        self.eta = eta

    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        obs, rews, dones, infos = self.venv.step_wait()
        _keep_extrinsic(infos, rews)
        r = prosocial_rewards(np.asarray(rews).reshape(self.num_worlds, self.num_agents), self.eta)
        return obs, r.reshape(-1).astype(np.float32), dones, infos


class InequityAversionVecEnv(VecEnvWrapper):
    """VecEnv face of :class:`wrappers.InequityAversionReward` (same formula and defaults).

    Traces are reset per world when its episode ends.  With ``observe_smoothed_rewards`` the dict
    observation gains ``"smoothed_rewards"`` ``[num_slots, N]`` (each slot sees its world's
    traces); ``terminal_observation`` gets the traces at the episode's end.
    """

    OBS_KEY = "smoothed_rewards"

    def __init__(self, venv, alpha: float = 5.0, beta: float = 0.05, gamma: float = 0.99,
                 lam: float = 0.975, observe_smoothed_rewards: bool = False):
        alpha, beta = check_weight("alpha", alpha), check_weight("beta", beta)
        gamma, lam = check_weight("gamma", gamma), check_weight("lam", lam)
        if gamma > 1 or lam > 1:
            raise ValueError(f"gamma and lam must lie in [0, 1], got gamma={gamma}, lam={lam}")
        w, n = _layout(venv, type(self).__name__)
        obs_space = None
        if observe_smoothed_rewards:
            obs_space = extend_dict_space(venv.observation_space, self.OBS_KEY,
                                          spaces.Box(-np.inf, np.inf, (n,), np.float32))
        super().__init__(venv, observation_space=obs_space)
        self.num_worlds, self.num_agents = w, n
        self.alpha, self.beta, self.gamma, self.lam = alpha, beta, gamma, lam
        self.observe_smoothed_rewards = bool(observe_smoothed_rewards)
        self.traces = np.zeros((w, n))

    def _augment(self, obs, traces):
        if not self.observe_smoothed_rewards:
            return obs
        per_slot = np.repeat(traces.astype(np.float32), self.num_agents, axis=0)
        if isinstance(obs, dict):
            return {**obs, self.OBS_KEY: per_slot}
        return {"observation": obs, self.OBS_KEY: per_slot}

    def reset(self):
        self.traces[:] = 0.0
        return self._augment(self.venv.reset(), self.traces)

    def step_wait(self):
        obs, rews, dones, infos = self.venv.step_wait()
        _keep_extrinsic(infos, rews)
        w, n = self.num_worlds, self.num_agents
        e = np.asarray(rews, dtype=np.float64).reshape(w, n)
        self.traces = smooth_rewards(self.traces, e, self.gamma, self.lam)
        r = inequity_aversion_rewards(e, self.traces, self.alpha, self.beta)
        ended = _ends(dones, w, n)
        for s, info in enumerate(infos):
            info["smoothed_reward"] = float(self.traces[s // n, s % n])
            if self.observe_smoothed_rewards and "terminal_observation" in info:
                tob = info["terminal_observation"]
                t = self.traces[s // n].astype(np.float32)
                info["terminal_observation"] = ({**tob, self.OBS_KEY: t} if isinstance(tob, dict)
                                                else {"observation": tob, self.OBS_KEY: t})
        self.traces[ended] = 0.0  # the next observation of those worlds starts a new episode
        return self._augment(obs, self.traces), r.reshape(-1).astype(np.float32), dones, infos


class InfluenceRewardVecEnv(InfluenceMixin, VecEnvWrapper):
    """VecEnv face of :class:`wrappers.InfluenceReward`: same engine, options and info keys.

    One MOA per agent index, shared by all worlds (they are i.i.d. copies of the game) and trained
    on all of them at once.  Policy probabilities: ``set_action_probs(probs)`` with ``probs`` of
    shape ``[num_slots, A]`` before each ``step``; rows that are all-NaN mean "not given" (use the
    learned self-model).  ``global_step`` counts env steps (``num_worlds`` per call), so the
    curriculum runs in env steps on both faces.
    """

    def __init__(self, venv, beta: float = 1.0, divergence: str = "kl", alpha: float = 1.0,
                 curriculum_steps: int = 0, clip: float = 10.0, influence_only_visible: bool = True,
                 train_only_visible: bool = True, moa_sees_hidden_actions: bool = False,
                 lr: float = 1e-3, train_every: int = 64, bptt: int = 8, train_iters: int = 1,
                 obs_key: str = "rgb", visibility_key: str = "others_visible", seed: int = 0,
                 torch_threads: int | None = 1, compile_moa: bool = False):
        opts = InfluenceOptions.from_args(locals())
        w, n = _layout(venv, type(self).__name__)
        if n < 2:
            raise ValueError(f"InfluenceRewardVecEnv needs at least 2 agents, got {n}")
        if not isinstance(venv.action_space, spaces.Discrete):
            raise ValueError(f"InfluenceRewardVecEnv needs a Discrete action space, got {venv.action_space}")
        reader = ObsReader(venv.observation_space, obs_key, visibility_key, n, type(self).__name__)
        super().__init__(venv)
        self.num_worlds, self.num_agents = w, n
        self.num_actions = int(venv.action_space.n)
        self.reader = reader
        self._set_options(opts)
        self.engine = InfluenceEngine(w, n, self.num_actions, reader.shape, **opts.engine_kwargs())
        self.global_step = 0
        self._obs = None
        self._actions = None
        self._probs = None

    def set_action_probs(self, probs: np.ndarray) -> None:
        """Policy probabilities ``[num_slots, A]`` for the next step (all-NaN row = not given);
        a NumPy array or a torch tensor (detached)."""
        p = as_float_array(probs)
        if p.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"set_action_probs: expected shape {(self.num_envs, self.num_actions)}, got {p.shape}")
        given = ~np.all(np.isnan(p), axis=1)
        out = np.zeros_like(p)
        if given.any():
            out[given] = check_probs("set_action_probs", p[given], self.num_actions)
        self._probs = (out, given)

    def reset(self):
        obs = self.venv.reset()
        self.engine.reset_worlds()
        self._obs, self._probs = obs, None
        return obs

    def step_async(self, actions):
        self.venv.step_async(actions)  # validates first: a refused step leaves no trace here
        self._actions = np.asarray(actions).reshape(-1).astype(np.int64)

    def step_wait(self):
        if self._obs is None:
            raise RuntimeError("InfluenceRewardVecEnv.step() called before reset()")
        obs, rews, dones, infos = self.venv.step_wait()
        _keep_extrinsic(infos, rews)
        w, n = self.num_worlds, self.num_agents
        prev = self._obs
        img = np.asarray(prev[self.reader.obs_key] if self.reader.is_dict else prev)
        img = img.reshape(w, n, *self.reader.shape)
        vis = None
        if self.reader.has_vis:
            vis = np.asarray(prev[self.reader.vis_key]).astype(bool).reshape(w, n, n - 1)
        probs = given = None
        if self._probs is not None:
            probs = self._probs[0].reshape(w, n, -1)
            given = self._probs[1].reshape(w, n)
        influence, _ = self.engine.step(img, self._actions.reshape(w, n), vis, policy=probs, policy_given=given)
        wt = self.influence_weight
        loss, acc, _ = self.engine.stats()
        e = np.asarray(rews, dtype=np.float64)
        r = self.alpha * e + wt * influence.reshape(-1)
        for s, info in enumerate(infos):
            k = s % n
            info.update(influence_reward=float(influence.reshape(-1)[s]), influence_weight=wt,
                        moa_loss=float(loss[k]), moa_accuracy=float(acc[k]),
                        policy_source="given" if given is not None and given.reshape(-1)[s] else "self_model")
        self.engine.reset_worlds(_ends(dones, w, n))
        self.global_step += w
        self._obs, self._probs = obs, None
        return obs, r.astype(np.float32), dones, infos
