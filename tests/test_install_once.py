"""Cached tools install once under a lock, completely or not at all."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from filelock import FileLock

from sdkmirror.core.errors import LockHeld
from sdkmirror.infra.install_once import install_once, is_done

MARKER = ".complete"


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_concurrent_callers_install_once(tmp_path):
    """Four callers released together: one installs, the others wait and reuse its work."""
    dest, lock = tmp_path / "tool" / "1.0.0", tmp_path / "locks" / "tool-1.0.0.lock"
    callers = 4
    start = threading.Barrier(callers)
    installs: list[Path] = []
    results: list[Path] = []
    errors: list[BaseException] = []

    def install(tmp: Path) -> None:
        installs.append(tmp)
        (tmp / "bin").mkdir()
        (tmp / "bin" / "tool").write_text("#!/bin/sh\n")

    def caller() -> None:
        try:
            start.wait(timeout=30)
            results.append(install_once(dest, install, lock=lock, marker=MARKER, timeout=30))
        except BaseException as exc:  # surfaced by the assertion below, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(installs) == 1
    assert results == [dest] * callers
    assert (dest / "bin" / "tool").read_text() == "#!/bin/sh\n"
    assert is_done(dest, MARKER)
    assert hidden(dest.parent) == []  # the temporary directory was renamed, not left behind


def test_a_failed_install_leaves_nothing_and_the_next_call_installs(tmp_path):
    dest, lock = tmp_path / "node" / "24.19.0", tmp_path / "node-24.19.0.lock"

    def half_then_fail(tmp: Path) -> None:
        (tmp / "half-written").write_text("x")
        raise RuntimeError("the registry went away")

    with pytest.raises(RuntimeError, match="went away"):
        install_once(dest, half_then_fail, lock=lock, marker=MARKER)
    assert not dest.exists()
    assert hidden(dest.parent) == []
    install_once(dest, lambda tmp: (tmp / "node").write_text("ok"), lock=lock, marker=MARKER)
    assert (dest / "node").read_text() == "ok" and not (dest / "half-written").exists()


def test_a_stale_stamp_is_replaced_and_a_matching_one_reused(tmp_path):
    """The layout an existing cache already has: the marker names the pinned versions."""
    dest, lock = tmp_path / "verdaccio", tmp_path / "verdaccio.lock"
    dest.mkdir()
    (dest / "old-file").write_text("from 5.x")
    (dest / ".sdkmirror-installed").write_text("verdaccio@5.0.0\n")
    calls: list[str] = []

    def install(tmp: Path) -> None:
        calls.append("install")
        (tmp / "new-file").write_text("from 6.x")

    for _ in range(2):
        install_once(dest, install, lock=lock, marker=".sdkmirror-installed", stamp="verdaccio@6")
    assert calls == ["install"]
    assert not (dest / "old-file").exists() and (dest / "new-file").exists()
    assert (dest / ".sdkmirror-installed").read_text() == "verdaccio@6\n"


def test_a_lock_held_too_long_is_one_clear_error(tmp_path):
    dest, lock = tmp_path / "pnpm" / "10.33.0", tmp_path / "pnpm-10.33.0.lock"
    with FileLock(str(lock)), pytest.raises(LockHeld, match="wait for it to finish"):
        # Another open of the lock file conflicts even within one process (flock per open).
        install_once(dest, lambda tmp: None, lock=lock, marker=MARKER, timeout=0.2)
    assert not dest.exists()
