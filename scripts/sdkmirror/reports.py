"""Run reports (sync, smoke, publish) as JSON files: the one reader every consumer shares."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import UsageError


def read(path: Path, kind: str) -> dict[str, Any]:
    """The report at `path`, which must be JSON with `"kind": kind`; one clear error otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the {kind} report {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path} is not JSON ({exc.msg}); pass the file `invoke {kind}` wrote"
        ) from exc
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise UsageError(f'{path} is not a {kind} report (its "kind" is not {kind!r})')
    if kind == "smoke" and not isinstance(data.get("results"), list):
        raise UsageError(f'{path}: a smoke report needs a "results" list')
    return data


def kind_of(path: Path) -> object:
    """The `kind` a JSON file declares, or None when it is unreadable or declares none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def last_sync_path(reports_dir: Path, origin: str) -> Path:
    """Where the last sync against `origin` is kept: one record per origin URL, so a run
    against a mistyped `--origin` never stands in for the real mirror's."""
    key = hashlib.sha256(origin.encode()).hexdigest()[:16]
    return reports_dir / "last-sync" / f"{key}.json"
