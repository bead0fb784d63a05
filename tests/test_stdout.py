"""Results on stdout, progress and warnings on stderr: each task piped, its stdout read alone."""

from __future__ import annotations

import json

import pytest
from conftest import do_sync
from gitrepos import TAG, seed


@pytest.fixture
def mirrored(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    return project


def test_a_dry_run_plan_is_the_result(mirrored, repos):
    cp = mirrored.invoke(
        "patch.new", "fix", "--base", TAG.format("0.14.2"), "--reason", "r",
        "--origin", str(repos.origin), "--dry-run",
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines()[0] == "patch.new plan (dry run: nothing changed)"
    assert "create patch-fix on origin" in cp.stdout
    assert "plan" not in cp.stderr  # progress only there


def test_piped_tables_never_wrap_long_identifiers(mirrored, repos):
    name, reason = "fix-" + "x" * 58, "the reason, " + "long " * 30
    cp = mirrored.invoke(
        "patch.new", name, "--base", TAG.format("0.14.2"), "--reason", reason,
        "--origin", str(repos.origin),
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    listed = mirrored.invoke("patch.list", env={"COLUMNS": "40"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "patches: 1 active, 1 registered"
    assert len(lines) == 3  # title, header, one row: nothing wrapped at 40 columns
    assert f"patch-{name}" in lines[2] and reason.strip() in lines[2]
    assert "\x1b[" not in listed.stdout  # no colour codes in a pipe
    assert listed.stderr == ""


def test_job_outputs_by_hand_are_the_result(project, repos, tmp_path):
    seed(repos, "0.14.2")
    report = tmp_path / "sync.json"
    report.write_text(json.dumps(do_sync(project, repos).to_json()))
    cp = project.invoke("ci.sync-outputs", "--sync-report", str(report), env={"GITHUB_OUTPUT": ""})
    assert cp.returncode == 0, cp.stderr
    assert dict(ln.split("=", 1) for ln in cp.stdout.splitlines()) == {
        "changed": "true",
        "ledger_changed": "true",
        "status": "updated",
        "smoke_ref": TAG.format("0.14.2"),
    }
    # In Actions the outputs go to the file; the log gets them on stderr, stdout stays empty.
    outputs = tmp_path / "outputs"
    cp = project.invoke(
        "ci.sync-outputs", "--sync-report", str(report), env={"GITHUB_OUTPUT": str(outputs)}
    )
    assert cp.returncode == 0 and cp.stdout == "", cp.stderr
    assert "smoke_ref=" in outputs.read_text() and "output smoke_ref=" in cp.stderr


def test_json_is_one_versioned_document(mirrored):
    cp = mirrored.invoke("patch.list", "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout) == {"schema": 1, "patches": []}
    assert next(iter(json.loads(cp.stdout))) == "schema"
