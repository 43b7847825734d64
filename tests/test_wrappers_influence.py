"""InfluenceReward / CommunicationChannel: hand-set MOA values, timing, masks, learning, persistence."""

import math

import numpy as np
import pytest
import torch

from wrappers import CommunicationChannel, InfluenceReward
from toy_envs import ToySSD

# A hand-set MOA for 2 agents with 2 actions: whatever the inputs, each agent predicts that the
# other's next action is distributed as P[c] when its own (counterfactual) choice is c.
P = np.array([[0.9, 0.1], [0.2, 0.8]])
MARG = 0.5 * P[0] + 0.5 * P[1]  # [0.55, 0.45] under a uniform policy


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def jsd(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def hand_set(env):
    """Replace the wrapper's MOA predictions by P and its self-model by a uniform policy."""
    model = env.engine.model
    n, hsz = model.num_agents, model.lstm_size

    def counterfactuals(img, slots, h, c):
        b = img.shape[0]
        logits = torch.log(torch.tensor(P, dtype=torch.float32))  # [C, A]
        logits = logits[None, None, :, None, :].expand(n, b, 2, n - 1, 2)
        zeros = torch.zeros(n, b, 2, hsz)
        return logits, zeros, zeros, torch.zeros(n, b, 2)  # uniform self-model

    model.counterfactuals = counterfactuals
    return env


def two_agent_env(**kw):
    return ToySSD(num_agents=2, num_actions=2, max_cycles=kw.pop("max_cycles", 50), **kw)


@pytest.mark.parametrize("divergence, fn", [("kl", kl), ("jsd", jsd)])
def test_hand_set_moa_gives_known_values_on_the_step_of_the_action(divergence, fn):
    env = hand_set(InfluenceReward(two_agent_env(), beta=1.0, divergence=divergence, train_iters=0))
    env.reset(seed=0)
    for a0, a1 in [(0, 1), (1, 1), (0, 0), (1, 0)]:
        _, rew, _, _, info = env.step({"agent_0": a0, "agent_1": a1})
        # the reward of this step carries the influence of the action taken at this step
        assert info["agent_0"]["influence_reward"] == pytest.approx(fn(P[a0], MARG), rel=1e-5)
        assert info["agent_1"]["influence_reward"] == pytest.approx(fn(P[a1], MARG), rel=1e-5)
        for a in env.possible_agents:
            assert rew[a] == pytest.approx(info[a]["extrinsic_reward"] + info[a]["influence_reward"], rel=1e-6)
            assert info[a]["policy_source"] == "self_model"


def test_hand_set_moa_pmi_uses_the_realised_next_action_one_step_late():
    env = hand_set(InfluenceReward(two_agent_env(), divergence="pmi", train_iters=0))
    env.reset(seed=0)
    _, _, _, _, info = env.step({"agent_0": 0, "agent_1": 1})
    assert info["agent_0"]["influence_reward"] == 0.0  # j's next action is not known yet
    _, _, _, _, info = env.step({"agent_0": 1, "agent_1": 0})
    # agent 0 chose 0 at t=0, agent 1 then chose 0: log P[0][0] / MARG[0]
    assert info["agent_0"]["influence_reward"] == pytest.approx(math.log(0.9 / 0.55), rel=1e-5)
    # agent 1 chose 1 at t=0, agent 0 then chose 1: log P[1][1] / MARG[1]
    assert info["agent_1"]["influence_reward"] == pytest.approx(math.log(0.8 / 0.45), rel=1e-5)


@pytest.mark.parametrize("kind", ["list", "numpy", "torch", "torch_grad"])
def test_supplied_policy_probs_define_the_marginal(kind):
    env = hand_set(InfluenceReward(two_agent_env(), train_iters=0))
    env.reset(seed=0)
    given = {"list": lambda p: p, "numpy": np.array,
             "torch": lambda p: torch.tensor(p),  # a policy's output, still in its graph:
             "torch_grad": lambda p: torch.softmax(torch.log(torch.tensor(p)).requires_grad_(), -1)}[kind]
    env.set_action_probs({"agent_0": given([0.75, 0.25])})
    _, _, _, _, info = env.step({"agent_0": 1, "agent_1": 1})
    marg = 0.75 * P[0] + 0.25 * P[1]
    assert info["agent_0"]["influence_reward"] == pytest.approx(kl(P[1], marg), rel=1e-5)
    assert info["agent_0"]["policy_source"] == "given"
    assert info["agent_1"]["policy_source"] == "self_model"  # not supplied: uniform self-model
    assert info["agent_1"]["influence_reward"] == pytest.approx(kl(P[1], MARG), rel=1e-5)
    # probabilities are for one step only
    _, _, _, _, info = env.step({"agent_0": 1, "agent_1": 1})
    assert info["agent_0"]["policy_source"] == "self_model"


def test_curriculum_weight_and_clip_in_the_reward():
    env = hand_set(InfluenceReward(two_agent_env(), beta=2.0, alpha=0.5, curriculum_steps=4,
                                   clip=0.3, train_iters=0))
    env.reset(seed=0)
    c = min(kl(P[0], MARG), 0.3)  # 0.33 before clipping
    for step, w in enumerate([0.0, 0.5, 1.0, 1.5, 2.0, 2.0]):
        _, rew, _, _, info = env.step({"agent_0": 0, "agent_1": 0})
        assert info["agent_0"]["influence_weight"] == pytest.approx(w), step
        assert info["agent_0"]["influence_reward"] == pytest.approx(c, rel=1e-5)
        assert rew["agent_0"] == pytest.approx(0.5 * info["agent_0"]["extrinsic_reward"] + w * c, rel=1e-5)


@pytest.mark.parametrize("only_visible", [True, False])
def test_influence_uses_visibility_when_the_action_was_taken(only_visible):
    # the other agent is visible in observations made at even env steps only
    env = hand_set(InfluenceReward(two_agent_env(visibility_fn=lambda t, rng: np.full((2, 2), t % 2 == 0)),
                                   influence_only_visible=only_visible, train_iters=0))
    obs, _ = env.reset(seed=0)
    for t in range(6):
        visible = bool(obs["agent_0"]["others_visible"][0])
        assert visible == (t % 2 == 0)
        obs, _, _, _, info = env.step({"agent_0": 0, "agent_1": 0})
        expected = kl(P[0], MARG) if (visible or not only_visible) else 0.0
        assert info["agent_0"]["influence_reward"] == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_real_moa_zero_influence_when_prediction_ignores_own_action():
    env = InfluenceReward(ToySSD(num_agents=3, num_actions=4), train_iters=0)
    env.reset(seed=0)
    _, _, _, _, info = env.step({a: 1 for a in env.agents})
    assert info["agent_0"]["influence_reward"] > 1e-7  # the untrained MOA does depend on it
    m = env.engine.model
    with torch.no_grad():  # cut the own-action input of every agent's MOA (slot 0's one-hot weights)
        own = int(m.offsets[0])
        m.lstm.slot_weight.view(3, m.lstm.num_values, -1)[:, own:own + 4] = 0
    for _ in range(5):
        _, _, _, _, info = env.step({a: int(np.random.randint(4)) for a in env.agents})
        for a in env.possible_agents:
            assert abs(info[a]["influence_reward"]) < 1e-6


def test_moa_learns_scripted_copying_on_box_trapped():
    """agent_1 repeats agent_0's previous action; agent_0 acts at random.

    Within 2000 env steps agent_0's MOA predicts agent_1 with > 90% accuracy, and agent_0's
    influence is far above agent_1's (nobody copies agent_1).  Then both marginal paths: the
    learned self-model (near-uniform, as agent_0 is random) and supplied probabilities.
    """
    ssd_gym = pytest.importorskip("ssd_gym")
    env = InfluenceReward(ssd_gym.parallel_env("box_trapped"), lr=5e-3, train_every=16, bptt=8, seed=0)
    a_n = env.num_actions
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    prev0, infl = 0, []
    for _ in range(2000):
        a0 = int(rng.integers(a_n))
        _, _, _, _, info = env.step({"agent_0": a0, "agent_1": prev0})
        prev0 = a0
        infl.append([info["agent_0"]["influence_reward"], info["agent_1"]["influence_reward"]])
        if not env.agents:
            env.reset()
            prev0 = 0
    _, acc, pair = env.moa_stats()
    assert pair[0, 0] > 0.9, pair
    assert info["agent_0"]["moa_accuracy"] == pytest.approx(acc[0])
    late = np.mean(infl[-300:], axis=0)
    assert late[0] > 0.5 and late[0] > 20 * late[1], late

    def influence_with(probs_fn):
        out = []
        nonlocal prev0
        for _ in range(50):
            a0 = int(rng.integers(a_n))
            probs = probs_fn(a0)
            if probs is not None:
                env.set_action_probs({"agent_0": probs})
            _, _, _, _, info = env.step({"agent_0": a0, "agent_1": prev0})
            prev0 = a0
            out.append(info["agent_0"]["influence_reward"])
            if not env.agents:
                env.reset()
                prev0 = 0
        return float(np.mean(out))

    uniform = influence_with(lambda a0: np.full(a_n, 1.0 / a_n))
    self_model = influence_with(lambda a0: None)
    certain = influence_with(lambda a0: np.eye(a_n)[a0])  # policy sure of the taken action
    assert uniform > 0.5 and self_model > 0.5
    assert abs(self_model - uniform) < 0.5 * uniform  # the self-model learned a near-uniform policy
    assert certain < 0.05  # marginal == conditional: no influence


def test_save_and_load_moa(tmp_path):
    def run(env):
        env.reset(seed=5)
        out = []
        for t in range(10):
            _, _, _, _, info = env.step({a: (t + i) % 3 for i, a in enumerate(env.possible_agents)})
            out.append([info[a]["influence_reward"] for a in env.possible_agents])
        return np.array(out)

    a = InfluenceReward(ToySSD(num_agents=3, num_actions=3), seed=1, train_iters=0)
    a.reset(seed=0)
    path = tmp_path / "moa.pt"
    a.save_moa(path)
    b = InfluenceReward(ToySSD(num_agents=3, num_actions=3), seed=2, train_iters=0)
    assert not np.allclose(run(a), run(b))
    b.load_moa(path)
    np.testing.assert_allclose(run(a), run(b), rtol=1e-6)
    c = InfluenceReward(ToySSD(num_agents=2, num_actions=3), train_iters=0)
    with pytest.raises(ValueError, match="saved for"):
        c.load_moa(path)


def test_symbol_influence_learns_who_is_listened_to():
    """agent_1's next env action equals agent_0's symbol; nobody listens to agent_1's symbol."""
    a_n, vocab = 4, 4
    env = CommunicationChannel(ToySSD(num_agents=2, num_actions=a_n, max_cycles=200), vocab_size=vocab,
                               beta=1.0, lr=5e-3, train_every=16, bptt=8, seed=0)
    rng = np.random.default_rng(1)
    env.reset(seed=0)
    heard, infl = 0, []
    for _ in range(2000):
        s0 = int(rng.integers(vocab))
        acts = {"agent_0": (int(rng.integers(a_n)), s0),
                "agent_1": (heard, int(rng.integers(vocab)))}
        _, _, _, _, info = env.step(acts)
        heard = s0
        infl.append([info[a]["symbol_influence_reward"] for a in env.possible_agents])
        if not env.agents:
            env.reset()
            heard = 0
    late = np.mean(infl[-300:], axis=0)
    assert info["agent_0"]["symbol_moa_accuracy"] > 0.9
    assert late[0] > 0.5 and late[0] > 20 * late[1], late


def test_set_action_probs_reaches_influence_through_a_stack():
    from wrappers import InequityAversionReward, ProsocialReward

    inner = hand_set(InfluenceReward(two_agent_env(), train_iters=0))
    env = CommunicationChannel(InequityAversionReward(ProsocialReward(inner)), vocab_size=2)
    env.reset(seed=0)
    env.set_action_probs({"agent_0": [0.75, 0.25]})
    _, _, _, _, info = env.step({"agent_0": (1, 0), "agent_1": (1, 1)})
    assert info["agent_0"]["policy_source"] == "given"
    assert info["agent_0"]["influence_reward"] == pytest.approx(kl(P[1], 0.75 * P[0] + 0.25 * P[1]), rel=1e-5)


def test_torch_threads_restored_after_each_step():
    before = torch.get_num_threads()
    env = InfluenceReward(ToySSD(num_agents=2), torch_threads=1, train_every=8, bptt=4)
    env.reset(seed=0)
    for _ in range(10):  # includes a training round
        env.step({"agent_0": 0, "agent_1": 1})
    assert torch.get_num_threads() == before


def test_compiled_acting_pass_matches_eager():
    """``compile_moa=True`` runs the same acting code through torch.compile: same rewards."""
    def run(compile_moa):
        env = InfluenceReward(ToySSD(num_agents=3, num_actions=4, max_cycles=40), train_every=8, bptt=4,
                              seed=3, compile_moa=compile_moa)
        env.reset(seed=1)
        rng = np.random.default_rng(0)
        out = []
        for _ in range(20):  # includes two training rounds: the compiled graph sees updated weights
            _, _, _, _, info = env.step({a: int(rng.integers(4)) for a in env.possible_agents})
            out.append([info[a]["influence_reward"] for a in env.possible_agents])
        return np.array(out)

    eager = run(False)
    try:
        compiled = run(True)
    except Exception as exc:  # no C++ compiler or an unsupported torch build
        pytest.skip(f"torch.compile unavailable here: {type(exc).__name__}: {exc}")
    # fused float32 kernels round differently: tiny (near-zero) influences differ by ~1e-7
    np.testing.assert_allclose(compiled, eager, rtol=1e-3, atol=1e-6)
    assert eager.max() > 0


def test_influence_wrappers_share_option_keywords_defaults_and_checks():
    """The three influence wrappers take every shared option under the same keyword and default
    (the channel's influence reward alone is off by default) and reject bad values alike."""
    import dataclasses
    import inspect

    from wrappers import InfluenceRewardVecEnv
    from wrappers.influence import InfluenceOptions
    from toy_envs import ToyVecEnv

    classes = (InfluenceReward, InfluenceRewardVecEnv, CommunicationChannel)
    params = {cls: inspect.signature(cls.__init__).parameters for cls in classes}
    for f in dataclasses.fields(InfluenceOptions):
        defaults = {cls: p[f.name].default for cls, p in params.items()}
        if f.name == "beta":
            assert defaults.pop(CommunicationChannel) == 0.0
        assert len({repr(d) for d in defaults.values()}) == 1, (f.name, defaults)
    make = {InfluenceReward: lambda **kw: InfluenceReward(ToySSD(num_agents=2), **kw),
            InfluenceRewardVecEnv: lambda **kw: InfluenceRewardVecEnv(ToyVecEnv(num_worlds=2, num_agents=2), **kw),
            CommunicationChannel: lambda **kw: CommunicationChannel(ToySSD(num_agents=2), vocab_size=3, **kw)}
    for cls in classes:
        for bad, match in [(dict(train_every=10, bptt=4), "multiple"), (dict(divergence="l2"), "divergence"),
                           (dict(alpha=-1.0), "alpha"), (dict(curriculum_steps=1.5), "curriculum_steps"),
                           (dict(lr=0.0), "lr"), (dict(torch_threads=0), "torch_threads")]:
            with pytest.raises((ValueError, TypeError), match=match):
                make[cls](**bad)
    env = make[CommunicationChannel](beta=0.5, train_every=16, bptt=4, lr=2e-3, clip=3)
    assert (env.beta, env.alpha, env.divergence) == (0.5, 1.0, "kl")
    assert (env.engine.train_every, env.engine.bptt, env.engine.clip) == (16, 4, 3.0)
    assert env.engine.optimizer.param_groups[0]["lr"] == 2e-3
