"""One run at a time per work directory; a second run says at once whom it waits for."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from sdkmirror.core.errors import LocalError, LockHeld, os_problem
from sdkmirror.infra import console

OWNER = "run.owner"  # the pid of the run holding the lock, for the message of the next one


def _holder(work_dir: Path) -> str:
    try:
        pid = (work_dir / OWNER).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return "another run"
    return f"the run held by pid {pid}" if pid.isdigit() else "another run"


@contextmanager
def exclusive(work_dir: Path, timeout: float, what: str = "sync") -> Iterator[None]:
    path = work_dir / "run.lock"
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=timeout)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            console.info(f"waiting up to {timeout:g} s for {_holder(work_dir)} ({path})")
            try:
                lock.acquire()
            except Timeout:
                pid = _holder(work_dir).removeprefix("the run held by ")
                who = "another run" + (f" ({pid})" if pid.startswith("pid") else "")
                raise LockHeld(
                    f"{who} holds {path} (waited {timeout:g}s); let it finish, then run {what} "
                    "again"
                ) from None
        (work_dir / OWNER).write_text(f"{os.getpid()}\n", encoding="utf-8")
    except OSError as exc:
        raise LocalError(
            f"cannot take the run lock {path} ({os_problem(exc)}); work_dir must be a writable "
            "directory holding only this tool's state"
        ) from None
    try:
        yield
    finally:
        lock.release()
