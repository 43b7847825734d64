"""The commands fail early and clearly (issue 10): every argument and every game/agent/map
combination is checked before anything is written or trained; one integer format for every
command; one trainer per run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baselines import evaluate, leaderboard, train
from baselines.runlock import LOCK_NAME, RunDirLock, RunDirLocked
from zoo_doubles import FAST, GAME, MAP, set_flags

ROOT = Path(__file__).resolve().parents[1]
# the tiniest run: the tiny map, 1 world x 2 agents, one 32-step rollout = 64 agent-steps
# (the cases that choose another game leave the tiny map out: OWN_MAP)
OWN_MAP = [*set_flags(FAST), "--num-worlds", "1", "--max-cycles", "8", "--total-steps", "64", "--no-progress",
           "--no-tensorboard"]
TINY = ["--game", GAME, *set_flags(MAP), *OWN_MAP]
COMMANDS = {"ssd-train": train, "ssd-eval": evaluate, "ssd-leaderboard": leaderboard}


def exit_code(main, argv: list[str]) -> int:
    """A command's exit status, whether argparse (SystemExit) or the command (return) reported it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def snapshot(path: Path) -> dict[str, tuple[int, int]] | None:
    """Every file under ``path`` with its size and mtime (None if ``path`` does not exist)."""
    if not path.exists():
        return None
    if path.is_file():
        return {".": (path.stat().st_size, path.stat().st_mtime_ns)}
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")}


def assert_refused(main, argv, capsys, message: str, prog: str) -> str:
    code = exit_code(main, argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{prog}: error:" in err and message in err, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished tiny run for ssd-eval."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert train.main([*TINY, "--run-dir", str(run)]) == 0
    return run


# ----------------------------------------------------------------------------------------------
# ssd-train


TRAIN_BAD = [
    (["--game", "cleanup_small", "--num-agents", "7"], "the map has 3 spawn points ('P') but num_agents=7"),
    (["--game", "box_trapped", "--num-agents", "3"], "box_trapped is a two-agent game"),
    (["--agent", "influence_moa", "--num-agents", "1"], "influence_moa needs at least 2 agents"),
    (["--agent", "nope"], "unknown agent 'nope'"),
    (["--agent", "missing.yaml"], "config file missing.yaml does not exist"),
    (["--game", "pong"], "unknown game 'pong'"),
    (["--total-steps", "0"], "total_steps must be a positive number"),
    (["--total-steps=-5e3"], "total_steps must be a positive number"),  # "-5e3" alone looks like a flag to argparse
    (["--num-worlds", "0"], "num_worlds must be >= 1"),
    (["--num-agents", "0"], "num_agents must be >= 1"),
    (["--max-cycles", "0"], "max_cycles must be >= 1"),
    (["--checkpoint-every", "0"], "checkpoint_every must be > 0"),
    (["--keep-checkpoints", "0"], "keep_checkpoints must be >= 1"),
    (["--seed", "-1"], "seed must be >= 0"),
    (["--torch-threads", "0"], "torch_threads must be >= 1"),
    (["--device", "gpu"], "device 'gpu' is not a torch device"),
    (["--set", "ppo.entcoef=0.1"], "override 'ppo.entcoef=0.1': unknown key 'entcoef' in ppo"),
    (["--set", "colour=red"], "override 'colour=red': unknown key 'colour' at the top level"),
    (["--set", "ppo.n_steps.x=1"], "ppo.n_steps is not a section"),
    (["--set", "ppo.n_steps=2.5"], "ppo.n_steps: Value '2.5' of type 'float' could not be converted to Integer"),
    (["--set", "ppo.gamma=2"], "ppo.gamma: must be in [0, 1]"),
    (["--set", "ppo.normalize_reward=3"], "ppo.normalize_reward: expected true or false, got 3"),
    (["--set", "ppo.n_steps=4e1", "--set", "sharing=selfish"], "sharing: Invalid value 'selfish', expected one of"),
    (["--set", "novalue"], "override 'novalue' must look like key.path=value"),
    (["--total-steps", "2.5"], "argument --total-steps: '2.5' is not a whole number"),
    (["--num-worlds", "1e-3"], "argument --num-worlds: '1e-3' is not a whole number"),
    (["--seed", "ten"], "argument --seed: 'ten' is not a number"),
    (["--max-cycles", "nan"], "argument --max-cycles: 'nan' is not a finite number"),
    (["--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("extra, message", TRAIN_BAD, ids=[" ".join(a) for a, _ in TRAIN_BAD])
def test_train_refuses_bad_input_before_writing(extra, message, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    # nothing may be built for training either: the checks come first
    monkeypatch.setattr(train, "build", lambda *a, **k: pytest.fail("training started"))
    base = OWN_MAP if "--game" in extra else TINY
    assert_refused(train.main, [*base, "--run-dir", str(run), *extra], capsys, message, "ssd-train")
    assert not run.exists()


def test_train_cuda_device_on_a_machine_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_refused(train.main, [*TINY, "--run-dir", str(tmp_path / "run"), "--device", "cuda"], capsys,
                   "CUDA is not available", "ssd-train")
    assert not (tmp_path / "run").exists()


def test_train_run_dir_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    before = snapshot(target)
    assert_refused(train.main, [*TINY, "--run-dir", str(target)], capsys, "exists and is not a directory", "ssd-train")
    assert snapshot(target) == before and target.read_text() == "mine"


def test_train_refusing_to_resume_another_run_writes_nothing(trained_run, tmp_path, capsys):
    """The different-run check needs the checkpoint (read under the lock) but still comes before any write."""
    before = snapshot(trained_run)
    assert_refused(train.main, [*TINY, "--run-dir", str(trained_run), "--seed", "5"], capsys,
                   "holds a checkpoint of a different run (seed differ)", "ssd-train")
    assert snapshot(trained_run) == before


def test_train_works_after_bad_input(tmp_path, capsys):
    run = tmp_path / "run"
    for extra, _ in TRAIN_BAD[:3]:
        assert exit_code(train.main, [*TINY, "--run-dir", str(run), *extra]) == 2
    capsys.readouterr()
    assert train.main([*TINY, "--run-dir", str(run), "--total-steps", "1.28e2"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agent_steps"] == 128  # 5e-style budget reached the trainer as an integer
    assert json.loads((run / "run.json").read_text())["args"]["total_steps"] == 128
    assert not (run / LOCK_NAME).exists()  # released at the end


# ----------------------------------------------------------------------------------------------
# ssd-eval


def _eval_bad_cases(run: Path, tmp: Path) -> list[tuple[list[str], str, Path]]:
    """(argv, message, path that must stay as it was) per bad ssd-eval input."""
    (tmp / "empty").mkdir()
    (tmp / "no_ckpt").mkdir()
    (tmp / "no_ckpt" / "run.json").write_text((run / "run.json").read_text())
    (tmp / "damaged").mkdir()
    (tmp / "damaged" / "run.json").write_text("{not json")
    (tmp / "a_dir.gif").mkdir()
    (tmp / "a_file").write_text("x")
    r = str(run)
    return [
        ([r, "--video", str(tmp / "x.avi")], "video path must end in .gif or .mp4", tmp / "x.avi"),
        ([r, "--video", str(tmp / "x")], "video path must end in .gif or .mp4", tmp / "x"),
        ([r, "--video", str(tmp / "a_dir.gif")], "--video", tmp / "a_dir.gif"),
        ([r, "--video", str(tmp / "a_file" / "x.gif")], "is not a directory", tmp / "a_file"),
        ([r, "--json", str(tmp / "a_dir.gif")], "--json", tmp / "a_dir.gif"),
        ([str(tmp / "missing")], "run dir", tmp / "missing"),
        ([str(tmp / "empty")], "is not a training run directory (no run.json)", tmp / "empty"),
        ([str(tmp / "no_ckpt")], "has no complete checkpoint yet", tmp / "no_ckpt"),
        ([str(tmp / "damaged")], "is damaged", tmp / "damaged"),
        ([r, "--checkpoint", str(tmp / "missing")], "is not a complete checkpoint directory", tmp / "missing"),
        ([r, "--episodes", "0"], "episodes must be >= 1", run),
        ([r, "--num-worlds", "0"], "num_worlds must be >= 1", run),
        ([r, "--seed", "-1"], "seed must be >= 0", run),
        ([r, "--episodes", "2.5"], "argument --episodes: '2.5' is not a whole number", run),
        ([r, "--num-worlds", "1e-3"], "argument --num-worlds: '1e-3' is not a whole number", run),
    ]


def test_eval_refuses_bad_input_before_playing(trained_run, tmp_path, capsys, monkeypatch):
    cases = _eval_bad_cases(trained_run, tmp_path)
    monkeypatch.setattr(evaluate, "restore_players", lambda *a, **k: pytest.fail("evaluation started"))
    for argv, message, untouched in cases:
        before = snapshot(untouched), snapshot(trained_run)
        assert_refused(evaluate.main, argv, capsys, message, "ssd-eval")
        assert (snapshot(untouched), snapshot(trained_run)) == before, argv


def test_eval_mp4_without_ffmpeg(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as when it is not installed
    monkeypatch.setattr(evaluate, "restore_players", lambda *a, **k: pytest.fail("evaluation started"))
    assert_refused(evaluate.main, [str(trained_run), "--video", str(tmp_path / "x.mp4")], capsys,
                   "--video", "ssd-eval")
    assert not (tmp_path / "x.mp4").exists()


def test_eval_works_after_bad_input(trained_run, tmp_path, capsys):
    assert exit_code(evaluate.main, [str(trained_run), "--video", str(tmp_path / "x.avi")]) == 2
    video, out = tmp_path / "new" / "ep.gif", tmp_path / "res.json"  # a missing parent dir is made
    assert evaluate.main([str(trained_run), "--episodes", "2", "--num-worlds", "1", "--video", str(video),
                          "--json", str(out)]) == 0
    assert "| collective return |" in capsys.readouterr().out
    assert video.stat().st_size > 0 and len(json.loads(out.read_text())["episodes"]) == 2


# ----------------------------------------------------------------------------------------------
# ssd-leaderboard

LB_OWN_MAP = ["--preset", "demo", *set_flags(FAST), "--agents", "a3c", "--seeds", "1", "--num-worlds", "1", "--jobs", "1"]
LB_BASE = [*LB_OWN_MAP, "--games", GAME, *set_flags(MAP)]
LB_TINY = [*LB_BASE, "--total-steps", "64"]

LB_BAD = [
    (["--preset", "paper"], "pass --total-steps"),  # the only case without the tiny budget
    (["--agents", "a3c,nope"], "unknown agent 'nope'"),
    (["--games", "pong"], "unknown game 'pong'"),
    # the paper preset's 5 agents do not fit the small map's 3 spawn points
    (["--preset", "paper", "--games", "cleanup_small"], "the map has 3 spawn points ('P') but num_agents=5"),
    (["--agents", "influence_moa", "--games", "box_trapped", "--set", "influence.train_every=12"],
     "influence: train_every (12) must be a multiple of bptt (8)"),
    (["--total-steps", "0"], "total_steps must be a positive number"),
    (["--seeds", "0"], "seeds must be >= 1"),
    (["--num-worlds", "0"], "num_worlds must be >= 1"),
    (["--jobs", "0"], "jobs must be >= 1"),
    (["--agents", ","], "nothing to train"),
    (["--set", "ppo.entcoef=1"], "unknown key 'entcoef' in ppo"),
    (["--total-steps", "2.5"], "argument --total-steps: '2.5' is not a whole number"),
    (["--seeds", "1e-3"], "argument --seeds: '1e-3' is not a whole number"),
    (["--jobs", "two"], "argument --jobs: 'two' is not a number"),
    (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
]


@pytest.mark.parametrize("extra, message", LB_BAD, ids=[" ".join(a) for a, _ in LB_BAD])
def test_leaderboard_refuses_bad_input_before_writing(extra, message, tmp_path, capsys, monkeypatch):
    out = tmp_path / "lb"
    base = LB_BASE if message == "pass --total-steps" else LB_TINY
    if "--games" in extra:
        base = [*LB_OWN_MAP, "--total-steps", "64"]
    monkeypatch.setattr(leaderboard, "run_one", lambda job: pytest.fail("training started"))
    assert_refused(leaderboard.main, [*base, "--out", str(out), *extra], capsys, message, "ssd-leaderboard")
    assert not out.exists()


def test_leaderboard_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "lb"
    out.write_text("mine")
    assert_refused(leaderboard.main, [*LB_TINY, "--out", str(out)], capsys, "is not a directory", "ssd-leaderboard")
    assert out.read_text() == "mine"


def test_leaderboard_works_after_bad_input_and_respects_run_locks(tmp_path, capsys):
    out = tmp_path / "lb"
    assert exit_code(leaderboard.main, [*LB_TINY, "--out", str(out), "--total-steps", "2.5"]) == 2
    # a run dir another trainer holds (here: this process) stops the board with the holder's PID
    run = out / "runs" / GAME / "a3c" / "seed0"
    run.mkdir(parents=True)
    with RunDirLock(run):
        assert_refused(leaderboard.main, [*LB_TINY, "--out", str(out)], capsys, f"PID {os.getpid()}", "ssd-leaderboard")
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]
    assert leaderboard.main([*LB_TINY, "--out", str(out), "--total-steps", "6.4e1"]) == 0
    capsys.readouterr()
    res = json.loads((out / "results" / f"{GAME}__a3c__seed0.json").read_text())
    assert res["total_steps"] == 64 and (out / "leaderboard.md").exists()


# ----------------------------------------------------------------------------------------------
# one integer format


INT_FLAGS = {
    "ssd-train": ["--total-steps", "--seed", "--num-worlds", "--num-agents", "--max-cycles", "--checkpoint-every",
                  "--keep-checkpoints", "--torch-threads"],
    "ssd-eval": ["--episodes", "--seed", "--num-worlds"],
    "ssd-leaderboard": ["--total-steps", "--seeds", "--num-worlds", "--jobs"],
}
CASES = [(cmd, flag) for cmd, flags in INT_FLAGS.items() for flag in flags]
POSITIONAL = {"ssd-eval": ["some/run"]}


@pytest.mark.parametrize("cmd, flag", CASES)
@pytest.mark.parametrize("text, value", [("5e5", 500_000), ("500000", 500_000), ("500_000", 500_000),
                                         ("5e3", 5000), ("5.0e3", 5000), ("7", 7)])
def test_every_integer_flag_takes_every_spelling(cmd, flag, text, value):
    ns = COMMANDS[cmd].parser().parse_args([*POSITIONAL.get(cmd, []), flag, text])
    assert getattr(ns, flag[2:].replace("-", "_")) == value


@pytest.mark.parametrize("cmd, flag", CASES)
@pytest.mark.parametrize("text", ["2.5", "1e-3", "1.5e0", "inf", "ten"])
def test_every_integer_flag_refuses_non_integers(cmd, flag, text, capsys):
    argv = [*POSITIONAL.get(cmd, []), flag, text]
    err = assert_refused(COMMANDS[cmd].main, argv, capsys, f"argument {flag}: {text!r} is not a", cmd)
    assert "whole number" in err or "finite" in err or "is not a number" in err


def test_integer_parser_is_exact():
    from baselines.cli import parse_int

    assert parse_int("123456789012345678901") == 123456789012345678901  # no float rounding
    assert parse_int("1.2345678901234567e16") == 12345678901234567
    with pytest.raises(ValueError, match="too large"):
        parse_int("1e999999999")


# ----------------------------------------------------------------------------------------------
# the run-dir lock


def test_lock_refuses_a_second_holder_and_is_released_on_exceptions(tmp_path):
    with RunDirLock(tmp_path):
        with pytest.raises(RunDirLocked, match=f"PID {os.getpid()} on host"):
            RunDirLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_NAME).exists()
    with pytest.raises(KeyboardInterrupt):
        with RunDirLock(tmp_path):
            raise KeyboardInterrupt
    with RunDirLock(tmp_path):  # free again
        pass


def test_training_releases_the_lock_on_ctrl_c(tmp_path, monkeypatch):
    run = tmp_path / "run"

    def interrupted(*args, **kwargs):
        assert (run / LOCK_NAME).exists()  # held while training
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.main([*TINY, "--run-dir", str(run)])
    assert not (run / LOCK_NAME).exists()
    RunDirLock(run).acquire()  # and nobody holds it


def test_stale_lock_is_taken_over_with_a_warning(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its PID is no longer alive and holds no lock
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": "somewhere", "started": "earlier"}))
    assert train.main([*TINY, "--run-dir", str(run)]) == 0
    err = capsys.readouterr().err
    assert "taking over the lock" in err and f"PID {dead.pid} on host somewhere" in err
    assert (run / "summary.json").exists() and not (run / LOCK_NAME).exists()


# the first trainer of the lock test: the real ssd-train in a subprocess that, once it has logged its
# first rollout (lock held, files written), waits for the test's go-file; so the second trainer is
# surely tried while the first is live, however slow the machine, and the first's files stand still
GATED_TRAINER = """
import sys, time
from pathlib import Path
import baselines.train as t
gate, argv = Path(sys.argv[1]), sys.argv[2:]
write = t.CurveWriter.write
def gated_write(self, records):
    write(self, records)
    (gate.parent / "first_rollout_logged").touch()
    deadline = time.time() + 300
    while not gate.exists() and time.time() < deadline:
        time.sleep(0.05)
t.CurveWriter.write = gated_write
sys.exit(t.main(argv))
"""


def test_second_trainer_on_a_live_run_dir_is_refused(tmp_path, capsys):
    run, gate = tmp_path / "run", tmp_path / "go"
    first_argv = [*TINY, "--run-dir", str(run), "--total-steps", "192", "--seed", "1"]  # 3 rollouts
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    first = subprocess.Popen([sys.executable, "-c", GATED_TRAINER, str(gate), *first_argv], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not (tmp_path / "first_rollout_logged").exists():
            if first.poll() is not None:
                pytest.fail(f"the first trainer exited early: {first.stderr.read()[-2000:]}")
            if time.time() > deadline:
                pytest.fail("the first trainer logged nothing within 180 s")
            time.sleep(0.05)
        holder = json.loads((run / LOCK_NAME).read_text())
        assert holder["pid"] == first.pid
        before = snapshot(run)
        # the second: another budget and seed, so anything it wrote would show
        code = exit_code(train.main, [*TINY, "--run-dir", str(run), "--total-steps", "640", "--seed", "2"])
        err = capsys.readouterr().err
        assert code == 2 and f"in use by another trainer (PID {first.pid} on host" in err
        assert f"delete {run / LOCK_NAME}" in err  # how to clear a stale lock
        assert snapshot(run) == before  # it wrote nothing
    finally:
        gate.touch()
        try:
            stdout, stderr = first.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            first.kill()
            raise
    assert first.returncode == 0, stderr[-2000:]
    assert json.loads(stdout)["agent_steps"] == 192
    args = json.loads((run / "run.json").read_text())["args"]
    assert (args["total_steps"], args["seed"]) == (192, 1)
    lines = (run / "progress.csv").read_text().splitlines()
    steps = [int(line.split(",")[0]) for line in lines[1:]]
    assert lines[0].startswith("agent_steps,") and steps == sorted(steps) and steps[-1] == 192
    assert not (run / LOCK_NAME).exists()
    # and resuming the finished run with a larger budget works (the lock is free)
    assert train.main([*TINY, "--run-dir", str(run), "--total-steps", "256", "--seed", "1"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["agent_steps"] == 256 and summary["agent_steps_this_process"] == 64


def test_train_says_when_the_budget_is_rounded_up_to_whole_rollouts(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main([*TINY, "--run-dir", str(run), "--total-steps", "100"]) == 0
    err = capsys.readouterr().err
    assert "--total-steps 100 rounded up to 128 agent-steps (whole rollouts of 32 steps x 2 agent slots)" in err
    assert json.loads((run / "summary.json").read_text())["agent_steps"] == 128
    # a whole number of rollouts is not announced
    assert train.main([*TINY, "--run-dir", str(tmp_path / "whole"), "--total-steps", "64"]) == 0
    assert "rounded up" not in capsys.readouterr().err
