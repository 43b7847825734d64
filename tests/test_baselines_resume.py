"""Checkpoint, kill -9, resume: the step count, the lr schedule and the weights continue."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baselines.checkpoint import latest_checkpoint, load_state, restore_learners
from baselines.config import load_agent_config
from baselines.lockstep import LinearSchedule
from baselines.train import TrainArgs, build, run_training
from zoo_doubles import GAME, TINY, set_flags

ROOT = Path(__file__).resolve().parents[1]
TOTAL = 8192  # agent-steps; one rollout = 32 steps x 2 worlds x 2 agents = 128
CLI = ["--agent", "a3c", "--game", GAME, *set_flags(TINY), "--total-steps", str(TOTAL), "--num-worlds", "2", "--num-agents", "2",
       "--max-cycles", "20", "--checkpoint-every", "512", "--seed", "3", "--no-progress"]


def _args(run_dir):
    return TrainArgs(agent="a3c", game=GAME, total_steps=TOTAL, num_worlds=2, num_agents=2, max_cycles=20,
                     checkpoint_every=512, seed=3, run_dir=str(run_dir), overrides=list(TINY), progress=False)


def _kill_after_first_checkpoint(run_dir: Path) -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "baselines.train", *CLI, "--run-dir", str(run_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while latest_checkpoint(run_dir) is None:
        if proc.poll() is not None:
            pytest.fail(f"training exited early: {proc.stderr.read().decode()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("no checkpoint within 120 s")
        time.sleep(0.02)
    time.sleep(0.3)  # let it run past the checkpoint: those steps are the ones a crash loses
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the process must have been killed, not finished"
    return load_state(latest_checkpoint(run_dir))["agent_steps"]


def test_kill_and_resume_continue_steps_and_lr_schedule(tmp_path):
    run_dir = tmp_path / "run"
    saved = _kill_after_first_checkpoint(run_dir)
    assert 0 < saved < TOTAL and saved % 128 == 0
    ckpt = latest_checkpoint(run_dir)
    state = load_state(ckpt)

    # rebuild from the checkpoint as the resume does and look at the first update after it
    args = _args(run_dir)
    cfg = load_agent_config("a3c", GAME, TINY)
    venv, trainer, _ = build(cfg, args, env_seed=99)
    restore_learners(ckpt, trainer.learners, state)
    assert trainer.num_timesteps == saved
    for lrn in trainer.learners:
        assert lrn.policy.optimizer.state, "Adam moments must be restored too"
    trainer.reset()
    trainer.collect_rollouts()
    trainer.train()
    schedule = LinearSchedule(cfg.ppo.lr_init, cfg.ppo.lr_end)
    per_learner_total = TOTAL // 2
    expected = schedule(1 - (saved // 2 + 64) / per_learner_total)
    fresh = schedule(1 - 64 / per_learner_total)
    lr = trainer.learners[0].policy.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(expected) and lr != pytest.approx(fresh)

    # the real resume: same command, continues from the checkpoint and finishes the budget
    summary = run_training(args)
    assert summary["agent_steps"] == TOTAL
    assert summary["agent_steps_this_process"] == TOTAL - saved
    final = load_state(latest_checkpoint(run_dir))
    assert [l["num_timesteps"] for l in final["learners"]] == [TOTAL // 2, TOTAL // 2]
    assert [l["n_updates"] for l in final["learners"]] == [TOTAL // 128 * cfg.ppo.n_epochs] * 2  # sb3 counts epochs
    # the learning curve has no rows from the steps the crash lost, and stays in order
    steps = [int(r["agent_steps"]) for r in csv.DictReader(open(run_dir / "progress.csv"))]
    assert steps == sorted(steps) and steps[-1] == TOTAL


def test_resume_refuses_a_different_run(tmp_path):
    from baselines.config import ConfigError

    args = _args(tmp_path / "run")
    args.total_steps = 256
    run_training(args)
    other = _args(tmp_path / "run")
    other.total_steps = 512
    other.overrides = [*TINY, "ppo.ent_coef=0.5"]
    with pytest.raises(ConfigError, match="different run"):
        run_training(other)
    other.fresh = True
    assert run_training(other)["agent_steps"] == 512


def test_curve_survives_a_torn_last_line(tmp_path):
    """kill -9 during an append leaves half a row; resuming drops it and rows past the checkpoint."""
    from baselines.curves import CURVE_FIELDS, CurveWriter

    path = tmp_path / "progress.csv"
    pad = "," * (len(CURVE_FIELDS) - 11)  # the columns after episode_length are empty here
    path.write_text(",".join(CURVE_FIELDS) + "\n" + "128,1.0,0,5.0,0.9,4.5,10,2,,,20" + pad + "\n" + "256,2.0,0,6.0,0.9,5.4,10,2,,,20" + pad + "\n" + "38")
    CurveWriter(path, resume_step=128)
    lines = path.read_text().strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("128,")
