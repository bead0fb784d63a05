"""Whether a reused session virtualenv already holds what the session installs.

`nox -s smoke` keeps its virtualenv between runs; the project (editable) and the Node wheel are
installed again only when the project's declared dependencies or the session's own pins change.
Stdlib only: `is_current` runs in nox's own Python, `mark` in the virtualenv's.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

STAMP = "sdkmirror-installed.txt"


def install_key(project: Path, *pins: str) -> str:
    """What the installs depend on: the project's location and pyproject.toml, and the pins."""
    digest = hashlib.sha256(str(project.resolve()).encode())
    digest.update((project / "pyproject.toml").read_bytes())
    for pin in pins:
        digest.update(b"\0" + pin.encode())
    return digest.hexdigest()


def is_current(venv: str | os.PathLike[str], key: str) -> bool:
    try:
        return (Path(venv) / STAMP).read_text(encoding="utf-8").strip() == key
    except OSError:
        return False


def mark(venv: str | os.PathLike[str], key: str) -> None:
    """Record that the installs for `key` completed (atomically: a torn stamp never matches)."""
    stamp = Path(venv) / STAMP
    tmp = stamp.with_name(f".{stamp.name}.tmp")
    tmp.write_text(key + "\n", encoding="utf-8")
    os.replace(tmp, stamp)


if __name__ == "__main__":  # `python -m sdkmirror.smoke.session_venv KEY`, after the installs
    mark(sys.prefix, sys.argv[1])
