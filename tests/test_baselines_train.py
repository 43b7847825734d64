"""Each zoo config trains on a small map; lockstep learners behave like sb3-contrib's RecurrentPPO."""

import numpy as np
import pytest
import torch as th

from baselines.config import load_agent_config
from baselines.lockstep import LockstepTrainer, make_learners, team_roles
from baselines.train import TrainArgs, run_training
from zoo_doubles import FAST, GAME, tiny_env

ZOO = ["a3c", "visible_actions", "prosocial", "inequity_aversion", "influence_moa", "influence_basic", "influence_comm",
       "comm_baseline"]
SMALL = ["ppo.n_steps=16", "ppo.batch_size=64", "ppo.n_epochs=1"]


@pytest.mark.parametrize("agent", ZOO)
def test_each_config_trains_a_few_hundred_steps_on_a_small_map(agent, tmp_path):
    args = TrainArgs(agent=agent, game="cleanup_small", total_steps=288, seed=1, num_worlds=2, max_cycles=20,
                     run_dir=str(tmp_path / agent), checkpoint_every=10_000, overrides=SMALL, progress=False)
    summary = run_training(args)
    assert summary["agent_steps"] == 288  # 3 rollouts x 16 steps x 2 worlds x 3 agents
    rows = (tmp_path / agent / "progress.csv").read_text().strip().splitlines()
    assert len(rows) - 1 >= 2 * (288 // 3 // 2 // 20)  # every finished episode of every world is logged
    assert (tmp_path / agent / "checkpoints" / "latest.json").exists()
    assert any((tmp_path / agent / "tb").iterdir())


def _trainer(sharing, total=4 * 32 * 8, agents=2, worlds=4, overrides=()):
    th.set_num_threads(1)
    cfg = load_agent_config("a3c", GAME, [*FAST, f"sharing={sharing}", *overrides])
    env = tiny_env(worlds, agents, obs_mode=cfg.obs_mode)
    roles = team_roles(cfg, worlds, agents, env.action_space)
    learners = make_learners(cfg, env.observation_space, roles, seed=0)
    trainer = LockstepTrainer(env, learners, roles, total_timesteps=total)
    trainer.reset()
    return trainer


def test_independent_learners_own_their_agents_slots():
    trainer = _trainer("independent", agents=3, worlds=4)
    assert [g.tolist() for g in trainer.groups] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    assert [lrn.n_envs for lrn in trainer.learners] == [4, 4, 4]
    before = [th.nn.utils.parameters_to_vector(l.policy.parameters()).clone() for l in trainer.learners]
    trainer.collect_rollouts()
    trainer.train()
    after = [th.nn.utils.parameters_to_vector(l.policy.parameters()) for l in trainer.learners]
    assert all(not th.equal(b, a) for b, a in zip(before, after))  # every learner was updated
    assert not th.equal(after[0], after[1])  # by its own data
    assert trainer.num_timesteps == 32 * 12 and [l.num_timesteps for l in trainer.learners] == [128, 128, 128]


def test_parameter_sharing_is_one_learner_on_all_slots():
    trainer = _trainer("shared", agents=3, worlds=4)
    assert len(trainer.learners) == 1 and trainer.learners[0].n_envs == 12
    trainer.collect_rollouts()
    trainer.train()
    assert trainer.num_timesteps == 32 * 12


def test_timeouts_bootstrap_with_the_terminal_value():
    """Truncated episodes add gamma * V(terminal_obs), as sb3-contrib's collect_rollouts does."""
    trainer = _trainer("independent", agents=2, worlds=2, overrides=["ppo.gamma=0.9"])
    seen = {}

    def on_step(infos, dones):
        seen.setdefault("rewards", []).append([i["extrinsic_reward"] for i in infos])
        seen.setdefault("dones", []).append(np.asarray(dones).copy())

    trainer.on_step = on_step
    trainer.collect_rollouts()
    raw = np.array(seen["rewards"])  # [n_steps, slots]
    dones = np.array(seen["dones"])
    buf = trainer.learners[0].rollout_buffer.rewards  # [n_steps, worlds] of agent 0
    raw0 = raw[:, trainer.groups[0]]
    d0 = dones[:, trainer.groups[0]]
    assert d0.any() and np.allclose(buf[~d0], raw0[~d0])
    bonus = buf[d0] - raw0[d0]
    assert np.all(np.abs(bonus) > 0)  # value of the terminal observation was added
    assert d0.sum() == len(d0) // 8 * trainer.venv.num_worlds  # 8-step episodes


def test_learning_on_the_tiny_map():
    """The driver actually learns: on the tiny map a random policy beams its neighbour often (-50 a
    hit, about -11 per 8-step episode); the learners stop firing and eat apples (a positive return)."""
    trainer = _trainer("independent", total=25 * 32 * 8, agents=2, worlds=4)
    returns = []
    trainer.on_step = lambda infos, dones: returns.extend(i["episode_metrics"]["agent_return"] for i, d in zip(infos, dones) if d)
    for _ in range(25):
        trainer.collect_rollouts()
        trainer.train()
    assert np.mean(returns[:64]) < -5
    assert np.mean(returns[-64:]) > 1


def test_last_update_runs_at_lr_end_when_the_budget_is_not_whole_rollouts():
    """A budget of 2.3 rollouts takes 3; the schedule is laid over those 3, so it never extrapolates
    below lr_end and the last update runs exactly at lr_end."""
    rollout = 32 * 8  # FAST: n_steps 32, 4 worlds x 2 agents
    trainer = _trainer("independent", total=int(2.3 * rollout), agents=2, worlds=4)
    cfg = load_agent_config("a3c", GAME, FAST)
    lrs = []
    while trainer.num_timesteps < trainer.total_timesteps:
        trainer.collect_rollouts()
        trainer.train()
        lrs.append(trainer.learners[0].policy.optimizer.param_groups[0]["lr"])
    assert len(lrs) == trainer.rollouts_in_budget() == 3
    assert trainer.num_timesteps == trainer.budget_steps == 3 * rollout
    assert lrs[-1] == pytest.approx(cfg.ppo.lr_end, rel=1e-9)
    assert lrs[0] < cfg.ppo.lr_init and all(a > b for a, b in zip(lrs, lrs[1:]))


def test_return_scaler_is_sb3_vecnormalize_reward_rule():
    """ReturnScaler scales rewards as SB3's VecNormalize(norm_reward=True) does (without clipping),
    through episode ends: the same raw reward stream through both."""
    from stable_baselines3.common.vec_env import VecNormalize

    from baselines.lockstep import ReturnScaler

    env = tiny_env(2, 2, max_cycles=7)
    norm = VecNormalize(env, norm_obs=False, norm_reward=True, clip_reward=np.inf, gamma=0.9)
    norm.reset()
    scaler = ReturnScaler(env.num_envs, gamma=0.9)
    rng = np.random.default_rng(0)
    for _ in range(30):
        _, scaled, dones, infos = norm.step(rng.integers(0, env.action_space.n, env.num_envs))
        raw = np.array([i["extrinsic_reward"] for i in infos])
        assert np.allclose(scaler(raw, dones), scaled, rtol=1e-5)
    assert not np.allclose(scaled, raw)  # it did scale
