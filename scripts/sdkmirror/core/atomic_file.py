"""The one way a report, ledger or registry reaches the disk: whole, or not at all.

The new content goes to a temporary file in the target's directory (so the rename never
crosses a file system), is flushed to disk, then replaces the target in one `os.replace`.
A reader sees the old file or the new one; a failure removes the temporary file and leaves
the old file as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sdkmirror.core.errors import LocalError, os_problem

# Written to the open file: a serializer that streams (json.dump, a renderer) needs no copy.
Content = str | Callable[[TextIO], object]


def temp_name(path: Path) -> Path:
    """A hidden sibling of `path`, unique per call, recognisable as ours by its suffix."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def write_atomic(
    path: str | os.PathLike[str], content: Content, *, what: str = "", fix: str = ""
) -> Path:
    """Replace `path` with `content` in one rename; returns the path.

    An OSError becomes one `LocalError` naming the file (`what` says which record it is,
    `fix` what to do); any other failure (a serializer that raises) propagates unchanged.
    Either way the temporary file is gone and the previous file is intact.
    """
    target = Path(path)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(target)
        # O_EXCL: never write through a file or link someone else put there; 0o666 under
        # the umask gives the mode a plain `open(..., "w")` would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if isinstance(content, str):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        name = f"{what} {target}" if what else str(target)
        raise LocalError(
            f"{name} was not written ({os_problem(exc)}); the previous file is intact"
            + (
                f": {fix}"
                if fix
                else ": make its directory writable (and free space), then run again"
            )
        ) from None
    except BaseException:
        _discard(tmp)
        raise
    return target


def _discard(tmp: Path | None) -> None:
    # A directory that went away or turned read-only leaves nothing we could clean.
    if tmp is not None:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
