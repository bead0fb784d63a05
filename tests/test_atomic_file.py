"""Reports, ledgers and registries are replaced whole or not at all, and a failure says which."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomlkit

from sdkmirror.core import reports
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.errors import ExitCode, LocalError
from sdkmirror.infra import tomlstore

OLD = "the previous content\n"


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_write_replaces_the_file_with_the_mode_a_plain_write_gives(tmp_path):
    target = tmp_path / "deep" / "report.json"
    old_umask = os.umask(0o022)
    try:
        assert write_atomic(target, "first\n") == target
        write_atomic(target, lambda fh: fh.write("second\n"))
    finally:
        os.umask(old_umask)
    assert target.read_text(encoding="utf-8") == "second\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert leftovers(target.parent) == []


def test_a_serializer_that_raises_midway_leaves_the_previous_file(tmp_path):
    target = tmp_path / "smoke.json"
    target.write_text(OLD, encoding="utf-8")

    def half_then_fail(fh) -> None:
        fh.write('{"kind": "smoke", "results": [')
        raise TypeError("Object of type Toolchain is not JSON serializable")

    with pytest.raises(TypeError, match="not JSON serializable"):
        write_atomic(target, half_then_fail)
    assert target.read_text(encoding="utf-8") == OLD
    assert leftovers(tmp_path) == []


def test_a_short_write_is_one_local_error_and_the_previous_file_survives(tmp_path):
    """A real EFBIG: the child's file size limit is far below what it writes."""
    target = tmp_path / "mirror-ledger.toml"
    target.write_text(OLD, encoding="utf-8")
    child = textwrap.dedent(
        """
        import resource, sys
        from sdkmirror.core.atomic_file import write_atomic
        from sdkmirror.core.errors import LocalError
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_atomic(sys.argv[1], "x" * 100_000, what="the ledger")
        except LocalError as exc:
            print(exc.message)
            sys.exit(exc.exit_code)
        """
    )
    cp = subprocess.run(
        [sys.executable, "-c", child, str(target)], capture_output=True, text=True, timeout=60
    )
    assert cp.returncode == ExitCode.LOCAL, cp.stderr
    assert cp.stdout.startswith(f"the ledger {target} was not written"), cp.stdout
    assert "the previous file is intact" in cp.stdout
    assert "Traceback" not in cp.stderr
    assert target.read_text(encoding="utf-8") == OLD
    assert leftovers(tmp_path) == []


def test_an_unusable_directory_names_the_record_and_the_fix(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the reports directory should be")
    with pytest.raises(LocalError) as err:
        reports.write_json(blocker / "sync.json", {"kind": "sync"}, what="the sync report")
    assert str(err.value).startswith(f"the sync report {blocker / 'sync.json'} was not written")
    assert "then run again" in str(err.value)
    assert blocker.read_text() == "a file where the reports directory should be"


def test_a_ledger_write_that_cannot_rename_keeps_the_old_ledger(tmp_path):
    """The target is a directory: the temp file is written, the rename fails, nothing stays."""
    target = tmp_path / "release-ledger.toml"
    target.mkdir()
    doc = tomlkit.parse('[releases."0.9.3"]\nupstream_tag = "x"\n')
    with pytest.raises(LocalError, match=r"the release ledger .* was not written"):
        tomlstore.write(target, doc, what="the release ledger", fix="restore it from git")
    assert target.is_dir() and list(target.iterdir()) == []
    assert leftovers(tmp_path) == []


def test_reports_round_trip_through_the_one_reader(tmp_path):
    path = tmp_path / "sync.json"
    reports.write_json(path, {"kind": "sync", "status": "noop", "alerts": []})
    assert reports.read(path, "sync")["status"] == "noop"
    assert json.loads(path.read_text())["kind"] == "sync"
