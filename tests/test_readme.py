"""The README's commands are real: tasks, flags, sessions, configuration keys, runbook anchors."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from sdkmirror import alerts, config

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def commands(tool: str) -> list[list[str]]:
    """Every `tool ...` command line in the README's code spans and blocks, as argv."""
    found = []
    text = re.sub(r"\\\n\s*", " ", README)  # shell line continuations
    for chunk in re.findall(r"```sh\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text):
        for line in chunk.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(f"{tool} "):
                try:
                    found.append(shlex.split(line))
                except ValueError:
                    continue
    return found


@cache
def task_flags(task: str) -> set[str] | None:
    cp = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "--help", task],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    if cp.returncode != 0:
        return None
    flags = set()
    for m in re.finditer(r"--(\[no-\])?([a-z][a-z-]*)", cp.stdout):
        flags.add(f"--{m.group(2)}")
        if m.group(1):
            flags.add(f"--no-{m.group(2)}")
    return flags


def test_every_invoke_command_names_a_real_task_and_real_flags():
    cmds = commands("invoke")
    assert len(cmds) >= 20, "the README should show each task with an example"
    for argv in cmds:
        task = argv[1]
        flags = task_flags(task)
        assert flags is not None, f"README mentions `invoke {task}`, which does not exist"
        for arg in argv[2:]:
            if arg.startswith("--"):
                name = arg.split("=", 1)[0]
                assert name in flags, f"`invoke {task}` has no flag {name} (README: {argv})"


def test_every_nox_session_in_the_readme_exists():
    cp = subprocess.run(
        [sys.executable, "-m", "nox", "--list"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    # `* name -> doc` for default sessions, `- name -> doc` for opt-in ones
    names = re.findall(r"^[*-] (.+?)(?: \[[^]]*\])? -> ", cp.stdout, re.M)
    sessions = set(names) | {n.split("(")[0] for n in names}
    cmds = commands("nox")
    assert {"demo", "tests"} <= {argv[2] for argv in cmds if argv[1] == "-s"}
    for argv in (a for a in cmds if a[1] == "-s" and "(...)" not in a[2]):
        assert argv[2] in sessions, f"README mentions `nox -s {argv[2]}`, which does not exist"


def test_configuration_reference_lists_every_key():
    table = README[README.index("## Configuration") : README.index("## Daily operation")]
    for key in config.DEFAULTS:
        shown = "[[toolchains]]" if key == "toolchains" else key
        assert f"| `{shown}` |" in table, f"configuration key {key} is not documented"


def github_anchor(heading: str) -> str:
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def test_alert_issues_link_to_runbook_sections_that_exist():
    anchors = {github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", README, re.M)}
    for step in alerts.RUNBOOK.values():
        assert step.anchor in anchors, f"alert issues link to #{step.anchor}, missing in README"
    for link in re.findall(r"\]\(#([a-z0-9-]+)\)", README):
        assert link in anchors, f"README links to #{link}, which is not a heading"


@pytest.mark.slow
def test_the_demo_quick_start_runs(tmp_path):
    """`nox -s demo` runs this same entry point inside its virtualenv."""
    cp = subprocess.run(
        [sys.executable, "-m", "sdkmirror", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "scripts")},
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    sync_report = json.loads((tmp_path / "reports" / "sync.json").read_text())
    assert sync_report["status"] == "updated"
    assert len(sync_report["new_tags"]) == 4
    statuses = sorted(
        json.loads(p.read_text())["results"][0]["status"]
        for p in (tmp_path / "reports").glob("smoke-*.json")
    )
    assert statuses == ["pass", "pass", "unsupported"]
