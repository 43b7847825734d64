"""API conformance: pettingzoo.test, Gymnasium and SB3 env checkers, SuperSuit vectorisation."""
from __future__ import annotations

import functools
import importlib
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test import (api_test, max_cycles_test, parallel_api_test, parallel_seed_test,
                             render_test, seed_test, state_test)

import ssd_gym

ALL_GAMES = sorted(ssd_gym.GAMES)
OBS_MODES = ["dict", "rgb"]
MODULES = {name: importlib.import_module(f"ssd_gym.{name}_v0") for name in ALL_GAMES}
SHORT = 40  # max_cycles where the full episode length is not the point


@pytest.fixture(autouse=True)
def _quiet():
    # pettingzoo.test warns about Dict observations, headless human rendering warns once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_games_and_modules_cover_each_other():
    assert set(ssd_gym.GAMES) == {"cleanup", "harvest", "box_trapped", "cleanup_small", "harvest_small"}
    for name, mod in MODULES.items():
        for fn in ("parallel_env", "env", "raw_env"):
            assert callable(getattr(mod, fn)), f"{mod.__name__}.{fn}"
        assert mod.parallel_env().game.name == name
    assert set(ssd_gym.GYM_IDS.values()) == set(ssd_gym.GAMES)


# ---- pettingzoo.test -------------------------------------------------------------------------
@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("name", ALL_GAMES)
def test_pettingzoo_api_test(name, obs_mode):
    mod = MODULES[name]
    api_test(mod.env(obs_mode=obs_mode, max_cycles=SHORT), num_cycles=3 * SHORT)
    parallel_api_test(mod.parallel_env(obs_mode=obs_mode, max_cycles=SHORT), num_cycles=3 * SHORT)


def test_pettingzoo_api_test_default_length():
    """The paper-size Cleanup with its default 1000-step episodes, through the top-level factory."""
    env = ssd_gym.env("cleanup")
    assert env.unwrapped.max_cycles == 1000  # unwrapped resolves to the raw ParallelEnv
    api_test(env, num_cycles=1000)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("name", ALL_GAMES)
def test_pettingzoo_seed_tests(name, obs_mode):
    mod = MODULES[name]
    seed_test(functools.partial(mod.env, obs_mode=obs_mode, max_cycles=SHORT), num_cycles=2 * SHORT)
    parallel_seed_test(functools.partial(mod.parallel_env, obs_mode=obs_mode, max_cycles=SHORT),
                       num_cycles=2 * SHORT)


@pytest.mark.parametrize("name", ALL_GAMES)
def test_pettingzoo_max_cycles_test(name):
    max_cycles_test(MODULES[name])


@pytest.mark.parametrize("name", ALL_GAMES)
def test_max_cycles_truncates_exactly(name):
    env = MODULES[name].parallel_env(max_cycles=7)
    env.reset(seed=0)
    for t in range(1, 8):
        assert env.agents == env.possible_agents
        _, _, term, trunc, _ = env.step({a: 4 for a in env.agents})  # 4 = STAY in every game
        assert not any(term.values())
        assert all(trunc.values()) == (t == 7), f"step {t}"
        assert all(type(v) is bool for v in list(term.values()) + list(trunc.values()))
    assert env.agents == []


@pytest.mark.parametrize("name", ALL_GAMES)
def test_pettingzoo_render_test(name):
    render_test(functools.partial(MODULES[name].env, max_cycles=SHORT))
    render_test(functools.partial(MODULES[name].raw_env, max_cycles=SHORT))


@pytest.mark.parametrize("name", ALL_GAMES)
def test_pettingzoo_state_test(name):
    state_test(MODULES[name].env(max_cycles=SHORT), MODULES[name].parallel_env(max_cycles=SHORT))


# ---- metadata and spaces -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_GAMES)
def test_metadata(name):
    mod = MODULES[name]
    par = mod.parallel_env()
    aec = mod.env()
    for md in (mod.metadata, par.metadata, aec.metadata, aec.unwrapped.metadata):
        for key in ("name", "render_modes", "render_fps", "is_parallelizable"):
            assert key in md, f"{key} missing from {md}"
        assert md["name"] == f"{name}_v0"
        assert set(md["render_modes"]) == {"human", "rgb_array"}
        assert md["is_parallelizable"] is True
        assert isinstance(md["render_fps"], int) and md["render_fps"] > 0
    assert par.metadata["render_fps"] == mod.metadata["render_fps"]
    # per-instance names must not leak into the class-level metadata of other games
    other = ALL_GAMES[(ALL_GAMES.index(name) + 1) % len(ALL_GAMES)]
    assert MODULES[other].parallel_env().metadata["name"] == f"{other}_v0"
    assert par.metadata["name"] == f"{name}_v0"


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("name", ALL_GAMES)
def test_spaces_are_the_same_object_every_call(name, obs_mode):
    par = ssd_gym.parallel_env(name, obs_mode=obs_mode, max_cycles=5)
    aec = ssd_gym.env(name, obs_mode=obs_mode, max_cycles=5)
    for a in par.possible_agents:
        assert par.observation_space(a) is par.observation_space(a)
        assert par.action_space(a) is par.action_space(a)
        assert aec.observation_space(a) is aec.observation_space(a)
        assert aec.action_space(a) is aec.action_space(a)
    # unchanged identity across reset and step
    before = {a: (par.observation_space(a), par.action_space(a)) for a in par.possible_agents}
    par.reset(seed=0)
    par.step({a: 0 for a in par.agents})
    for a in par.possible_agents:
        assert par.observation_space(a) is before[a][0] and par.action_space(a) is before[a][1]
    env_id = next(k for k, v in ssd_gym.GYM_IDS.items() if v == name)
    genv = gym.make(env_id, obs_mode=obs_mode).unwrapped
    assert genv.observation_space is genv.observation_space
    venv = ssd_gym.vector_env(name, 2, obs_mode=obs_mode)
    assert venv.observation_space is venv.observation_space
    assert venv.observation_space == par.observation_space(par.possible_agents[0])
    assert venv.action_space == par.action_space(par.possible_agents[0])


@pytest.mark.parametrize("name", ALL_GAMES)
def test_observation_space_layout(name):
    par = ssd_gym.parallel_env(name, max_cycles=5)
    n, A = par.game.num_agents, par.game.num_actions
    space = par.observation_space("agent_0")
    assert isinstance(space, spaces.Dict)
    assert space["rgb"] == spaces.Box(0, 255, (15, 15, 3), np.uint8)
    assert space["prev_action"] == spaces.Discrete(A + 1)
    assert space["others_prev_actions"].shape == (n - 1,)
    assert np.all(space["others_prev_actions"].nvec == A + 1)
    assert space["others_visible"].shape == (n - 1,)
    assert par.action_space("agent_0") == spaces.Discrete(A)
    assert ssd_gym.parallel_env(name, obs_mode="rgb").observation_space("agent_0") == space["rgb"]
    obs, infos = par.reset(seed=3)
    assert set(obs) == set(par.possible_agents) and set(infos) == set(par.possible_agents)
    for a, o in obs.items():
        assert space.contains(o)
        assert o["prev_action"] == A, "no previous action yet: the 'none' value A"
        assert np.all(o["others_prev_actions"] == A)


# ---- Gymnasium ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", sorted(ssd_gym.GYM_IDS))
def test_gymnasium_check_env(env_id):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, max_cycles=SHORT)
    assert env.spec.id == env_id
    check_env(env.unwrapped)
    env.close()
    env = gym.make(env_id, max_cycles=SHORT, obs_mode="rgb")
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", sorted(ssd_gym.GYM_IDS))
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env

    for obs_mode in OBS_MODES:
        env = gym.make(env_id, max_cycles=SHORT, obs_mode=obs_mode).unwrapped
        check_env(env, warn=False)
        env.close()


@pytest.mark.parametrize("env_id", sorted(ssd_gym.GYM_IDS))
def test_gym_registration_matches_game(env_id):
    game = ssd_gym.GYM_IDS[env_id]
    spec = gym.spec(env_id)
    assert spec.max_episode_steps is None  # the env's own max_cycles ends episodes (next test)
    env = gym.make(env_id)
    assert env.unwrapped.par.game.name == game
    n = env.unwrapped.par.game.num_agents
    assert env.action_space == spaces.MultiDiscrete([env.unwrapped.par.game.num_actions] * n)


@pytest.mark.parametrize("max_cycles", [7, None, 150])
def test_gym_episode_length_is_max_cycles(max_cycles):
    """gym.make's episodes end exactly at max_cycles (default: the game's), shorter or longer
    than the default, with the episode's metrics on the last step."""
    kw = {} if max_cycles is None else {"max_cycles": max_cycles}
    env = gym.make("SSD/BoxTrapped-v0", **kw)
    expected = max_cycles or ssd_gym.GAMES["box_trapped"].default_max_cycles
    env.reset(seed=0)
    for t in range(1, expected + 1):
        _, _, term, trunc, info = env.step(np.full(2, 4))  # everyone STAYs
        assert not term and trunc == (t == expected), t
    assert info["episode_metrics"]["episode_length"] == expected


def test_gym_joint_env_matches_parallel_env():
    """The Gymnasium face is the joint game: same obs (flattened), reward = sum, per-agent in info."""
    genv = gym.make("SSD/CleanupSmall-v0", max_cycles=12).unwrapped
    par = ssd_gym.parallel_env("cleanup_small", max_cycles=12)
    gobs, _ = genv.reset(seed=8)
    pobs, _ = par.reset(seed=8)
    rng = np.random.default_rng(0)
    for t in range(12):
        for a in par.possible_agents:
            for k, v in pobs[a].items():
                assert np.array_equal(gobs[f"{a}/{k}"], v), f"step {t} {a}/{k}"
        act = rng.integers(0, genv.action_space.nvec[0], size=len(par.possible_agents))
        gobs, r, term, trunc, info = genv.step(act)
        pobs, pr, _, ptr, pinfo = par.step({a: int(act[i]) for i, a in enumerate(par.possible_agents)})
        per_agent = np.array([pr[a] for a in par.possible_agents])
        assert isinstance(r, float) and r == per_agent.sum()
        assert np.array_equal(info["rewards"], per_agent)
        assert term is False and trunc == (t == 11)
    expected = {k: v for k, v in pinfo["agent_0"]["episode_metrics"].items() if k != "agent_return"}
    assert info["episode_metrics"] == expected  # the joint env drops the per-agent "agent_return"
    assert info["episode_metrics"]["collective_return"] == sum(info["episode_metrics"]["returns"])


def test_gym_make_with_module_prefix_in_fresh_interpreter():
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'ssd_gym' not in sys.modules\n"
        "env = gym.make('ssd_gym:SSD/Cleanup-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "obs, r, term, trunc, info = env.step(env.action_space.sample())\n"
        "assert env.unwrapped.par.max_cycles == 1000\n"
        "assert isinstance(r, float) and term is False and trunc is False\n"
        "print('OK', sorted(obs)[0])\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "OK agent_0/" in res.stdout


# ---- SuperSuit -------------------------------------------------------------------------------
@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_supersuit_vec_env(obs_mode):
    import supersuit as ss

    par = ssd_gym.parallel_env("cleanup_small", obs_mode=obs_mode, max_cycles=5)
    n = len(par.possible_agents)
    venv = ss.pettingzoo_env_to_vec_env_v1(par)
    venv = ss.concat_vec_envs_v1(venv, 2, num_cpus=0, base_class="stable_baselines3")
    assert venv.num_envs == 2 * n
    assert venv.observation_space == par.observation_space("agent_0")
    obs = venv.reset()  # (SuperSuit's ConcatVecEnv has no seed(); not ours to test)
    rng = np.random.default_rng(0)
    saw_done = 0
    for t in range(11):
        obs, rew, dones, infos = venv.step(rng.integers(0, venv.action_space.n, size=venv.num_envs))
        assert rew.shape == (2 * n,)
        for slot in range(venv.num_envs):
            o = {k: v[slot] for k, v in obs.items()} if isinstance(obs, dict) else obs[slot]
            assert venv.observation_space.contains(o)
        if dones.any():
            assert dones.all()
            assert all("terminal_observation" in info for info in infos)
            saw_done += 1
    assert saw_done == 2  # at steps 5 and 10
    venv.close()


def test_sb3_vecenv_is_a_vecenv():
    from stable_baselines3.common.vec_env import VecEnv, VecMonitor

    venv = ssd_gym.vector_env("harvest_small", 2, max_cycles=4)
    assert isinstance(venv, VecEnv)
    mon = VecMonitor(venv)
    mon.seed(0)
    mon.reset()
    for _ in range(4):
        _, _, dones, infos = mon.step(np.zeros(mon.num_envs, dtype=np.int64))
    assert dones.all() and all("episode_metrics" in i for i in infos)


@pytest.mark.parametrize("name", ["cleanup_small", "box_trapped"])
def test_pickle_roundtrip_rebuilds_the_same_env(name):
    """EzPickle: a pickled env rebuilds with the same options and replays the same seeded episode
    (what SuperSuit's multiprocessing vec envs rely on)."""
    import pickle

    env = ssd_gym.parallel_env(name, obs_mode="rgb", max_cycles=6)
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.obs_mode == "rgb" and clone.max_cycles == 6 and clone.game.name == name
    o1, _ = env.reset(seed=2)
    o2, _ = clone.reset(seed=2)
    while env.agents:
        acts = {a: 5 for a in env.agents}
        s1, s2 = env.step(acts), clone.step(acts)
        for a in env.possible_agents:
            assert np.array_equal(s1[0][a], s2[0][a]) and s1[1][a] == s2[1][a]
    assert clone.agents == []
    aec = pickle.loads(pickle.dumps(ssd_gym.env(name, max_cycles=3)))
    aec.reset(seed=0)
    assert aec.agent_selection == "agent_0"
