"""The mirror ledger: every release tag the mirror took, and every head its branch had."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tomlkit

from sdkmirror.core.schema import Entries, Field, ListOf, Table, sha, timestamp, validate
from sdkmirror.infra import tomlstore

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
    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc = tomlstore.read(path, HEADER)
        validate(self.doc.unwrap(), SHAPE, path, FIX.replace("FILE", str(path)))

    @property
    def tags(self) -> dict[str, TagRecord]:
        table = self.doc.get("tags", {})
        return {
            name: TagRecord(name, str(t["object"]), str(t["commit"]), t["mirrored_at"])
            for name, t in table.items()
        }

    @property
    def mirror_branches(self) -> dict[str, list[str]]:
        """Each mirror branch the ledger knows, with every head it has had, oldest first."""
        table = self.doc.get("mirror_branches", {})
        return {str(name): [str(h) for h in t.get("heads", [])] for name, t in table.items()}

    def heads(self, branch: str) -> list[str]:
        return self.mirror_branches.get(branch, [])

    def add_tag(self, name: str, obj: str, commit: str, when: datetime | None = None) -> bool:
        """Record a mirrored tag; an existing record is never rewritten."""
        tags = tomlstore.section(self.doc, "tags")
        if name in tags:
            return False
        entry = tomlkit.table()
        entry["object"] = obj
        entry["commit"] = commit
        entry["mirrored_at"] = (when or datetime.now(UTC)).replace(microsecond=0)
        tags[name] = entry
        return True

    def add_branch_head(self, branch: str, sha: str) -> bool:
        branches = tomlstore.section(self.doc, "mirror_branches")
        if branch not in branches:
            entry = tomlkit.table()
            entry["heads"] = tomlkit.array().multiline(True)
            branches[branch] = entry
        heads = branches[branch]["heads"]
        if sha in heads:
            return False
        heads.append(sha)
        return True

    def save(self) -> None:
        """Replace the ledger in one rename; on failure (disk full) the old one is intact."""
        tomlstore.write(
            self.path,
            self.doc,
            what="the ledger",
            fix="free the space, then run `invoke sync` again, it records what origin holds",
        )
