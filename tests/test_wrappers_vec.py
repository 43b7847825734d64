"""The SB3 VecEnv faces give the same results as the PettingZoo faces for the same seeds and actions."""

import numpy as np
import pytest

from wrappers import (
    CommunicationChannel,
    CommunicationChannelVecEnv,
    InequityAversionReward,
    InequityAversionVecEnv,
    InfluenceReward,
    InfluenceRewardVecEnv,
    ProsocialReward,
    ProsocialRewardVecEnv,
)
from toy_envs import ToySSD, ToyVecEnv

ssd_gym = pytest.importorskip("ssd_gym")

SEED = 11


def run_both(game, num_worlds, steps, par_wrap, vec_wrap, max_cycles, probs=None, **game_kw):
    """Step W parallel envs (seeds SEED+b) and one vector env (seed SEED) with the same actions.

    Returns per-step arrays ``[steps, W*N]`` of rewards and info values from both faces, and the
    final observations.  The comparison stays inside the first episode of the parallel envs'
    seeded reset, plus later episodes reset the same way on both sides.
    """
    venv = ssd_gym.vector_env(game, num_worlds, max_cycles=max_cycles, **game_kw)
    venv.seed(SEED)
    vw = vec_wrap(venv)
    vobs = vw.reset()
    pars = [par_wrap(ssd_gym.parallel_env(game, max_cycles=max_cycles, **game_kw)) for _ in range(num_worlds)]
    pobs = [p.reset(seed=SEED + b)[0] for b, p in enumerate(pars)]
    agents = pars[0].possible_agents
    n = len(agents)
    a_n = pars[0].action_space(agents[0]).n
    rng = np.random.default_rng(0)
    out = {"vec_r": [], "par_r": [], "vec_info": [], "par_info": [], "vec_obs": [], "par_obs": []}
    for t in range(steps):
        acts = rng.integers(a_n, size=(num_worlds, n))
        if probs is not None:
            p = probs(t, num_worlds * n, a_n)
            vw.set_action_probs(p)
            for b, par in enumerate(pars):
                given = {a: p[b * n + i] for i, a in enumerate(agents) if not np.isnan(p[b * n + i]).all()}
                par.set_action_probs(given)
        vobs, vr, vd, vinfo = vw.step(acts.reshape(-1))
        pr, pinfo, pob = [], [], []
        for b, par in enumerate(pars):
            o, r, te, tr, inf = par.step({a: int(acts[b, i]) for i, a in enumerate(agents)})
            if not par.agents:  # the vector env auto-resets: mirror it (seed continues the RNG)
                o = {a: vinfo[b * n + i]["terminal_observation"] for i, a in enumerate(agents)}
                pobs_b = par.reset()[0]
                o_next = pobs_b
            else:
                o_next = o
            pr += [r[a] for a in agents]
            pinfo += [inf[a] for a in agents]
            pob.append(o_next)
        out["vec_r"].append(vr)
        out["par_r"].append(pr)
        out["vec_info"].append(vinfo)
        out["par_info"].append(pinfo)
        out["vec_obs"].append(vobs)
        out["par_obs"].append(pob)
    return out, agents


# a Box Trapped map with apples next to the spawn points, so random play sees rewards early
BOX_APPLES_NEAR = ["@@@@@@@", "@PAAAP@", "@AXXXA@", "@AXTXA@", "@AXXXA@", "@AAAAA@", "@@@@@@@"]


@pytest.mark.parametrize("game, worlds, game_kw", [("cleanup_small", 2, {}),
                                                   ("box_trapped", 3, {"ascii_map": BOX_APPLES_NEAR})])
def test_prosocial_same_on_both_faces(game, worlds, game_kw):
    out, _ = run_both(game, worlds, 30, lambda e: ProsocialReward(e, 0.6),
                      lambda v: ProsocialRewardVecEnv(v, 0.6), max_cycles=12, **game_kw)
    np.testing.assert_allclose(np.array(out["vec_r"]), np.array(out["par_r"]), rtol=1e-5, atol=1e-6)
    assert np.abs(np.array(out["par_r"])).sum() > 0  # the comparison saw some reward


def test_inequity_same_on_both_faces_including_smoothed_obs_and_episode_reset():
    kw = dict(alpha=5.0, beta=0.05, observe_smoothed_rewards=True)
    out, agents = run_both("box_trapped", 2, 45, lambda e: InequityAversionReward(e, **kw),
                           lambda v: InequityAversionVecEnv(v, **kw), max_cycles=20)
    np.testing.assert_allclose(np.array(out["vec_r"]), np.array(out["par_r"]), rtol=1e-5, atol=1e-5)
    for vo, po in zip(out["vec_obs"], out["par_obs"]):
        par = np.stack([po[b][a]["smoothed_rewards"] for b in range(2) for a in agents])
        np.testing.assert_allclose(vo["smoothed_rewards"], par, rtol=1e-6)
    assert np.abs(np.array(out["par_r"])).sum() > 0


def test_influence_same_on_both_faces_one_world_with_training():
    kw = dict(beta=1.0, train_every=16, bptt=8, lr=3e-3, seed=4)
    out, _ = run_both("cleanup_small", 1, 70, lambda e: InfluenceReward(e, **kw),
                      lambda v: InfluenceRewardVecEnv(v, **kw), max_cycles=30)
    vi = np.array([[i["influence_reward"] for i in s] for s in out["vec_info"]])
    pi = np.array([[i["influence_reward"] for i in s] for s in out["par_info"]])
    np.testing.assert_allclose(vi, pi, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(np.array(out["vec_r"]), np.array(out["par_r"]), rtol=1e-4, atol=1e-6)
    assert vi.max() > 0


def test_influence_same_on_both_faces_many_worlds_and_supplied_probs():
    """Several worlds share one MOA; with training off it must equal one ParallelEnv per world."""
    kw = dict(beta=1.0, divergence="jsd", train_iters=0, seed=2)

    def probs(t, slots, a_n):
        p = np.random.default_rng(t).dirichlet(np.ones(a_n), size=slots)
        p[::2] = np.nan  # every other slot: not given -> self-model
        return p

    out, _ = run_both("harvest_small", 3, 25, lambda e: InfluenceReward(e, **kw),
                      lambda v: InfluenceRewardVecEnv(v, **kw), max_cycles=10, probs=probs)
    vi = np.array([[i["influence_reward"] for i in s] for s in out["vec_info"]])
    pi = np.array([[i["influence_reward"] for i in s] for s in out["par_info"]])
    np.testing.assert_allclose(vi, pi, rtol=1e-4, atol=1e-7)
    src = [i["policy_source"] for i in out["vec_info"][0]]
    assert src[0] == "self_model" and src[1] == "given"


def test_vec_faces_validate_input():
    with pytest.raises(TypeError, match="VecEnv"):
        ProsocialRewardVecEnv(ToySSD(num_agents=2))
    venv = ToyVecEnv(num_worlds=2, num_agents=2, num_actions=3)
    with pytest.raises(ValueError, match="eta"):
        ProsocialRewardVecEnv(venv, eta=-1)
    with pytest.raises(ValueError, match="divergence"):
        InfluenceRewardVecEnv(venv, divergence="l2")
    w = InfluenceRewardVecEnv(venv)
    w.reset()
    with pytest.raises(ValueError, match="shape"):
        w.set_action_probs(np.ones((3, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        w.set_action_probs(-np.ones((4, 3)))


def test_vec_set_action_probs_takes_torch_tensors_like_numpy():
    import torch

    rewards = {}
    for kind in ("numpy", "torch"):
        venv = ToyVecEnv(num_worlds=2, num_agents=2, num_actions=3, max_cycles=5)
        w = InfluenceRewardVecEnv(venv, train_iters=0, seed=1)
        w.seed(0)
        w.reset()
        rng = np.random.default_rng(0)
        out = []
        for _ in range(4):
            p = rng.dirichlet(np.ones(3), size=4)
            if kind == "torch":  # a policy's output that still requires grad
                p = torch.softmax(torch.log(torch.tensor(p)).requires_grad_(), -1)
            w.set_action_probs(p)
            _, r, _, infos = w.step(rng.integers(0, 3, 4))
            out.append([i["influence_reward"] for i in infos])
        rewards[kind] = np.array(out)
        assert {i["policy_source"] for i in infos} == {"given"}
    np.testing.assert_allclose(rewards["torch"], rewards["numpy"], rtol=1e-6)
    assert np.abs(rewards["numpy"]).sum() > 0


def test_vec_faces_on_toy_vecenv_keep_extrinsic_reward():
    venv = ToyVecEnv(num_worlds=2, num_agents=3, num_actions=3, max_cycles=5)
    w = InfluenceRewardVecEnv(InequityAversionVecEnv(ProsocialRewardVecEnv(venv)), train_every=16, bptt=8)
    w.reset()
    for _ in range(12):
        obs, r, d, infos = w.step(np.zeros(6, dtype=np.int64))
        assert all("extrinsic_reward" in i and "influence_reward" in i for i in infos)
        assert r.shape == (6,) and r.dtype == np.float32


def test_communication_channel_same_on_both_faces_through_episode_ends():
    """Symbols, the symbol-influence reward (with MOA training) and terminal observations agree."""
    kw = dict(vocab_size=3, beta=1.0, train_every=8, bptt=4, seed=5)
    venv = ssd_gym.vector_env("cleanup_small", 1, max_cycles=6, obs_mode="dict")
    venv.seed(SEED)
    vec = CommunicationChannelVecEnv(venv, **kw)
    par = CommunicationChannel(ssd_gym.parallel_env("cleanup_small", max_cycles=6, obs_mode="dict"), **kw)
    vobs, (pobs, _) = vec.reset(), par.reset(seed=SEED)
    agents = par.possible_agents
    rng = np.random.default_rng(1)
    ended = 0
    for t in range(15):
        acts = np.stack([rng.integers(9, size=len(agents)), rng.integers(3, size=len(agents))], axis=1)
        vobs, vr, vd, vinfo = vec.step(acts)
        pobs, pr, pterm, ptrunc, pinfo = par.step({a: acts[i] for i, a in enumerate(agents)})
        np.testing.assert_allclose(vr, [pr[a] for a in agents], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose([i["symbol_influence_reward"] for i in vinfo],
                                   [pinfo[a]["symbol_influence_reward"] for a in agents], rtol=1e-4, atol=1e-6)
        if not par.agents:  # episode end: the vector env's terminal observation holds this step's symbols
            ended += 1
            for i, a in enumerate(agents):
                np.testing.assert_array_equal(vinfo[i]["terminal_observation"]["symbols"], pobs[a]["symbols"])
                np.testing.assert_array_equal(vobs["symbols"][i], [3] * len(agents))  # reset: none yet
            pobs, _ = par.reset()
        else:
            for i, a in enumerate(agents):
                np.testing.assert_array_equal(vobs["symbols"][i], acts[:, 1])
                np.testing.assert_array_equal(pobs[a]["symbols"], acts[:, 1])
    assert ended == 2
    with pytest.raises(ValueError, match="symbols must be in"):
        vec.step(np.stack([np.zeros(3, int), np.full(3, 3)], axis=1))
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros(3, int))
    vec.step(np.zeros((3, 2), int))  # still works after refused input
