"""The one door to external programs: argv lists only, never a shell string."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import console
from .errors import CommandError


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together, for classifying a failure from its log."""
        return self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    echo: bool = False,
    what: str | None = None,
    timeout: float | None = None,
    input: str | None = None,
) -> Result:
    """Run `argv`, capture its output, and raise `CommandError` when `check` and it fails.

    `echo` prints the command first: mutating commands are echoed so logs show what changed.
    """
    args = [os.fspath(a) for a in argv]
    if echo:
        console.command(args, cwd=Path(cwd) if cwd else None)
    try:
        cp = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(
            args, 127, "", f"{args[0]}: not found ({exc.strerror})", what=what
        ) from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise CommandError(
            args, 124, out, err + f"\ntimed out after {timeout}s", what=what
        ) from exc
    result = Result(args, cp.returncode, cp.stdout, cp.stderr)
    if check and cp.returncode != 0:
        raise CommandError(args, cp.returncode, cp.stdout, cp.stderr, what=what)
    return result
