"""The mirror ledger: every release tag the mirror took, and every head its branch had.

Read once per run with the stdlib `tomllib` into plain dicts (a 5,000-tag ledger parses in
milliseconds) and written whole in one canonical layout: no tomlkit on this path.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.errors import RecordError
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

    def __init__(self, path: Path) -> None:
        self.path = path
        data: dict[str, Any] = {}
        if path.exists():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise RecordError(
                    f"{path} is not valid TOML ({exc}); restore it from git"
                ) from None
        validate(data, SHAPE, path, FIX.replace("FILE", str(path)))
        self.tags: dict[str, TagRecord] = {
            str(name): TagRecord(str(name), t["object"], t["commit"], t["mirrored_at"])
            for name, t in data.get("tags", {}).items()
        }
        # Each mirror branch the ledger knows, with every head it has had, oldest first.
        self.mirror_branches: dict[str, list[str]] = {
            str(name): [str(h) for h in t.get("heads", [])]
            for name, t in data.get("mirror_branches", {}).items()
        }
        self._new_tags: list[TagRecord] = []
        self._new_heads: list[tuple[str, str]] = []

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
        write_atomic(
            self.path,
            render(self.tags, self.mirror_branches),
            what="the ledger",
            fix="free the space, then run `invoke sync` again, it records what origin holds",
        )
        self._new_tags, self._new_heads = [], []


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
