"""The one door to external programs: argv lists only, never a shell string."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sdkmirror.core.errors import CommandError
from sdkmirror.infra import console


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
    exact: bool = False,
) -> Result:
    """Run `argv`, capture its output, and raise `CommandError` when `check` and it fails.

    `echo` prints the command first: mutating commands are echoed so logs show what changed.
    `exact` decodes the output as UTF-8 keeping undecodable bytes (as surrogates) and every
    newline as written, so text read from a repository round-trips to its bytes.
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
            text=not exact,
            timeout=timeout,
            input=_encode(input) if exact and input is not None else input,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(
            args, 127, "", f"{args[0]}: not found ({exc.strerror})", what=what
        ) from exc
    except subprocess.TimeoutExpired as exc:
        out, err = _decode(exc.stdout), _decode(exc.stderr)
        raise CommandError(
            args, 124, out, err + f"\ntimed out after {timeout}s", what=what
        ) from exc
    result = Result(args, cp.returncode, _decode(cp.stdout), _decode(cp.stderr))
    if check and cp.returncode != 0:
        raise CommandError(args, result.returncode, result.stdout, result.stderr, what=what)
    return result


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "surrogateescape")
    return data or ""


def pipe(
    first: Sequence[str | os.PathLike[str]],
    second: Sequence[str | os.PathLike[str]],
    *,
    first_env: Mapping[str, str],
    second_env: Mapping[str, str],
    what: str | None = None,
    timeout: float | None = None,
) -> None:
    """Run `first | second` as two processes joined by a pipe (no shell); raise `CommandError`
    naming the first of them that fails. Output that is not piped is discarded, errors kept."""
    argvs = [[os.fspath(a) for a in first], [os.fspath(a) for a in second]]
    # stderr goes to files: a pipe nobody reads while waiting could fill and stall the child.
    with tempfile.TemporaryFile() as err1, tempfile.TemporaryFile() as err2:
        try:
            writer = subprocess.Popen(
                argvs[0],
                env=dict(first_env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err1,
            )
        except FileNotFoundError as exc:
            raise CommandError(argvs[0], 127, "", f"not found ({exc.strerror})", what=what) from exc
        try:
            reader = subprocess.Popen(
                argvs[1], env=dict(second_env), stdin=writer.stdout, stdout=err2, stderr=err2
            )
        except FileNotFoundError as exc:
            writer.kill()
            writer.wait()
            raise CommandError(argvs[1], 127, "", f"not found ({exc.strerror})", what=what) from exc
        finally:
            if writer.stdout is not None:
                writer.stdout.close()  # the reader holds the pipe now; its exit ends the writer
        try:
            codes = (writer.wait(timeout), reader.wait(timeout))
        except subprocess.TimeoutExpired as exc:
            for p in (writer, reader):
                p.kill()
                p.wait()
            raise CommandError(argvs[0], 124, "", f"timed out after {timeout}s", what=what) from exc
        # A writer killed by SIGPIPE only says the reader stopped early: blame the reader then.
        order = (1, 0) if codes[0] == -signal.SIGPIPE else (0, 1)
        for i in order:
            if codes[i] != 0:
                err = (err1, err2)[i]
                err.seek(0)
                text = err.read().decode(errors="replace")
                raise CommandError(argvs[i], codes[i], "", text, what=what)
