"""Run a command (the test suite) while busy processes load every core, to flush out races.

`python -m sdkmirror.devtools.stress [--load N] [--rounds R] -- pytest ...`: N processes spin
for the whole run; the command runs R times and the first failing round's exit code is returned.
A test that passes only on an idle machine waits on the clock: make it wait on an event or file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

SPIN = "while True: pass"


@contextmanager
def busy(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """N processes that burn CPU until the block ends (killed even on Ctrl-C)."""
    procs = [
        subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL) for _ in range(n)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def run(argv: Sequence[str], load: int, rounds: int) -> int:
    with busy(load):
        for i in range(1, rounds + 1):
            print(f"stress: round {i}/{rounds} with {load} busy processes", file=sys.stderr)
            code = subprocess.call(list(argv))
            if code:
                print(f"stress: round {i} failed with exit {code}", file=sys.stderr)
                return code
    return 0


def main(args: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sdkmirror.devtools.stress", description=__doc__)
    p.add_argument("--load", type=int, default=2 * (os.cpu_count() or 1), help="busy processes")
    p.add_argument("--rounds", type=int, default=1, help="times to run the command")
    p.add_argument("command", nargs="+", help="the command, after --")
    ns = p.parse_args(args)
    if ns.load < 0 or ns.rounds < 1:
        p.error("--load must be >= 0 and --rounds >= 1")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # nox's stop kills the spinners too
    try:
        return run(ns.command, ns.load, ns.rounds)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
