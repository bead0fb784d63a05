"""`invoke` for tests, without paying Python's imports on every call.

A task run in a fresh `python -m invoke` spends most of its time importing: invoke, GitPython,
rich, tomlkit and the library. Hundreds of task runs make that the suite's biggest cost. This
server imports all of that once, then forks one child per task run. The child is a real process
like `python -m invoke` would be: its own pid, the caller's argv, working directory and whole
environment, the caller's pipes as stdin/stdout/stderr, and its exit code. Only the imports
are inherited.

Run as a script it is the server (`python taskserver.py SOCKET`); `Client.run` is the caller.
Tests that kill a task or race two of them start `python -m invoke` themselves.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_MAX_MESSAGE = 1 << 20


# --- the server (a script, run once per test worker) -----------------------------------------


def _preload() -> None:
    """Import what the tasks import, so no child pays for it; never run anything."""
    import importlib
    import pkgutil

    import invoke.main  # noqa: F401

    import sdkmirror

    for info in pkgutil.walk_packages(sdkmirror.__path__, "sdkmirror."):
        if not info.name.startswith("sdkmirror.devtools."):
            importlib.import_module(info.name)
    for name in ("git", "github", "tomlkit", "rich.console", "rich.table", "rich.progress"):
        importlib.import_module(name)


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the task run the caller asked for; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import tempfile

        tempfile.tempdir = None  # TMPDIR comes from the caller's environment
        sys.argv = list(request["argv"])
        conn.send(json.dumps({"pid": os.getpid()}).encode())
        code = _run_invoke(request["argv"][1:])
    finally:
        try:
            conn.send(json.dumps({"exit": code}).encode())
        finally:
            os._exit(code)


def _run_invoke(args: list[str]) -> int:
    import atexit
    import traceback

    from invoke.main import program

    code: object = 0
    try:
        program.run(["invoke", *args])
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # what the interpreter would print before exiting 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code


def serve(path: str) -> None:
    _preload()
    # Children are reaped by the kernel; each reports its own exit code to its caller.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        conn, _ = listener.accept()
        message, fds, _flags, _addr = socket.recv_fds(conn, _MAX_MESSAGE, 3)
        # A caller that went away sent nothing: skip it.
        if len(fds) == 3 and message and os.fork() == 0:
            listener.close()
            _child(conn, json.loads(message), fds)
        for fd in fds:
            os.close(fd)
        conn.close()


# --- the caller ------------------------------------------------------------------------------


class Client:
    """Starts the server and runs `invoke ARGS` through it."""

    def __init__(self, socket_path: Path, pythonpath: str, log: Path) -> None:
        self.socket_path = socket_path
        env = {**os.environ, "PYTHONPATH": pythonpath}
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(socket_path)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line != b"ready\n":
            self.proc.kill()
            raise RuntimeError(f"the task server did not start; see {log}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def run(
        self, argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """`argv` (`["invoke", ...]`) as a task run; like `subprocess.run(capture_output=True,
        text=True)`, including `TimeoutExpired` after killing the run."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = os.open(os.devnull, os.O_RDONLY)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(str(self.socket_path))
            request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env)}
            conn.sendmsg(
                [json.dumps(request).encode()],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [stdin, out_w, err_w]))],
            )
        finally:
            for fd in (stdin, out_w, err_w):
                os.close(fd)
        try:
            pid = json.loads(conn.recv(_MAX_MESSAGE))["pid"]
            stdout, stderr, timed_out = _read_both(out_r, err_r, timeout)
            if timed_out:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
            reply = conn.recv(_MAX_MESSAGE)
            code = json.loads(reply)["exit"] if reply else -signal.SIGKILL
        finally:
            conn.close()
            os.close(out_r)
            os.close(err_r)
        return subprocess.CompletedProcess(
            argv, code, stdout.decode(errors="replace"), stderr.decode(errors="replace")
        )


def _read_both(out_fd: int, err_fd: int, timeout: float) -> tuple[bytes, bytes, bool]:
    """Both pipes to their ends (as `communicate` does), or what came before `timeout`."""
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks[out_fd]), b"".join(chunks[err_fd]), True
            for key, _ in sel.select(left):
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd]), False


if __name__ == "__main__":
    serve(sys.argv[1])
