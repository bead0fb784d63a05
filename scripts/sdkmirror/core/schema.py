"""Declared shapes of the records we read back (ledgers, registry, reports), checked on read.

A record that parses but has the wrong shape is one `RecordError` naming the file, the entry
and the key, instead of a `KeyError` or `TypeError` deep inside whoever reads it next.
A shape is a `Field` per key; `Table(fields)` is a mapping, `Entries(shape)` a mapping from
free-form names (tag names, patch names) to one shape, `ListOf(shape)` a list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sdkmirror.core import identifiers
from sdkmirror.core.errors import RecordError

Check = Callable[[Any], str | None]  # None when the value fits, else what it should be


def text(v: Any) -> str | None:
    return None if isinstance(v, str) else "a string"


def sha(v: Any) -> str | None:
    return None if identifiers.is_hex40(v) else "a 40-hex object id"


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def number(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool)
    return None if ok else "a number"


def timestamp(v: Any) -> str | None:
    return None if isinstance(v, datetime | date) else "a date-time"


def one_of(*choices: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in choices else f"one of {', '.join(choices)}"

    return check


@dataclass(frozen=True)
class Field:
    check: Check | Shape
    required: bool = True
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    fields: Mapping[str, Field] = field(default_factory=dict)


@dataclass(frozen=True)
class Entries:
    shape: Table


@dataclass(frozen=True)
class ListOf:
    item: Check | Shape


Shape = Table | Entries | ListOf


def _show(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _check(value: Any, shape: Check | Shape, where: str) -> str | None:
    if isinstance(shape, Table):
        if not isinstance(value, Mapping):
            return f"{where} must be a table, not {_show(value)}"
        for key, f in shape.fields.items():
            at = f"{where}.{key}" if where else key
            if key not in value:
                if f.required:
                    return f"{at} is missing"
                continue
            v = value[key]
            if v is None and f.nullable:
                continue
            problem = _check(v, f.check, at)
            if problem:
                return problem
        return None
    if isinstance(shape, Entries):
        if not isinstance(value, Mapping):
            return f"{where} must be a table, not {_show(value)}"
        for name, entry in value.items():
            problem = _check(entry, shape.shape, f"{where}[{name!r}]" if where else repr(name))
            if problem:
                return problem
        return None
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            return f"{where} must be a list, not {_show(value)}"
        for i, item in enumerate(value):
            problem = _check(item, shape.item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    wanted = shape(value)
    return f"{where} must be {wanted}, not {_show(value)}" if wanted else None


def validate(data: Any, shape: Shape, path: Path, fix: str) -> None:
    """Raise one `RecordError` naming `path`, the entry and key that break `shape`."""
    problem = _check(data, shape, "")
    if problem:
        raise RecordError(f"{path}: {problem}; {fix}")
