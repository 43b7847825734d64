"""The centralised influence agents (Experiments I and II): counterfactuals, acting order, messages."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.utils import obs_as_tensor

from baselines.centralised import INFLUENCER_KEY, SYMBOL_KEY, TeamView, counterfactual_probs, make_social
from baselines.config import ConfigError, load_agent_config
from baselines.envs import make_env
from baselines.lockstep import LockstepTrainer, make_learners, policy_step, team_roles
from baselines.train import TrainArgs, check_run
from zoo_doubles import FAST, GAME, MAP, TINY_MAP

WORLDS, AGENTS = 3, 3
MAP3 = [o for o in MAP if not o.startswith("env.num_agents")] + [f"env.num_agents={AGENTS}"]


def _team(agent, overrides=(), total=10_000):
    th.set_num_threads(1)
    cfg = load_agent_config(agent, GAME, [*MAP3, *FAST, "ppo.normalize_reward=false", *overrides])
    venv = make_env(cfg, GAME, WORLDS, seed=3, total_agent_steps=total)
    roles = team_roles(cfg, WORLDS, AGENTS, venv.action_space)
    learners = make_learners(cfg, venv.observation_space, roles, seed=0)
    social = make_social(cfg, learners, WORLDS, AGENTS, curriculum_steps=0)
    trainer = LockstepTrainer(venv, learners, roles, total_timesteps=total, social=social)
    trainer.reset()
    return cfg, trainer


def _scramble(learners):
    """Larger random weights, so that the policies depend visibly on their inputs."""
    gen = th.Generator().manual_seed(7)
    with th.no_grad():
        for lrn in learners:
            for p in lrn.policy.parameters():
                p.copy_(th.randn(p.shape, generator=gen) * 0.5)


def _probs(learner, obs, starts):
    """The policy's action probabilities by its plain acting forward pass (no shortcut)."""
    s = th.as_tensor(np.asarray(starts, dtype=np.float32))
    return policy_step(learner.policy, obs_as_tensor(obs, learner.device), learner._last_lstm_states, s)[4]


def _kl(p, q):
    return float(np.sum(p * np.log(p / q)))


def _jsd(p, q):
    m = 0.5 * (p + q)
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


@pytest.mark.parametrize("divergence", ["kl", "jsd"])
def test_basic_influence_equals_the_hand_computed_value(divergence):
    cfg, trainer = _team("influence_basic", [f"influence.divergence={divergence}", "influence.influencers=1",
                                             "influence.beta=1.0", "influence.alpha=1.0",
                                             "influence.influencee_reward=true"])
    learners, social = trainer.learners, trainer.social
    _scramble(learners)
    for _ in range(3):  # a few steps in, so the LSTM states are not zero
        trainer.n_steps = 3
        trainer.collect_rollouts()
    view = TeamView([l._last_obs for l in learners], [l._last_lstm_states for l in learners],
                    [l._last_episode_starts for l in learners])
    n_actions = learners[0].action_space.n
    influencer_probs = _probs(learners[0], view.obs[0], view.starts[0]).numpy()
    actions = np.array([2, 5, 7])  # the influencer's action in each world
    social.acted(0, actions, th.as_tensor(influencer_probs), view)
    for k in (1, 2):  # the influencees see the influencer's action of this step
        assert (view.obs[k][INFLUENCER_KEY][:, 0] == actions).all()
        act, _, _, _, p = policy_step(learners[k].policy, obs_as_tensor(view.obs[k], "cpu"), view.states[k],
                                      th.as_tensor(view.starts[k].astype(np.float32)))
        social.acted(k, act.numpy(), p, view)
    e = np.arange(WORLDS * AGENTS, dtype=np.float64)
    infos = [{} for _ in range(WORLDS * AGENTS)]
    rewards = social.stepped(e, np.zeros(WORLDS * AGENTS, bool), infos, view)

    div = {"kl": _kl, "jsd": _jsd}[divergence]
    expected = np.zeros(WORLDS)
    on_each = np.zeros((WORLDS, 2))
    for e_idx, j in enumerate((1, 2)):
        # p(a_j | a_0 = c) for every counterfactual c, by the plain forward pass on edited observations
        cf = []
        for c in range(n_actions):
            obs = {key: v.copy() for key, v in view.obs[j].items()}
            obs[INFLUENCER_KEY][:, 0] = c
            cf.append(_probs(learners[j], obs, view.starts[j]).numpy().astype(np.float64))
        cf = np.stack(cf, axis=1)  # [W, C, A]
        for w in range(WORLDS):
            marginal = influencer_probs[w].astype(np.float64) @ cf[w]
            d = div(cf[w, actions[w]], marginal)
            expected[w] += d
            on_each[w, e_idx] = d
    got = np.array([infos[w * AGENTS]["influence_reward"] for w in range(WORLDS)])
    assert expected.max() > 1e-3  # the case is not trivial
    np.testing.assert_allclose(got, np.clip(expected, -10, 10), rtol=1e-4, atol=1e-7)
    e = e.reshape(WORLDS, AGENTS)
    np.testing.assert_allclose(rewards[0], e[:, 0] + expected, rtol=1e-4, atol=1e-6)  # alpha e + beta c
    np.testing.assert_allclose(rewards[1], e[:, 1] + on_each[:, 0], rtol=1e-4, atol=1e-6)  # influencee reward
    np.testing.assert_allclose(rewards[2], e[:, 2] + on_each[:, 1], rtol=1e-4, atol=1e-6)
    assert [infos[w * AGENTS + 1]["influence_reward"] for w in range(WORLDS)] == [0.0] * WORLDS


def test_counterfactual_shortcut_equals_the_plain_forward_pass_for_every_column():
    _, trainer = _team("influence_comm", ["influence.beta=1.0"])
    _scramble(trainer.learners)
    trainer.n_steps = 4
    trainer.collect_rollouts()
    lrn = trainer.learners[1]
    starts = lrn._last_episode_starts.astype(np.float32)
    vocab = trainer.social.vocab_size
    got = counterfactual_probs(lrn.policy, obs_as_tensor(lrn._last_obs, "cpu"), lrn._last_lstm_states,
                               th.as_tensor(starts), SYMBOL_KEY, [0, 2], vocab)
    assert got.shape == (2, vocab, WORLDS, lrn.action_space.n)
    for i, col in enumerate((0, 2)):
        for v in range(vocab):
            obs = {key: x.copy() for key, x in lrn._last_obs.items()}
            obs[SYMBOL_KEY][:, col] = v
            np.testing.assert_allclose(got[i, v].numpy(), _probs(lrn, obs, starts).numpy(), rtol=1e-4, atol=1e-6)


def test_influencers_act_first_and_influencees_see_their_current_action():
    _, trainer = _team("influence_basic", ["influence.influencers=2"])
    trainer.n_steps = 8
    trainer.collect_rollouts()
    buffers = [l.rollout_buffer for l in trainer.learners]
    ext = [l.policy.features_extractor for l in trainer.learners]
    assert INFLUENCER_KEY not in ext[0].vector_keys + ext[1].vector_keys and INFLUENCER_KEY in ext[2].vector_keys
    seen = buffers[2].observations[INFLUENCER_KEY]  # [steps, worlds, influencers]
    for k in (0, 1):  # the influencee's input at t is influencer k's action at t
        np.testing.assert_array_equal(seen[:, :, k], buffers[k].actions[:, :, 0])
    for k in (0, 1):  # and the influencers see no one's action of the step: they acted before anyone
        assert (buffers[k].observations[INFLUENCER_KEY] == 0).all()


def test_messages_reach_every_agents_next_observation():
    _, trainer = _team("influence_comm", ["influence.beta=1.0"])
    trainer.n_steps = 12  # more than one 8-step episode
    trainer.collect_rollouts()
    n = AGENTS
    buffers = [l.rollout_buffer for l in trainer.learners]
    sent = np.stack([buffers[n + k].actions[:, :, 0] for k in range(n)], axis=-1)  # [T, W, N] symbols sent
    for j in range(n):
        seen = buffers[j].observations[SYMBOL_KEY]  # [T, W, N] what agent j saw
        starts = buffers[j].episode_starts.astype(bool)
        for t in range(1, trainer.n_steps):
            for w in range(WORLDS):
                if starts[t, w]:
                    assert (seen[t, w] == trainer.social.vocab_size).all()  # new episode: no symbols yet
                else:
                    np.testing.assert_array_equal(seen[t, w], sent[t - 1, w])


def test_only_the_message_learners_are_rewarded_for_influence():
    _, trainer = _team("influence_comm", ["influence.beta=2.0", "influence.alpha=0.0"])
    _scramble(trainer.learners)
    logged = []
    trainer.on_step = lambda infos, dones: logged.append(
        (np.array([i["influence_reward"] for i in infos]), np.array([i["extrinsic_reward"] for i in infos])))
    steps = trainer.n_steps = 7  # within the first 8-step episode: no timeout bootstrap in the rewards
    trainer.collect_rollouts()
    n = AGENTS
    influence = np.stack([c for c, _ in logged]).reshape(steps, WORLDS, n)
    extrinsic = np.stack([e for _, e in logged]).reshape(steps, WORLDS, n)
    assert np.abs(influence).max() > 1e-4
    for k in range(n):
        np.testing.assert_allclose(trainer.learners[k].rollout_buffer.rewards[:steps], extrinsic[:, :, k], atol=1e-6)
        np.testing.assert_allclose(trainer.learners[n + k].rollout_buffer.rewards[:steps], 2.0 * influence[:, :, k],
                                   rtol=1e-5, atol=1e-6)
    # and the message learner's PPO update trains on those returns: its advantages follow them
    buf = trainer.learners[n].rollout_buffer
    assert np.abs(buf.returns - buf.values).max() > 0


def test_comm_baseline_messages_learn_from_the_extrinsic_reward_only():
    _, trainer = _team("comm_baseline")
    steps = trainer.n_steps = 7
    trainer.collect_rollouts()
    n = AGENTS
    for k in range(n):
        np.testing.assert_array_equal(trainer.learners[n + k].rollout_buffer.rewards[:steps],
                                      trainer.learners[k].rollout_buffer.rewards[:steps])
    assert trainer.num_timesteps == steps * WORLDS * AGENTS  # the message learners' steps are not counted twice


@pytest.mark.parametrize("overrides, message", [
    (["sharing=shared"], "sharing: independent"),
    (["influence.divergence=pmi"], "kl or jsd"),
])
def test_bad_comm_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_agent_config("influence_comm", GAME, overrides)


def test_too_many_influencers_are_refused_before_anything_is_written(tmp_path):
    args = TrainArgs(agent="influence_basic", game=GAME, total_steps=100, num_worlds=1, run_dir=str(tmp_path / "r"),
                     overrides=[f"env.ascii_map={TINY_MAP}".replace("'", '"'), "env.num_agents=2",
                                "influence.influencers=2"])
    with pytest.raises(ConfigError, match="influencers"):
        check_run(args)
    assert not (tmp_path / "r").exists()
