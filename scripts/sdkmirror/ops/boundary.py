"""The error boundary every task shares: one `error:` line and a code from `ExitCode`.

The task runner is not imported here: the caller passes the exception that ends a task its
way (Invoke's `Exit`), so the library stays usable from any entry point.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sdkmirror.core import config as config_mod
from sdkmirror.core import git_url
from sdkmirror.core.errors import ExitCode, MirrorError, UsageError, os_problem

P = ParamSpec("P")
R = TypeVar("R")
Fail = Callable[[str, int], BaseException]

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
GIT_URL_FLAGS = ("upstream", "origin")  # task parameters that name a git remote


def check_flags(kwargs: dict[str, object]) -> None:
    """Flags whose values are refused before the task reads or records anything."""
    for name in GIT_URL_FLAGS:
        value = kwargs.get(name)
        if isinstance(value, str) and value:  # "" means "not given", as in the workflows
            problem = git_url.refusal(value, f"--{name}")
            if problem:
                raise UsageError(problem)


_MISSING = re.compile(r"^'([\w.-]+)' did not receive required positional arguments: (.+)$")


def invoke_usage(message: str) -> str:
    """Invoke's own parse error as one `error:` line that names flags, not Python parameters."""
    m = _MISSING.match(message.strip())
    if m is None:
        return f"error: {message.strip()}"
    task = m.group(1)
    flags = [f"--{n.rstrip('_').replace('_', '-')}" for n in re.findall(r"'(\w+)'", m.group(2))]
    listed = flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " and " + flags[-1]
    return f"error: invoke {task} needs {listed}; see `invoke --help {task}`"


def guarded(fn: Callable[P, R], fail: Fail) -> Callable[P, R]:
    """Wrap a task so that it ends in `fail("error: ...", code)` and never in a traceback.

    The configuration is validated first. Expected failures carry their code; a local file
    problem is `LOCAL`; Ctrl-C says what was left unchanged and exits 130; anything else is
    still one line.
    """
    ending = type(fail("", 0))

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            # Every task runs in a project: a broken `[tool.sdkmirror]` is refused the same
            # way everywhere, before a task that would not otherwise read it does anything.
            config_mod.load()
            check_flags(kwargs)
            return fn(*args, **kwargs)
        except MirrorError as exc:
            raise fail(f"error: {exc}", exc.exit_code) from None
        except KeyboardInterrupt:
            what = UNCHANGED_ON_INTERRUPT.get(fn.__name__, DEFAULT_UNCHANGED)
            raise fail(f"error: interrupted; {what}", ExitCode.INTERRUPTED) from None
        except OSError as exc:
            raise fail(f"error: {os_problem(exc)}", ExitCode.LOCAL) from None
        except ending:
            raise
        except Exception as exc:  # a defect: still one line, with what to report
            raise fail(
                f"error: unexpected {type(exc).__name__}: {exc}; please report this with the "
                "command that caused it",
                ExitCode.FAILED,
            ) from None

    return wrapper
