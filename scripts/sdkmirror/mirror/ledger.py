"""The mirror ledger: every release tag the mirror took, and every head its branch had.

Read once per run with the stdlib `tomllib` into plain dicts (a 5,000-tag ledger parses in
milliseconds) and written whole in one canonical layout: no tomlkit on this path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.errors import MirrorError, RecordError
from sdkmirror.core.schema import Entries, Field, ListOf, Table, sha, timestamp, validate

HEADER = """
Mirror ledger: every upstream release tag this mirror has taken, on the object it had then,
and every commit the mirror branch has pointed at. Written by `invoke sync`; audited by
`invoke verify`. Do not edit by hand: a mirror tag never moves.
"""


SHAPE = Table(
    {
        "tags": Field(
            Entries(
                Table({"object": Field(sha), "commit": Field(sha), "mirrored_at": Field(timestamp)})
            ),
            required=False,
        ),
        "mirror_branches": Field(Entries(Table({"heads": Field(ListOf(sha))})), required=False),
    }
)
FIX = "restore it from git (`git checkout -- FILE`); the ledger is written only by `invoke sync`"


@dataclass(frozen=True)
class TagRecord:
    name: str
    object: str
    commit: str
    mirrored_at: datetime


class MirrorLedger:
    """The ledger as plain dicts; `add_*` only ever add, `save` writes the whole file."""

    def __init__(self, path: Path, cache_dir: Path | None = None) -> None:
        """Read `path`; with `cache_dir`, through a JSON copy keyed by the file's hash (JSON
        parses several times faster than TOML: the no-op sync's largest cost at 5,000 tags)."""
        self.path = path
        self._cache_dir = cache_dir
        text = path.read_bytes() if path.exists() else b""
        data = _cached(cache_dir, text) if cache_dir and text else None
        if data is None:
            data = self._parse(path, text)
            if cache_dir and text:
                _keep(cache_dir, text, data)
        self.tags: dict[str, TagRecord] = {
            str(name): TagRecord(
                str(name),
                t["object"],
                t["commit"],
                t["mirrored_at"]
                if isinstance(t["mirrored_at"], datetime)
                else datetime.fromisoformat(t["mirrored_at"]),
            )
            for name, t in data.get("tags", {}).items()
        }
        # Each mirror branch the ledger knows, with every head it has had, oldest first.
        self.mirror_branches: dict[str, list[str]] = {
            str(name): [str(h) for h in t.get("heads", [])]
            for name, t in data.get("mirror_branches", {}).items()
        }
        self._new_tags: list[TagRecord] = []
        self._new_heads: list[tuple[str, str]] = []

    @staticmethod
    def _parse(path: Path, text: bytes) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if text:
            try:
                data = tomllib.loads(text.decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise RecordError(
                    f"{path} is not valid TOML ({exc}); restore it from git"
                ) from None
        validate(data, SHAPE, path, FIX.replace("FILE", str(path)))
        return data

    def heads(self, branch: str) -> list[str]:
        return self.mirror_branches.get(branch, [])

    def add_tag(self, name: str, obj: str, commit: str, when: datetime | None = None) -> bool:
        """Record a mirrored tag; an existing record is never rewritten."""
        if name in self.tags:
            return False
        rec = TagRecord(name, obj, commit, (when or datetime.now(UTC)).replace(microsecond=0))
        self.tags[name] = rec
        self._new_tags.append(rec)
        return True

    def add_branch_head(self, branch: str, sha: str) -> bool:
        heads = self.mirror_branches.setdefault(branch, [])
        if sha in heads:
            return False
        heads.append(sha)
        self._new_heads.append((branch, sha))
        return True

    def save(self) -> None:
        """Replace the ledger in one rename; on failure (disk full) the old one is intact.

        The file is rendered whole from the dicts in one canonical layout (it is written only
        by sync, never by hand): linear, where editing a parsed tomlkit document of thousands
        of entries takes seconds.
        """
        if not (self._new_tags or self._new_heads):
            return
        text = render(self.tags, self.mirror_branches)
        write_atomic(
            self.path,
            text,
            what="the ledger",
            fix="free the space, then run `invoke sync` again, it records what origin holds",
        )
        self._new_tags, self._new_heads = [], []
        if self._cache_dir:  # the next run reads what was just written, from JSON
            data = {
                "tags": {
                    r.name: {"object": r.object, "commit": r.commit, "mirrored_at": r.mirrored_at}
                    for r in self.tags.values()
                },
                "mirror_branches": {b: {"heads": h} for b, h in self.mirror_branches.items()},
            }
            _keep(self._cache_dir, text.encode("utf-8"), data)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes (ASCII only, \\uXXXX) are valid TOML escapes."""
    return json.dumps(text, ensure_ascii=True)


def _when(at: datetime) -> str:
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def render(tags: Mapping[str, TagRecord], branches: Mapping[str, list[str]]) -> str:
    """The ledger file: header, one table per tag (in the order taken), one per branch."""
    out = [f"# {line}" for line in HEADER.strip().splitlines()]
    out.append("")
    for rec in tags.values():
        out += [
            f"[tags.{_string(rec.name)}]",
            f"object = {_string(rec.object)}",
            f"commit = {_string(rec.commit)}",
            f"mirrored_at = {_when(rec.mirrored_at)}",
            "",
        ]
    for branch, heads in branches.items():
        out += [f"[mirror_branches.{_key(branch)}]", "heads = ["]
        out += [f"    {_string(h)}," for h in heads]
        out += ["]", ""]
    return "\n".join(out)


CACHE = "ledger-cache.json"


def _cached(cache_dir: Path, text: bytes) -> dict[str, Any] | None:
    """The ledger as last parsed, if the file still has the same bytes (else None)."""
    try:
        kept = json.loads((cache_dir / CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("sha256") != hashlib.sha256(text).hexdigest():
        return None
    data = kept.get("data")
    return data if isinstance(data, dict) else None


def _keep(cache_dir: Path, text: bytes, data: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only costs the next run a TOML parse."""
    doc = {"sha256": hashlib.sha256(text).hexdigest(), "data": data}
    with contextlib.suppress(MirrorError, OSError):
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_dir / CACHE, json.dumps(doc, default=_when), what="the ledger cache")
