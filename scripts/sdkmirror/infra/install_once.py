"""Install a cached tool at most once, however many runs ask for it at the same time.

Every cached install (a Node, a pnpm, an npm program such as Verdaccio) follows one recipe:
take the tool's file lock, look for the completion marker, otherwise install into a fresh
temporary directory beside the destination, write the marker there and rename the whole
directory into place. A reader that finds the marker finds a complete install; a run that
dies halfway leaves only a hidden temporary directory, never a destination without its marker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from sdkmirror.core.errors import LockHeld

LOCK_TIMEOUT_S = 900.0


def is_done(dest: Path, marker: str, stamp: str | None = None) -> bool:
    """Whether `dest` holds a finished install (whose marker says `stamp`, when given)."""
    path = dest / marker
    if stamp is None:
        return path.exists()
    try:
        return path.read_text(encoding="utf-8").strip() == stamp
    except OSError:
        return False


def install_once(
    dest: Path,
    install: Callable[[Path], object],
    *,
    lock: Path,
    marker: str,
    stamp: str | None = None,
    timeout: float = LOCK_TIMEOUT_S,
) -> Path:
    """`dest`, filled by `install(tmp_dir)` unless a finished install is already there.

    `stamp` is what the marker must say (the pinned versions): an install with another stamp
    is replaced. Without it, the marker's presence is enough (the version is in `dest`'s name).
    """
    if is_done(dest, marker, stamp):
        return dest  # the common case takes no lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock), timeout=timeout):
            if is_done(dest, marker, stamp):  # another run finished it while we waited
                return dest
            _install(dest, install, marker, stamp)
    except Timeout:
        raise LockHeld(
            f"another run has held {lock} for {timeout:.0f} s while installing {dest.name}; "
            "wait for it to finish, then run again"
        ) from None
    return dest


def _install(dest: Path, install: Callable[[Path], object], marker: str, stamp: str | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        install(tmp)
        (tmp / marker).write_text("" if stamp is None else stamp + "\n", encoding="utf-8")
        # Under the lock nobody else installs here; a stale or unfinished install goes first,
        # since a rename cannot replace a non-empty directory.
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
