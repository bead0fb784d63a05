"""The one door to programs: an interrupted or timed-out command leaves nothing running."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from sdkmirror.infra import proc

# A child that starts a grandchild writing into a directory, as git fetch starts index-pack.
WRITER = """
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", '''
import os, sys, time
d = sys.argv[1]
i = 0
while True:
    open(os.path.join(d, str(i)), "w").close()
    i += 1
    time.sleep(0.01)
''', sys.argv[1]])
open(sys.argv[2] + ".tmp", "w").write(str(grandchild.pid))
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
grandchild.wait()
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _wait_for(path: Path) -> int:
    while not path.exists():
        time.sleep(0.01)
    return int(path.read_text())


def test_ctrl_c_kills_the_command_and_everything_it_started(tmp_path: Path) -> None:
    out, pidfile = tmp_path / "out", tmp_path / "pid"
    out.mkdir()

    def interrupt_once_the_grandchild_runs() -> None:
        _wait_for(pidfile)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_the_grandchild_runs, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        proc.run([sys.executable, "-c", WRITER, str(out), str(pidfile)], timeout=600)
    # Gone by the time the call raised: nothing writes into `out` while the caller cleans up.
    assert _gone(_wait_for(pidfile))
