"""What every Invoke task shares: config with flag overrides, remotes, errors as exit codes."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke.exceptions import Exit

from . import config as config_mod
from .errors import ExitCode, LocalError, MirrorError, UsageError, os_problem
from .gitio import remote_url

F = TypeVar("F", bound=Callable[..., Any])

# What a Ctrl-C leaves as it was, per task: every write is one rename or one atomic push.
UNCHANGED_ON_INTERRUPT = {
    "sync": "origin changes only in one atomic push and the ledger only after it; "
    "run `invoke sync` again, it converges",
    "publish": "nothing is uploaded before the last step, and the ledger is written after it; "
    "run the publish again",
    "verify": "verify changes nothing",
    "status": "status changes nothing",
}
DEFAULT_UNCHANGED = "files are replaced in one rename and pushes are atomic; run it again"


def fail(message: str, code: int) -> Exit:
    """The one way a task ends in failure: one `error:` line and a code from `ExitCode`."""
    return Exit(f"error: {message}", code=int(code))


def guarded(fn: F) -> F:
    """The error boundary of a task: one `error: ...` line and a code from `ExitCode`.

    The configuration is validated first. Expected failures carry their code; a local file
    problem is `LOCAL`; Ctrl-C says what was left unchanged and exits 130; anything else is
    still one line, never a traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # Every task runs in a project: a broken `[tool.sdkmirror]` is refused the same
            # way everywhere, before a task that would not otherwise read it does anything.
            config_mod.load()
            return fn(*args, **kwargs)
        except MirrorError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            what = UNCHANGED_ON_INTERRUPT.get(fn.__name__, DEFAULT_UNCHANGED)
            raise fail(f"interrupted; {what}", ExitCode.INTERRUPTED) from None
        except OSError as exc:
            raise fail(os_problem(exc), ExitCode.LOCAL) from None
        except Exit:
            raise
        except Exception as exc:  # a defect: still one line, with what to report
            raise fail(
                f"unexpected {type(exc).__name__}: {exc}; please report this with the command "
                "that caused it",
                ExitCode.FAILED,
            ) from None

    return wrapper  # type: ignore[return-value]


def usage_errors_exit_2() -> None:
    """Make Invoke's own usage errors (unknown flag, missing argument) exit 2, like ours.

    Invoke parses a task's flags after it has imported `tasks.py`, through the module-level
    program its `invoke` command runs; its wording is kept, only the exit code changes.
    """
    from invoke import main
    from invoke.exceptions import ParseError

    program = main.program
    parse_tasks = program.parse_tasks

    def parse_tasks_exit_2() -> None:
        try:
            parse_tasks()
        except ParseError as exc:
            raise Exit(str(exc), code=int(ExitCode.USAGE)) from None

    program.parse_tasks = parse_tasks_exit_2  # type: ignore[method-assign]


def load_config(**overrides: Any) -> config_mod.Config:
    return config_mod.load(**overrides)


def origin_url(cfg: config_mod.Config, origin: str | None) -> str:
    """`--origin`, else the `origin` remote of the checkout that holds the configuration."""
    return origin or remote_url(cfg.root)


def check_release_order(from_tag: str, to_tag: str) -> None:
    """`--from` must be the older release of the two: the notes read from old to new."""
    tags = load_config().tags
    old, new = tags.version_of(from_tag), tags.version_of(to_tag)
    if old is not None and new is not None and not old < new:
        raise UsageError(
            f"--from {from_tag} is not older than --to {to_tag}; pass the older release as "
            "--from and the newer as --to"
        )


def check_writable(path: str | Path | None, what: str = "--report") -> None:
    """Fail before anything changes when `path` cannot be written (not after a push)."""
    if not path:
        return
    p = Path(path)
    existed = p.exists()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{what} {path} cannot be written ({os_problem(exc)}); pass a writable path"
        ) from None
    if not existed:
        p.unlink()


def write_json(path: str | Path | None, data: Any) -> None:
    """Write `data` as JSON in one rename: a reader sees the old file or the new, never half."""
    if not path:
        return
    p = Path(path)
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LocalError(f"cannot write {path}: {os_problem(exc)}") from None
