"""``ssd-rllib``: train a zoo agent config on RLlib PPO, on this machine or on a Ray cluster.

    ssd-rllib --agent prosocial --game harvest_small --total-steps 1e6 --num-env-runners 2
    ssd-rllib --agent influence_moa --game cleanup --address ray://head:10001 --num-env-runners 64 \\
        --envs-per-runner 4 --num-learners 2 --gpus-per-learner 1

A run directory (default ``runs/rllib/<game>/<agent>/seed<seed>``) holds ``run.json`` (the
arguments and the resolved config), ``progress.jsonl`` (one line per iteration: steps, returns, the
social metrics), TensorBoard event files under ``tb/`` (every numeric result of every iteration,
e.g. ``env_runners/ssd/collective_return``) and ``checkpoint/`` (RLlib's ``algo.save_to_path``, plus
what RLlib does not know of, kept by every env copy: the influence MOA and its curriculum step, the
reward scaler's running statistics, in ``ssd_wrappers.pt``). Run
again with the same directory to resume from its checkpoint (``--fresh`` starts over). Training
stops at ``--total-steps`` agent-steps (or ``--iterations``).

Local by default: ``ray.init`` starts a Ray instance in this process (``--num-cpus`` caps it); with
``--address`` it connects to an existing cluster (``auto``, ``<ip>:6379`` or ``ray://<ip>:10001``),
whose nodes need the same ``ssd-gym[rllib]`` install. ``--gpus-per-learner auto`` (the default)
gives each learner one GPU when the cluster has any.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines.cli import integer, report
from baselines.config import ConfigError, load_agent_config

PROG = "ssd-rllib"
CHECKPOINT = "checkpoint"
WRAPPER_STATE = "ssd_wrappers.pt"
#: the results written to progress.jsonl and printed (besides the social metrics)
PROGRESS_KEYS = (("env_runners", "episode_return_mean"), ("env_runners", "episode_len_mean"),
                 ("env_runners", "num_episodes_lifetime"))


@dataclass
class Args:
    agent: str = "a3c"
    game: str = "harvest_small"
    total_steps: int = 100_000  # agent-steps, as ssd-train
    iterations: int | None = None
    seed: int = 0
    num_agents: int | None = None
    max_cycles: int | None = None
    num_env_runners: int = 2
    envs_per_runner: int = 8
    num_learners: int = 0
    gpus_per_learner: str = "auto"
    train_batch: int = 4000
    minibatch: int | None = None
    max_seq_len: int | None = None
    sharing: str | None = None
    run_dir: str | None = None
    checkpoint_every: int = 10
    fresh: bool = False
    address: str | None = None
    num_cpus: int | None = None
    tensorboard: bool = True
    quiet: bool = False
    overrides: list[str] = field(default_factory=list)


def parser() -> argparse.ArgumentParser:
    d = Args()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", default=d.agent, help="zoo config name or path to a YAML config (default: %(default)s)")
    p.add_argument("--game", default=d.game, help="cleanup, harvest, box_trapped, cleanup_small, harvest_small (default: %(default)s)")
    p.add_argument("--total-steps", type=integer, default=d.total_steps, help="budget in agent-steps (default: %(default)s)")
    p.add_argument("--iterations", type=integer, default=None, help="stop after this many iterations (counting resumed ones)")
    p.add_argument("--seed", type=integer, default=d.seed)
    p.add_argument("--num-agents", type=integer, default=None, help="agents per world (default: the game's)")
    p.add_argument("--max-cycles", type=integer, default=None, help="episode length (default: the game's)")
    p.add_argument("--num-env-runners", type=integer, default=d.num_env_runners,
                   help="sampling actors, 1 CPU each; 0 samples in the driver (default: %(default)s)")
    p.add_argument("--envs-per-runner", type=integer, default=d.envs_per_runner, help="env copies per runner (default: %(default)s)")
    p.add_argument("--num-learners", type=integer, default=d.num_learners,
                   help="learner actors; 0 learns in the driver (default: %(default)s)")
    p.add_argument("--gpus-per-learner", default=d.gpus_per_learner,
                   help="GPUs per learner, or 'auto': 1 when the cluster has GPUs (default: %(default)s)")
    p.add_argument("--train-batch", type=integer, default=d.train_batch, help="env-steps per iteration (default: %(default)s)")
    p.add_argument("--minibatch", type=integer, default=None, help="agent-steps per SGD minibatch (default: the config's ppo.batch_size)")
    p.add_argument("--max-seq-len", type=integer, default=None, help="LSTM training sequence length (default: the config's ppo.n_steps)")
    p.add_argument("--sharing", choices=("independent", "shared"), default=None,
                   help="one module per agent or one for all (default: the config's)")
    p.add_argument("--run-dir", default=None, help="default: runs/rllib/<game>/<agent>/seed<seed>")
    p.add_argument("--checkpoint-every", type=integer, default=d.checkpoint_every, help="iterations (default: %(default)s)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming from the run's checkpoint")
    p.add_argument("--address", default=None, help="an existing Ray cluster: auto, <ip>:6379 or ray://<ip>:10001")
    p.add_argument("--num-cpus", type=integer, default=None, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    p.add_argument("--quiet", action="store_true", help="no line per iteration")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. ppo.ent_coef=0.01 (repeatable)")
    return p


def validate(args: Args) -> None:
    for name, low in (("total_steps", 1), ("iterations", 1), ("num_agents", 1), ("max_cycles", 1),
                      ("num_env_runners", 0), ("envs_per_runner", 1), ("num_learners", 0), ("train_batch", 1),
                      ("minibatch", 1), ("max_seq_len", 1), ("checkpoint_every", 1), ("num_cpus", 1)):
        v = getattr(args, name)
        if v is not None and v < low:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= {low}, got {v}")
    if args.gpus_per_learner != "auto":
        try:
            g = float(args.gpus_per_learner)
        except ValueError:
            raise ConfigError(f"--gpus-per-learner must be a number or 'auto', got {args.gpus_per_learner!r}") from None
        if not g >= 0 or math.isinf(g):
            raise ConfigError(f"--gpus-per-learner must be >= 0, got {args.gpus_per_learner!r}")
    if args.address is not None and args.num_cpus is not None:
        raise ConfigError("--num-cpus sizes a local Ray instance; it cannot be combined with --address")


def run_dir_of(args: Args) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    return Path("runs") / "rllib" / args.game / Path(args.agent).stem / f"seed{args.seed}"


def start_ray(args: Args) -> None:
    import ray

    if ray.is_initialized():
        return
    if args.address is not None:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=not args.quiet)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=not args.quiet)


def gpus_per_learner(args: Args) -> tuple[float, int]:
    """(GPUs per learner, number of learners): ``auto`` takes one GPU per learner when the cluster
    has GPUs, and a remote learner when this driver sees none itself."""
    if args.gpus_per_learner != "auto":
        return float(args.gpus_per_learner), args.num_learners
    import ray
    import torch

    if ray.cluster_resources().get("GPU", 0) <= 0:
        return 0.0, args.num_learners
    learners = args.num_learners if (args.num_learners or torch.cuda.is_available()) else 1
    return 1.0, learners


def flatten(result: dict, prefix: str = "") -> dict[str, float]:
    """Every finite number in a (nested) RLlib result, keyed ``a/b/c``."""
    out = {}
    for k, v in result.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[key] = float(v)
    return out


def agent_steps(result: dict) -> int:
    lifetime = result.get("env_runners", {}).get("num_agent_steps_sampled_lifetime", {})
    if isinstance(lifetime, dict):
        return int(sum(lifetime.values()))
    return int(lifetime or 0)


def progress_row(result: dict) -> dict[str, Any]:
    er = result.get("env_runners", {})
    row = {"iteration": int(result.get("training_iteration", 0)), "agent_steps": agent_steps(result),
           "env_steps": int(er.get("num_env_steps_sampled_lifetime", 0) or 0),
           "time_this_iter_s": result.get("time_this_iter_s")}
    for group, key in PROGRESS_KEYS:
        if key in result.get(group, {}):
            row[key] = result[group][key]
    row.update({f"ssd/{k}": v for k, v in (er.get("ssd") or {}).items()})
    # an iteration in which no episode ended has NaN episode metrics: left out
    return {k: v for k, v in row.items() if not (isinstance(v, float) and not math.isfinite(v))}


def last_progress(run_dir: Path, iteration: int) -> dict[str, Any]:
    """The progress row of ``iteration`` (the checkpoint's) in ``progress.jsonl``, or {}; rows of
    later iterations (trained after that checkpoint, before a crash) are dropped from the file."""
    path = run_dir / "progress.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if r.get("iteration", 0) <= iteration]
    if len(kept) != len(rows):
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept[-1] if kept else {}


# ---- the reward wrappers' state (not part of RLlib's checkpoint) -------------------------------
def _ssd_envs(env_runner) -> list:
    """The runner's SSDMultiAgentEnv copies (none on a driver-side runner without envs)."""
    vec = getattr(env_runner, "env", None)
    # gymnasium's make() puts OrderEnforcing around ours
    return [getattr(e, "unwrapped", e) for e in getattr(vec, "envs", None) or ()]


def _wrapper_states(env_runner) -> tuple[int, list[dict]]:
    states = []
    for env in _ssd_envs(env_runner):
        state = {}
        w = env.wrapper_with("save_moa") if hasattr(env, "wrapper_with") else None
        if w is not None:
            buf = io.BytesIO()
            w.save_moa(buf)
            state.update(moa=buf.getvalue(), global_step=int(w.rule.global_step))
        if getattr(env, "scaler", None) is not None:
            state["scaler"] = env.scaler.state_dict()
        states.append(state)
    return int(getattr(env_runner, "worker_index", 0)), states if any(states) else []


def _set_wrapper_states(states: dict):
    def apply(env_runner):
        mine = states.get(int(getattr(env_runner, "worker_index", 0)), [])
        for env, s in zip(_ssd_envs(env_runner), mine):
            if "moa" in s:
                w = env.wrapper_with("save_moa")
                w.load_moa(io.BytesIO(s["moa"]))
                w.rule.global_step = int(s["global_step"])
            if "scaler" in s and env.scaler is not None:
                env.scaler.load_state_dict(s["scaler"])
        return len(mine)
    return apply


def save_checkpoint(algo, run_dir: Path) -> Path:
    """``algo.save_to_path`` plus the wrappers' state, written beside and then swapped in, so a crash
    while saving leaves the previous checkpoint whole."""
    import torch

    final, tmp = run_dir / CHECKPOINT, run_dir / f"{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    states = dict(algo.env_runner_group.foreach_env_runner(_wrapper_states, local_env_runner=True))
    if any(states.values()):
        torch.save(states, tmp / WRAPPER_STATE)
    old = run_dir / f"{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def restore_checkpoint(algo, path: Path) -> None:
    import torch

    algo.restore_from_path(str(path.resolve()))
    state_file = path / WRAPPER_STATE
    if state_file.exists():
        states = torch.load(state_file, weights_only=False)
        algo.env_runner_group.foreach_env_runner(_set_wrapper_states(states), local_env_runner=True)


def build(args: Args, cfg=None):
    """``(config, the RLlib Algorithm)`` of ``args`` (Ray must be up)."""
    from baselines.rllib.algo import ppo_config

    cfg = cfg or load_agent_config(args.agent, args.game, args.overrides)
    gpus, learners = gpus_per_learner(args)
    env_options = {k: v for k, v in (("num_agents", args.num_agents), ("max_cycles", args.max_cycles)) if v is not None}
    from baselines.rllib.algo import agents_of

    n = len(agents_of(args.game, {**cfg.env, **env_options}))
    total_env_steps = max(1, math.ceil(args.total_steps / n))
    pc = ppo_config(cfg, args.game, total_env_steps=total_env_steps, num_env_runners=args.num_env_runners,
                    envs_per_runner=args.envs_per_runner, num_learners=learners, gpus_per_learner=gpus,
                    train_batch=args.train_batch, minibatch=args.minibatch, sharing=args.sharing, seed=args.seed,
                    env_options=env_options, max_seq_len=args.max_seq_len)
    return cfg, pc.build_algo()


def train(args: Args) -> dict[str, Any]:
    """Train (or resume) the run of ``args``; returns the last iteration's progress row."""
    from baselines.config import dump_yaml

    validate(args)
    cfg = load_agent_config(args.agent, args.game, args.overrides)  # bad names fail before Ray starts
    run_dir = run_dir_of(args)
    ckpt = run_dir / CHECKPOINT
    if args.fresh and run_dir.exists():
        for name in (CHECKPOINT, "progress.jsonl", "tb", "run.json"):
            p = run_dir / name
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    resume = ckpt.exists() and not args.fresh
    meta = {k: v for k, v in vars(args).items() if k not in ("fresh", "quiet", "address", "num_cpus", "tensorboard")}
    if resume and (run_dir / "run.json").exists():
        before = json.loads((run_dir / "run.json").read_text())["args"]
        changed = {k: (before.get(k), v) for k, v in meta.items()
                   if k not in ("total_steps", "iterations", "checkpoint_every") and before.get(k) != v}
        if changed:
            raise ConfigError(f"{run_dir} holds a run with other settings {changed} (old, new); "
                              "pass --fresh to start over or another --run-dir")
    start_ray(args)
    cfg, algo = build(args, cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps({"args": meta, "config": cfg.to_dict()}, indent=1, default=str))
    (run_dir / "config.yaml").write_text(dump_yaml(cfg))
    writer = None
    try:
        if resume:
            restore_checkpoint(algo, ckpt)
            if not args.quiet:
                print(f"{PROG}: resumed from {ckpt} at iteration {algo.iteration}", flush=True)
        if args.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tb"))
        row: dict[str, Any] = last_progress(run_dir, algo.iteration) if resume else {}
        steps = row.get("agent_steps", 0)
        last_saved = algo.iteration
        with open(run_dir / "progress.jsonl", "a") as progress:
            while True:
                if args.iterations is not None and algo.iteration >= args.iterations:
                    break
                if steps >= args.total_steps:
                    break
                result = algo.train()
                row = progress_row(result)
                steps = row["agent_steps"]
                progress.write(json.dumps(row) + "\n")
                progress.flush()
                if writer is not None:
                    for k, v in flatten(result).items():
                        if not k.startswith(("config/", "perf/")):
                            writer.add_scalar(k, v, steps)
                    writer.flush()
                if not args.quiet:
                    social = " ".join(f"{k[4:]}={v:.3g}" for k, v in row.items() if k.startswith("ssd/"))
                    ret = row.get("episode_return_mean")
                    episodes = (f"return {ret:.3g}  {social}" if ret is not None
                                else "(no episode ended in this iteration)")
                    print(f"iter {row['iteration']:4d}  agent-steps {steps:>9d}  {episodes}"
                          f"  ({row['time_this_iter_s']:.1f} s)", flush=True)
                if algo.iteration - last_saved >= args.checkpoint_every:
                    save_checkpoint(algo, run_dir)
                    last_saved = algo.iteration
        if algo.iteration != last_saved or not ckpt.exists():
            save_checkpoint(algo, run_dir)
        row["checkpoint"] = str(ckpt)
        return row
    finally:
        if writer is not None:
            writer.close()
        algo.stop()


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    args = Args(**vars(ns))
    try:
        import ray.rllib  # noqa: F401
    except ImportError:
        return report(PROG, ImportError('Ray RLlib is not installed: pip install "ssd-gym[rllib]"'))
    try:
        t0 = time.perf_counter()
        row = train(args)
    except (ConfigError, ValueError) as exc:
        return report(PROG, exc)
    if not args.quiet:
        print(f"{PROG}: {row.get('iteration', 0)} iterations, {row.get('agent_steps', 0)} agent-steps, "
              f"{time.perf_counter() - t0:.0f} s; checkpoint {row['checkpoint']}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
