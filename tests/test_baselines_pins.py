"""The zoo builds on sb3-contrib internals; the installed versions must be in the pinned range, and
the internals it calls must look as it expects."""

import inspect
from importlib.metadata import requires, version

from packaging.requirements import Requirement
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy


def test_installed_sb3_is_in_the_pinned_range():
    pins = {r.name: r for r in map(Requirement, requires("ssd-gym") or []) if r.marker is None}
    for name in ("stable-baselines3", "sb3-contrib"):
        spec = pins[name].specifier
        assert any(s.operator == "<" for s in spec), f"{name} needs an upper bound: the zoo uses its internals"
        assert spec.contains(version(name)), f"{name} {version(name)} is outside the tested range {spec}"


def test_the_internals_the_zoo_calls_have_the_expected_shape():
    params = list(inspect.signature(RecurrentActorCriticPolicy._process_sequence).parameters)
    assert params == ["features", "lstm_states", "episode_starts", "lstm"]
    assert isinstance(inspect.getattr_static(RecurrentActorCriticPolicy, "_process_sequence"), staticmethod)
    for buffer in (RecurrentRolloutBuffer, RecurrentDictRolloutBuffer):
        assert "lstm_states" in inspect.signature(buffer.add).parameters
        assert list(inspect.signature(buffer.compute_returns_and_advantage).parameters)[1:] == ["last_values", "dones"]
    for name in ("_update_info_buffer", "_update_current_progress_remaining", "train", "collect_rollouts"):
        assert callable(getattr(RecurrentPPO, name))
    # what collect_rollouts does, and the lockstep trainer mirrors: the learner's own state attributes
    source = inspect.getsource(RecurrentPPO.collect_rollouts)
    for attr in ("_last_lstm_states", "_last_episode_starts", "_last_obs", "TimeLimit.truncated", "terminal_observation"):
        assert attr in source, attr
