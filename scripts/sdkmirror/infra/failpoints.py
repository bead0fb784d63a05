"""Named crash points, so fault-injection tests can kill a run at an exact step.

`SDKMIRROR_FAILPOINTS=after-fetch` (comma-separated) makes the run kill itself with SIGKILL
when it reaches that point: no cleanup handlers, exactly like a machine dying there.
"""

from __future__ import annotations

import os
import signal

ENV = "SDKMIRROR_FAILPOINTS"


def reach(name: str) -> None:
    wanted = os.environ.get(ENV, "")
    if wanted and name in {w.strip() for w in wanted.split(",")}:
        os.kill(os.getpid(), signal.SIGKILL)
