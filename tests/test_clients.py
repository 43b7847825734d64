"""The clients users plug ssd-gym into, on every game in both observation modes, through several
episode ends each (the place where info-key clashes and auto-reset bugs show up):

* SuperSuit ``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1`` -> SB3 ``PPO`` and sb3-contrib
  ``RecurrentPPO``, with and without ``VecMonitor``; SB3's logging (``dump_logs``) runs after every
  rollout, which is where ``KeyError: 'r'`` used to come from.
* ``ssd_gym.vector_env`` -> ``PPO`` / ``RecurrentPPO``, with and without ``VecMonitor``.
* ``gym.make("SSD/...")`` + ``gymnasium.wrappers.RecordEpisodeStatistics``, and ``gym.make_vec``
  (sync) + ``gymnasium.wrappers.vector.RecordEpisodeStatistics`` through auto-reset.
* TorchRL ``PettingZooWrapper`` (parallel) and Tianshou ``PettingZooEnv`` (AEC) + ``Collector``.

Every test counts the episode ends it sees, sums the rewards itself and checks them against what the
client recorded (``info["episode"]``, ``ep_info_buffer``, collector statistics) and against our own
``info["episode_metrics"]``. The networks are tiny (SB3's default NatureCNN needs images of at least
36x36; the 15x15 views go through ``baselines.network.SSDFeaturesExtractor``).
"""
from __future__ import annotations

import io
import math
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest

import ssd_gym
from ssd_gym.metrics import INFO_KEY

GAMES = sorted(ssd_gym.GAMES)
GYM_ID = {game: env_id for env_id, game in ssd_gym.GYM_IDS.items()}
MODES = ("rgb", "dict")
MAX_CYCLES = 20
EPISODES = 3  # episode ends each client must go through (per slot / sub-env / world)
N_STEPS = 10  # SB3 rollout length: EPISODES * MAX_CYCLES / N_STEPS = 6 rollouts, 6 dump_logs

modes = pytest.mark.parametrize("mode", MODES)
games = pytest.mark.parametrize("game", GAMES)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The networks here are tiny: torch's intra-op threads only contend with each other (and with
    anything else on the machine), which made this module several times slower on 2 cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_game_is_covered():
    assert len(GAMES) == 5
    assert set(GYM_ID) == set(GAMES), "every game needs a Gymnasium id for the gym tests"


def close(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-4)


def num_actions(game: str) -> int:
    return ssd_gym.parallel_env(game, max_cycles=MAX_CYCLES).game.num_actions


# ---- SB3 -------------------------------------------------------------------------------------

# stable-baselines3 and sb3-contrib are dependencies of ssd-gym: no importorskip
from sb3_contrib import RecurrentPPO  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.logger import HumanOutputFormat, Logger  # noqa: E402
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from baselines.network import SSDFeaturesExtractor, SSDLstmPolicy, policy_kwargs  # noqa: E402


class EpisodeChecker(BaseCallback):
    """Sums each slot's rewards, and at every done checks the slot's info: the SB3 time-limit
    contract (``TimeLimit.truncated``, ``terminal_observation``), our ``episode_metrics`` and, where
    present, ``info["episode"]`` in Monitor's format."""

    def __init__(self, game: str, mode: str, episode_key: str):
        super().__init__()
        self.num_actions = num_actions(game)
        self.mode = mode
        self.episode_key = episode_key  # "monitor": Monitor-format dict expected; "absent": none
        self.returns = self.lengths = self.ends = None
        self.finished: list[float] = []  # the returns the test summed, one per finished episode

    def _on_step(self) -> bool:
        rewards = np.asarray(self.locals["rewards"], dtype=np.float64)
        dones, infos = self.locals["dones"], self.locals["infos"]
        if self.ends is None:
            self.returns = np.zeros(len(rewards))
            self.lengths = np.zeros(len(rewards), dtype=np.int64)
            self.ends = np.zeros(len(rewards), dtype=np.int64)
        self.returns += rewards
        self.lengths += 1
        for i, info in enumerate(infos):
            assert close(info["extrinsic_reward"], rewards[i])
            if not dones[i]:
                assert INFO_KEY not in info and "episode" not in info and "terminal_observation" not in info
        for i in np.flatnonzero(dones):
            info = infos[i]
            assert self.lengths[i] == MAX_CYCLES
            assert info.get("TimeLimit.truncated") is True, "SB3 bootstraps a time limit only with this flag"
            term = info["terminal_observation"]
            if self.mode == "dict":
                # the last observation of the finished episode, not the new episode's first one
                assert int(term["prev_action"]) < self.num_actions
            m = info[INFO_KEY]
            assert m["episode_length"] == MAX_CYCLES
            assert close(m["agent_return"], self.returns[i])
            assert close(m["collective_return"], sum(m["returns"]))
            if self.episode_key == "monitor":
                ep = info["episode"]
                assert set(ep) == {"r", "l", "t"}, ep
                assert close(ep["r"], self.returns[i]) and int(ep["l"]) == MAX_CYCLES
            else:
                assert "episode" not in info, info["episode"]
            self.finished.append(float(self.returns[i]))
            self.returns[i] = 0.0
            self.lengths[i] = 0
            self.ends[i] += 1
        return True


def sb3_policy(algo, mode: str):
    if algo is PPO:
        return "MultiInputPolicy" if mode == "dict" else "CnnPolicy"
    return "MultiInputLstmPolicy" if mode == "dict" else "CnnLstmPolicy"


def tiny_kwargs(algo) -> dict:
    kw = dict(features_extractor_class=SSDFeaturesExtractor,
              features_extractor_kwargs=dict(conv_channels=2, fc_sizes=[8]), net_arch=[])
    if algo is RecurrentPPO:
        kw["lstm_hidden_size"] = 8
    return kw


def learn(algo, venv, game, mode, episode_key, policy=None, policy_kw=None, **algo_kw):
    """Train ``algo`` for exactly ``EPISODES`` episodes per slot and return the model, the checker and
    SB3's logged text."""
    model = algo(policy or sb3_policy(algo, mode), venv, n_steps=N_STEPS, batch_size=N_STEPS * venv.num_envs,
                 n_epochs=1, learning_rate=1e-3, policy_kwargs=policy_kw or tiny_kwargs(algo), device="cpu",
                 verbose=0, **algo_kw)
    text = io.StringIO()
    model.set_logger(Logger(folder=None, output_formats=[HumanOutputFormat(text)]))
    checker = EpisodeChecker(game, mode, episode_key)
    model.learn(total_timesteps=EPISODES * MAX_CYCLES * venv.num_envs, callback=checker, log_interval=1)
    assert checker.ends is not None and (checker.ends == EPISODES).all(), checker.ends
    log = text.getvalue()
    # dump_logs ran after every rollout (the code path that raised KeyError: 'r')
    assert len(re.findall(r"\|\s+iterations\s+\|", log)) == EPISODES * MAX_CYCLES // N_STEPS, log
    return model, checker, log


def check_ep_info_buffer(model, checker, num_slots: int, log: str) -> None:
    buf = list(model.ep_info_buffer)
    assert len(buf) == EPISODES * num_slots  # one entry per slot-episode, none doubled
    assert all(int(ep["l"]) == MAX_CYCLES for ep in buf)
    assert sorted(round(float(ep["r"]), 3) for ep in buf) == sorted(round(r, 3) for r in checker.finished)
    assert "ep_rew_mean" in log and "ep_len_mean" in log


def supersuit_venv(game: str, mode: str, monitor: bool):
    ss = pytest.importorskip("supersuit", reason="SuperSuit is in the [test] extra")
    par = ssd_gym.parallel_env(game, obs_mode=mode, max_cycles=MAX_CYCLES)
    venv = ss.pettingzoo_env_to_vec_env_v1(par)
    # num_cpus=0: no subprocesses. SuperSuit's ConcatVecEnv has no seed(), so SB3's seed= would raise
    # AttributeError; seed the parallel env yourself if you need reproducibility.
    venv = ss.concat_vec_envs_v1(venv, 1, num_cpus=0, base_class="stable_baselines3")
    if monitor:
        venv = VecMonitor(venv)
    return venv, len(par.possible_agents)


# SuperSuit's SB3VecEnvWrapper skips VecEnv.__init__, so SB3 warns that render_mode is unset
supersuit_warning = pytest.mark.filterwarnings("ignore:The `render_mode` attribute is not defined")


@supersuit_warning
@games
@modes
@pytest.mark.parametrize("monitor", [True, False], ids=["vecmonitor", "nomonitor"])
@pytest.mark.parametrize("algo", [PPO, RecurrentPPO], ids=["ppo", "recurrentppo"])
def test_supersuit_sb3(game, mode, monitor, algo):
    venv, n = supersuit_venv(game, mode, monitor)
    model, checker, log = learn(algo, venv, game, mode, "monitor" if monitor else "absent")
    assert venv.num_envs == n
    if monitor:
        check_ep_info_buffer(model, checker, n, log)
    else:
        # the parallel env leaves info["episode"] to Monitor/VecMonitor: nothing for SB3 to log
        assert len(model.ep_info_buffer) == 0 and "ep_rew_mean" not in log


@supersuit_warning
@games
@modes
def test_supersuit_recurrentppo_zoo_policy(game, mode):
    """The README's line: RecurrentPPO(SSDLstmPolicy, venv, policy_kwargs=policy_kwargs())."""
    venv, n = supersuit_venv(game, mode, monitor=True)
    kw = policy_kwargs(conv_channels=2, fc_sizes=(8,), lstm_hidden_size=8)
    model, checker, log = learn(RecurrentPPO, venv, game, mode, "monitor", policy=SSDLstmPolicy, policy_kw=kw)
    check_ep_info_buffer(model, checker, n, log)


@games
@modes
@pytest.mark.parametrize("monitor", [True, False], ids=["vecmonitor", "nomonitor"])
@pytest.mark.parametrize("algo", [PPO, RecurrentPPO], ids=["ppo", "recurrentppo"])
def test_vector_env_sb3(game, mode, monitor, algo):
    venv = ssd_gym.vector_env(game, num_envs=2, obs_mode=mode, max_cycles=MAX_CYCLES)
    slots = venv.num_envs
    if monitor:
        venv = VecMonitor(venv)  # replaces our info["episode"] by its own, same format
    # vector_env fills Monitor's {"r", "l", "t"} itself, so SB3 logs returns either way
    model, checker, log = learn(algo, venv, game, mode, "monitor", seed=0)
    check_ep_info_buffer(model, checker, slots, log)


# ---- Gymnasium -------------------------------------------------------------------------------

@games
@modes
def test_gymnasium_record_episode_statistics(game, mode):
    from gymnasium.wrappers import RecordEpisodeStatistics

    env = RecordEpisodeStatistics(gym.make(GYM_ID[game], obs_mode=mode, max_cycles=MAX_CYCLES))
    env.action_space.seed(0)
    n = len(env.unwrapped.agents)
    for k in range(EPISODES):
        obs, info = env.reset(seed=100 if k == 0 else None)
        assert env.observation_space.contains(obs)
        assert "episode" not in info and INFO_KEY not in info
        total, per_agent, steps = 0.0, np.zeros(n), 0
        while True:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            steps += 1
            total += reward
            per_agent += info["rewards"]
            assert close(reward, info["rewards"].sum())
            if terminated or truncated:
                break
            assert "episode" not in info and INFO_KEY not in info
        assert truncated and not terminated and steps == MAX_CYCLES
        assert env.observation_space.contains(obs)
        ep = info["episode"]
        assert {"r", "l", "t"} <= set(ep)
        assert close(ep["r"], total) and int(ep["l"]) == MAX_CYCLES
        m = info[INFO_KEY]
        assert m["episode_length"] == MAX_CYCLES and close(m["collective_return"], total)
        np.testing.assert_allclose(m["returns"], per_agent, atol=1e-6)
    assert len(env.return_queue) == EPISODES and list(env.length_queue) == [MAX_CYCLES] * EPISODES


@games
@modes
def test_gymnasium_vector_record_episode_statistics(game, mode):
    from gymnasium.vector import AutoresetMode
    from gymnasium.wrappers.vector import RecordEpisodeStatistics

    num_envs = 2
    venv = gym.make_vec(GYM_ID[game], num_envs=num_envs, vectorization_mode="sync",
                        obs_mode=mode, max_cycles=MAX_CYCLES)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    venv = RecordEpisodeStatistics(venv)
    venv.action_space.seed(0)
    n = len(venv.unwrapped.envs[0].unwrapped.agents)
    venv.reset(seed=7)
    ends = np.zeros(num_envs, dtype=int)
    totals, per_agent, lengths = np.zeros(num_envs), np.zeros((num_envs, n)), np.zeros(num_envs, dtype=int)
    resetting = np.zeros(num_envs, dtype=bool)  # NEXT_STEP: the step after a done is a reset step
    for _ in range(EPISODES * (MAX_CYCLES + 1) + 5):
        obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(obs)
        done = terminated | truncated
        assert not terminated.any()
        assert not (done & resetting).any() and (reward[resetting] == 0).all()
        live = ~resetting
        totals[live] += reward[live]
        lengths[live] += 1
        if "rewards" in info:
            per_agent[live] += info["rewards"][live]
        ep_mask = info.get("_episode", np.zeros(num_envs, dtype=bool))
        m_mask = info.get("_" + INFO_KEY, np.zeros(num_envs, dtype=bool))
        np.testing.assert_array_equal(ep_mask, done)
        np.testing.assert_array_equal(m_mask, done)
        for i in np.flatnonzero(done):
            assert lengths[i] == MAX_CYCLES
            assert close(info["episode"]["r"][i], totals[i]) and int(info["episode"]["l"][i]) == MAX_CYCLES
            m = info[INFO_KEY]
            assert int(m["episode_length"][i]) == MAX_CYCLES
            assert close(m["collective_return"][i], totals[i])
            np.testing.assert_allclose(np.asarray(m["returns"][i], dtype=float), per_agent[i], atol=1e-6)
            ends[i] += 1
            totals[i], per_agent[i], lengths[i] = 0.0, 0.0, 0
        resetting = done
        if (ends >= EPISODES).all():
            break
    assert (ends >= EPISODES).all(), ends
    assert len(venv.return_queue) == int(ends.sum())
    venv.close()


# ---- TorchRL ---------------------------------------------------------------------------------

def _recording(par):
    """A pass-through ParallelEnv that keeps every step's infos (TorchRL drops infos whose keys are
    not in the reset infos, so ``episode_metrics`` does not reach its tensordicts)."""
    from pettingzoo.utils import BaseParallelWrapper

    class Recorder(BaseParallelWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.step_infos = []

        def step(self, actions):
            out = super().step(actions)
            self.step_infos.append(out[4])
            return out

    return Recorder(par)


@games
@modes
def test_torchrl_pettingzoo_wrapper(game, mode):
    pytest.importorskip("torchrl", reason="TorchRL is an optional client")
    import torch
    from torchrl.envs import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    rec = _recording(ssd_gym.parallel_env(game, obs_mode=mode, max_cycles=MAX_CYCLES))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
        env = PettingZooWrapper(env=rec, use_mask=False, seed=3)  # a ParallelEnv: parallel mode
    n = len(rec.possible_agents)
    assert env.parallel and env.group_map == {"agent": rec.possible_agents}
    check_env_specs(env)
    rec.step_infos.clear()
    torch.manual_seed(0)
    steps = EPISODES * MAX_CYCLES
    td = env.rollout(steps, break_when_any_done=False)  # auto-resets at each episode end
    assert td.batch_size == torch.Size([steps])
    done = td["next", "done"].squeeze(-1)
    truncated = td["next", "agent", "truncated"].squeeze(-1)
    assert not td["next", "agent", "terminated"].any()
    ends = torch.nonzero(done).flatten().tolist()
    assert ends == [MAX_CYCLES * (k + 1) - 1 for k in range(EPISODES)]
    assert truncated[done].all() and not truncated[~done].any()
    assert env.observation_spec.is_in(td[0].select("agent"))
    rewards = td["next", "agent", "reward"].squeeze(-1).double().numpy()  # [T, n]
    assert rewards.shape == (steps, n)
    assert len(rec.step_infos) == steps
    for k, t_end in enumerate(ends):
        infos = rec.step_infos[t_end]
        returns = rewards[t_end - MAX_CYCLES + 1: t_end + 1].sum(axis=0)
        for i, a in enumerate(rec.possible_agents):
            m = infos[a][INFO_KEY]
            assert m["episode_length"] == MAX_CYCLES
            np.testing.assert_allclose(m["returns"], returns, atol=1e-4)
            assert close(m["agent_return"], returns[i])
    assert sum(INFO_KEY in infos["agent_0"] for infos in rec.step_infos) == EPISODES
    env.close()


# ---- Tianshou --------------------------------------------------------------------------------

@games
@modes
def test_tianshou_pettingzoo_env(game, mode):
    pytest.importorskip("tianshou", reason="Tianshou is an optional client")
    from tianshou.algorithm.multiagent.marl import MultiAgentPolicy
    from tianshou.algorithm.random import MARLRandomDiscreteMaskedOffPolicyAlgorithm
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv, PettingZooEnv

    def make():
        return PettingZooEnv(ssd_gym.env(game, obs_mode=mode, max_cycles=MAX_CYCLES))

    # stepping the wrapper by hand: one agent acts per step, the cycle's rewards come once
    env = make()
    n = len(env.agents)
    rng = np.random.default_rng(0)
    for k in range(EPISODES):
        obs, info = env.reset(seed=11 if k == 0 else None)
        returns, steps = np.zeros(n), 0
        while True:
            assert obs["agent_id"] == env.agents[steps % n] and len(obs["mask"]) == env.action_space.n
            assert env.observation_space.contains(obs["obs"])
            obs, rew, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            returns += np.asarray(rew, dtype=float)
            steps += 1
            if term or trunc:
                break
            assert INFO_KEY not in info
        assert trunc and not term and steps == MAX_CYCLES * n
        m = info[INFO_KEY]
        assert m["episode_length"] == MAX_CYCLES
        np.testing.assert_allclose(m["returns"], returns, atol=1e-6)
    env.close()

    # the Collector, as a Tianshou MARL setup uses it (random per-agent policies)
    venv = DummyVectorEnv([make])
    policy = MultiAgentPolicy({a: MARLRandomDiscreteMaskedOffPolicyAlgorithm.Policy(env.action_space)
                               for a in env.agents})
    buf = VectorReplayBuffer(EPISODES * MAX_CYCLES * n + 10, 1)
    collector = Collector(policy, venv, buf)
    collector.reset()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sequence has shape")
        stats = collector.collect(n_episode=EPISODES)
    assert stats.n_collected_episodes == EPISODES
    assert list(stats.lens) == [MAX_CYCLES * n] * EPISODES
    assert len(buf) == EPISODES * MAX_CYCLES * n
    dones = np.flatnonzero(buf.done[: len(buf)])
    assert dones.tolist() == [MAX_CYCLES * n * (k + 1) - 1 for k in range(EPISODES)]
    assert buf.truncated[dones].all() and not buf.terminated[: len(buf)].any()
    rew = buf.rew[: len(buf)].reshape(EPISODES, MAX_CYCLES * n, n).sum(axis=1)
    np.testing.assert_allclose(np.asarray(stats.returns, dtype=float).reshape(EPISODES, n), rew, atol=1e-6)
    np.testing.assert_allclose(buf.info[dones][INFO_KEY].returns, rew, atol=1e-6)
    np.testing.assert_array_equal(buf.info[dones][INFO_KEY].episode_length, [MAX_CYCLES] * EPISODES)
    venv.close()
