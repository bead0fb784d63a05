"""The error boundary every task shares: one `error:` line and a code from `ExitCode`.

The task runner is not imported here: the caller passes the exception that ends a task its
way (Invoke's `Exit`), so the library stays usable from any entry point.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sdkmirror.core import config as config_mod
from sdkmirror.core.errors import ExitCode, MirrorError, os_problem

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
