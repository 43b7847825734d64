"""The paper's network as an sb3-contrib policy, and the lockstep forward pass."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.utils import obs_as_tensor

from baselines.fake_env import FakeSSDVecEnv
from baselines.lockstep import as_learner_obs, policy_step
from baselines.network import SSDFeaturesExtractor, policy_kwargs

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
    env = FakeSSDVecEnv(num_envs=2, num_agents=2, obs_mode=obs_mode)
    name = "MultiInputLstmPolicy" if obs_mode == "dict" else "CnnLstmPolicy"
    model = RecurrentPPO(name, env, n_steps=8, batch_size=16, policy_kwargs=policy_kwargs(), seed=0)
    assert model.policy.lstm_actor.hidden_size == 128
    assert model.policy.action_net.in_features == 128 and model.policy.value_net.in_features == 128
    model.learn(32)  # plain sb3-contrib training runs with our extractor


@pytest.mark.parametrize("shared_lstm", [True, False])
def test_policy_step_matches_sb3_forward(shared_lstm):
    """The lockstep forward (which also returns probabilities) is sb3-contrib's forward."""
    env = FakeSSDVecEnv(num_envs=2, num_agents=2, obs_mode="dict")
    model = RecurrentPPO("MultiInputLstmPolicy", env, n_steps=8, batch_size=16,
                         policy_kwargs=policy_kwargs(shared_lstm=shared_lstm), seed=0)
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
