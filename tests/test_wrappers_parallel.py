"""PettingZoo faces: API compliance on every game, stacking, extrinsic reward, spaces, argument checks."""

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test import parallel_api_test

from wrappers import CommunicationChannel, InequityAversionReward, InfluenceReward, ProsocialReward
from toy_envs import ToySSD, ToyVecEnv

ssd_gym = pytest.importorskip("ssd_gym")

GAMES = ["cleanup", "harvest", "box_trapped", "cleanup_small", "harvest_small"]

WRAPPERS = {
    "prosocial": lambda e: ProsocialReward(e, eta=0.85),
    "inequity": lambda e: InequityAversionReward(e, observe_smoothed_rewards=True),
    "influence": lambda e: InfluenceReward(e, beta=1.0, train_every=16, bptt=8),
    "communication": lambda e: CommunicationChannel(e, vocab_size=4, beta=0.5, train_every=16, bptt=8),
    "stack": lambda e: CommunicationChannel(
        InfluenceReward(InequityAversionReward(ProsocialReward(e), observe_smoothed_rewards=True),
                        train_every=16, bptt=8),
        vocab_size=3),
}


def make(game, **kw):
    return ssd_gym.parallel_env(game, max_cycles=kw.pop("max_cycles", 40), **kw)


@pytest.mark.parametrize("game", GAMES)
@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_parallel_api(game, wrapper):
    env = WRAPPERS[wrapper](make(game))
    parallel_api_test(env, num_cycles=60)


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_observations_in_space_and_extrinsic_kept(wrapper):
    """Every observation lies in the (possibly extended) space; info keeps the env's own reward."""
    raw = make("cleanup_small", max_cycles=30)
    env = WRAPPERS[wrapper](raw)
    obs, _ = env.reset(seed=3)
    bare = make("cleanup_small", max_cycles=30)
    bare_obs, _ = bare.reset(seed=3)
    for _ in range(30):
        for a in env.agents:
            assert env.observation_space(a).contains(obs[a]), (a, obs[a].keys())
        acts = {a: env.action_space(a).sample() for a in env.agents}
        env_acts = {a: int(np.asarray(x).reshape(-1)[0]) for a, x in acts.items()}
        obs, rew, term, trunc, info = env.step(acts)
        _, bare_rew, _, _, _ = bare.step(env_acts)
        for a in rew:  # same seed and actions: the wrapped env's own reward is preserved
            assert info[a]["extrinsic_reward"] == pytest.approx(bare_rew[a])


def test_prosocial_on_env_matches_formula():
    env = ProsocialReward(ToySSD(num_agents=3, max_cycles=20), eta=0.5)
    env.reset(seed=1)
    for _ in range(20):
        _, rew, _, _, info = env.step({a: 0 for a in env.agents})
        e = np.array([info[a]["extrinsic_reward"] for a in env.possible_agents])
        for i, a in enumerate(env.possible_agents):
            assert rew[a] == pytest.approx(e[i] + 0.5 * (e.sum() - e[i]))


def test_inequity_smoothing_resets_each_episode_and_is_observed():
    script = [[1, 0], [0, 0], [0, 3]]

    def rewards(t, actions, rng):
        return np.array(script[t], dtype=float)

    env = InequityAversionReward(ToySSD(num_agents=2, max_cycles=3, reward_fn=rewards),
                                 alpha=2.0, beta=0.5, gamma=1.0, lam=0.5, observe_smoothed_rewards=True)
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        np.testing.assert_array_equal(obs["agent_0"]["smoothed_rewards"], [0, 0])
        got, seen = [], []
        while env.agents:
            obs, rew, _, _, info = env.step({a: 0 for a in env.agents})
            got.append([rew["agent_0"], rew["agent_1"]])
            seen.append(obs["agent_1"]["smoothed_rewards"].tolist())
        # traces: [1,0] -> [0.5,0] -> [0.25,3]; with N-1 = 1:
        # t1: a0 = 1 - 0.5*1 = 0.5, a1 = 0 - 2*1 = -2
        # t2: a0 = 0 - 0.5*0.5 = -0.25, a1 = -2*0.5 = -1
        # t3: a0 = 0 - 2*2.75 = -5.5, a1 = 3 - 0.5*2.75 = 1.625
        np.testing.assert_allclose(got, [[0.5, -2.0], [-0.25, -1.0], [-5.5, 1.625]])
        np.testing.assert_allclose(seen, [[1, 0], [0.5, 0], [0.25, 3]])


def test_communication_spaces_and_symbols():
    env = CommunicationChannel(ToySSD(num_agents=3, num_actions=5, max_cycles=10), vocab_size=4)
    assert env.action_space("agent_0") == spaces.MultiDiscrete([5, 4])
    assert env.observation_space("agent_2")["symbols"] == spaces.MultiDiscrete([5, 5, 5])
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["agent_0"]["symbols"], [4, 4, 4])  # none yet
    obs, *_ = env.step({"agent_0": (1, 3), "agent_1": (0, 0), "agent_2": (4, 2)})
    for a in env.agents:
        np.testing.assert_array_equal(obs[a]["symbols"], [3, 0, 2])
    assert obs["agent_0"]["prev_action"] == 1  # the env got the env-action part


def test_communication_on_rgb_obs_builds_a_dict():
    env = CommunicationChannel(ToySSD(num_agents=2, obs_mode="rgb"), vocab_size=2)
    obs, _ = env.reset(seed=0)
    assert set(obs["agent_0"]) == {"observation", "symbols"}
    assert env.observation_space("agent_0").contains(obs["agent_0"])


# ------------------------------------------------------------------------------ argument checks

@pytest.mark.parametrize("factory, match", [
    (lambda e: ProsocialReward(e, eta=-1), "eta"),
    (lambda e: ProsocialReward(e, eta=float("nan")), "eta"),
    (lambda e: InequityAversionReward(e, alpha=-5), "alpha"),
    (lambda e: InequityAversionReward(e, beta=float("inf")), "beta"),
    (lambda e: InequityAversionReward(e, lam=1.5), "lam"),
    (lambda e: InfluenceReward(e, beta=-0.1), "beta"),
    (lambda e: InfluenceReward(e, divergence="wasserstein"), "divergence"),
    (lambda e: InfluenceReward(e, alpha=float("nan")), "alpha"),
    (lambda e: InfluenceReward(e, clip=0), "clip"),
    (lambda e: InfluenceReward(e, curriculum_steps=-5), "curriculum_steps"),
    (lambda e: InfluenceReward(e, train_every=10, bptt=4), "train_every"),
    (lambda e: CommunicationChannel(e, vocab_size=1), "vocab_size"),
    (lambda e: CommunicationChannel(e, vocab_size=4, beta=-1), "beta"),
    (lambda e: InfluenceReward(e, obs_key="pixels"), "pixels"),
])
def test_bad_arguments_raise_clear_errors(factory, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory(ToySSD(num_agents=2))


@pytest.mark.parametrize("cls", [ProsocialReward, InequityAversionReward, InfluenceReward])
def test_wrapping_non_parallel_env_is_refused(cls):
    import gymnasium
    from pettingzoo.utils.conversions import parallel_to_aec

    with pytest.raises(TypeError, match="AEC"):
        cls(parallel_to_aec(ToySSD(num_agents=2)))
    with pytest.raises(TypeError, match="VecEnv"):
        cls(ToyVecEnv(num_worlds=1, num_agents=2))
    with pytest.raises(TypeError, match="gymnasium.Env"):
        cls(gymnasium.make("CartPole-v1"))
    with pytest.raises(TypeError, match="ParallelEnv"):
        cls(object())


def test_communication_bad_action_changes_nothing():
    env = CommunicationChannel(ToySSD(num_agents=2, max_cycles=5), vocab_size=3)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="symbol"):
        env.step({"agent_0": (0, 3), "agent_1": (0, 0)})
    assert env.unwrapped.t == 0  # the inner env was not stepped
    np.testing.assert_array_equal(env.symbols, [3, 3])


def test_influence_set_action_probs_validation():
    env = InfluenceReward(ToySSD(num_agents=2, num_actions=3))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="3 choices"):
        env.set_action_probs({"agent_0": [0.5, 0.5]})
    with pytest.raises(ValueError, match=">= 0"):
        env.set_action_probs({"agent_0": [1.5, -0.5, 0.0]})
    with pytest.raises(KeyError, match="agent_9"):
        env.set_action_probs({"agent_9": [1, 0, 0]})


@pytest.mark.parametrize("wrapper", ["prosocial", "inequity", "influence", "communication"])
def test_parallel_api_rgb_observations(wrapper):
    """Image-only observations (no visibility key): every other agent counts as visible."""
    env = WRAPPERS[wrapper](make("harvest_small", obs_mode="rgb"))
    parallel_api_test(env, num_cycles=40)


def test_influence_missing_action_raises_before_stepping():
    env = InfluenceReward(ToySSD(num_agents=3))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent_2"):
        env.step({"agent_0": 0, "agent_1": 0})
    assert env.unwrapped.t == 0 and env.global_step == 0


def test_step_before_reset_is_a_clear_error():
    with pytest.raises(RuntimeError, match="reset"):
        InfluenceReward(ToySSD(num_agents=2)).step({"agent_0": 0, "agent_1": 0})


def test_influence_options_object_and_keyword_shortcuts_are_one_thing():
    from wrappers import InfluenceOptions, InfluenceRewardVecEnv

    opts = InfluenceOptions(beta=0.5, train_every=16, bptt=4, seed=3)
    by_object = InfluenceReward(ToySSD(num_agents=2), options=opts)
    by_keywords = InfluenceReward(ToySSD(num_agents=2), beta=0.5, train_every=16, bptt=4, seed=3)
    assert by_object.options == by_keywords.options == opts
    assert InfluenceRewardVecEnv(ToyVecEnv(num_worlds=2, num_agents=2), opts).options == opts
    both = CommunicationChannel(ToySSD(num_agents=2), 3, options=opts, beta=2.0)  # a keyword overrides
    assert (both.options.beta, both.options.train_every, both.engine.train_every) == (2.0, 16, 16)
    assert CommunicationChannel(ToySSD(num_agents=2), 3).options.beta == 0.0
    with pytest.raises(TypeError, match="moa_lr"):
        InfluenceReward(ToySSD(num_agents=2), moa_lr=1e-3)
    with pytest.raises(TypeError, match="InfluenceOptions"):
        InfluenceReward(ToySSD(num_agents=2), 1.0)
