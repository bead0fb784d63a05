"""The one door to external programs: argv lists only, never a shell string."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        child = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=not exact,
        )
    except FileNotFoundError as exc:
        raise CommandError(
            args, 127, "", f"{args[0]}: not found ({exc.strerror})", what=what
        ) from exc
    with child:
        try:
            out, err = child.communicate(
                _encode(input) if exact and input is not None else input, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            kill_tree(child)
            out, err = child.communicate()
            raise CommandError(
                args, 124, _decode(out), _decode(err) + f"\ntimed out after {timeout}s", what=what
            ) from exc
        except BaseException:  # Ctrl-C included: nothing it started outlives this call
            kill_tree(child)
            raise
    result = Result(args, child.returncode, _decode(out), _decode(err))
    if check and child.returncode != 0:
        raise CommandError(args, result.returncode, result.stdout, result.stderr, what=what)
    return result


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc): what a child started, helpers included."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(child: subprocess.Popen[Any], *, grace: float = 5.0) -> None:
    """SIGKILL `child` and every process below it, reap `child`, and give the others up to
    `grace` seconds to be gone: none of them keeps writing into a directory the caller is
    about to remove (git's index-pack below an interrupted fetch, for one)."""
    below = descendants(child.pid)
    for pid in [child.pid, *below]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + grace
    for pid in below:
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.01)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie no longer writes anything)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


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
