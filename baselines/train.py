"""Train one zoo agent config on one game: ``ssd-train`` / ``python -m baselines.train``.

    ssd-train --agent influence_moa --game cleanup_small --total-steps 200000 --seed 0

``--total-steps`` counts agent-steps (a world step of N agents is N). The run directory (default
``runs/<game>/<agent>/seed<seed>``) gets TensorBoard logs, the ``progress.csv`` learning curve, the
resolved config and checkpoints; the same command again resumes from the last checkpoint (steps,
lr schedule, influence curriculum, MOA); ``--fresh`` starts over. Everything is checked
(:func:`check_run`) before the run directory is touched; a bad argument exits 2 with one
``ssd-train: error: ...`` line. While a trainer runs, its run directory is locked (:mod:`baselines.runlock`).

The loop in :func:`_train` is the whole algorithm: collect one rollout of every learner in lockstep,
run each learner's PPO update, log, checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.checkpoint import (
    atomic_write_json,
    atomic_write_text,
    latest_checkpoint,
    load_state,
    restore_learners,
    restore_moa,
    save_checkpoint,
)
from baselines.cli import integer, report
from baselines.config import AgentConfig, ConfigError, check_game, dump_yaml, load_agent_config
from baselines.curves import CurveWriter, EpisodeLog
from baselines.runlock import RunDirLock


@dataclass
class TrainArgs:
    """Arguments of one training run (the CLI flags, same names with dashes)."""

    agent: str = "a3c"  # zoo name (baselines.config.zoo_names()) or YAML path
    game: str = "cleanup_small"
    total_steps: int = 100_000  # agent-steps
    seed: int = 0
    # parallel worlds in the batched env; 32, as every leaderboard preset on the small maps trains (the
    # tuned minibatch of 1600 is 32 worlds x 50 steps), so one run reproduces a leaderboard row exactly
    num_worlds: int = 32
    num_agents: int | None = None  # None: the game's default
    max_cycles: int | None = None  # episode length; None: the game's default
    run_dir: str | None = None
    checkpoint_every: int = 50_000  # agent-steps between checkpoints (rounded up to whole rollouts)
    keep_checkpoints: int = 2
    fresh: bool = False  # ignore (delete) existing checkpoints instead of resuming
    overrides: list[str] = field(default_factory=list)  # "ppo.ent_coef=0.01" ...
    progress: bool = True
    tensorboard: bool = True
    torch_threads: int = 1
    device: str = "cpu"

    def resolved_run_dir(self) -> Path:
        if self.run_dir:
            return Path(self.run_dir)
        agent = Path(self.agent).stem
        return Path("runs") / self.game / agent / f"seed{self.seed}"


#: (argument, test, what it must be) for :func:`validate_args`
ARG_CHECKS = [
    ("total_steps", lambda v: v > 0, "must be a positive number of agent-steps"),
    ("num_worlds", lambda v: v >= 1, "must be >= 1"),
    ("num_agents", lambda v: v is None or v >= 1, "must be >= 1"),
    ("max_cycles", lambda v: v is None or v >= 1, "must be >= 1"),
    ("checkpoint_every", lambda v: v > 0, "must be > 0"),
    ("keep_checkpoints", lambda v: v >= 1, "must be >= 1 (the newest is needed to resume)"),
    ("seed", lambda v: v >= 0, "must be >= 0"),
    ("torch_threads", lambda v: v >= 1, "must be >= 1"),
]


def validate_args(args: TrainArgs) -> None:
    """Clear errors for bad run arguments (before anything is built or written)."""
    for name, ok, what in ARG_CHECKS:
        if not ok(getattr(args, name)):
            raise ConfigError(f"{name} {what}, got {getattr(args, name)}")
    check_game(args.game)
    check_device(args.device)
    run_dir = args.resolved_run_dir()
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run dir {run_dir} exists and is not a directory")


def check_device(device: str) -> None:
    """A torch device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``...)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available on this machine")


def check_run(args: TrainArgs) -> AgentConfig:
    """Every check of a run before anything is written: the arguments, the agent config with its
    overrides, and the game/agent/map combination, by building the run's env (one world) the way
    training does. Returns the resolved config; raises ConfigError naming the problem."""
    from baselines.envs import make_env

    validate_args(args)
    cfg = load_agent_config(args.agent, args.game, args.overrides)
    what = f"game {args.game}" + "".join(f" with {k}={v}" for k, v in (("num_agents", args.num_agents),
                                                                     ("max_cycles", args.max_cycles)) if v is not None)
    try:
        venv = make_env(cfg, args.game, 1, args.seed, args.total_steps,
                        num_agents=args.num_agents, max_cycles=args.max_cycles)
    except ValueError as exc:  # the games' option and map checks (MapError...) and ConfigError are ValueErrors
        raise ConfigError(f"{what}, agent {cfg.name}: {exc}") from None
    venv.close()
    return cfg


# ----------------------------------------------------------------------------------------------
# building a run


def build(cfg: AgentConfig, args: TrainArgs, env_seed: int):
    """Env (with reward wrapper), learners and the lockstep trainer of a run."""
    from baselines.envs import make_env
    from baselines.centralised import make_social
    from baselines.envs import influence_curriculum_env_steps
    from baselines.lockstep import LockstepTrainer, make_learners, team_roles

    venv = make_env(cfg, args.game, args.num_worlds, env_seed, args.total_steps,
                    num_agents=args.num_agents, max_cycles=args.max_cycles)
    n_agents = int(venv.num_agents)
    roles = team_roles(cfg, args.num_worlds, n_agents, venv.action_space)
    learners = make_learners(cfg, venv.observation_space, roles, seed=args.seed, device=args.device)
    social = make_social(cfg, learners, args.num_worlds, n_agents,
                         influence_curriculum_env_steps(cfg, args.total_steps, n_agents))
    episodes = EpisodeLog(n_agents)
    trainer = LockstepTrainer(venv, learners, roles, total_timesteps=args.total_steps, on_step=episodes.on_step,
                              normalize_reward=cfg.ppo.normalize_reward, social=social)
    return venv, trainer, episodes


def run_training(args: TrainArgs) -> dict[str, Any]:
    """Train (or resume) one run; returns the summary also written to ``summary.json``.

    Every check (:func:`check_run`) comes before the run directory is touched; then the directory is
    locked (:class:`baselines.runlock.RunDirLock`) for as long as this process trains in it."""
    import torch

    cfg = check_run(args)
    torch.set_num_threads(args.torch_threads)
    run_dir = args.resolved_run_dir()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create run dir {run_dir}: {exc.strerror}") from None
    with RunDirLock(run_dir):  # refuses (RunDirLocked) while another trainer is live in run_dir
        return _train(args, cfg, run_dir)


def _train(args: TrainArgs, cfg: AgentConfig, run_dir: Path) -> dict[str, Any]:
    """The training loop of :func:`run_training`, in a checked and locked run directory."""
    from baselines.envs import influence_wrapper

    if args.fresh:
        for sub in ("checkpoints", "tb"):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
        for f in ("progress.csv", "summary.json"):
            (run_dir / f).unlink(missing_ok=True)

    ckpt = latest_checkpoint(run_dir)
    state = load_state(ckpt) if ckpt else None
    run_info = {"args": asdict(args), "config": cfg.to_dict()}
    if state is not None:
        _check_same_run(run_dir, run_info)
    atomic_write_json(run_dir / "run.json", run_info)
    atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg))

    # resumed runs start new episodes from a different env seed so they do not replay the first ones
    start_steps = state["agent_steps"] if state else 0
    venv, trainer, episodes = build(cfg, args, env_seed=args.seed + start_steps)
    infl = influence_wrapper(venv)
    curriculum = infl if infl is not None else trainer.social  # whoever holds the influence curriculum
    if state is not None:
        restore_learners(ckpt, trainer.learners, state)
        restore_moa(ckpt, infl, state)
        if trainer.social is not None:
            trainer.social.global_step = int(state.get("influence_global_step", 0))
        for scaler, saved in zip(trainer.reward_scalers or [], state.get("reward_scalers", [])):
            scaler.load_state_dict(saved)
        episodes.wall_offset = float(state.get("wall_s", 0.0))
    trainer.reset()

    writer = _tensorboard(run_dir, args, purge_step=start_steps if state else None)
    curve = CurveWriter(run_dir / "progress.csv", resume_step=start_steps if state else None)
    if trainer.budget_steps != args.total_steps and not state:
        print(f"{args.agent}/{args.game}: --total-steps {args.total_steps:,} rounded up to {trainer.budget_steps:,} "
              f"agent-steps (whole rollouts of {trainer.n_steps} steps x {venv.num_envs} agent slots)", file=sys.stderr)
    bar = _progress_bar(args, total=trainer.budget_steps, initial=trainer.num_timesteps)
    last_ckpt = trainer.num_timesteps
    t_start = time.time()
    steps_at_start = trainer.num_timesteps

    def checkpoint() -> None:
        state_now = {
            "learners": [{"num_timesteps": int(l.num_timesteps), "n_updates": int(l._n_updates)} for l in trainer.learners],
            "influence_global_step": int(curriculum.global_step) if curriculum is not None else 0,
            "wall_s": episodes.wall_offset + time.time() - episodes.t0,
            "reward_scalers": [sc.state_dict() for sc in trainer.reward_scalers or []],
        }
        save_checkpoint(run_dir, trainer.num_timesteps, trainer.learners, state_now, infl, keep=args.keep_checkpoints)

    while trainer.num_timesteps < args.total_steps:
        # 1. rollout: every learner acts on its slots, one batched env step for all worlds x agents
        episodes.agent_steps = trainer.num_timesteps
        trainer.collect_rollouts()
        # 2. each learner's own RecurrentPPO update (lr annealed by its progress)
        losses = trainer.train()
        steps = trainer.num_timesteps
        # 3. logging: learning curve, TensorBoard, progress bar
        episodes.stamp(steps, losses)
        curve.write(episodes.pending)
        _log_tensorboard(writer, steps, episodes, losses, trainer, curriculum)
        episodes.pending.clear()
        if bar is not None:
            bar.update(steps - bar.n)
            bar.set_postfix(R=f"{episodes.mean('collective_return'):.1f}", eq=f"{episodes.mean('equality'):.2f}",
                            lr=f"{trainer.current_lr():.2e}", refresh=False)
        # 4. checkpoint
        if steps - last_ckpt >= args.checkpoint_every or steps >= args.total_steps:
            checkpoint()
            last_ckpt = steps
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    elapsed = time.time() - t_start
    summary = {
        "agent": cfg.name, "game": args.game, "seed": args.seed, "agent_steps": trainer.num_timesteps,
        "wall_s_this_process": round(elapsed, 2),
        "agent_steps_this_process": trainer.num_timesteps - steps_at_start,
        "agent_steps_per_s": round((trainer.num_timesteps - steps_at_start) / max(elapsed, 1e-9), 1),
        "env_s": round(trainer.stats.env_s, 2), "policy_s": round(trainer.stats.policy_s, 2),
        "buffer_s": round(trainer.stats.buffer_s, 2),
        "recent": {k: episodes.mean(k) for k in ("collective_return", "equality", "equality_weighted_return")},
        "run_dir": str(run_dir),
    }
    atomic_write_json(run_dir / "summary.json", summary)
    venv.close()
    return summary


def _check_same_run(run_dir: Path, run_info: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint made with different settings (use --fresh or another --run-dir)."""
    path = run_dir / "run.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    keys = ("agent", "game", "seed", "num_worlds", "num_agents", "max_cycles")
    diff = [k for k in keys if old["args"].get(k) != run_info["args"].get(k)]
    if old.get("config") != run_info["config"]:
        diff.append("config")
    if diff:
        raise ConfigError(f"{run_dir} holds a checkpoint of a different run ({', '.join(diff)} differ); "
                          "pass --fresh to start over or choose another --run-dir")


def _tensorboard(run_dir: Path, args: TrainArgs, purge_step: int | None):
    if not args.tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)


def _log_tensorboard(writer, steps: int, episodes: EpisodeLog, losses: dict[str, float], trainer, infl) -> None:
    if writer is None:
        return
    for rec in episodes.pending:
        for key in ("collective_return", "equality", "equality_weighted_return", "sustainability", "peace"):
            if not math.isnan(rec[key]):
                writer.add_scalar(f"episode/{key}", rec[key], steps)
        if rec["box_opened"] != "":
            writer.add_scalar("episode/box_opened", rec["box_opened"], steps)
    for key, value in losses.items():
        if key != "train/n_updates":
            writer.add_scalar(key, value, steps)
    total = trainer.stats.env_s + trainer.stats.policy_s + trainer.stats.buffer_s
    if total > 0:
        writer.add_scalar("time/env_share_of_rollout", trainer.stats.env_s / total, steps)
    if infl is not None:
        writer.add_scalar("influence/weight", infl.influence_weight, steps)
    if hasattr(infl, "moa_stats"):
        loss, acc, _ = infl.moa_stats()
        if np.isfinite(loss).any():  # nan until the MOA has scored a visible prediction
            writer.add_scalar("influence/moa_loss", float(np.nanmean(loss)), steps)
            writer.add_scalar("influence/moa_accuracy", float(np.nanmean(acc)), steps)


def _progress_bar(args: TrainArgs, total: int, initial: int):
    if not args.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True,
                desc=f"{Path(args.agent).stem}/{args.game}/s{args.seed}")


# ----------------------------------------------------------------------------------------------
# CLI


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssd-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainArgs()
    p.add_argument("--agent", default=d.agent, help="zoo config name or path to a YAML config (default: %(default)s)")
    p.add_argument("--game", default=d.game, help="cleanup, harvest, box_trapped, cleanup_small, harvest_small (default: %(default)s)")
    p.add_argument("--total-steps", type=integer, default=d.total_steps, help="budget in agent-steps (default: %(default)s)")
    p.add_argument("--seed", type=integer, default=d.seed)
    p.add_argument("--num-worlds", type=integer, default=d.num_worlds, help="worlds stepped together (default: %(default)s)")
    p.add_argument("--num-agents", type=integer, default=None, help="agents per world (default: the game's)")
    p.add_argument("--max-cycles", type=integer, default=None, help="episode length (default: the game's)")
    p.add_argument("--run-dir", default=None, help="default: runs/<game>/<agent>/seed<seed>")
    p.add_argument("--checkpoint-every", type=integer, default=d.checkpoint_every, help="agent-steps (default: %(default)s)")
    p.add_argument("--keep-checkpoints", type=integer, default=d.keep_checkpoints)
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming from the last checkpoint")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set ppo.ent_coef=0.01 (repeatable)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    p.add_argument("--torch-threads", type=integer, default=d.torch_threads)
    p.add_argument("--device", default=d.device)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)  # bad flags and numbers: argparse prints the error and exits 2
    args = TrainArgs(**vars(ns))
    try:
        summary = run_training(args)
    except ConfigError as exc:  # bad arguments, configs, combinations, a locked run dir
        return report("ssd-train", exc)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
