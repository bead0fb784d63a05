"""One run at a time per work directory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import LockHeld


@contextmanager
def exclusive(work_dir: Path, timeout: float, what: str = "sync") -> Iterator[None]:
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "run.lock"
    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockHeld(
            f"another run holds {path} (waited {timeout:g}s); let it finish, then run {what} again"
        ) from None
    try:
        yield
    finally:
        lock.release()
