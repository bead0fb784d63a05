"""Committed TOML records edited with tomlkit: comments survive, writes are atomic."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import tomlkit
from tomlkit import TOMLDocument
from tomlkit.items import Table

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


def write(path: Path, doc: TOMLDocument) -> None:
    """Replace `path` in one rename, so a crash leaves the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(tomlkit.dumps(doc))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def section(doc: TOMLDocument, key: str) -> Table:
    """The `[key.*]` super-table of `doc`, created after a blank line when missing."""
    if key not in doc:
        doc.add(tomlkit.nl())
        doc[key] = tomlkit.table(is_super_table=True)
    table: Table = doc[key]
    return table
