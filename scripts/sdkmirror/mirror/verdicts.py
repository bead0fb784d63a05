"""Release-named tags sync refused, kept so that each is reported once, not on every run.

`work_dir/rejected-tags.json` maps a tag name to the object it had when refused and why. A
tag refused on the same object is skipped silently by the next sync (no fetch, no alert) and
listed as rejected, not pending, by `status` and `verify`; one that moves is judged again.
The file is a cache of verdicts: losing it only means each refusal is reported once more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from sdkmirror.core.atomic_file import write_atomic

FILE = "rejected-tags.json"


def path(work_dir: Path) -> Path:
    return work_dir / FILE


def load(work_dir: Path) -> dict[str, dict[str, str]]:
    """name -> {"object", "reason"}; an unreadable file counts as empty (it is a cache)."""
    try:
        data = json.loads(path(work_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(n): {"object": str(v["object"]), "reason": str(v["reason"])}
        for n, v in data.items()
        if isinstance(v, dict) and isinstance(v.get("object"), str) and "reason" in v
    }


def save(work_dir: Path, rejected: Mapping[str, Mapping[str, str]]) -> None:
    data = {n: dict(rejected[n]) for n in sorted(rejected)}
    write_atomic(path(work_dir), json.dumps(data, indent=1) + "\n", what="the rejected tags")


def still_rejected(
    rejected: Mapping[str, Mapping[str, str]], tags: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """The verdicts that still hold: the tag is listed on the object it was refused on."""
    return {n: dict(v) for n, v in rejected.items() if tags.get(n) == v["object"]}
