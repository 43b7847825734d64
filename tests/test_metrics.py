"""Social-outcome metrics: hand-computed values, and ``info["episode_metrics"]`` agreeing with what a
test observes step by step."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ssd_gym
from ssd_gym import metrics as M
from ssd_gym.core import constants as C


# ---- the formulas, by hand --------------------------------------------------------------------
@pytest.mark.parametrize("returns,expected", [
    ([1, 0], 0.5),                     # sum|ri-rj| = 2, 2*N*|R| = 4
    ([1, 1, 1], 0.0),
    ([0, 0, 0], 0.0),                  # all zeros: perfectly equal, no 0/0
    ([0.0], 0.0),
    ([7.5], 0.0),
    ([3, 1], 0.25),                    # 4 / (2*2*4)
    ([1, 0, 0, 0], 0.75),              # one agent gets all: (N-1)/N
    ([10, 0, 0, 0, 0], 0.8),
    ([1, 2, 3], 8 / 36),               # pairs 1,2,1 -> 2*(1+2+1) = 8; 2*3*6 = 36
    # negative returns: |R| in the denominator
    ([-1, -1], 0.0),
    ([-30, -30, -30], 0.0),
    ([-50, 0, 0], 2 / 3),              # 2*(50+50) / (2*3*50)
    ([-90, 0, 0], 2 / 3),
    ([-10, -20, -30], 8 * 10 / (2 * 3 * 60)),  # pairs 10,20,10 -> 80 / 360
    # mixed signs
    ([20, -5, -5], 1.0),               # 2*(25+25+0) / (2*3*10) = 1.67 -> clipped to 1
    ([12, -1, -1], 2 * (13 + 13) / (2 * 3 * 10)),  # 52 / 60
    ([2, -2], 1.0),                    # total 0, unequal: the most unequal there is
    ([-3, 1], 8 / (2 * 2 * 2)),        # 8 / 8 = 1
    ([-3, 5], 1.0),                    # 16 / (2*2*2) = 2 -> clipped to 1
])
def test_gini_hand_computed(returns, expected):
    assert M.gini(returns) == pytest.approx(expected, abs=1e-12)
    assert M.equality(returns) == pytest.approx(1 - expected, abs=1e-12)
    total = sum(returns)
    weighted = total * (1 - expected) if total >= 0 else total * (1 + expected)
    assert M.equality_weighted_return(returns) == pytest.approx(weighted, abs=1e-12)


@pytest.mark.parametrize("equal,unequal", [
    ([10, 10, 10], [30, 0, 0]),         # positive total
    ([-30, -30, -30], [-90, 0, 0]),     # negative total (the case R*(1-G) got backwards)
    ([-30, -30, -30], [-60, -30, 0]),
    ([10, 0, 0], [20, -5, -5]),         # mixed signs, same total 10: the second is a spread of the first
    ([0, 0, 0], [5, -5, 0]),            # total zero
    ([-1, -1, -1, -1], [-10, 2, 2, 2]),
])
def test_a_more_unequal_split_of_the_same_total_never_scores_higher(equal, unequal):
    total = sum(equal)
    assert sum(unequal) == total
    assert M.equality(unequal) < M.equality(equal)
    if total == 0:  # R - |R| G: a zero total scores zero whatever the split
        assert M.equality_weighted_return(unequal) == M.equality_weighted_return(equal) == 0.0
    else:
        assert M.equality_weighted_return(unequal) < M.equality_weighted_return(equal)
    assert M.equality_weighted_return(equal) <= total  # inequality only ever costs


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-200, 200), min_size=2, max_size=8), st.data())
def test_transfers_from_poorer_to_richer_never_raise_equality(returns, data):
    """A Robin-Hood reversal (a transfer from a poorer agent to a richer one, total unchanged) never
    raises equality or the equality-weighted return, whatever the signs."""
    r = sorted(returns)
    i = data.draw(st.integers(0, len(r) - 2))
    j = data.draw(st.integers(i + 1, len(r) - 1))  # r[i] <= r[j]
    amount = data.draw(st.integers(1, 100))
    spread = list(r)
    spread[i] -= amount
    spread[j] += amount
    assert M.equality(spread) <= M.equality(r) + 1e-12
    assert M.equality_weighted_return(spread) <= M.equality_weighted_return(r) + 1e-9


def test_gini_accepts_arrays_and_rejects_empty():
    assert M.gini(np.array([[1.0, 0.0]])) == 0.5
    assert isinstance(M.gini([1, 0]), float)
    with pytest.raises(ValueError, match="at least one return"):
        M.gini([])


def test_equality_weighted_return_examples():
    assert M.equality_weighted_return([1, 0]) == pytest.approx(0.5)
    assert M.equality_weighted_return([3, 1]) == pytest.approx(3.0)   # 4 * (1 - 0.25)
    assert M.equality_weighted_return([2, 2, 2]) == pytest.approx(6.0)
    assert M.equality_weighted_return([0, 0]) == 0.0
    assert M.equality_weighted_return([-30, -30, -30]) == pytest.approx(-90.0)
    assert M.equality_weighted_return([-90, 0, 0]) == pytest.approx(-150.0)  # -90 * (1 + 2/3)
    assert M.equality_weighted_return([5, -5, 0]) == 0.0  # total 0 scores 0 whatever the split


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=12), st.floats(min_value=1e-3, max_value=1e3))
def test_gini_bounded_and_invariant(returns, c):
    g = M.gini(returns)
    assert 0.0 <= g <= 1.0 + 1e-12
    assert M.gini(list(reversed(returns))) == pytest.approx(g, abs=1e-9)      # order does not matter
    assert M.gini([c * r for r in returns]) == pytest.approx(g, abs=1e-9)     # nor positive scale
    if len(set(returns)) == 1:
        assert g == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e4), min_size=1, max_size=10))
def test_gini_nonnegative_returns_is_papers_formula(returns):
    """For R_i >= 0 our G is the paper's Eq. 6: sum_ij |Ri-Rj| / (2 N sum_i Ri)."""
    r = np.asarray(returns)
    N = len(r)
    s = r.sum()
    expected = 0.0 if s == 0 else sum(abs(a - b) for a, b in itertools.product(r, r)) / (2 * N * s)
    assert M.gini(returns) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_sustainability_hand_computed():
    # agent 0 rewarded at steps 4 and 6 (sum 10, count 2) -> 5; agent 1 never -> T = 100
    assert M.sustainability([10, 0], [2, 0], 100) == pytest.approx(52.5)
    assert M.sustainability([3, 12], [1, 3], 20) == pytest.approx((3 + 4) / 2)
    assert M.sustainability([0, 0, 0], [0, 0, 0], 7) == 7.0


def test_peace_hand_computed():
    assert M.peace([0, 0, 0], 10) == 3.0                # nobody hit: N
    assert M.peace([5, 0], 10) == pytest.approx(1.5)    # (2*10 - 5) / 10
    assert M.peace([10, 10], 10) == 0.0                 # everyone hit every step
    assert M.peace([0, 0], 0) == 2.0                    # empty episode: defined, N


def test_social_metrics_dict():
    m = M.social_metrics([3, 1], episode_length=10, reward_time_sum=[12, 5], reward_count=[3, 1],
                         tagged_steps=[0, 2])
    assert m == {
        "episode_length": 10, "returns": [3.0, 1.0], "collective_return": 4.0, "gini": 0.25,
        "equality": 0.75, "equality_weighted_return": 3.0, "sustainability": (4 + 5) / 2, "peace": 1.8,
    }


# ---- info["episode_metrics"] against a step-by-step account --------------------------------------------
def play_and_account(name, seed, max_cycles, action_probs=None, **options):
    """Play one episode with random actions; reconstruct every statistic from the per-step
    rewards and actions only. A step's reward is apple (0/1) - fire (0/1) - 50 * hits, so given
    the action, the apple and hit counts are recovered exactly."""
    env = ssd_gym.parallel_env(name, max_cycles=max_cycles, **options)
    names = env.game.action_names
    fire = names.index("FIRE") if "FIRE" in names else None
    clean = names.index("CLEAN") if "CLEAN" in names else None
    open_box = names.index("OPEN_BOX") if "OPEN_BOX" in names else None
    N, A = env.game.num_agents, env.game.num_actions
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    acc = {k: np.zeros(N) for k in ("returns", "apples", "fires", "cleans", "hits", "tagged_steps",
                                     "pos_count", "pos_time")}
    acc["open_step"] = -1
    t = 0
    last_infos = None
    while env.agents:
        acts = rng.choice(A, size=N, p=action_probs)
        obs, rew, term, trunc, infos = env.step({a: int(acts[i]) for i, a in enumerate(env.possible_agents)})
        t += 1
        for i, a in enumerate(env.possible_agents):
            r = rew[a]
            assert infos[a]["extrinsic_reward"] == r
            f = int(acts[i] == fire)
            apple = int(round(r + f)) % 50
            assert apple in (0, 1), f"reward {r} is not apple - fire - 50*hits"
            hits = (apple - (r + f)) / 50
            assert hits == int(hits) and hits >= 0
            acc["returns"][i] += r
            acc["apples"][i] += apple
            acc["fires"][i] += f
            acc["cleans"][i] += int(acts[i] == clean)
            acc["hits"][i] += hits
            acc["tagged_steps"][i] += hits > 0
            if r > 0:
                acc["pos_count"][i] += 1
                acc["pos_time"][i] += t
        if open_box is not None and acc["open_step"] < 0 and acts[0] == open_box:
            acc["open_step"] = t - 1  # 0-based index of the step (see test_rules_dynamics)
        if env.agents:
            assert all("episode_metrics" not in infos[a] for a in env.possible_agents), "episode info before the end"
        last_infos = infos
    assert t == max_cycles
    return env, acc, last_infos


def check_common(env, acc, infos):
    N = env.game.num_agents
    T = env.max_cycles
    ep0 = infos["agent_0"]["episode_metrics"]
    for i, a in enumerate(env.possible_agents):
        ep = infos[a]["episode_metrics"]
        assert ep["agent_return"] == pytest.approx(acc["returns"][i])
        assert {k: v for k, v in ep.items() if k != "agent_return"} == \
               {k: v for k, v in ep0.items() if k != "agent_return"}, "all agents share the episode metrics"
    ep = ep0
    assert ep["episode_length"] == T
    assert ep["returns"] == pytest.approx(acc["returns"].tolist())
    assert ep["collective_return"] == pytest.approx(acc["returns"].sum())
    assert ep["gini"] == pytest.approx(M.gini(acc["returns"]))
    assert ep["equality"] == pytest.approx(1 - ep["gini"])
    total = acc["returns"].sum()
    assert ep["equality_weighted_return"] == pytest.approx(total - abs(total) * ep["gini"])
    assert 0 <= ep["gini"] <= 1
    assert ep["apples_eaten"] == acc["apples"].astype(int).tolist()
    assert ep["beams_fired"] == acc["fires"].astype(int).tolist()
    assert ep["hits_taken"] == acc["hits"].astype(int).tolist()
    assert sum(ep["hits_given"]) == sum(ep["hits_taken"])
    assert all(g == 0 or f > 0 for g, f in zip(ep["hits_given"], ep["beams_fired"])), "hits without firing"
    per_agent = np.where(acc["pos_count"] > 0, acc["pos_time"] / np.maximum(acc["pos_count"], 1), T)
    assert ep["sustainability"] == pytest.approx(per_agent.mean())
    assert ep["peace"] == pytest.approx((N * T - acc["tagged_steps"].sum()) / T)
    assert 0 <= ep["peace"] <= N


def test_episode_info_cleanup():
    # lots of FIRE and CLEAN so that hits, fines and cleaning all happen
    p = np.array([1, 1, 1, 1, 1, 1, 1, 3, 3], dtype=float)
    env, acc, infos = play_and_account("cleanup_small", seed=4, max_cycles=150, action_probs=p / p.sum())
    check_common(env, acc, infos)
    ep = infos["agent_0"]["episode_metrics"]
    assert sum(ep["hits_taken"]) > 0 and sum(ep["apples_eaten"]) > 0, "the episode should exercise hits and apples"
    assert ep["clean_beams"] == acc["cleans"].astype(int).tolist()
    assert sum(ep["waste_cleaned"]) > 0
    hist = ep["waste_density_history"]
    assert len(hist) == env.max_cycles + 1
    assert ep["waste_density_final"] == pytest.approx(hist[-1], abs=1e-6)
    assert ep["waste_density_mean"] == pytest.approx(np.mean(hist), abs=1e-6)
    cells = env.game.layout.waste_cells
    final = np.mean(env.engine.grid[0, cells[:, 0], cells[:, 1]] == C.WASTE)
    assert ep["waste_density_final"] == pytest.approx(final, abs=1e-6)
    assert all(0.0 <= h <= 1.0 for h in hist)


def test_episode_info_harvest():
    p = np.array([1, 1, 1, 1, 1, 1, 1, 2], dtype=float)
    env, acc, infos = play_and_account("harvest", seed=9, max_cycles=120, action_probs=p / p.sum())
    check_common(env, acc, infos)
    ep = infos["agent_0"]["episode_metrics"]
    assert sum(ep["apples_eaten"]) > 0
    cells = env.game.layout.apple_cells
    assert ep["apples_left"] == int(np.count_nonzero(env.engine.grid[0, cells[:, 0], cells[:, 1]] == C.APPLE))
    assert ep["clean_beams"] == [0] * env.game.num_agents


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_episode_info_box_trapped(seed):
    env, acc, infos = play_and_account("box_trapped", seed=seed, max_cycles=40)
    check_common(env, acc, infos)
    ep = infos["agent_1"]["episode_metrics"]
    assert ep["box_open_step"] == acc["open_step"]
    assert ep["box_opened"] is (acc["open_step"] >= 0)
    assert ep["beams_fired"] == [0, 0] and ep["hits_taken"] == [0, 0]


def test_episode_info_no_beams_is_peaceful():
    # only moves and turns: no fines, no hits, peace = N, returns = apples
    p = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=float)
    env, acc, infos = play_and_account("harvest_small", seed=3, max_cycles=60, action_probs=p / p.sum())
    check_common(env, acc, infos)
    ep = infos["agent_0"]["episode_metrics"]
    assert ep["peace"] == env.game.num_agents
    assert ep["returns"] == [float(a) for a in ep["apples_eaten"]]


def test_vecenv_episode_info_matches_metrics():
    venv = ssd_gym.vector_env("harvest_small", 2, max_cycles=30)
    venv.seed(0)
    venv.reset()
    rng = np.random.default_rng(0)
    ret = np.zeros(venv.num_envs)
    for _ in range(30):
        _, r, d, infos = venv.step(rng.integers(0, venv.num_actions, venv.num_envs))
        ret += r
    assert d.all()
    N = venv.num_agents
    for slot, info in enumerate(infos):
        ep = info["episode_metrics"]
        assert info["episode"]["r"] == pytest.approx(ret[slot]) and info["episode"]["l"] == 30
        assert ep["agent_return"] == pytest.approx(ret[slot]) and ep["episode_length"] == 30
        world = ret[(slot // N) * N:(slot // N + 1) * N]
        assert ep["returns"] == pytest.approx(world.tolist())
        assert ep["collective_return"] == pytest.approx(world.sum())
        assert ep["gini"] == pytest.approx(M.gini(world))
