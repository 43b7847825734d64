"""The RLlib scale-out (baselines.rllib): env adapter, RLModule, metrics, PPO config, ssd-rllib.

Needs the ``rllib`` extra (``pip install "ssd-gym[rllib]"``); skipped without it. ``.ci/run`` runs
this file in a second venv that has it. The Ray tests start their own instances (a local one, and
a head started with ``ray start --head`` that the test connects to by address) with 2 CPUs and stop
them when done; episodes are shortened with ``max_cycles`` and iterations are small, so the file
runs in a few minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason='Ray RLlib is not installed (pip install "ssd-gym[rllib]")')

import gymnasium as gym  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402

import ssd_gym  # noqa: E402
import wrappers  # noqa: E402
from baselines.config import ConfigError, load_agent_config  # noqa: E402
from baselines.rllib import SSDLstmModule, SSDMultiAgentEnv, build_parallel_env, env_creator, ppo_config  # noqa: E402
from baselines.rllib.metrics import episode_social_metrics  # noqa: E402
from baselines.rllib.env import ReturnScaler  # noqa: E402
from baselines.rllib.train import Args, _ssd_envs, build, main, restore_checkpoint, save_checkpoint, train  # noqa: E402
from ssd_gym.metrics import INFO_KEY  # noqa: E402

pytestmark = pytest.mark.rllib
SOCIAL = ("collective_return", "equality", "equality_weighted_return", "sustainability", "peace")


# ---- the env adapter (no Ray instance) ---------------------------------------------------------
def play(env: SSDMultiAgentEnv, seed: int = 0, steps: int | None = None):
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    history = [obs]
    t = 0
    while True:
        actions = {a: int(rng.integers(env.action_spaces[a].n)) for a in env.agents}
        obs, rew, term, trunc, infos = env.step(actions)
        history.append(obs)
        t += 1
        if trunc["__all__"] or term["__all__"] or (steps is not None and t >= steps):
            return history, rew, term, trunc, infos, t


def test_env_runs_whole_episode_with_metrics_and_kept_observations():
    env = env_creator({"game": "harvest_small", "obs_mode": "dict", "env_options": {"max_cycles": 30}})
    assert set(env.observation_spaces) == set(env.possible_agents) == {"agent_0", "agent_1", "agent_2"}
    history, rew, term, trunc, infos, t = play(env)
    assert t == 30 and trunc == {**{a: True for a in env.possible_agents}, "__all__": True}
    assert term["__all__"] is False and env.agents == []
    assert all(INFO_KEY in infos[a] for a in env.possible_agents)
    # every observation kept by the caller is its own array: later steps do not overwrite it
    again, *_ = play(env_creator({"game": "harvest_small", "obs_mode": "dict", "env_options": {"max_cycles": 30}}))
    for a, b in zip(history, again):
        for agent in a:
            assert np.array_equal(a[agent]["rgb"], b[agent]["rgb"])
    assert not all(np.array_equal(history[1]["agent_0"]["rgb"], h["agent_0"]["rgb"]) for h in history[2:])
    for obs in history:
        for agent, o in obs.items():
            assert env.observation_spaces[agent].contains(o)


def test_reward_wrappers_stack_and_match_the_wrappers_themselves():
    spec = [{"type": "prosocial", "eta": 0.5}, {"type": "inequity_aversion", "alpha": 1.0, "beta": 0.2}]
    ours = env_creator({"game": "cleanup_small", "env_options": {"max_cycles": 40}, "rewards": spec})
    direct = SSDMultiAgentEnv(wrappers.InequityAversionReward(
        wrappers.ProsocialReward(ssd_gym.parallel_env("cleanup_small", obs_mode="rgb", max_cycles=40), eta=0.5),
        alpha=1.0, beta=0.2))
    raw = SSDMultiAgentEnv(ssd_gym.parallel_env("cleanup_small", obs_mode="rgb", max_cycles=40))
    rng = np.random.default_rng(1)
    for e in (ours, direct, raw):
        e.reset(seed=3)
    differs = False
    for _ in range(40):
        actions = {a: int(rng.integers(9)) for a in raw.possible_agents}
        _, r1, *_ , i1 = ours.step(actions)
        _, r2, *_ = direct.step(actions)
        _, r0, *_ = raw.step(actions)
        assert r1 == r2
        assert {a: i1[a]["extrinsic_reward"] for a in r0} == r0
        differs |= r1 != r0
    assert differs  # the wrappers did change some reward


@pytest.mark.parametrize("shared", [False, True])
def test_reward_scaler_is_sb3s_running_std_of_the_discounted_return(shared):
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    rng = np.random.default_rng(0)
    scaler, gamma = ReturnScaler(3, 0.9, shared=shared), 0.9
    rms = [RunningMeanStd(shape=()) for _ in range(1 if shared else 3)]
    ret = np.zeros(3)
    for t in range(60):
        r = rng.normal(size=3) * 10
        ret = ret * gamma + r
        for i, m in enumerate(rms):
            m.update(ret if shared else ret[i:i + 1])
        want = r / np.sqrt(np.array([m.var for m in rms]) + 1e-8)
        assert np.allclose(scaler(r), want)
        if t == 29:
            scaler.end_episode()
            ret[:] = 0


def test_normalized_rewards_leave_info_and_metrics_raw():
    cfg = {"game": "harvest_small", "env_options": {"max_cycles": 30}, "normalize_reward": {"gamma": 0.99}}
    scaled, raw = env_creator(cfg), env_creator({**cfg, "normalize_reward": None})
    rng = np.random.default_rng(2)
    scaled.reset(seed=5), raw.reset(seed=5)
    seen = False
    for _ in range(30):
        acts = {a: int(rng.integers(raw.action_spaces[a].n)) for a in raw.possible_agents}
        _, rs, _, trunc, infos = scaled.step(acts)
        _, r0, _, _, infos0 = raw.step(acts)
        assert {a: infos[a]["extrinsic_reward"] for a in r0} == r0
        seen |= any(r0[a] != 0 and rs[a] != r0[a] for a in r0)
    assert seen and trunc["__all__"]
    assert infos["agent_0"][INFO_KEY] == infos0["agent_0"][INFO_KEY]
    assert scaled.scaler.returns.tolist() == [0.0, 0.0, 0.0]  # reset at the episode's end
    with pytest.raises(ValueError, match="normalize_reward"):
        env_creator({**cfg, "normalize_reward": {"gama": 0.9}})


def test_influence_env_uses_the_self_model_and_seeds_moa_by_worker():
    cfg = {"game": "box_trapped", "obs_mode": "dict", "env_options": {"max_cycles": 20},
           "rewards": [{"type": "influence", "options": {"beta": 1.0, "train_every": 8}}]}
    env = env_creator(cfg)
    *_, infos, _ = play(env)
    assert {infos[a]["policy_source"] for a in infos} == {"self_model"}
    assert all("influence_reward" in infos[a] for a in infos)

    class Ctx(dict):
        worker_index = 3

    w0 = env.wrapper_with("save_moa").moa.state_dict()
    w3 = env_creator(Ctx(cfg)).wrapper_with("save_moa").moa.state_dict()
    assert any(not torch.equal(w0[k], w3[k]) for k in w0)


@pytest.mark.parametrize("config, match", [
    ({"game": "chess"}, "unknown game"),
    ({}, "needs a 'game'"),
    ({"game": "harvest", "colour": 1}, "unknown env_config key"),
    ({"game": "harvest", "rewards": [{"type": "altruism"}]}, "unknown reward wrapper"),
    ({"game": "harvest", "rewards": ["prosocial"]}, "must be a dict"),
])
def test_bad_env_config_is_refused_with_its_reason(config, match):
    with pytest.raises(ValueError, match=match):
        env_creator(config)


def test_adapter_refuses_what_is_not_a_parallel_env():
    with pytest.raises(TypeError, match="ParallelEnv"):
        SSDMultiAgentEnv(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="unknown game"):
        build_parallel_env("pong")


# ---- the RLModule ------------------------------------------------------------------------------
def module(space, **config):
    return SSDLstmModule(observation_space=space, action_space=gym.spaces.Discrete(9),
                         model_config={"max_seq_len": 4, **config})


def batch_of(m, obs, B):
    state = {k: torch.from_numpy(v).unsqueeze(0).repeat(B, 1) for k, v in m.get_initial_state().items()}
    return {Columns.OBS: obs, Columns.STATE_IN: state}


def test_module_is_the_papers_network_on_uint8_rgb():
    env = ssd_gym.parallel_env("harvest_small", obs_mode="rgb")
    m = module(env.observation_space("agent_0"))
    assert m.conv.kernel_size == (3, 3) and m.conv.out_channels == 6
    assert [l.out_features for l in m.fc if isinstance(l, torch.nn.Linear)] == [32, 32]
    assert m.lstm.hidden_size == 128
    obs = torch.randint(0, 256, (2, 3, 15, 15, 3), dtype=torch.uint8)
    out = m.forward_exploration(batch_of(m, obs, 2))
    assert out[Columns.ACTION_DIST_INPUTS].shape == (2, 3, 9)
    assert out[Columns.STATE_OUT]["h"].shape == (2, 128)
    # the LSTM carries state: the same last frame after different histories gives different logits
    other = obs.clone()
    other[:, :2] = 0
    out2 = m.forward_exploration(batch_of(m, other, 2))
    assert not torch.allclose(out[Columns.ACTION_DIST_INPUTS][:, -1], out2[Columns.ACTION_DIST_INPUTS][:, -1])
    assert m.compute_values(batch_of(m, obs, 2)).shape == (2, 3)


def test_module_reads_the_visible_action_channel_from_the_dict():
    space = ssd_gym.parallel_env("harvest_small", obs_mode="dict").observation_space("agent_0")
    plain, seeing = module(space), module(space, use_actions=True)
    assert seeing.vector_keys == ("prev_action", "others_prev_actions", "others_visible")
    assert seeing.fc[0].in_features == plain.fc[0].in_features + 9 + 18 + 2
    sample = [space.sample() for _ in range(2)]
    obs = {k: torch.as_tensor(np.stack([s[k] for s in sample]))[:, None] for k in space.spaces}
    a = seeing.forward_inference(batch_of(seeing, obs, 2))[Columns.ACTION_DIST_INPUTS]
    obs["others_prev_actions"] = (obs["others_prev_actions"] + 1) % 9
    b = seeing.forward_inference(batch_of(seeing, obs, 2))[Columns.ACTION_DIST_INPUTS]
    assert not torch.allclose(a, b)
    assert torch.allclose(plain.forward_inference(batch_of(plain, obs, 2))[Columns.ACTION_DIST_INPUTS],
                          plain.forward_inference(batch_of(plain, {**obs, "others_prev_actions": obs["others_prev_actions"] * 0},
                                                           2))[Columns.ACTION_DIST_INPUTS])


@pytest.mark.parametrize("critic", ["shared", "detached", "separate"])
def test_module_critics_train_what_the_zoo_says(critic):
    m = module(ssd_gym.parallel_env("harvest_small", obs_mode="rgb").observation_space("agent_0"), critic=critic)
    b = batch_of(m, torch.randint(0, 256, (2, 3, 15, 15, 3), dtype=torch.uint8), 2)
    out = m.forward_train(b)
    m.compute_values(b, out[Columns.EMBEDDINGS]).sum().backward()
    lstm_grad = m.lstm.weight_ih_l0.grad
    reached = lstm_grad is not None and lstm_grad.abs().sum() > 0
    assert reached == (critic == "shared")
    assert (m.critic_lstm is not None) == (critic == "separate")
    assert ("vh" in out[Columns.STATE_OUT]) == (critic == "separate")


def test_module_refuses_bad_config():
    space = ssd_gym.parallel_env("harvest_small", obs_mode="rgb").observation_space("agent_0")
    with pytest.raises(ValueError, match="unknown model_config"):
        module(space, conv_chanels=6)
    with pytest.raises(ValueError, match="critic"):
        module(space, critic="double")
    with pytest.raises(ValueError, match="Dict observation"):
        module(space, use_actions=True)
    with pytest.raises(ValueError, match="image key"):
        module(gym.spaces.Dict({"x": gym.spaces.Discrete(3)}))


# ---- metrics and config ------------------------------------------------------------------------
def test_episode_metrics_are_the_games_own():
    env = env_creator({"game": "box_trapped", "env_options": {"max_cycles": 25}})
    *_, infos, _ = play(env)
    m = infos["agent_0"][INFO_KEY]
    got = episode_social_metrics(infos)
    for k in SOCIAL:
        assert got[k] == pytest.approx(m[k])
    assert got["box_opened"] == float(m["box_opened"])
    assert ("box_open_step" in got) == bool(m["box_opened"])
    assert episode_social_metrics({"agent_0": {}}) == {}
    # influence: the mean influence reward over every agent-step of the episode
    infl = {"agent_0": [{"influence_reward": 1.0}, {"influence_reward": 0.0}], "agent_1": [{"influence_reward": 2.0}]}
    assert episode_social_metrics(infos, infl)["influence_reward"] == pytest.approx(1.0)


def test_ppo_config_carries_the_zoo_config():
    cfg = load_agent_config("inequity_aversion", "harvest_small")
    pc = ppo_config(cfg, "harvest_small", total_env_steps=10_000, num_env_runners=2, envs_per_runner=3)
    assert set(pc.policies) == {"agent_0", "agent_1", "agent_2"}
    assert pc.policy_mapping_fn("agent_1", None) == "agent_1"
    assert pc.lr == [[0, cfg.ppo.lr_init], [10_000, cfg.ppo.lr_end]]
    assert pc.entropy_coeff == cfg.ppo.ent_coef and pc.gamma == cfg.ppo.gamma and pc.num_epochs == cfg.ppo.n_epochs
    assert pc.num_envs_per_env_runner == 3 and pc.num_env_runners == 2
    # beta 0.08: harvest_small's row in games.yaml
    assert pc.env_config["rewards"] == [{"type": "inequity_aversion", "gamma": cfg.ppo.gamma, "alpha": 0.0,
                                         "beta": 0.08, "lam": 0.975}]
    shared = ppo_config(cfg, "harvest_small", total_env_steps=10_000, sharing="shared")
    assert set(shared.policies) == {"shared"} and shared.policy_mapping_fn("agent_2", None) == "shared"
    moa = ppo_config(load_agent_config("influence_moa", "harvest_small"), "harvest_small",
                     total_env_steps=10_000, num_env_runners=2, envs_per_runner=2, seed=7)
    opts = moa.env_config["rewards"][0]["options"]
    assert opts["seed"] == 7 and "seed" not in moa.env_config and moa.seed == 7  # + worker index: env_creator
    assert moa.env_config["obs_mode"] == "dict" and opts["beta"] == pytest.approx(2.521)
    assert pc.env_config["normalize_reward"] == {"gamma": cfg.ppo.gamma, "shared": False}
    assert shared.env_config["normalize_reward"]["shared"] is True
    box = ppo_config(load_agent_config("a3c", "box_trapped"), "box_trapped", total_env_steps=100)
    assert box.env_config["normalize_reward"] is None and box.rl_module_spec.rl_module_specs["agent_0"].model_config["critic"] == "detached"
    assert opts["curriculum_steps"] == int(0.75 * 10_000 / 4)  # the fraction of the budget, per env copy
    with pytest.raises(ConfigError, match="num_env_runners"):
        ppo_config(cfg, "harvest_small", total_env_steps=10, num_env_runners=-1)
    with pytest.raises(ConfigError, match="sharing"):
        ppo_config(cfg, "harvest_small", total_env_steps=10, sharing="communal")
    for agent in ("influence_basic", "influence_comm", "comm_baseline"):  # the zoo's centralised agents
        with pytest.raises(ConfigError, match="use ssd-train"):
            ppo_config(load_agent_config(agent, "harvest_small"), "harvest_small", total_env_steps=10)


@pytest.mark.parametrize("argv, match", [
    (["--num-env-runners", "-1"], "--num-env-runners must be >= 0"),
    (["--gpus-per-learner", "lots"], "--gpus-per-learner must be a number"),
    (["--address", "auto", "--num-cpus", "2"], "cannot be combined"),
    (["--game", "chess"], "unknown game"),
])
def test_command_refuses_bad_arguments(argv, match, capsys, tmp_path):
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2
    assert match in capsys.readouterr().err
    assert not ray.is_initialized()


# ---- training on a local Ray instance ----------------------------------------------------------
@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def weights(algo) -> dict:
    return {mid: {k: np.array(v, copy=True) for k, v in m.get_state().items()}
            for mid, m in algo.learner_group._learner.module._rl_modules.items()}


def test_prosocial_trains_with_two_runners_reports_metrics_and_resumes(local_ray, tmp_path):
    args = Args(agent="prosocial", game="harvest_small", max_cycles=40, train_batch=240, minibatch=120,
                max_seq_len=10, num_env_runners=2, envs_per_runner=1, run_dir=str(tmp_path), quiet=True, tensorboard=False)
    _, algo = build(args)
    try:
        assert algo.config.num_env_runners == 2
        results = [algo.train() for _ in range(2)]
        ssd = results[-1]["env_runners"]["ssd"]
        for k in SOCIAL:
            assert np.isfinite(ssd[k]), k
        assert ssd["equality"] == pytest.approx(1 - ssd["gini"])
        assert results[-1]["env_runners"]["num_episodes_lifetime"] >= 2 * 240 // 40
        saved = weights(algo)
        counts = sorted(algo.env_runner_group.foreach_env_runner(
            lambda r: [e.scaler.count.tolist() for e in _ssd_envs(r)], local_env_runner=False))
        assert counts[0][0][0] > 100  # the reward scalers have run (the config normalises rewards)
        ckpt = save_checkpoint(algo, tmp_path)
        assert (ckpt / "ssd_wrappers.pt").exists()
    finally:
        algo.stop()
    _, again = build(args)
    try:
        fresh = weights(again)
        assert any(not np.array_equal(fresh["agent_0"][k], saved["agent_0"][k]) for k in saved["agent_0"])
        restore_checkpoint(again, ckpt)
        assert again.iteration == 2
        assert sorted(again.env_runner_group.foreach_env_runner(
            lambda r: [e.scaler.count.tolist() for e in _ssd_envs(r)], local_env_runner=False)) == counts
        restored = weights(again)
        for mid in saved:
            for k in saved[mid]:
                assert np.array_equal(restored[mid][k], saved[mid][k]), (mid, k)
        result = again.train()  # training continues from the checkpoint
        assert result["training_iteration"] == 3
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 3 * 240
        assert any(not np.array_equal(weights(again)["agent_0"][k], saved["agent_0"][k]) for k in saved["agent_0"])
    finally:
        again.stop()


def test_command_resumes_influence_run_with_its_moa(local_ray, tmp_path):
    common = dict(agent="influence_moa", game="box_trapped", max_cycles=25, train_batch=100, minibatch=100,
                  max_seq_len=5, num_env_runners=1, envs_per_runner=1, run_dir=str(tmp_path), quiet=True,
                  total_steps=10_000)
    first = train(Args(iterations=1, **common))
    assert (tmp_path / "checkpoint" / "ssd_wrappers.pt").exists()
    assert (tmp_path / "tb").is_dir() and any((tmp_path / "tb").iterdir())
    second = train(Args(iterations=2, **common))
    rows = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2] and second["iteration"] == 2
    assert rows[1]["agent_steps"] > rows[0]["agent_steps"]
    for key in ("ssd/box_opened", "ssd/influence_reward", "ssd/influence_weight", "ssd/collective_return"):
        assert key in rows[0] and key in rows[1], key
    # the curriculum continued from the checkpoint (a restarted one would repeat the first weight)
    assert rows[1]["ssd/influence_weight"] > first["ssd/influence_weight"]
    with pytest.raises(ConfigError, match="other settings"):
        train(Args(iterations=3, **{**common, "train_batch": 50}))


# ---- an existing cluster, by address -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """``ray start --head`` on the loopback address, as a separate process; stopped (by its pid) at
    the end. Ray 2.59+ turns token authentication on for such a head, so the test makes a token and
    gives it to the head and to the driver (RAY_AUTH_MODE / RAY_AUTH_TOKEN; Ray reads them when a
    process first starts Ray, so the driver is a process of its own). Ray records the machine's own
    address as the node's IP even for ``--node-ip-address=127.0.0.1`` (``resolve_ip_for_localhost``);
    the GCS listens on every interface and the driver connects through 127.0.0.1. Yields (address, env)."""
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}", "--block"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 90
        lines = []
        for line in head.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                break
            if time.time() > deadline or head.poll() is not None:
                pytest.fail("ray start --head did not come up:\n" + "".join(lines))
        yield f"127.0.0.1:{port}", env
    finally:
        head.send_signal(signal.SIGTERM)  # ray start --block stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)


def test_trains_on_an_existing_cluster_by_address(ray_head, tmp_path):
    address, env = ray_head
    cmd = [sys.executable, "-m", "baselines.rllib.train", "--agent", "prosocial", "--game", "harvest_small",
           "--max-cycles", "25", "--train-batch", "100", "--minibatch", "100", "--max-seq-len", "5",
           "--num-env-runners", "1", "--envs-per-runner", "1", "--iterations", "1", "--address", address, "--run-dir", str(tmp_path),
           "--no-tensorboard"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # it joined that head (by its port), not a new local instance
    assert re.search(rf"Connecting to existing Ray cluster at address: \S+:{address.rsplit(':', 1)[1]}", done.stderr)
    assert "iter    1" in done.stdout and "collective_return=" in done.stdout
    assert (tmp_path / "checkpoint" / "rllib_checkpoint.json").exists()


def test_module_one_step_path_equals_the_sequence_pass():
    m = module(ssd_gym.parallel_env("harvest_small", obs_mode="rgb").observation_space("agent_0"), critic="separate")
    obs = torch.randint(0, 256, (2, 4, 15, 15, 3), dtype=torch.uint8)
    whole = m.forward_train(batch_of(m, obs, 2))
    b = batch_of(m, obs[:, :1], 2)
    logits = []
    for t in range(4):  # step by step, as the env runners act, carrying the state
        out = m.forward_exploration({Columns.OBS: obs[:, t:t + 1], Columns.STATE_IN: b[Columns.STATE_IN]})
        logits.append(out[Columns.ACTION_DIST_INPUTS])
        b[Columns.STATE_IN] = out[Columns.STATE_OUT]
    assert torch.allclose(torch.cat(logits, dim=1), whole[Columns.ACTION_DIST_INPUTS], atol=1e-5)
    for k in ("h", "c", "vh", "vc"):
        assert torch.allclose(b[Columns.STATE_IN][k], whole[Columns.STATE_OUT][k], atol=1e-5)


def test_progress_rows_leave_out_iterations_without_episodes():
    from baselines.rllib.train import progress_row

    result = {"training_iteration": 4, "time_this_iter_s": 1.0,
              "env_runners": {"num_agent_steps_sampled_lifetime": {"agent_0": 10, "agent_1": 12},
                              "num_env_steps_sampled_lifetime": 12, "episode_return_mean": float("nan"),
                              "ssd": {"peace": float("nan"), "equality": 0.5}}}
    row = progress_row(result)
    assert row["agent_steps"] == 22 and row["env_steps"] == 12 and row["iteration"] == 4
    assert "episode_return_mean" not in row and "ssd/peace" not in row and row["ssd/equality"] == 0.5
    json.dumps(row, allow_nan=False)


def test_every_zoo_reward_trains_through_episode_ends(local_ray, tmp_path):
    """a3c (one shared module), inequity_aversion and visible_actions (one module per agent), in the
    driver (0 env runners): one iteration each, over at least one episode end."""
    for agent, sharing in (("a3c", "shared"), ("inequity_aversion", None), ("visible_actions", None)):
        row = train(Args(agent=agent, game="cleanup_small", max_cycles=20, train_batch=40, minibatch=40,
                         max_seq_len=5, num_env_runners=0, envs_per_runner=2, iterations=1, sharing=sharing,
                         run_dir=str(tmp_path / agent), quiet=True, tensorboard=False))
        assert row["iteration"] == 1 and row["agent_steps"] >= 120, agent
        for k in SOCIAL:
            assert np.isfinite(row[f"ssd/{k}"]), (agent, k)
        saved = tmp_path / agent / "checkpoint" / "learner_group" / "learner" / "rl_module"
        modules = {p.name for p in saved.iterdir() if p.is_dir()}
        assert modules == ({"shared"} if sharing == "shared" else {"agent_0", "agent_1", "agent_2"}), agent


@pytest.mark.parametrize("gpus, cuda, asked, want", [
    (0, False, ("auto", 0), (0.0, 0)),      # no GPU in the cluster: learn on CPUs, in the driver
    (2, True, ("auto", 0), (1.0, 0)),       # the driver has CUDA: its local learner takes a GPU
    (2, False, ("auto", 0), (1.0, 1)),      # GPUs elsewhere only: one remote learner takes one
    (4, False, ("auto", 3), (1.0, 3)),      # learners asked for: one GPU each
    (4, True, ("0.5", 2), (0.5, 2)),        # a number is taken as given
])
def test_gpu_learners_when_the_cluster_has_gpus(monkeypatch, gpus, cuda, asked, want):
    """The --gpus-per-learner auto rule (the GPU path itself is not run here: no GPU on this machine)."""
    from baselines.rllib.train import gpus_per_learner

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0, "GPU": float(gpus)})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert gpus_per_learner(Args(gpus_per_learner=asked[0], num_learners=asked[1])) == want
    pc = ppo_config(load_agent_config("a3c", "harvest_small"), "harvest_small", total_env_steps=100,
                    num_learners=want[1], gpus_per_learner=want[0])
    assert (pc.num_learners, pc.num_gpus_per_learner) == (want[1], want[0])
