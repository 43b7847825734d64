"""One trainer per run directory: an advisory lock on ``<run_dir>/train.lock``.

The lock is ``fcntl.flock`` on that file, which holds the holder's PID, host and start time (for
the messages only). The kernel drops a flock when its process dies, however it dies (kill -9
included), so a lock can never outlive its trainer on this host; a file left behind by a trainer
that died names a process that no longer holds it, and the next trainer takes it over with a
warning. A trainer that ends normally (or by an exception, Ctrl-C included) deletes the file.

Platforms without ``fcntl`` (Windows) train unlocked, with a warning. Over a network file system
the lock is as good as that file system's flock.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from baselines.config import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_NAME = "train.lock"


class RunDirLocked(ConfigError):
    """Another live trainer holds the run directory's lock (a ConfigError: the commands exit 2)."""


def _holder_text(info: dict[str, Any]) -> str:
    if not info:
        return "another process (it has not written its PID yet)"
    return (f"PID {info.get('pid', '?')} on host {info.get('host', '?')}, "
            f"started {info.get('started', '?')}")


def _read(fd: int) -> dict[str, Any]:
    try:
        info = json.loads(os.pread(fd, 1 << 16, 0).decode() or "{}")  # a line of JSON, far below 64 KiB
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


class RunDirLock:
    """``with RunDirLock(run_dir):`` holds the run directory for this process (see module docstring).

    Entering raises :class:`RunDirLocked` (naming the holder's PID and host) if a live trainer has it.
    The directory must exist; nothing but ``train.lock`` is written.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:  # pragma: no cover - not POSIX
            print(f"warning: this platform has no fcntl: {self.path.parent} is not locked against a second trainer",
                  file=sys.stderr)
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise RunDirLocked(
                    f"run dir {self.path.parent} is in use by another trainer ({_holder_text(holder)}); wait for it "
                    f"to finish or choose another --run-dir. If that process is surely gone (e.g. it ran on another "
                    f"host that crashed), delete {self.path} and try again") from None
            except BaseException:
                os.close(fd)
                raise
            # the holder we waited on may have deleted the file as it released it: then we lock a
            # file nobody else can see, and must start over on the one now at the path
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read(fd)
        if stale:
            print(f"warning: taking over the lock of {self.path.parent} left by a trainer that is no longer running "
                  f"({_holder_text(stale)})", file=sys.stderr)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # delete while still holding the lock, so that no one can lock the file we are leaving; but
        # only our own file (someone may have deleted ours by hand and a new trainer made another)
        try:
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "RunDirLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
