"""Bad input: every error names the problem, and a failed call changes nothing.

For the step-level cases each test keeps a *twin* env that never sees the bad call: after the
bad call the env's whole engine state (arrays and RNG states) must equal its snapshot from
before, and the next valid step must produce exactly what the twin produces.
"""
from __future__ import annotations

import copy
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest

import ssd_gym
from ssd_gym import MapError

GAME = "cleanup_small"  # 3 agents, 9 actions


# ---- helpers -----------------------------------------------------------------------------------
def engine_snapshot(engine) -> dict:
    """Every array of the engine's (and the rules') state, and its RNG states."""
    snap = {k: v.copy() for k, v in vars(engine).items() if isinstance(v, np.ndarray)}
    snap["_np_random_states"] = [copy.deepcopy(g.bit_generator.state) for g in engine.np_randoms]
    return snap


def assert_snapshot_equal(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), f"engine.{k} changed"
        else:
            assert a[k] == b[k], f"{k} changed"


def assert_same(a, b, path="root"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b) and a.dtype == b.dtype, path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def valid_actions(env, t: int = 0) -> dict:
    return {a: (i + t) % env.game.num_actions for i, a in enumerate(env.agents)}


@pytest.fixture
def pair():
    """Two identical, identically seeded and stepped envs."""
    envs = []
    for _ in range(2):
        env = ssd_gym.parallel_env(GAME, max_cycles=6)
        env.reset(seed=21)
        for t in range(2):
            env.step(valid_actions(env, t))
        envs.append(env)
    assert_snapshot_equal(engine_snapshot(envs[0].engine), engine_snapshot(envs[1].engine))
    return envs


def still_works(env, twin, before: dict) -> None:
    """The failed call changed nothing and the env steps exactly like its twin."""
    assert_snapshot_equal(engine_snapshot(env.engine), before)
    assert env.agents == twin.agents
    acts = valid_actions(twin, 5)
    assert_same(env.step(dict(acts)), twin.step(dict(acts)))


# ---- unknown names and options -----------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: ssd_gym.parallel_env("foo"),
    lambda: ssd_gym.env("foo"),
    lambda: ssd_gym.raw_env("foo"),
    lambda: ssd_gym.vector_env("foo", 2),
    lambda: ssd_gym.parallel_env("Cleanup"),
    lambda: ssd_gym.parallel_env(None),
], ids=["parallel", "aec", "raw", "vector", "case", "none"])
def test_unknown_game_name(make):
    with pytest.raises(ValueError, match=r"unknown game .*available games: \['box_trapped', 'cleanup'"):
        make()
    # nothing global was disturbed: valid construction still works
    env = ssd_gym.parallel_env(GAME, max_cycles=3)
    env.reset(seed=0)
    env.step(valid_actions(env))


@pytest.mark.parametrize("env_id", ["SSD/Foo-v0", "ssd_gym:SSD/Foo-v0"])
def test_unknown_gym_id(env_id):
    with pytest.raises(gym.error.Error, match=r"Foo.*doesn't exist"):
        gym.make(env_id)
    assert "SSD/Cleanup-v0" in gym.registry
    gym.make("SSD/CleanupSmall-v0").reset(seed=0)


@pytest.mark.parametrize("make", [
    lambda: ssd_gym.parallel_env("cleanup", foo=1),
    lambda: ssd_gym.env("harvest", foo=1),
    lambda: ssd_gym.vector_env("cleanup", 2, foo=1),
    lambda: gym.make("SSD/Cleanup-v0", foo=1),
], ids=["parallel", "aec", "vector", "gym"])
def test_unknown_option(make):
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['foo'\]"):
        make()


@pytest.mark.parametrize("name,option", [
    ("cleanup", "regrowth_neighbourhood"),  # a Harvest option
    ("harvest", "waste_spawning"),          # a Cleanup option
    ("box_trapped", "waste_spawn_prob"),
    ("harvest", "apple_regrow_delay"),      # a Box Trapped option
])
def test_other_games_option_is_unknown(name, option):
    with pytest.raises(TypeError, match=rf"unknown option\(s\) \['{option}'\] for game '{name}'"):
        ssd_gym.parallel_env(name, **{option: 1})


# ---- bad option values -----------------------------------------------------------------------
BAD_VALUES = [
    # (game, options, exception, message regex)
    ("cleanup", {"num_agents": 0}, ValueError, r"num_agents must be >= 1, got 0"),
    ("cleanup", {"num_agents": -1}, ValueError, r"num_agents must be >= 1, got -1"),
    ("cleanup", {"num_agents": 1.5}, TypeError, r"num_agents must be an integer, got float 1.5"),
    ("cleanup", {"num_agents": True}, TypeError, r"num_agents must be an integer, got bool True"),
    ("cleanup", {"num_agents": "3"}, TypeError, r"num_agents must be an integer"),
    ("harvest", {"max_cycles": 0}, ValueError, r"max_cycles must be >= 1, got 0"),
    ("harvest", {"max_cycles": -5}, ValueError, r"max_cycles must be >= 1"),
    ("harvest", {"max_cycles": 10.0}, TypeError, r"max_cycles must be an integer"),
    ("harvest", {"obs_mode": "foo"}, ValueError, r"obs_mode must be one of \('dict', 'rgb'\), got 'foo'"),
    ("harvest", {"render_mode": "foo"}, ValueError,
     r"render_mode must be None or one of \['human', 'rgb_array'\], got 'foo'"),
    ("harvest", {"rules": "foo"}, ValueError, r"rules must be one of \('v0', 'reference'\), got 'foo'"),
    ("cleanup", {"waste_spawn_prob": 1.5}, ValueError, r"waste_spawn_prob must be a probability in \[0, 1\], got 1.5"),
    ("cleanup", {"waste_spawn_prob": -0.1}, ValueError, r"waste_spawn_prob must be a probability in \[0, 1\]"),
    ("cleanup", {"waste_spawn_prob": float("nan")}, ValueError, r"waste_spawn_prob must be a probability"),
    ("cleanup", {"apple_respawn_prob": 2}, ValueError, r"apple_respawn_prob must be a probability in \[0, 1\], got 2"),
    ("cleanup", {"depletion_threshold": 1.01}, ValueError, r"depletion_threshold must be a probability"),
    ("cleanup", {"restoration_threshold": -0.5}, ValueError, r"restoration_threshold must be a probability"),
    ("cleanup", {"waste_spawn_prob": "0.5"}, TypeError, r"waste_spawn_prob must be a number"),
    ("cleanup", {"restoration_threshold": 0.5, "depletion_threshold": 0.4}, ValueError,
     r"restoration_threshold \(0.5\) must be below depletion_threshold \(0.4\)"),
    ("harvest", {"regrowth_probs": [0.0, 0.5, 1.5]}, ValueError,
     r"regrowth_probs must be a non-empty sequence of probabilities in \[0, 1\]"),
    ("harvest", {"regrowth_probs": [-0.1, 0.1]}, ValueError, r"regrowth_probs must be .*probabilities"),
    ("harvest", {"regrowth_probs": []}, ValueError, r"regrowth_probs must be a non-empty sequence"),
    ("cleanup", {"waste_spawning": "x"}, ValueError, r"waste_spawning must be 'single' or 'retry', got 'x'"),
    ("harvest", {"regrowth_neighbourhood": "x"}, ValueError,
     r"regrowth_neighbourhood must be 'disc' or 'box', got 'x'"),
    ("box_trapped", {"num_agents": 3}, ValueError, r"box_trapped is a two-agent game, got num_agents=3"),
    ("box_trapped", {"num_agents": 1}, ValueError, r"box_trapped is a two-agent game, got num_agents=1"),
    ("box_trapped", {"apple_regrow_delay": 0}, ValueError, r"apple_regrow_delay must be >= 1"),
    ("box_trapped", {"open_requires_adjacency": "yes"}, TypeError, r"open_requires_adjacency must be True or False"),
    ("cleanup", {"beams_visible": 1}, TypeError, r"beams_visible must be True or False, got int 1"),
    ("cleanup", {"render_scale": 0}, ValueError, r"render_scale must be a positive integer, got 0"),
    ("cleanup", {"view_radius": -1}, ValueError, r"view_radius must be >= 0, got -1"),
]


@pytest.mark.parametrize("game,options,exc,match", BAD_VALUES,
                         ids=[f"{g}-{'-'.join(f'{k}={v!r}' for k, v in o.items())}" for g, o, _, _ in BAD_VALUES])
def test_bad_option_value(game, options, exc, match):
    with pytest.raises(exc, match=match):
        ssd_gym.parallel_env(game, **options)
    # the same error through the other faces (render_mode/render_scale exist only where rendering does)
    if not {"render_mode", "render_scale"} & set(options):
        with pytest.raises(exc, match=match):
            ssd_gym.vector_env(game, 2, **options)
    env_id = next(k for k, v in ssd_gym.GYM_IDS.items() if v == game)
    with pytest.raises(exc, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium warns about render_mode='foo' before we raise
        gym.make(env_id, **options)
    # a failed construction leaves no trace: the same game still builds with its defaults
    env = ssd_gym.parallel_env(game, max_cycles=2)
    assert env.game.num_agents == ssd_gym.GAMES[game].default_num_agents
    env.reset(seed=0)
    env.step(valid_actions(env))


def test_bad_num_envs():
    for bad, exc in [(0, ValueError), (-2, ValueError), (1.5, ValueError), (True, ValueError)]:
        with pytest.raises(exc, match=r"num_envs \(number of worlds\) must be a positive integer"):
            ssd_gym.vector_env(GAME, bad)


def test_good_numpy_integer_options_are_accepted():
    env = ssd_gym.parallel_env("harvest", num_agents=np.int64(2), max_cycles=np.int32(3))
    assert env.possible_agents == ["agent_0", "agent_1"] and env.max_cycles == 3


# ---- malformed maps ----------------------------------------------------------------------------
BAD_MAPS = [
    ("harvest", ["@@@@", "@PA", "@@@@"], {}, r"same length; row 0 has 4 characters but rows \[1\] differ"),
    ("harvest", "@@@@@\n@P A@\n@ AZ@\n@@@@@", {"num_agents": 1}, r"unknown map character 'Z' at row 2, column 3"),
    ("harvest", ["@@@@", "@PA@", "@A?@", "@@@@"], {"num_agents": 1}, r"'\?' at row 2, column 2"),
    ("harvest", ["@@@@", "@PH@", "@@@@"], {"num_agents": 1}, r"unknown map character 'H' at row 1, column 2"),
    ("cleanup", ["@@@@@", "@PBA@", "@HR @", "@@@@@"], {"num_agents": 1}, r"'A' at row 1, column 3"),
    ("harvest", ["@@@@", "@AA@", "@@@@"], {"num_agents": 1}, r"no spawn points"),
    ("harvest", ["@@@@", "@PA@", "@AP@", "@@@@"], {"num_agents": 3}, r"2 spawn points \('P'\) but num_agents=3"),
    ("harvest", "", {}, r"the map is empty"),
    ("harvest", "\n  \n\n", {}, r"the map is empty"),
    ("harvest", [], {}, r"the map is empty"),
    ("harvest", ["", ""], {}, r"zero columns"),
    ("harvest", 42, {}, r"a map must be a string or a list of row strings, got int"),
    ("box_trapped", ["@@@@@@", "@P AX@", "@ P  @", "@@@@@@"], {}, r"needs a spawn point 'T'"),
    ("box_trapped", ["@@@@@@", "@P AT@", "@ P  @", "@@@@@@"], {}, r"needs box walls 'X'"),
]


@pytest.mark.parametrize("game,ascii_map,options,match", BAD_MAPS,
                         ids=[f"{i}-{m[:20]}" for i, (_, _, _, m) in enumerate(BAD_MAPS)])
def test_malformed_map(game, ascii_map, options, match):
    with pytest.raises(MapError, match=match):
        ssd_gym.parallel_env(game, ascii_map=ascii_map, **options)
    with pytest.raises(MapError, match=match):
        ssd_gym.vector_env(game, 2, ascii_map=ascii_map, **options)


def test_malformed_map_is_a_value_error_and_good_map_works():
    assert issubclass(MapError, ValueError)
    env = ssd_gym.parallel_env("harvest", ascii_map=["@@@@", "@PA@", "@AP@", "@@@@"], num_agents=2, max_cycles=3)
    env.reset(seed=0)
    env.step({"agent_0": 4, "agent_1": 4})


# ---- bad actions on the ParallelEnv --------------------------------------------------------------
BAD_ACTIONS = [
    ("unknown id", lambda e: {**valid_actions(e), "agent_9": 0}, KeyError,
     r"unknown agent id\(s\) \['agent_9'\]"),
    ("unknown id int", lambda e: {**valid_actions(e), 0: 0}, KeyError, r"unknown agent id\(s\) \[0\]"),
    ("missing", lambda e: {a: 0 for a in e.agents if a != "agent_1"}, KeyError,
     r"missing actions for agent\(s\) \['agent_1'\]"),
    ("empty", lambda e: {}, KeyError, r"missing actions for agent\(s\) \['agent_0', 'agent_1', 'agent_2'\]"),
    ("-1", lambda e: {**valid_actions(e), "agent_2": -1}, ValueError,
     r"action for agent_2 is out of range: -1 not in \[0, 9\)"),
    ("A", lambda e: {**valid_actions(e), "agent_0": 9}, ValueError,
     r"action for agent_0 is out of range: 9 not in \[0, 9\)"),
    ("np A", lambda e: {**valid_actions(e), "agent_0": np.int64(9)}, ValueError, r"out of range: 9"),
    ("float", lambda e: {**valid_actions(e), "agent_1": 1.5}, TypeError,
     r"action for agent_1 must be an integer in \[0, 9\), got float 1.5"),
    ("integral float", lambda e: {**valid_actions(e), "agent_1": 2.0}, TypeError, r"must be an integer"),
    ("str", lambda e: {**valid_actions(e), "agent_1": "1"}, TypeError, r"must be an integer .*got str '1'"),
    ("None", lambda e: {**valid_actions(e), "agent_1": None}, TypeError, r"got NoneType None"),
    ("bool", lambda e: {**valid_actions(e), "agent_1": True}, TypeError, r"got bool True"),
    ("array", lambda e: {**valid_actions(e), "agent_1": np.array([1])}, TypeError, r"must be an integer"),
    ("not a dict", lambda e: [0, 0, 0], TypeError, r"actions must be a dict .*got list"),
]


@pytest.mark.parametrize("case,make_actions,exc,match", BAD_ACTIONS, ids=[c[0] for c in BAD_ACTIONS])
def test_bad_actions_parallel(pair, case, make_actions, exc, match):
    env, twin = pair
    before = engine_snapshot(env.engine)
    with pytest.raises(exc, match=match):
        env.step(make_actions(env))
    still_works(env, twin, before)


def test_numpy_integer_actions_are_accepted(pair):
    env, twin = pair
    acts = valid_actions(env)
    out = env.step({a: np.int64(v) if i % 2 else np.array(v) for i, (a, v) in enumerate(acts.items())})
    assert_same(out, twin.step(acts))


def test_step_before_reset():
    env = ssd_gym.parallel_env(GAME, max_cycles=4)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step({a: 0 for a in env.possible_agents})
    twin = ssd_gym.parallel_env(GAME, max_cycles=4)
    assert_same(env.reset(seed=3), twin.reset(seed=3))
    assert_same(env.step(valid_actions(env)), twin.step(valid_actions(twin)))


def test_step_after_episode_end(pair):
    env, twin = pair
    for e in (env, twin):
        while e.agents:
            e.step(valid_actions(e))
    before = engine_snapshot(env.engine)
    for acts in ({a: 0 for a in env.possible_agents}, {}):
        with pytest.raises(RuntimeError, match=r"the episode is over .*call reset\(\)"):
            env.step(acts)
    assert_snapshot_equal(engine_snapshot(env.engine), before)
    assert_same(env.reset(), twin.reset())
    still_works(env, twin, engine_snapshot(env.engine))


def test_bad_max_cycles_assignment(pair):
    env, twin = pair
    before = engine_snapshot(env.engine)
    with pytest.raises(ValueError, match=r"max_cycles must be >= 1, got 0"):
        env.max_cycles = 0
    with pytest.raises(TypeError, match=r"max_cycles must be an integer, got bool True"):
        env.max_cycles = True
    assert env.max_cycles == 6
    still_works(env, twin, before)


def test_bad_action_aec():
    env = ssd_gym.env(GAME, max_cycles=4)
    with pytest.raises(AssertionError, match=r"reset\(\) needs to be called before step"):
        env.step(0)
    env.reset(seed=0)
    twin = ssd_gym.env(GAME, max_cycles=4)
    twin.reset(seed=0)
    env.step(1)  # the first agent has acted: a bad action for the second must not lose it
    twin.step(1)
    before = engine_snapshot(env.unwrapped.engine)
    for bad, exc, match in [(-1, ValueError, r"action for agent_1 is out of range: -1 not in \[0, 9\)"),
                            (9, ValueError, r"out of range: 9"),
                            (1.5, TypeError, r"action for agent_1 must be an integer in \[0, 9\), got float 1.5"),
                            (np.float64(2.0), TypeError, r"got float64 2.0"),
                            (True, TypeError, r"got bool True"),
                            (None, TypeError, r"got NoneType None")]:  # None only for finished agents
        with pytest.raises(exc, match=match):
            env.step(bad)
    assert_snapshot_equal(engine_snapshot(env.unwrapped.engine), before)
    assert env.agent_selection == "agent_1"
    for e in (env, twin):
        e.step(np.int64(2))
        e.step(np.array(3))
    assert env.unwrapped.engine.t[0] == 1
    assert_snapshot_equal(engine_snapshot(env.unwrapped.engine), engine_snapshot(twin.unwrapped.engine))
    steps = 0
    while env.agents and steps < 20:  # finish the episode: finished agents take the None "dead step"
        env.step(None if env.truncations[env.agent_selection] else 0)
        steps += 1
    assert env.agents == [] and steps == 3 * 3 + 3 and env.unwrapped.engine.t[0] == 4


# ---- one rule for actions and seeds on every face ------------------------------------------------
def _first_error(face: str, value):
    """Step ``value`` as agent_0's (slot 0's) action on ``face``; return the error or None."""
    others = [1, 2]
    try:
        if face == "aec":
            e = ssd_gym.env(GAME, max_cycles=3)
            e.reset(seed=0)
            e.step(value)
        elif face == "parallel":
            e = ssd_gym.parallel_env(GAME, max_cycles=3)
            e.reset(seed=0)
            e.step({"agent_0": value, "agent_1": 1, "agent_2": 2})
        elif face == "gym":
            e = gym.make("SSD/CleanupSmall-v0", max_cycles=3).unwrapped
            e.reset(seed=0)
            e.step(np.array([value] + others, dtype=object))
        else:
            e = ssd_gym.vector_env(GAME, 1, max_cycles=3)
            e.reset()
            e.step(np.array([value] + others, dtype=object) if not isinstance(value, np.ndarray)
                   else np.concatenate([value.reshape(1), np.array(others, dtype=value.dtype)]))
    except Exception as exc:  # noqa: BLE001 - the test compares what each face raised
        return exc
    return None


FACES = ["aec", "parallel", "gym", "vector"]
GOOD_ACTIONS = [3, np.int64(3), np.int8(3), np.uint8(3), np.array(3)]
BAD_ACTION_VALUES = [(-1, ValueError, r"out of range: -1 not in \[0, 9\)"),
                     (9, ValueError, r"out of range: 9 not in \[0, 9\)"),
                     (np.int64(12), ValueError, r"out of range: 12 not in \[0, 9\)"),
                     (2.0, TypeError, r"must be an integer in \[0, 9\), got float 2.0"),
                     (np.float32(2.0), TypeError, r"must be an integer in \[0, 9\), got float32 2.0"),
                     (np.array(2.0), TypeError, r"must be an integer in \[0, 9\), got float64 2.0"),
                     (True, TypeError, r"must be an integer in \[0, 9\), got bool True"),
                     ("1", TypeError, r"must be an integer in \[0, 9\), got str '1'")]


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("value", GOOD_ACTIONS, ids=lambda v: f"{type(v).__name__}")
def test_every_face_accepts_the_same_actions(face, value):
    assert _first_error(face, value) is None


@pytest.mark.parametrize("value,exc,match", BAD_ACTION_VALUES, ids=lambda v: repr(v)[:20])
def test_every_face_refuses_the_same_actions_with_the_same_message(value, exc, match):
    errors = {face: _first_error(face, value) for face in FACES}
    for face, err in errors.items():
        assert isinstance(err, exc), (face, err)
        assert re.search(match, str(err)), (face, str(err))
    # the same words, up to who acted ("agent_0" on the per-agent faces, "slot 0" on the VecEnv)
    assert len({str(e).replace("slot 0", "agent_0") for e in errors.values()}) == 1, errors


SEED_FACES = {
    "parallel": lambda: ssd_gym.parallel_env(GAME, max_cycles=3),
    "aec": lambda: ssd_gym.env(GAME, max_cycles=3),
    "gym": lambda: gym.make("SSD/CleanupSmall-v0", max_cycles=3),
}


def _obs_after_reset(face, seed):
    if face == "vector":
        v = ssd_gym.vector_env(GAME, 2, max_cycles=3)
        v.seed(seed)
        return v.reset()
    e = SEED_FACES[face]()
    out = e.reset(seed=seed)
    return e.observe("agent_0") if face == "aec" else out[0]


@pytest.mark.parametrize("face", [*SEED_FACES, "vector"])
@pytest.mark.parametrize("seed", [np.int64(3), np.uint32(3), np.int8(3), np.array(3)], ids=lambda s: type(s).__name__)
def test_numpy_integer_seeds_match_python_ones(face, seed):
    assert_same(_obs_after_reset(face, seed), _obs_after_reset(face, 3))


@pytest.mark.parametrize("face", [*SEED_FACES, "vector"])
@pytest.mark.parametrize("seed,exc,match", [(-1, ValueError, r"seed must be None or a non-negative integer, got -1"),
                                             (1.5, TypeError, r"seed must be None or a non-negative integer, got float 1.5"),
                                             ("3", TypeError, r"got str '3'"),
                                             (True, TypeError, r"got bool True")], ids=repr)
def test_bad_seed_is_refused_and_changes_nothing(face, seed, exc, match):
    if face == "vector":
        env = ssd_gym.vector_env(GAME, 2, max_cycles=3)
        env.seed(5)
        first = env.reset()
        with pytest.raises(exc, match=match):
            env.seed(seed)
        assert_same(env._seeds, [None, None])  # the pending seeds of the last reset are untouched
        twin = ssd_gym.vector_env(GAME, 2, max_cycles=3)
        twin.seed(5)
        assert_same(first, twin.reset())
        assert_same(env.step(np.zeros(6, dtype=np.int64))[:3], twin.step(np.zeros(6, dtype=np.int64))[:3])
        return
    env, twin = SEED_FACES[face](), SEED_FACES[face]()
    env.reset(seed=5)
    twin.reset(seed=5)
    core = env.unwrapped.par.engine if face == "gym" else env.unwrapped.engine
    before = engine_snapshot(core)
    with pytest.raises(exc, match=match):
        env.reset(seed=seed)
    assert_snapshot_equal(engine_snapshot(core), before)
    assert_same(env.reset(), twin.reset())  # and the env goes on exactly like its twin


# ---- the Gymnasium joint env -------------------------------------------------------------------
def test_bad_actions_gym():
    env = gym.make("SSD/CleanupSmall-v0", max_cycles=3)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(3, dtype=np.int64))
    env.reset(seed=0)
    twin = gym.make("SSD/CleanupSmall-v0", max_cycles=3)
    twin.reset(seed=0)
    eng = env.unwrapped.par.engine
    before = engine_snapshot(eng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's passive checker warns before we raise
        for bad, exc, match in [
            (np.zeros(2, dtype=np.int64), ValueError, r"the joint action must have shape \(3,\), got \(2,\)"),
            (np.zeros((3, 1), dtype=np.int64), ValueError, r"must have shape \(3,\)"),
            (np.array([0, 9, 0]), ValueError, r"action for agent_1 is out of range: 9"),
            (np.array([0, -1, 0]), ValueError, r"out of range: -1"),
            (np.array([0.5, 1, 0]), TypeError, r"action for agent_0 must be an integer"),
        ]:
            with pytest.raises(exc, match=match):
                env.step(bad)
    assert_snapshot_equal(engine_snapshot(eng), before)
    for t in range(3):
        a = np.array([t, 1, 2])
        assert_same(env.step(a), twin.step(a))
    with pytest.raises(RuntimeError, match=r"the episode is over"):
        env.unwrapped.step(np.zeros(3, dtype=np.int64))


# ---- the VecEnv -----------------------------------------------------------------------------
@pytest.fixture
def vpair():
    vs = []
    for _ in range(2):
        v = ssd_gym.vector_env(GAME, 2, max_cycles=5)
        v.seed(4)
        v.reset()
        v.step(np.arange(v.num_envs) % v.num_actions)
        vs.append(v)
    return vs


VEC_BAD = [
    ("short", lambda v: np.zeros(v.num_envs - 1, dtype=np.int64), ValueError,
     r"expected 6 actions \(one per slot\), got shape \(5,\)"),
    ("2d", lambda v: np.zeros((2, 3), dtype=np.int64), ValueError, r"expected 6 actions .*got shape \(2, 3\)"),
    ("scalar", lambda v: np.int64(0), ValueError, r"expected 6 actions .*got shape \(\)"),
    ("-1", lambda v: np.array([0, 0, 0, -1, 0, 0]), ValueError, r"action for slot 3 is out of range: -1 not in \[0, 9\)"),
    ("A", lambda v: np.array([0, 9, 0, 0, 0, 9]), ValueError, r"action for slot 1 is out of range: 9 not in \[0, 9\)"),
    ("float", lambda v: np.array([0, 1.5, 0, 0, 0, 0]), TypeError,
     r"action for slot 0 must be an integer in \[0, 9\), got float64 0.0"),
    ("integral float", lambda v: np.arange(6, dtype=np.float32), TypeError, r"must be an integer .*got float32 0.0"),
    ("nan", lambda v: np.array([0, np.nan, 0, 0, 0, 0]), TypeError, r"must be an integer"),
    ("str", lambda v: np.array(["1"] * 6), TypeError, r"action for slot 0 must be an integer .*got str_ '1'"),
    ("bool", lambda v: np.ones(6, dtype=bool), TypeError, r"must be an integer .*got bool True"),
    ("None", lambda v: np.array([0, 1, None, 0, 0, 0], dtype=object), TypeError,
     r"action for slot 2 must be an integer .*got NoneType None"),
]


@pytest.mark.parametrize("case,make,exc,match", VEC_BAD, ids=[c[0] for c in VEC_BAD])
def test_bad_actions_vecenv(vpair, case, make, exc, match):
    venv, twin = vpair
    before = engine_snapshot(venv.engine)
    with pytest.raises(exc, match=match):
        venv.step(make(venv))
    assert_snapshot_equal(engine_snapshot(venv.engine), before)
    for t in range(6):  # across the auto-reset at step 5
        a = (np.arange(6) + t) % 9
        o1, r1, d1, i1 = venv.step(a)
        o2, r2, d2, i2 = twin.step(a.copy())
        assert_same((o1, r1, d1), (o2, r2, d2))
        assert [sorted(i) for i in i1] == [sorted(i) for i in i2]


def test_vecenv_accepts_integer_types_and_column_shape(vpair):
    venv, twin = vpair
    a = np.arange(6) % 9
    assert_same(venv.step(a.astype(np.uint8))[:3], twin.step(a)[:3])
    assert_same(venv.step(a.reshape(6, 1))[:3], twin.step(a)[:3])
    assert_same(venv.step(a.tolist())[:3], twin.step(a)[:3])


def test_vecenv_step_before_reset():
    venv = ssd_gym.vector_env(GAME, 2, max_cycles=5)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        venv.step(np.zeros(6, dtype=np.int64))
    assert np.all(venv.engine.t == 0)
    venv.seed(1)
    venv.reset()
    venv.step(np.zeros(6, dtype=np.int64))
    assert np.all(venv.engine.t == 1)
    venv.seed(2)  # a new seed takes effect at the next reset(); stepping first is an error
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        venv.step(np.zeros(6, dtype=np.int64))
