"""Whole-episode determinism, and the batched VecEnv replaying the single env exactly.

``pettingzoo.test.parallel_seed_test`` only compares the first step (see ecosystem.md 1.3), so
these tests compare every observation, reward, flag and info of whole episodes.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import ssd_gym

ALL_GAMES = sorted(ssd_gym.GAMES)


# ---- helpers -----------------------------------------------------------------------------------
def assert_same(a, b, path="root"):
    """Exact structural equality of nested dicts/lists/arrays/scalars (dtype-aware for arrays)."""
    if isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: dict vs {type(b).__name__}"
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{path}: ndarray vs {type(b).__name__}"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert np.array_equal(a, b), f"{path}: arrays differ"
    else:
        assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
        assert a == b, f"{path}: {a!r} != {b!r}"


def same(a, b) -> bool:
    try:
        assert_same(a, b)
    except AssertionError:
        return False
    return True


def random_actions(rng: np.random.Generator, agents, num_actions: int) -> dict:
    return {a: int(x) for a, x in zip(agents, rng.integers(0, num_actions, len(agents)))}


# ---- whole-episode determinism of the single env ------------------------------------------------
@pytest.mark.parametrize("name", ["cleanup", "harvest"])
def test_full_episode_same_seed_identical(name):
    """Two envs, same seed, same (seeded) random actions, stepped interleaved so that any shared
    or global state would show: all 1000 steps identical. The global RNGs are disturbed between
    the two envs' steps to prove they are not used."""
    env1 = ssd_gym.parallel_env(name)
    env2 = ssd_gym.parallel_env(name)
    assert env1.game.num_agents == 5 and env1.max_cycles == 1000
    np.random.seed(1)
    random.seed(1)
    o1, i1 = env1.reset(seed=123)
    np.random.seed(2)
    random.seed(2)
    o2, i2 = env2.reset(seed=123)
    assert_same((o1, i1), (o2, i2), "reset")
    rng = np.random.default_rng(7)
    steps = 0
    total_reward = 0.0
    while env1.agents:
        acts = random_actions(rng, env1.agents, env1.game.num_actions)
        np.random.seed(steps)  # must not matter
        out1 = env1.step(acts)
        np.random.rand(3)
        out2 = env2.step(dict(acts))
        assert_same(out1, out2, f"step {steps}")
        total_reward += sum(out1[1].values())
        steps += 1
    assert steps == 1000
    assert env2.agents == []
    # the run must have been non-trivial: rewards happened (apples or fines)
    assert total_reward != 0.0
    assert "episode_metrics" in out1[4]["agent_0"]


@pytest.mark.parametrize("name", ["cleanup", "harvest"])
def test_full_episode_different_seeds_differ(name):
    """Same actions, different env seeds: the trajectories must differ (spawns, regrowth...)."""
    def play(seed):
        env = ssd_gym.parallel_env(name, max_cycles=200)
        traj = [env.reset(seed=seed)[0]]
        rng = np.random.default_rng(7)
        while env.agents:
            traj.append(env.step(random_actions(rng, env.agents, env.game.num_actions))[:2])
        return traj

    a, b, c = play(1), play(2), play(1)
    assert same(a, c)
    assert not same(a, b)
    assert not same(a[0], b[0]), "different seeds should give different initial states"


@pytest.mark.parametrize("name", ALL_GAMES)
def test_reseed_replays_and_unseeded_reset_continues(name):
    """reset(seed=s) after play replays a fresh env's episode; a following reset() (no seed)
    continues the seeded stream identically in both envs; different episodes of one seeded
    stream differ."""
    def play(env, rng):
        traj = []
        while env.agents:
            traj.append(env.step(random_actions(rng, env.agents, env.game.num_actions)))
        return traj

    fresh = ssd_gym.parallel_env(name, max_cycles=25)
    used = ssd_gym.parallel_env(name, max_cycles=25)
    used.reset(seed=99)
    play(used, np.random.default_rng(0))  # dirty the env's state first

    r_fresh = fresh.reset(seed=5)
    r_used = used.reset(seed=5)
    assert_same(r_fresh, r_used, "reset(seed=5)")
    assert_same(play(fresh, np.random.default_rng(1)), play(used, np.random.default_rng(1)), "episode 1")
    second_fresh = fresh.reset()
    second_used = used.reset()
    assert_same(second_fresh, second_used, "unseeded reset")
    ep2_fresh = play(fresh, np.random.default_rng(1))
    assert_same(ep2_fresh, play(used, np.random.default_rng(1)), "episode 2")
    # reset() without a seed continues the stream rather than replaying seed 5 (Box Trapped has
    # few distinct starts, so look at several episodes)
    starts = [fresh.reset()[0] for _ in range(6)]
    assert not all(same(s, r_fresh[0]) for s in starts), "reset() without a seed replays the seeded start"


# ---- VecEnv == B single envs ------------------------------------------------------------------
def vec_slot_obs(obs, slot):
    if isinstance(obs, dict):
        return {k: v[slot] for k, v in obs.items()}
    return obs[slot]


def single_obs(obs_of_agent):
    """The single env's per-agent observation in the VecEnv's slot format."""
    if isinstance(obs_of_agent, dict):
        return {k: np.asarray(v) for k, v in obs_of_agent.items()}
    return obs_of_agent


def assert_obs_equal(vec_obs, single, path):
    if isinstance(vec_obs, dict):
        assert set(vec_obs) == set(single), path
        for k in vec_obs:
            v, s = np.asarray(vec_obs[k]), np.asarray(single[k])
            assert v.shape == s.shape, f"{path}[{k}] shape {v.shape} vs {s.shape}"
            assert np.array_equal(v, s), f"{path}[{k}] differs"
    else:
        assert vec_obs.shape == single.shape and np.array_equal(vec_obs, single), path


@pytest.mark.parametrize("obs_mode", ["dict", "rgb"])
@pytest.mark.parametrize("name", ALL_GAMES)
def test_vecenv_matches_single_envs(name, obs_mode):
    B, seed, max_cycles = 3, 40, 6
    steps = 2 * max_cycles + 3  # two full episodes and a bit of the third
    venv = ssd_gym.vector_env(name, B, obs_mode=obs_mode, max_cycles=max_cycles)
    N = venv.num_agents
    A = venv.num_actions
    assert venv.num_envs == B * N
    singles = [ssd_gym.parallel_env(name, obs_mode=obs_mode, max_cycles=max_cycles) for _ in range(B)]
    agents = singles[0].possible_agents
    seeds = venv.seed(seed)
    assert list(seeds) == [seed + b for b in range(B) for _ in range(N)]
    vobs = venv.reset()
    sobs = [env.reset(seed=seed + b)[0] for b, env in enumerate(singles)]

    def check_obs(vobs, sobs, where):
        for b in range(B):
            for i, a in enumerate(agents):
                slot = b * N + i
                o = vec_slot_obs(vobs, slot)
                assert venv.observation_space.contains(o), f"{where}: slot {slot} obs not in observation_space"
                assert_obs_equal(o, single_obs(sobs[b][a]), f"{where} world {b} agent {i}")

    check_obs(vobs, sobs, "reset")
    rng = np.random.default_rng(3)
    returns = np.zeros((B, N))
    episodes_done = 0
    for t in range(steps):
        actions = rng.integers(0, A, size=(B, N))
        vobs, vrew, vdone, vinfos = venv.step(actions.reshape(-1))
        assert vrew.shape == (B * N,) and vdone.shape == (B * N,) and len(vinfos) == B * N
        for b, env in enumerate(singles):
            o, r, term, trunc, info = env.step({a: int(actions[b, i]) for i, a in enumerate(agents)})
            ended = all(trunc.values()) or all(term.values())
            for i, a in enumerate(agents):
                slot = b * N + i
                returns[b, i] += r[a]
                assert vrew[slot] == np.float32(r[a]), f"step {t} slot {slot} reward"
                assert vinfos[slot]["extrinsic_reward"] == r[a]
                assert bool(vdone[slot]) == ended, f"step {t} slot {slot} done flag"
                if ended:
                    vi = vinfos[slot]
                    assert vi["TimeLimit.truncated"] is True
                    assert_obs_equal(vi["terminal_observation"], single_obs(o[a]), f"step {t} terminal obs slot {slot}")
                    assert venv.observation_space.contains(vi["terminal_observation"])
                    monitor = dict(vi["episode"])  # SB3 Monitor's exact format
                    assert set(monitor) == {"r", "l", "t"} and isinstance(monitor.pop("t"), float)
                    assert monitor == {"r": pytest.approx(returns[b, i]), "l": max_cycles}
                    assert_same(vi["episode_metrics"], info[a]["episode_metrics"], f"step {t} episode metrics slot {slot}")
                    assert vi["episode_metrics"]["agent_return"] == pytest.approx(returns[b, i])
                else:
                    assert "terminal_observation" not in vinfos[slot]
                    assert "episode_metrics" not in vinfos[slot] and "episode" not in vinfos[slot]
            if ended:
                episodes_done += 1
                returns[b] = 0.0
                o, _ = env.reset()  # no seed: continues the world's stream, as auto-reset does
            sobs[b] = o
        check_obs(vobs, sobs, f"step {t}")
    assert episodes_done == 2 * B


def test_vecenv_batch_size_does_not_change_worlds():
    """World b of a batch of 4 seeded with s equals world 0 of a batch of 1 seeded with s+b."""
    name, s, T = "harvest_small", 11, 30
    big = ssd_gym.vector_env(name, 4, obs_mode="rgb", max_cycles=T)
    N, A = big.num_agents, big.num_actions
    big.seed(s)
    small = ssd_gym.vector_env(name, 1, obs_mode="rgb", max_cycles=T)
    small.seed(s + 2)
    ob, os_ = big.reset(), small.reset()
    rng = np.random.default_rng(0)
    for t in range(T + 3):
        acts = rng.integers(0, A, size=(4, N))
        assert np.array_equal(ob[2 * N:3 * N], os_), f"step {t}"
        ob, rb, db, _ = big.step(acts.reshape(-1))
        os_, rs, ds, _ = small.step(acts[2])
        assert np.array_equal(rb[2 * N:3 * N], rs) and np.array_equal(db[2 * N:3 * N], ds)


def test_vecenv_seed_then_reset_is_reproducible():
    name = "cleanup_small"
    v1 = ssd_gym.vector_env(name, 2, max_cycles=10)
    v2 = ssd_gym.vector_env(name, 2, max_cycles=10)
    v1.seed(5)
    v2.seed(5)
    o1, o2 = v1.reset(), v2.reset()
    assert_same(o1, o2)
    rng = np.random.default_rng(1)
    for _ in range(25):
        a = rng.integers(0, v1.num_actions, size=v1.num_envs)
        r1, r2 = v1.step(a), v2.step(a.copy())
        assert_same(r1[0], r2[0])
        assert np.array_equal(r1[1], r2[1]) and np.array_equal(r1[2], r2[2])
    v3 = ssd_gym.vector_env(name, 2, max_cycles=10)
    v3.seed(6)
    assert not same(v3.reset(), o1), "a different seed must give different worlds"
