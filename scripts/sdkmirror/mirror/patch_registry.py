"""The patch registry: the TOML record of every `patch-NAME` branch the mirror has carried.

A record says why the branch exists, on which mirror tag it starts and which upstream PR
carries the fix; a retired record stays, so the registry is the history of local patches.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import tomlkit

from sdkmirror.core import config as config_mod
from sdkmirror.core.errors import MirrorError, UsageError
from sdkmirror.core.schema import Entries, Field, Table, one_of, sha, text, timestamp, validate
from sdkmirror.infra import console, tomlstore

PREFIX = "patch-"
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
STATUSES = ("active", "retired")

HEADER = """
Patch registry: every `patch-NAME` branch this mirror has carried on top of a mirror tag.
Written by `invoke patch.new` and `invoke patch.retire`; the README's patch table is generated
from it (`invoke patch.table`). A retired patch keeps its record: what was carried, and why.
"""


SHAPE = Table(
    {
        "patches": Field(
            Entries(
                Table(
                    {
                        "branch": Field(text, required=False),
                        "base": Field(text),
                        "commit": Field(sha),
                        "reason": Field(text, required=False),
                        "upstream_pr": Field(text, required=False),
                        "status": Field(one_of(*STATUSES), required=False),
                        "created": Field(timestamp, required=False),
                        "retired": Field(timestamp, required=False),
                        "head": Field(text, required=False),
                    }
                )
            ),
            required=False,
        )
    }
)


@dataclass(frozen=True)
class Patch:
    name: str
    base: str  # the mirror tag the branch starts from
    commit: str  # the commit the branch was created on (the base tag's commit)
    reason: str
    upstream_pr: str = ""
    status: str = "active"
    created: date | None = None
    retired: date | None = None
    head: str = ""  # the branch head when it was retired

    @property
    def branch(self) -> str:
        return PREFIX + self.name

    @property
    def active(self) -> bool:
        return self.status == "active"


def check_name(name: str) -> str:
    """The patch name, or a UsageError that says what a valid one looks like."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        shown = str(name).encode("unicode_escape").decode("ascii")[:80]
        raise UsageError(
            f"invalid patch name {shown!r}: use 1-63 lowercase letters, digits and '-', "
            "starting with a letter or digit (the branch becomes patch-NAME)"
        )
    return name


def name_of_branch(branch: str) -> str | None:
    """`patch-foo` -> `foo`; None for a branch that is not a patch branch."""
    return branch[len(PREFIX) :] if branch.startswith(PREFIX) else None


class PatchRegistry:
    """The TOML registry, edited with tomlkit so hand-written comments survive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc = tomlstore.read(path, HEADER)
        validate(
            self.doc.unwrap(), SHAPE, path, "restore it from git; edit it with `invoke patch.*`"
        )

    @property
    def patches(self) -> dict[str, Patch]:
        out: dict[str, Patch] = {}
        for name, t in self.doc.get("patches", {}).items():
            status = str(t.get("status", "active"))
            if status not in STATUSES:
                raise MirrorError(
                    f"{self.path}: patch {name!r} has status {status!r}; use active or retired"
                )
            out[name] = Patch(
                name=name,
                base=str(t["base"]),
                commit=str(t["commit"]),
                reason=str(t.get("reason", "")),
                upstream_pr=str(t.get("upstream_pr", "")),
                status=status,
                created=t.get("created"),
                retired=t.get("retired"),
                head=str(t.get("head", "")),
            )
        return out

    def active(self) -> dict[str, Patch]:
        return {n: p for n, p in self.patches.items() if p.active}

    def add(self, patch: Patch) -> None:
        tomlstore.section(self.doc, "patches")
        entry = tomlkit.table()
        entry["branch"] = patch.branch
        entry["base"] = patch.base
        entry["commit"] = patch.commit
        entry["reason"] = patch.reason
        if patch.upstream_pr:
            entry["upstream_pr"] = patch.upstream_pr
        entry["status"] = patch.status
        entry["created"] = patch.created or utc_today()
        self.doc["patches"][patch.name] = entry

    def retire(self, name: str, *, when: date, head: str) -> None:
        entry = self.doc["patches"][name]
        entry["status"] = "retired"
        entry["retired"] = when
        if head:
            entry["head"] = head

    def save(self) -> None:
        tomlstore.write(self.path, self.doc, what="the patch registry")


def utc_today() -> date:
    """Today in UTC: the date patch records carry."""
    return datetime.now(UTC).date()


def main_list(*, json_out: bool = False) -> list[Patch]:
    cfg = config_mod.load()
    patches = list(PatchRegistry(cfg.patch_registry).patches.values())
    if json_out:
        console.result_json({"patches": [_as_json(p) for p in patches]})
        return patches
    rows = [
        [p.branch, p.base, p.status, str(p.created or ""), p.reason, p.upstream_pr or "-"]
        for p in patches
    ]
    console.result(
        console.table(
            f"patches: {sum(p.active for p in patches)} active, {len(patches)} registered",
            ["branch", "base", "status", "created", "reason", "upstream PR"],
            rows,
        )
    )
    return patches


def _as_json(p: Patch) -> dict[str, Any]:
    data = asdict(p)
    data["branch"] = p.branch
    for key in ("created", "retired"):
        data[key] = str(data[key]) if data[key] else None
    return data
