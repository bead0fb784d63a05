"""Run reports (sync, smoke, publish) as JSON files: the one reader and writer they all share.

Each kind has a declared shape, checked on read, so a report that parses but is wrong (an
`"alerts": "zz"`, a report of another kind) is one error naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.errors import RecordError, UsageError, os_problem
from sdkmirror.core.schema import Field, ListOf, Table, boolean, number, one_of, text, validate

_ALERT = Table({"kind": Field(text), "ref": Field(text), "detail": Field(text)})
_NAMED = Table({"name": Field(text)})
SHAPES: dict[str, Table] = {
    "sync": Table(
        {
            "status": Field(one_of("noop", "updated", "diverged", "failed")),
            "upstream": Field(text, required=False),
            "origin": Field(text, required=False),
            "dry_run": Field(boolean, required=False),
            "alerts": Field(ListOf(_ALERT), required=False),
            "new_tags": Field(ListOf(_NAMED), required=False),
            "new_release_branches": Field(ListOf(_NAMED), required=False),
            "mirror_branch": Field(Table(), required=False),
            "changed": Field(boolean, required=False),
            "ledger_changed": Field(boolean, required=False),
            "error": Field(text, required=False, nullable=True),
            "started_at": Field(text, required=False),
            "duration_s": Field(number, required=False),
        }
    ),
    "smoke": Table(
        {
            "ref": Field(text, required=False, nullable=True),
            "commit": Field(text, required=False, nullable=True),
            "results": Field(
                ListOf(
                    Table(
                        {
                            "status": Field(text),
                            "commit": Field(text, required=False, nullable=True),
                            "category": Field(text, required=False, nullable=True),
                        }
                    )
                )
            ),
        }
    ),
    "publish": Table(
        {
            "npm_version": Field(text),
            "upstream_tag": Field(text),
            "dry_run": Field(boolean),
            "published": Field(boolean),
            "already_published": Field(boolean),
        }
    ),
}


# Which command writes each kind, for the error's fix.
WRITERS = {
    "sync": "invoke sync --report",
    "smoke": "nox -s smoke",
    "publish": "invoke publish --report",
    "bisect": "invoke smoke.bisect --report",
}


def read(path: Path, kind: str) -> dict[str, Any]:
    """The report at `path`, which must be JSON with `"kind": kind` and that kind's shape."""
    writer = WRITERS.get(kind, f"invoke {kind}")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RecordError(f"cannot read the {kind} report {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RecordError(f"{path} is not UTF-8 text; pass the file `{writer}` wrote") from None
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"{path} is not JSON ({exc.msg}); pass the file `{writer}` wrote"
        ) from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise RecordError(f'{path} is not a {kind} report (its "kind" is not {kind!r})')
    if kind in SHAPES:
        validate(data, SHAPES[kind], path, f"pass the file `{writer}` wrote")
    return data


def kind_of(path: Path) -> object:
    """The `kind` a JSON file declares, or None when it is unreadable or declares none."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def last_sync_path(reports_dir: Path, origin: str) -> Path:
    """Where the last sync against `origin` is kept: one record per origin URL, so a run
    against a mistyped `--origin` never stands in for the real mirror's."""
    key = hashlib.sha256(origin.encode()).hexdigest()[:16]
    return reports_dir / "last-sync" / f"{key}.json"


def check_writable(path: str | Path | None, what: str = "--report") -> None:
    """Fail before anything changes when `path` cannot be written (not after a push)."""
    if not path:
        return
    p = Path(path)
    existed = p.exists()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{what} {path} cannot be written ({os_problem(exc)}); pass a writable path"
        ) from None
    if not existed:
        p.unlink()


def write_json(path: str | Path | None, data: Any, *, what: str = "the report") -> None:
    """Write `data` as JSON in one rename: a reader sees the old file or the new, never half."""
    if not path:
        return
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", what=what)
