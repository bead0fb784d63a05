"""Human output: step headers, spinners on a terminal, plain lines in CI logs, summary tables.

A task's result (summary, table, list, JSON) goes to stdout through `result`/`result_json`;
progress, warnings and errors go to stderr. Piped or redirected, both are plain text that never
wraps or truncates an identifier.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

# Diagnostics go to stderr so that `--json` output on stdout stays machine-readable.
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

# The version of every `--json` document's layout (its "schema" key); see docs/json.md.
JSON_SCHEMA = 1


_plain = False  # set by `plain_lines`: several steps run at once


def plain_lines() -> None:
    """No spinners from now on: steps running in parallel threads print plain lines."""
    global _plain
    _plain = True


def interactive() -> bool:
    """A live spinner only where a person watches a terminal; CI logs get plain lines."""
    return not _plain and err.is_terminal and not os.environ.get("CI")


def info(message: str) -> None:
    err.print(message, markup=False)


def warn(message: str) -> None:
    err.print(f"warning: {message}", style="yellow", markup=False)


def error(message: str) -> None:
    err.print(f"error: {message}", style="bold red", markup=False)


def command(argv: Sequence[str], *, cwd: Path | None = None) -> None:
    """Echo a command as a person could paste it."""
    where = f" (in {cwd})" if cwd else ""
    err.print(f"$ {shlex.join(argv)}{where}", style="dim", markup=False)


def manual(argv: Sequence[str], why: str) -> None:
    """A step left to a person, printed as the exact command."""
    err.print(f"next: {why}", style="bold", markup=False)
    err.print(f"    {shlex.join(argv)}", markup=False)


@contextmanager
def step(title: str) -> Iterator[None]:
    """Announce a long step; spin on a terminal; report how long it took."""
    start = time.monotonic()
    if interactive():
        with err.status(f"{title} ..."):
            yield
    else:
        err.print(f"==> {title}", markup=False)
        yield
    err.print(f"    {title}: done in {time.monotonic() - start:.1f}s", style="dim", markup=False)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t


def plain(t: Table) -> str:
    """A table as aligned plain lines: identifiers stay whole, so `grep` finds them."""
    headers = [str(c.header) for c in t.columns]
    cells = [[str(v) for v in c.cells] for c in t.columns]
    rows = [headers, *map(list, zip(*cells, strict=True))]
    widths = [
        max(len(line) for r in rows for line in r[i].splitlines() or [""])
        for i in range(len(headers))
    ]
    lines = [str(t.title)] if t.title else []
    for r in rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def show(renderable: object) -> None:
    """Rich tables on a terminal; plain lines when piped or logged, never wrapped mid-name."""
    if isinstance(renderable, Table) and not err.is_terminal:
        err.print(plain(renderable), markup=False, highlight=False, soft_wrap=True)
    else:
        err.print(renderable)


def result(renderable: object) -> None:
    """A task's result on stdout: a rich table on a terminal, aligned plain lines when piped."""
    if not out.is_terminal:
        if isinstance(renderable, Table):
            text = plain(renderable)
        elif isinstance(renderable, str):
            text = renderable
        else:  # any other renderable, laid out wide enough that nothing wraps
            wide = Console(width=10_000, color_system=None, highlight=False)
            with wide.capture() as captured:
                wide.print(renderable)
            text = "\n".join(line.rstrip() for line in captured.get().splitlines())
        out.file.write(text + "\n")
        out.file.flush()
    elif isinstance(renderable, str):
        out.print(renderable, markup=False)
    else:
        out.print(renderable)


def result_json(data: Mapping[str, object]) -> None:
    """A `--json` result on stdout: one document, `"schema"` first, identifiers never wrapped."""
    doc = {"schema": JSON_SCHEMA, **data}
    if out.is_terminal:
        out.print_json(data=doc, default=str)
    else:
        out.file.write(json.dumps(doc, indent=2, default=str) + "\n")
        out.file.flush()
