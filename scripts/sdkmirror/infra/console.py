"""Human output: step headers, spinners on a terminal, plain lines in CI logs, summary tables.

A task's result (summary, table, list, JSON) goes to stdout through `result`/`result_json`;
progress, warnings and errors go to stderr. Piped or redirected, both are plain text that never
wraps or truncates an identifier.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# rich is loaded on first output, not at import: a quiet run (the daily no-op sync) never pays
# for it. `err` (diagnostics, so `--json` on stdout stays machine-readable) and `out` are made
# by `__getattr__` below, once.
_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Any:
    if name in ("err", "out"):
        return _console(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _console(name: str) -> Console:
    if name not in _consoles:
        from rich.console import Console

        _consoles[name] = Console(stderr=name == "err", highlight=False, soft_wrap=True)
    return _consoles[name]


def _err() -> Console:
    return _console("err")


def _stream(name: str) -> Any:
    return sys.stderr if name == "err" else sys.stdout


def _say(name: str, text: str, style: str | None = None) -> None:
    """One plain line; rich (and its styles) only where a terminal shows them."""
    stream = _stream(name)
    if stream.isatty():
        _console(name).print(text, style=style, markup=False)
    else:
        stream.write(text + "\n")
        stream.flush()


def _out() -> Console:
    return _console("out")


@dataclass
class Grid:
    """A result table as data: drawn by rich on a terminal, aligned plain lines otherwise."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def rich(self) -> Table:
        from rich.table import Table

        t = Table(title=self.title, title_justify="left")
        for c in self.columns:
            t.add_column(c, overflow="fold")
        for r in self.rows:
            t.add_row(*r)
        return t


# The version of every `--json` document's layout (its "schema" key); see docs/json.md.
JSON_SCHEMA = 1


_plain = False  # set by `plain_lines`: several steps run at once


def plain_lines() -> None:
    """No spinners from now on: steps running in parallel threads print plain lines."""
    global _plain
    _plain = True


def interactive() -> bool:
    """A live spinner only where a person watches a terminal; CI logs get plain lines."""
    return not _plain and sys.stderr.isatty() and not os.environ.get("CI") and _err().is_terminal


def info(message: str) -> None:
    _say("err", message)


def warn(message: str) -> None:
    _say("err", f"warning: {message}", style="yellow")


def error(message: str) -> None:
    _say("err", f"error: {message}", style="bold red")


def command(argv: Sequence[str], *, cwd: Path | None = None) -> None:
    """Echo a command as a person could paste it."""
    where = f" (in {cwd})" if cwd else ""
    _say("err", f"$ {shlex.join(argv)}{where}", style="dim")


def manual(argv: Sequence[str], why: str) -> None:
    """A step left to a person, printed as the exact command."""
    _say("err", f"next: {why}", style="bold")
    _say("err", f"    {shlex.join(argv)}")


@contextmanager
def step(title: str) -> Iterator[None]:
    """Announce a long step; spin on a terminal; report how long it took."""
    start = time.monotonic()
    if interactive():
        with _err().status(f"{title} ..."):
            yield
    else:
        _say("err", f"==> {title}")
        yield
    _say("err", f"    {title}: done in {time.monotonic() - start:.1f}s", style="dim")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Grid:
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    return Grid(title, list(columns), cells)


def plain(t: Grid) -> str:
    """A table as aligned plain lines: identifiers stay whole, so `grep` finds them."""
    headers = list(t.columns)
    rows = [headers, *t.rows]
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
    if isinstance(renderable, Grid):
        if not sys.stderr.isatty():
            _say("err", plain(renderable))
        else:
            _err().print(renderable.rich())
    elif isinstance(renderable, str):
        _say("err", renderable)
    else:
        _err().print(renderable)


def result(renderable: object) -> None:
    """A task's result on stdout: a rich table on a terminal, aligned plain lines when piped."""
    if not sys.stdout.isatty():
        if isinstance(renderable, Grid):
            text = plain(renderable)
        elif isinstance(renderable, str):
            text = renderable
        else:  # any other renderable, laid out wide enough that nothing wraps
            from rich.console import Console

            wide = Console(width=10_000, color_system=None, highlight=False)
            with wide.capture() as captured:
                wide.print(renderable)
            text = "\n".join(line.rstrip() for line in captured.get().splitlines())
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    elif isinstance(renderable, Grid):
        _out().print(renderable.rich())
    elif isinstance(renderable, str):
        _out().print(renderable, markup=False)
    else:
        _out().print(renderable)


def result_json(data: Mapping[str, object]) -> None:
    """A `--json` result on stdout: one document, `"schema"` first, identifiers never wrapped."""
    doc = {"schema": JSON_SCHEMA, **data}
    if sys.stdout.isatty():
        _out().print_json(data=doc, default=str)
    else:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        sys.stdout.flush()
