"""The mirror ledger: every release tag the mirror took, and every head its branch had.

Read once per run with the stdlib `tomllib` into plain dicts (a 5,000-tag ledger parses in
milliseconds); tomlkit, which keeps the file's comments and layout, is loaded only when a run
adds something and saves.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    """The ledger as plain dicts; `add_*` queue entries that `save` writes through tomlkit."""

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
        """Replace the ledger in one rename; on failure (disk full) the old one is intact."""
        if not (self._new_tags or self._new_heads):
            return
        import tomlkit  # only a run that writes pays for it

        from sdkmirror.infra import tomlstore

        doc = tomlstore.read(self.path, HEADER)
        tags = tomlstore.section(doc, "tags")
        for rec in self._new_tags:
            if rec.name in tags:
                continue
            entry = tomlkit.table()
            entry["object"] = rec.object
            entry["commit"] = rec.commit
            entry["mirrored_at"] = rec.mirrored_at
            tags[rec.name] = entry
        if self._new_heads:
            branches = tomlstore.section(doc, "mirror_branches")
            for branch, sha in self._new_heads:
                if branch not in branches:
                    table = tomlkit.table()
                    table["heads"] = tomlkit.array().multiline(True)
                    branches[branch] = table
                heads = branches[branch]["heads"]
                if sha not in heads:
                    heads.append(sha)
        tomlstore.write(
            self.path,
            doc,
            what="the ledger",
            fix="free the space, then run `invoke sync` again, it records what origin holds",
        )
        self._new_tags, self._new_heads = [], []
