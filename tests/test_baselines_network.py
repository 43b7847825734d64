"""The paper's network as an sb3-contrib policy, and the lockstep forward pass."""

import copy

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import obs_as_tensor

from baselines.lockstep import as_learner_obs, policy_step
from baselines.network import SSDFeaturesExtractor, SSDLstmPolicy, policy_kwargs
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from zoo_doubles import tiny_env

A, N = 9, 3
SPACE = spaces.Dict({
    "rgb": spaces.Box(0, 255, (15, 15, 3), np.uint8),
    "prev_action": spaces.Discrete(A + 1),
    "others_prev_actions": spaces.MultiDiscrete([A + 1] * (N - 1)),
    "others_visible": spaces.MultiBinary(N - 1),
})


def _batch(others):
    rng = np.random.default_rng(0)
    return {
        "rgb": th.as_tensor(rng.random((2, 15, 15, 3)), dtype=th.float32),
        "prev_action": th.nn.functional.one_hot(th.tensor([1, 1]), A + 1).float(),
        "others_prev_actions": th.cat([th.nn.functional.one_hot(th.tensor(others)[:, i], A + 1) for i in range(N - 1)], 1).float(),
        "others_visible": th.ones(2, N - 1),
    }


def test_layer_sizes_are_the_papers():
    ext = SSDFeaturesExtractor(SPACE, use_actions=True)
    conv = ext.conv[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (3, 6, (3, 3), (1, 1))
    fcs = [m for m in ext.fc if isinstance(m, th.nn.Linear)]
    # conv output 13*13*6 plus one-hots: own action (A+1), others (N-1)*(A+1), visibility N-1
    assert fcs[0].in_features == 13 * 13 * 6 + (A + 1) + (N - 1) * (A + 1) + (N - 1)
    assert [f.out_features for f in fcs] == [32, 32]
    assert ext.features_dim == 32


def test_visible_actions_enter_only_when_enabled():
    with_actions = SSDFeaturesExtractor(SPACE, use_actions=True)
    rgb_only = SSDFeaturesExtractor(SPACE, use_actions=False)
    a, b = _batch([[0, 0], [0, 0]]), _batch([[5, 7], [5, 7]])
    assert not th.allclose(with_actions(a), with_actions(b))
    assert th.allclose(rgb_only(a), rgb_only(b))
    assert rgb_only.fc[0].in_features == 13 * 13 * 6


@pytest.mark.parametrize("obs_mode", ["dict", "rgb"])
def test_recurrent_ppo_builds_with_lstm_128(obs_mode):
    env = tiny_env(2, 2, obs_mode=obs_mode)
    model = RecurrentPPO(SSDLstmPolicy, env, n_steps=8, batch_size=16, policy_kwargs=policy_kwargs(), seed=0)
    assert model.policy.lstm_actor.hidden_size == 128
    assert model.policy.action_net.in_features == 128 and model.policy.value_net.in_features == 128
    model.learn(32)  # plain sb3-contrib training runs with our extractor


@pytest.mark.parametrize("critic", ["shared", "separate", "detached"])
def test_policy_step_matches_sb3_forward(critic):
    """The lockstep forward (which also returns probabilities) is sb3-contrib's forward."""
    env = tiny_env(2, 2)
    model = RecurrentPPO(SSDLstmPolicy, env, n_steps=8, batch_size=16, policy_kwargs=policy_kwargs(critic=critic), seed=0)
    obs = obs_as_tensor(as_learner_obs(model, env.reset()), "cpu")
    states = model._last_lstm_states
    starts = th.ones(4)
    th.manual_seed(1)
    a1, v1, lp1, s1 = model.policy.forward(obs, states, starts)
    th.manual_seed(1)
    a2, v2, lp2, s2, probs = policy_step(model.policy, obs, states, starts)
    assert th.equal(a1, a2) and th.allclose(v1, v2) and th.allclose(lp1, lp2)
    assert th.allclose(s1.pi[0], s2.pi[0]) and th.allclose(s1.vf[1], s2.vf[1])
    assert probs.shape == (4, env.action_space.n) and th.allclose(probs.sum(1), th.ones(4))
    assert th.allclose(probs.gather(1, a2.long().view(-1, 1)).log().flatten(), lp2, atol=1e-6)


def test_whole_sequence_lstm_matches_sb3_step_by_step_loop():
    """Episode starts at sequence heads *and* inside sequences: same outputs and final states."""
    lstm = th.nn.LSTM(32, 128)
    gen = th.Generator().manual_seed(0)
    n_seq, T = 5, 12
    features = th.randn(n_seq * T, 32, generator=gen)
    starts = (th.rand(n_seq * T, generator=gen) < 0.15).float()
    starts[0] = starts[T + 4] = starts[3 * T + 4] = 1.0  # a head and two starts inside sequences at t = 4
    states = (th.randn(1, n_seq, 128, generator=gen), th.randn(1, n_seq, 128, generator=gen))
    ours, (h1, c1) = SSDLstmPolicy._process_sequence(features, states, starts, lstm)
    theirs, (h2, c2) = RecurrentActorCriticPolicy._process_sequence(features, states, starts, lstm)
    assert th.allclose(ours, theirs, atol=1e-6) and th.allclose(h1, h2, atol=1e-6) and th.allclose(c1, c2, atol=1e-6)
    # one time step (acting) takes the LSTM-cell path
    one, (h1, c1) = SSDLstmPolicy._process_sequence(features[:n_seq], states, starts[:n_seq], lstm)
    ref, (h2, c2) = RecurrentActorCriticPolicy._process_sequence(features[:n_seq], states, starts[:n_seq], lstm)
    assert th.allclose(one, ref, atol=1e-6) and th.allclose(c1, c2, atol=1e-6)


def _ppo(policy, env, **kw):
    return RecurrentPPO(policy, env, n_steps=16, batch_size=24, n_epochs=2, seed=0, **kw)


def test_training_losses_match_sb3_contrib_on_batches_with_episode_starts():
    """One PPO update of sb3-contrib's own policy (its Python loop over time steps) and of SSDLstmPolicy
    from the same weights, optimiser state and buffer (5-step episodes: most sequences hold starts)."""
    env = tiny_env(2, 2, max_cycles=5)
    kw = policy_kwargs(critic="detached")
    del kw["critic"]
    theirs = _ppo("MultiInputLstmPolicy", env, policy_kwargs={**kw, "shared_lstm": True, "enable_critic_lstm": False})
    ours = _ppo(SSDLstmPolicy, env, policy_kwargs=policy_kwargs(critic="detached"))
    theirs.learn(16 * 4)  # real rollouts in the buffer (and one update, so Adam has state)
    ours.policy.load_state_dict(theirs.policy.state_dict())
    ours.policy.optimizer.load_state_dict(copy.deepcopy(theirs.policy.optimizer.state_dict()))  # no shared tensors
    ours.rollout_buffer = theirs.rollout_buffer
    ours.set_logger(Logger(folder=None, output_formats=[]))
    assert theirs.rollout_buffer.episode_starts.reshape(-1, 16)[:, 1:].sum() > 0  # starts inside sequences
    logs = []
    for model in (theirs, ours):
        np.random.seed(3)  # the buffer's minibatch split
        model.train()
        logs.append(dict(model.logger.name_to_value))
    for key in ("train/value_loss", "train/policy_gradient_loss", "train/entropy_loss", "train/approx_kl"):
        assert logs[0][key] == pytest.approx(logs[1][key], rel=1e-4, abs=1e-7), key
    for p1, p2 in zip(theirs.policy.parameters(), ours.policy.parameters()):
        assert th.allclose(p1, p2, atol=1e-5)


@pytest.mark.parametrize("critic", ["shared", "separate", "detached"])
def test_value_loss_trains_the_critics_features(critic):
    """A value-loss gradient reaches the LSTM the value head reads (shared / separate) and the conv/FC
    trunk; with sb3-contrib's detached head only the head itself gets it."""
    env = tiny_env(2, 1, obs_mode="rgb")
    model = RecurrentPPO(SSDLstmPolicy, env, n_steps=8, batch_size=8, policy_kwargs=policy_kwargs(critic=critic), seed=0)
    model.learn(8)
    data = next(model.rollout_buffer.get(8))
    values, _, _ = model.policy.evaluate_actions(data.observations, data.actions.long().flatten(), data.lstm_states,
                                                 data.episode_starts)
    model.policy.zero_grad()
    ((values.flatten() - 10.0) ** 2).mean().backward()
    critic_lstm = model.policy.lstm_critic if critic == "separate" else model.policy.lstm_actor
    lstm_grad = critic_lstm.weight_hh_l0.grad
    trunk_grad = model.policy.features_extractor.conv[0].weight.grad
    assert model.policy.value_net.weight.grad.abs().sum() > 0
    if critic == "detached":
        assert lstm_grad is None or lstm_grad.abs().sum() == 0
        assert trunk_grad is None or trunk_grad.abs().sum() == 0
    else:
        assert lstm_grad.abs().sum() > 0 and trunk_grad.abs().sum() > 0
