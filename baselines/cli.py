"""What the three commands (``ssd-train``, ``ssd-eval``, ``ssd-leaderboard``) share: the integer
format their flags accept and the way they fail.

Every integer flag goes through :func:`integer`, so ``5e5``, ``500000`` and ``500_000`` mean the same
thing to every command, and ``2.5`` or ``1e-3`` are refused with the flag's name. Ranges (``>= 1``...)
are not checked here but by the code that uses the value (``baselines.train.validate_args`` and
friends), so the Python API and the commands share one set of rules.
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal, InvalidOperation

#: exit status of every command for a bad argument (argparse's own)
USAGE_ERROR = 2

# 10**30 is far beyond any budget; the bound keeps "1e999999999" from building a huge int
_MAX_DIGITS = 30


def parse_int(text: str) -> int:
    """``"5e5"``, ``"500000"``, ``"500_000"``, ``"5.0e3"`` -> int; ValueError for anything that is not
    a whole number (``"2.5"``, ``"1e-3"``, ``"nan"``, ``"ten"``)."""
    s = str(text).strip()
    try:
        return int(s)  # the common case, exact for any size; also takes "500_000"
    except ValueError:
        pass
    try:
        d = Decimal(s)  # exact, unlike float: "5e5" is 500000 with no rounding; takes "5_000.0" too
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number (write e.g. 500000, 500_000 or 5e5)") from None
    if not d.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    if d.adjusted() >= _MAX_DIGITS:
        raise ValueError(f"{text!r} is too large")
    if d != d.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number")
    return int(d)


def integer(text: str) -> int:
    """argparse ``type=`` for every integer flag of the commands (see :func:`parse_int`)."""
    try:
        return parse_int(text)
    except ValueError as exc:
        # argparse prints "<prog>: error: argument --flag: <this>" and exits with status 2
        raise argparse.ArgumentTypeError(str(exc)) from None


def report(prog: str, exc: BaseException) -> int:
    """Print an expected error as one ``prog: error: ...`` line on stderr; return the exit status 2
    (argparse's, so every bad argument exits alike whether argparse or the command caught it)."""
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return USAGE_ERROR


def time_left(pending: list[tuple[str, int]], rates: dict[str, float], workers: int) -> str:
    """``", about N min left"`` (``s`` under a minute and a half) for a progress line: the pending runs,
    ``(config, agent-steps)``, each at its config's rate so far (agent-steps/s of one run; a config
    with no finished run at the mean of the known rates), shared by ``workers``. Runs still going
    count as not started, so estimates run a little high; empty when nothing is pending or no rate
    is known yet."""
    if not pending or not rates:
        return ""
    default = sum(rates.values()) / len(rates)
    left = sum(steps / rates.get(config, default) for config, steps in pending) / min(workers, len(pending))
    return f", about {left:.0f} s left" if left < 90 else f", about {left / 60:.0f} min left"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
