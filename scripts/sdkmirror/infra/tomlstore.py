"""Committed TOML records edited with tomlkit: comments survive, writes are atomic."""

from __future__ import annotations

from pathlib import Path

import tomlkit
from tomlkit import TOMLDocument
from tomlkit.items import Table

from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.errors import RecordError


def read(path: Path, header: str) -> TOMLDocument:
    """The document at `path`, or a new one that starts with `header` as a comment block."""
    if path.exists():
        try:
            return tomlkit.parse(path.read_text(encoding="utf-8"))
        except Exception as exc:  # tomlkit raises several unrelated types
            raise RecordError(f"{path} is not valid TOML ({exc}); restore it from git") from None
    doc = tomlkit.document()
    for line in header.strip().splitlines():
        doc.add(tomlkit.comment(line))
    return doc


def write(path: Path, doc: TOMLDocument, *, what: str = "", fix: str = "") -> None:
    """Replace `path` in one rename, so a crash leaves the old or the new file, never half;
    a failure is one `LocalError` naming `what` and the file."""
    write_atomic(path, tomlkit.dumps(doc), what=what, fix=fix)


def section(doc: TOMLDocument, key: str) -> Table:
    """The `[key.*]` super-table of `doc`, created after a blank line when missing."""
    if key not in doc:
        doc.add(tomlkit.nl())
        doc[key] = tomlkit.table(is_super_table=True)
    table: Table = doc[key]
    return table
