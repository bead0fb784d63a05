"""The README's and docs' commands are real: tasks, flags, sessions, configuration keys, links;
every shell block marked runnable runs against a mirror of the sample."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import load_tasks
from gitrepos import GitRepos
from invoke import Program

from sdkmirror.alerts import alert as alerts
from sdkmirror.core import config
from sdkmirror.devtools import registry_server

# The commands are the subject here, not building: builds are shared across tests.
pytestmark = pytest.mark.usefixtures("shared_build_cache")

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "docs").glob("*.md"))}
EVERYTHING = "\n".join([README, *DOCS.values()])
RUNNABLE = re.compile(r"```sh runnable( slow)?\n(.*?)```", re.S)


def commands(tool: str, text: str = README) -> list[list[str]]:
    """Every `tool ...` command line in the text's code spans and blocks, as argv."""
    found = []
    text = re.sub(r"\\\n\s*", " ", text)  # shell line continuations
    blocks = re.findall(r"```sh(?: runnable)?(?: slow)?\n(.*?)```", text, re.S)
    for chunk in blocks + re.findall(r"`([^`\n]+)`", text):
        for line in chunk.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(f"{tool} "):
                try:
                    found.append(shlex.split(line))
                except ValueError:
                    continue
    return found


@cache
def parser_contexts() -> dict[str, Any]:
    """Each task's parser context, by name and alias, as `invoke` builds them from `tasks.py`."""
    contexts = {}
    for ctx in load_tasks().to_contexts():
        for name in (ctx.name, *ctx.aliases):
            contexts[name] = ctx
    return contexts


def task_flags(task: str) -> set[str] | None:
    """The long flags `invoke TASK` accepts (`--no-x` included), or None for no such task.

    A core option in the task's place (`invoke --list`) stands for invoke's own flags."""
    if task.startswith("-"):
        core = {f"--{n}" for a in Program().core_args() for n in a.names if len(n) > 1}
        return core if task.split("=", 1)[0] in core else None
    ctx = parser_contexts().get(task)
    if ctx is None:
        return None
    return {f for f in (*ctx.flags, *ctx.inverse_flags) if f.startswith("--")}


def test_the_real_cli_lists_the_tasks_the_flags_are_read_from():
    cp = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "--list",
         "--list-format=flat"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )  # fmt: skip
    listed = set()
    for m in re.finditer(r"^  (\S+)(?: \(([^)]+)\))?", cp.stdout, re.M):
        listed |= {m.group(1), *(a.strip() for a in (m.group(2) or "").split(",") if a)}
    assert {"sync", "patch.retire", "publish"} <= listed
    assert listed == set(parser_contexts())


def test_every_invoke_command_names_a_real_task_and_real_flags():
    cmds = commands("invoke", EVERYTHING)
    assert len(cmds) >= 20, "the README and docs should show each task with an example"
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
    assert {"demo", "tests"} <= {argv[2] for argv in commands("nox") if argv[1] == "-s"}
    cmds = commands("nox", EVERYTHING)
    for argv in (a for a in cmds if a[1] == "-s" and "(...)" not in a[2]):
        # `nox -s lint typecheck tests -- ...`: every name up to the first option is a session.
        names = list(itertools.takewhile(lambda a: a[0] not in "-[", argv[2:]))
        for name in names:
            assert name in sessions, f"README mentions `nox -s {name}`, which does not exist"


def test_configuration_reference_lists_every_key():
    table = DOCS["configuration.md"]
    for key in config.DEFAULTS:
        shown = "[[toolchains]]" if key == "toolchains" else key
        assert f"| `{shown}` |" in table, f"configuration key {key} is not documented"


def github_anchor(heading: str) -> str:
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def anchors_of(text: str) -> set[str]:
    return {github_anchor(h) for h in re.findall(r"^#{1,4} (.+)$", text, re.M)}


def test_alert_issues_link_to_runbook_sections_that_exist():
    assert alerts.RUNBOOK_DOC == "docs/operations.md"
    anchors = anchors_of(DOCS["operations.md"])
    for step in alerts.RUNBOOK.values():
        assert step.anchor in anchors, (
            f"alert issues link to #{step.anchor}, missing in the runbook"
        )


def test_every_link_between_the_documents_resolves():
    sources = {REPO_ROOT / "README.md": README} | {
        REPO_ROOT / "docs" / n: t for n, t in DOCS.items()
    }
    for path, text in sources.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            assert dest.is_file(), f"{path.name} links to {target}: no such file"
            if anchor:
                assert anchor in anchors_of(dest.read_text()), f"{path.name} links to {target}"


def test_the_readme_is_short_and_every_document_has_contents():
    assert len(README.splitlines()) <= 250
    for name, text in DOCS.items():
        assert "\n## Contents\n" in text, f"docs/{name} has no table of contents"
    assert {"architecture.md", "operations.md", "configuration.md", "exit-codes.md"} <= set(DOCS)
    assert {"own-sample.md", "json.md", "tasks.md"} <= set(DOCS)


def test_the_readme_has_one_line_per_task_and_session():
    table = README[README.index("## Tasks and sessions") : README.index("## Patch branches")]
    rows = re.findall(r"^\| `(nox -s )?([^`]+)` \|", table, re.M)
    tasks = [n for tool, n in rows if not tool]
    assert len(tasks) == len(set(tasks))
    for ctx in load_tasks().to_contexts():  # each task once, by its name or its alias
        assert len({ctx.name, *ctx.aliases} & set(tasks)) == 1, ctx.name
    assert set(tasks) <= set(parser_contexts())
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list"], capture_output=True, text=True, check=True,
        cwd=REPO_ROOT,
    ).stdout  # fmt: skip
    sessions = {
        n.split("(")[0] for n in re.findall(r"^[*-] (.+?)(?: \[[^]]*\])? -> ", listed, re.M)
    }
    assert {n for tool, n in rows if tool} == sessions


# --- the README's commands, run ---------------------------------------------------------------

# An upper-case word (TAG, URL, NAME, V, PATH, TEXT, REF, NNN, X.Y.Z) or `...` stands for
# something the reader fills in.
PLACEHOLDER = re.compile(r"\.\.\.|\b[A-Z][A-Z0-9_]*\b")

# Tasks whose commands cannot run against a throwaway mirror, and where they are tested instead.
NOT_HERE = {
    "report": "files GitHub issues; test_github_alerts.py runs it against a loopback GitHub API",
    "github.release": "writes GitHub Releases; test_github_alerts.py runs it against a fake API",
    "ledger.commit": "commits and pushes the checkout itself; test_ledger_commit.py covers it",
    "release.record": "pushes to origin's main; test_release_record.py covers it",
    "doctor": "reads GitHub's repository settings; test_doctor.py runs it against a fake API",
    "ci.": "workflow glue (job outputs, workflow linters); test_workflows.py runs the ci.* tasks",
    "release.tag": "needs a RELEASES.md entry from a real release; test_release_tag.py covers it",
}
# A task named in running text, not an example: its examples carry the flags.
MENTIONS = {("invoke", "publish")}
SLOW = {
    "publish": "builds the SDK with real Node and pnpm, and needs a registry (Verdaccio)",
    "toolchains.update": "provisions a toolchain and asks PyPI and the npm registry",
}


def runnable(argv: list[str]) -> list[str] | None:
    """The command a synopsis or example stands for, or None when it holds a placeholder.

    Optional groups (`[--check]`) are taken when they hold no placeholder and dropped when
    they do (`[--report PATH]`).
    """
    out: list[str] = []
    group: list[str] | None = None
    for arg in argv:
        if group is None and arg.startswith("["):
            group = []
        if group is not None:
            group.append(arg.strip("[]"))
            if arg.endswith("]"):
                if not any(PLACEHOLDER.search(a) for a in group):
                    out += group
                group = None
            continue
        out.append(arg)
    if group is not None or any(PLACEHOLDER.search(a) for a in out) or tuple(out) in MENTIONS:
        return None
    return out


def runnable_commands() -> list[list[str]]:
    found: list[list[str]] = []
    for argv in commands("invoke"):
        cmd = runnable(argv)
        if cmd is not None and cmd not in found:
            found.append(cmd)
    return found


def _task(argv: list[str]) -> str | None:
    return argv[1] if not argv[1].startswith("-") else None


def _not_here(task: str) -> str | None:
    """Why a task's README commands run elsewhere, or None when they run here."""
    return next(
        (w for t, w in NOT_HERE.items() if task == t or (t.endswith(".") and task.startswith(t))),
        None,
    )


def _params() -> list:
    """One case per runnable command; those run elsewhere are skipped here at collection,
    before any fixture builds a mirror for them."""
    params = []
    for argv in runnable_commands():
        task = _task(argv) or ""
        marks = [pytest.mark.slow] if task in SLOW else []
        if why := _not_here(task):
            marks.append(pytest.mark.skip(reason=f"{shlex.join(argv)}: {why}"))
        params.append(pytest.param(argv, marks=marks, id=shlex.join(argv[1:])))
    return params


def test_the_runner_takes_what_the_readme_shows():
    cmds = [shlex.join(c) for c in runnable_commands()]
    # placeholder-free examples and synopses run; the ones with placeholders do not
    assert "invoke verify" in cmds and "invoke status --json" in cmds
    assert "invoke patch.list" in cmds and "invoke patch.table --check" in cmds
    assert not any(PLACEHOLDER.search(c.replace("invoke ", "")) for c in cmds)
    assert runnable(["invoke", "sync", "[--dry-run]", "[--report", "PATH]"]) == [
        "invoke",
        "sync",
        "--dry-run",
    ]
    assert runnable(["invoke", "patch.retire", "NAME", "[--dry-run]"]) is None


def _patch_name(argv: list[str]) -> str | None:
    """The patch a command works on, when it expects one to exist already."""
    if _task(argv) == "patch.retire":
        return argv[2]
    for a, b in itertools.pairwise(argv):
        if a == "--source-ref" and b.startswith("patch-"):
            return b[len("patch-") :]
    return None


def _readme_patch_new(name: str) -> list[str]:
    """The README's own `invoke patch.new NAME ...` example, minus flags with placeholders."""
    for argv in commands("invoke"):
        if argv[1:3] == ["patch.new", name]:
            out = argv[:3]
            rest = argv[3:]
            for flag, value in zip(rest[::2], rest[1::2], strict=False):
                if not PLACEHOLDER.search(value):
                    out += [flag, value]
            return out
    raise AssertionError(
        f"the README uses patch {name!r} but never shows `invoke patch.new {name}`"
    )


@pytest.fixture
def mirror_checkout(project, repos, tmp_path, sample_upstream):
    """A maintainer's checkout (README.md, RELEASES.md) of a mirror the sample was synced into."""
    from sdkmirror.mirror import sync

    up = sample_upstream(tmp_path / "sample-upstream.git")
    for name in ("README.md", "RELEASES.md"):
        (project.root / name).write_text((REPO_ROOT / name).read_text(encoding="utf-8"))
    report = sync.run(project.config(), upstream=up.url, origin=str(repos.origin))
    assert report.status == "updated" and len(report.new_tags) == len(up.tags)
    return project, up.url, str(repos.origin)


def _with_remotes(argv: list[str], upstream: str, origin: str) -> list[str]:
    task = _task(argv)
    flags = (task_flags(task) or set()) if task else set()
    out = argv[1:]
    for flag, url in (("--upstream", upstream), ("--origin", origin)):
        if flag in flags and flag not in out:
            out += [flag, url]
    return out


@pytest.mark.parametrize("argv", _params())
def test_readme_command_runs(argv: list[str], mirror_checkout, request, tmp_path):
    run_as_documented(argv, mirror_checkout, request, tmp_path / "verdaccio")


def runnable_blocks() -> list:
    """One case per shell block marked `sh runnable` (or `sh runnable slow`) in README and docs."""
    params = []
    for name, text in [("README.md", README), *((f"docs/{n}", t) for n, t in DOCS.items())]:
        for i, m in enumerate(RUNNABLE.finditer(text), 1):
            lines = [ln.split("  #")[0].strip() for ln in m.group(2).splitlines()]
            argvs = [shlex.split(ln) for ln in lines if ln and not ln.startswith("#")]
            marks = [pytest.mark.slow] if m.group(1) else []
            params.append(pytest.param(argvs, marks=marks, id=f"{name}-block-{i}"))
    return params


def test_runnable_blocks_hold_only_commands_that_run_here():
    blocks = runnable_blocks()
    assert len(blocks) >= 2  # the first hour's mirror and publish blocks
    for block in blocks:
        for argv in block.values[0]:
            assert argv[0] == "invoke" and runnable(argv) == argv, f"{block.id}: {argv}"
            assert _not_here(_task(argv) or "") is None, f"{block.id}: {argv} cannot run here"


@pytest.mark.parametrize("argvs", runnable_blocks())
def test_runnable_block_runs(argvs: list[list[str]], mirror_checkout, request, tmp_path):
    """The block's commands, in order, against one mirror: each exits 0 and does its job."""
    for i, argv in enumerate(argvs):
        run_as_documented(argv, mirror_checkout, request, tmp_path / f"verdaccio-{i}")


def run_as_documented(argv: list[str], mirror_checkout, request, registry_dir: Path) -> None:
    task = _task(argv) or ""
    project, upstream, origin = mirror_checkout
    env: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if task == "publish":
            tc = request.getfixturevalue("toolchain_primary")
            request.getfixturevalue("npm_tools")
            reg = stack.enter_context(
                registry_server.verdaccio(
                    registry_dir, tc, cache_dir=Path(os.environ["SDKMIRROR_CACHE"])
                )
            )
            # `npm config get registry` names the loopback registry, as a user's npmrc would.
            env = {**reg.npm_env(), "npm_config_registry": reg.url}
        if name := _patch_name(argv):
            setup = _with_remotes(_readme_patch_new(name), upstream, origin)
            project.invoke(*setup, check=True)
        before = GitRepos.refs(Path(origin))
        files = {n: (project.root / n).read_text() for n in ("README.md", "RELEASES.md")}
        cp = project.invoke(*_with_remotes(argv, upstream, origin), env=env, timeout=900)

    # The sample was just mirrored, so nothing needs the maintainer: `invoke status` exits 0
    # here, not 8, and every other example succeeds.
    assert cp.returncode == 0, f"{shlex.join(argv)} exited {cp.returncode}:\n{cp.stderr[-3000:]}"
    assert "Traceback" not in cp.stderr
    outcome(argv, cp, project.root, files, before, GitRepos.refs(Path(origin)))


def outcome(argv, cp, root: Path, files, before: dict[str, str], after: dict[str, str]) -> None:
    """What each command must have done beyond exiting 0, judged from files and refs."""
    task, args, text = _task(argv), argv[2:], cp.stdout + cp.stderr
    mutating = task in {"patch.retire", "patch.new"} or (
        task == "publish" and "--no-dry-run" in args
    )
    if not mutating:
        assert after == before, f"{shlex.join(argv)} changed refs on origin"
    if task is None:
        assert "patch.retire" in cp.stdout and "toolchains.update" in cp.stdout
    elif task == "sync":
        assert "sync: noop" in text  # the sample is mirrored already
        if "--report" in args:
            report = json.loads((root / args[args.index("--report") + 1]).read_text())
            assert report["status"] == "noop"
    elif task == "verify":
        assert "verify: ok (4 mirror tag(s)" in text
        assert "every upstream release tag is mirrored" in text
    elif task == "status":
        assert "mirror status: ok" in text
        if "--json" in args:
            data = json.loads(cp.stdout)
            assert data["ok"] and data["branch"]["state"] == "in-sync"
            assert (data["tags"]["upstream"], data["tags"]["mirrored"]) == (4, 4)
    elif task == "patch.list":
        if "--json" in args:
            assert json.loads(cp.stdout) == {"schema": 1, "patches": []}  # stdout alone
        else:
            assert cp.stdout.splitlines()[0] == "patches: 0 active, 0 registered"
    elif task == "patch.table":
        assert (root / "README.md").read_text() == files["README.md"]  # no patches, like ours
    elif task == "release.render":
        assert (root / "RELEASES.md").read_text() == files["RELEASES.md"]  # no releases either
    elif task == "patch.retire":
        assert f"refs/heads/patch-{args[0]}" in before
        assert f"refs/heads/patch-{args[0]}" not in after
        assert "upstream's newest release is @moonshot-ai/kimi-code@0.19.0" in text
    elif task == "toolchains.update":
        assert "proposed smoke matrix" in text
        written = config.load(root / "pyproject.toml").toolchains
        if "--write" in args and "nothing to write" not in text:
            assert "wrote " in text
            assert [(t.node, t.pnpm) for t in written] != [("24.19.0", "10.33.0")]
        elif "--write" not in args:
            assert [(t.node, t.pnpm) for t in written] == [("24.19.0", "10.33.0")]
    elif task == "publish":
        ledger = root / "ledger" / "releases.toml"
        if "--no-dry-run" in args:
            from sdkmirror.mirror.releases import ReleaseLedger

            flags = ("--version-override", "--expected-version")
            want = next(args[i + 1] for i, a in enumerate(args) if a in flags)
            assert want in ReleaseLedger(ledger).releases
            assert f"refs/tags/publish-sdk/v{want}" not in after  # release.tag's job, not this
        else:
            assert "dry run: nothing uploaded" in cp.stdout and not ledger.exists()
