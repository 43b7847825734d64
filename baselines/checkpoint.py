"""Crash-safe checkpoints of a lockstep run and atomic file writes.

Layout of a run directory::

    run.json                   the run's arguments and resolved agent config
    progress.csv               one row per finished episode (learning curves)
    tb/                        TensorBoard events
    checkpoints/step_000123456/learner_0.zip ... moa.pt state.json
    checkpoints/latest.json    {"dir": "step_000123456", "agent_steps": 123456}

A checkpoint directory is written under a temporary name and renamed into place; ``latest.json`` is
replaced atomically afterwards. A process killed at any moment (kill -9) therefore leaves
``latest.json`` pointing at a complete checkpoint, and resuming loses at most the steps since it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

LATEST = "latest.json"


def atomic_write_text(path: str | os.PathLike, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` via a temp file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable))


def _jsonable(x: Any) -> Any:
    return x.tolist() if isinstance(x, (np.generic, np.ndarray)) else str(x)  # np.generic.tolist: a Python scalar


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The directory of the newest complete checkpoint, or None."""
    ckpt_root = Path(run_dir) / "checkpoints"
    pointer = ckpt_root / LATEST
    if not pointer.exists():
        return None
    try:
        info = json.loads(pointer.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    path = ckpt_root / info["dir"]
    return path if (path / "state.json").exists() else None


def save_checkpoint(run_dir: str | os.PathLike, agent_steps: int, learners: list, state: dict[str, Any],
                    influence_env: Any | None = None, keep: int = 2) -> Path:
    """Save every learner (SB3 zip: weights + optimiser), the MOA and ``state``; return the directory."""
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step_{agent_steps:012d}"
    final = ckpt_root / name
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".{name}."))
    try:
        for i, learner in enumerate(learners):
            learner.save(tmp / f"learner_{i}.zip")
        if influence_env is not None:
            influence_env.save_moa(str(tmp / "moa.pt"))
        atomic_write_json(tmp / "state.json", dict(state, agent_steps=agent_steps))
        if final.exists():  # same step saved twice (e.g. final save right after a periodic one)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(ckpt_root / LATEST, {"dir": name, "agent_steps": agent_steps})
    _prune(ckpt_root, keep=keep, protect=name)
    return final


def _prune(ckpt_root: Path, keep: int, protect: str) -> None:
    """Delete older checkpoints (and leftovers of interrupted saves), keeping the newest ``keep``."""
    for leftover in ckpt_root.glob(".step_*"):
        shutil.rmtree(leftover, ignore_errors=True)
    done = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    for old in done[: max(0, len(done) - keep)]:
        if old.name != protect:
            shutil.rmtree(old, ignore_errors=True)


def load_state(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(ckpt_dir) / "state.json").read_text())


def restore_learners(ckpt_dir: str | os.PathLike, learners: list, state: dict[str, Any]) -> None:
    """Weights, optimiser state and step counters (so the lr schedule continues where it stopped)."""
    ckpt_dir = Path(ckpt_dir)
    for i, learner in enumerate(learners):
        path = ckpt_dir / f"learner_{i}.zip"
        if not path.exists():
            raise FileNotFoundError(f"checkpoint {ckpt_dir} has no {path.name}: was it made with another sharing mode?")
        learner.set_parameters(str(path), exact_match=True, device=learner.device)
        learner.num_timesteps = int(state["learners"][i]["num_timesteps"])
        learner._n_updates = int(state["learners"][i]["n_updates"])


def restore_moa(ckpt_dir: str | os.PathLike, influence_env: Any | None, state: dict[str, Any]) -> None:
    """The influence wrapper's MOA and curriculum step, if the run has one."""
    if influence_env is not None:
        influence_env.load_moa(str(Path(ckpt_dir) / "moa.pt"))
        influence_env.global_step = int(state["influence_global_step"])
