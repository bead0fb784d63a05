"""`invoke release.record`: one entry onto origin's current main, from facts that are checked."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO_ROOT, Project, write_project
from gitrepos import GitRepos, git

from sdkmirror.mirror.ledger import MirrorLedger

TAG_A, TAG_B = "@moonshot-ai/kimi-code@0.14.2", "@moonshot-ai/kimi-code@0.17.0"
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40
REGISTRY = "http://127.0.0.1:4873/"


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def clone(repos: GitRepos, project: Project, where: Path) -> Project:
    git("clone", "-q", str(repos.origin), str(where))
    pyproject = where / "pyproject.toml"
    return Project(
        where, pyproject, {**project.env, "SDKMIRROR_CONFIG": str(pyproject)}, project.server
    )


@pytest.fixture
def origin_main(project: Project, repos: GitRepos, tmp_path: Path) -> Path:
    """Origin's main holds the project and a mirror ledger with two mirror tags."""
    seed = tmp_path / "seed"
    git("init", "-q", "-b", "main", str(seed))
    write_project(seed, str(repos.upstream))
    ledger = MirrorLedger(seed / "ledger" / "mirror-tags.toml")
    ledger.add_tag(TAG_A, "1" * 40, COMMIT_A)
    ledger.add_tag(TAG_B, "2" * 40, COMMIT_B)
    ledger.save()
    (seed / "notes").mkdir()
    (seed / "notes" / "0.9.4.md").write_text("Adds `Session.steer`.\n")
    git("add", ".", cwd=seed)
    git("commit", "-q", "-m", "start", cwd=seed)
    git("push", "-q", str(repos.origin), "main", cwd=seed)
    return repos.origin


def record_args(version: str, tag: str, commit: str, *extra: str) -> list[str]:
    return [
        "release.record",
        "--npm-version",
        version,
        "--upstream-tag",
        tag,
        "--commit",
        commit,
        "--integrity",
        sri(version.encode()),
        "--registry",
        REGISTRY,
        *extra,
    ]


def releases_on(origin: Path) -> dict:
    text = git("show", "main:ledger/releases.toml", cwd=origin)
    return tomllib.loads(text)["releases"]


def changed_files(origin: Path, commit: str) -> list[str]:
    return sorted(git("show", "--name-only", "--format=", commit, cwd=origin).split())


def test_two_records_from_stale_checkouts_both_land(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    first = clone(repos, project, tmp_path / "one")
    second = clone(repos, project, tmp_path / "two")  # cloned before the first record
    cp = first.invoke(*record_args("0.9.3", TAG_A, COMMIT_A), "--push")
    assert cp.returncode == 0, cp.stderr
    cp = second.invoke(*record_args("0.9.4", TAG_B, COMMIT_B, "--sdk-version", "0.9.4"), "--push")
    assert cp.returncode == 0, cp.stderr

    releases = releases_on(origin_main)
    assert sorted(releases) == ["0.9.3", "0.9.4"]
    assert releases["0.9.4"]["commit"] == COMMIT_B and releases["0.9.3"]["commit"] == COMMIT_A
    assert releases["0.9.3"]["registry"] == REGISTRY
    head = git("rev-parse", "main", cwd=origin_main)
    assert changed_files(origin_main, head) == ["RELEASES.md", "ledger/releases.toml"]
    notes = git("show", "main:RELEASES.md", cwd=origin_main)
    assert "| 0.9.4 |" in notes and "| 0.9.3 |" in notes and "Adds `Session.steer`." in notes
    # Each checkout was clean, so each follows what it recorded.
    assert git("rev-parse", "HEAD", cwd=second.root) == head
    assert "0.9.3" in (second.root / "ledger" / "releases.toml").read_text()
    # Recording the same facts again is a no-op; other bytes under the same version are refused.
    cp = first.invoke(*record_args("0.9.4", TAG_B, COMMIT_B), "--push")
    assert cp.returncode == 0 and "already recorded" in cp.stderr
    assert git("rev-parse", "main", cwd=origin_main) == head
    cp = first.invoke(*record_args("0.9.4", TAG_A, COMMIT_A), "--push")
    assert cp.returncode == 1 and "immutable" in cp.stderr.strip().splitlines()[-1]
    assert git("rev-parse", "main", cwd=origin_main) == head


def both_arrived(folder: Path, timeout: int = 120) -> str:
    """A hook that waits until two pushes are inside it (a barrier of files, not a sleep)."""
    return (
        f"touch '{folder}'/push.$$\ni=0\n"
        f"while [ \"$(ls '{folder}' | wc -l)\" -lt 2 ]; do\n"
        f"  i=$((i + 1)); [ $i -gt {timeout * 20} ] && echo 'the other push never came' >&2 "
        "&& exit 1; sleep 0.05\ndone\n"
    )


def test_two_processes_racing_both_end_up_on_main(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    # The server holds each push until both have arrived, so both fetched the same main and
    # push together: one of them is refused as stale and must apply its entry again on the
    # new main (its second push finds two arrivals already and passes).
    arrived = tmp_path / "arrived"
    arrived.mkdir()
    repos.install_hook(origin_main, "pre-receive", both_arrived(arrived))
    checkouts = [clone(repos, project, tmp_path / name) for name in ("one", "two")]
    argvs = [record_args("0.9.3", TAG_A, COMMIT_A), record_args("0.9.4", TAG_B, COMMIT_B)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *argv, "--push"],
            cwd=c.root,
            env=c.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c, argv in zip(checkouts, argvs, strict=True)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    assert sorted(releases_on(origin_main)) == ["0.9.3", "0.9.4"]
    log = git("log", "--format=%s", "main", cwd=origin_main).splitlines()
    assert sorted(log[:2]) == [
        f"release: record @botiverse/kimi-code-sdk@0.9.3 from {TAG_A}",
        f"release: record @botiverse/kimi-code-sdk@0.9.4 from {TAG_B}",
    ]
    assert log[2:] == ["start"]
    assert "moved while recording" in results[0][1] + results[1][1]


BAD = {
    "version with a newline": (["--npm-version", "0.9.3\n"], "is not an exact npm version"),
    "fullwidth digit": (["--npm-version", "0.9.\uff13"], "is not an exact npm version"),
    "leading zero": (["--npm-version", "0.09.3"], "is not an exact npm version"),
    "39-hex commit": (["--commit", "a" * 39], "is not a full commit id"),
    "upper-case commit": (["--commit", "A" * 40], "is not a full commit id"),
    "integrity not SRI": (["--integrity", "deadbeef"], "is not a sha512 SRI string"),
    "sha1 integrity": (["--integrity", "sha1-" + "a" * 27 + "="], "is not a sha512 SRI"),
    "tag outside the pattern": (["--upstream-tag", "v0.14.2"], "is not a release tag like"),
    "tag with a suffix": (["--upstream-tag", TAG_A + "\n"], "is not a release tag like"),
    "another package": (["--npm-name", "@evil/sdk"], "is not the package this mirror publishes"),
    "registry with credentials": (
        ["--registry", "http://user:s3cret@127.0.0.1:4873/"],
        "without credentials",
    ),
    "registry not http": (["--registry", "file:///etc/"], "without credentials"),
    "reason on two lines": (["--override-reason", "a\nb"], "must be one line"),
    "dist-tag that is a version": (["--dist-tag", "1.2.3"], "is not a dist-tag"),
    "tag not mirrored": (["--upstream-tag", "@moonshot-ai/kimi-code@0.99.0"], "mirror ledger"),
    "commit not the tag's": (["--commit", "c" * 40], "is not the commit of"),
}


@pytest.mark.parametrize("override,message", list(BAD.values()), ids=list(BAD))
def test_crafted_facts_are_refused_and_nothing_is_pushed(
    project: Project,
    repos: GitRepos,
    origin_main: Path,
    tmp_path: Path,
    override: list[str],
    message: str,
) -> None:
    checkout = clone(repos, project, tmp_path / "c")
    argv = record_args("0.9.3", TAG_A, COMMIT_A)
    for flag, value in zip(override[::2], override[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    before = GitRepos.refs(origin_main)
    cp = checkout.invoke(*argv, "--push")
    assert cp.returncode == 2, cp.stderr
    lines = [ln for ln in cp.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], cp.stderr
    assert "Traceback" not in cp.stderr and "s3cret" not in cp.stdout + cp.stderr
    assert GitRepos.refs(origin_main) == before
    assert not (checkout.root / "ledger" / "releases.toml").exists()
    # the scratch worktree and its ref are gone
    assert git("worktree", "list", "--porcelain", cwd=checkout.root).count("worktree ") == 1
    assert "refs/sdkmirror/" not in git("for-each-ref", cwd=checkout.root)


def test_files_in_the_checkout_never_reach_main(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    """A forged ledger, edited RELEASES.md and stray files (staged or not) stay local."""
    checkout = clone(repos, project, tmp_path / "c")
    forged = checkout.root / "ledger" / "releases.toml"
    forged.write_text(
        '[releases."6.6.6"]\nnpm_name = "@botiverse/kimi-code-sdk"\nupstream_tag = "x"\n'
        f'commit = "{"e" * 40}"\nsdk_version = "6.6.6"\nintegrity = "sha512-x"\n'
        'published_at = 2026-01-01T00:00:00Z\nregistry = "http://evil.invalid/"\n'
    )
    (checkout.root / "RELEASES.md").write_text("forged\n")
    (checkout.root / "tasks.py").write_text("import os; os.system('id')\n")
    git("add", "tasks.py", cwd=checkout.root)
    (checkout.root / "notes" / "0.9.3.md").write_text("forged notes\n")

    cp = checkout.invoke(*record_args("0.9.3", TAG_A, COMMIT_A), "--push")
    assert cp.returncode == 0, cp.stderr
    assert sorted(releases_on(origin_main)) == ["0.9.3"]
    head = git("rev-parse", "main", cwd=origin_main)
    assert changed_files(origin_main, head) == ["RELEASES.md", "ledger/releases.toml"]
    tree = git("ls-tree", "-r", "--name-only", "main", cwd=origin_main).split()
    assert "tasks.py" not in tree and "notes/0.9.3.md" not in tree
    notes = git("show", "main:RELEASES.md", cwd=origin_main)
    assert "forged" not in notes and "_No notes yet: write `notes/0.9.3.md`._" in notes
    # The checkout's own edits are left alone; it is told how to catch up instead.
    assert "6.6.6" in forged.read_text() and "git pull --ff-only origin main" in cp.stderr


def test_dry_run_checks_and_plans_without_pushing(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    checkout = clone(repos, project, tmp_path / "c")
    before = GitRepos.refs(origin_main)
    cp = checkout.invoke(*record_args("0.9.3", TAG_A, COMMIT_A), "--push", "--dry-run")
    assert cp.returncode == 0, cp.stderr
    assert "dry run: would commit on origin main" in cp.stderr
    assert "ledger/releases.toml" in cp.stderr and "RELEASES.md" in cp.stderr
    assert GitRepos.refs(origin_main) == before
    assert git("status", "--porcelain", cwd=checkout.root) == ""


def test_without_push_it_records_in_the_checkout(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    checkout = clone(repos, project, tmp_path / "c")
    before = GitRepos.refs(origin_main)
    cp = checkout.invoke(
        *record_args("0.9.5", TAG_A, COMMIT_A, "--sdk-version", "0.9.3"),
        "--override-reason",
        "re-bundled at 0.14.2",
    )
    assert cp.returncode == 0, cp.stderr
    assert GitRepos.refs(origin_main) == before
    entry = tomllib.loads((checkout.root / "ledger" / "releases.toml").read_text())["releases"]
    assert entry["0.9.5"]["override_reason"] == "re-bundled at 0.14.2"
    assert "(override: re-bundled at 0.14.2)" in (checkout.root / "RELEASES.md").read_text()
    assert "invoke ledger.commit --push" in cp.stderr


def test_a_refused_push_is_one_error_and_not_retried(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    repos.install_hook(origin_main, "pre-receive", "echo 'main is protected' >&2\nexit 1\n")
    checkout = clone(repos, project, tmp_path / "c")
    cp = checkout.invoke(*record_args("0.9.3", TAG_A, COMMIT_A), "--push")
    assert cp.returncode == 5
    assert cp.stderr.strip().splitlines()[-1].startswith("error: origin refused the push")
    assert "main is protected" in cp.stderr and "moved while recording" not in cp.stderr


def test_the_checkouts_hooks_never_run(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    checkout = clone(repos, project, tmp_path / "c")
    marker = tmp_path / "hook-ran"
    hooks = checkout.root / ".git" / "hooks"
    for name in ("pre-push", "post-checkout", "pre-commit", "reference-transaction"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        (hooks / name).chmod(0o755)
    cp = checkout.invoke(*record_args("0.9.3", TAG_A, COMMIT_A), "--push")
    assert cp.returncode == 0, cp.stderr
    assert sorted(releases_on(origin_main)) == ["0.9.3"]
    assert not marker.exists()


def wait_for_lines(procs: list[subprocess.Popen[bytes]], paths: list[Path], text: str) -> None:
    """Until every process wrote `text` to its log; a process that ended first fails the test."""
    import time

    while not all(p.exists() and text in p.read_text(errors="replace") for p in paths):
        ended = [p.args for p in procs if p.poll() is not None]
        assert not ended, f"a record ended without waiting for the lock: {ended[0]}"
        time.sleep(0.02)  # polling the logs, not a wait for time to pass


def test_ten_concurrent_records_in_one_checkout_keep_all_ten(
    project: Project, repos: GitRepos, origin_main: Path, tmp_path: Path
) -> None:
    # The test holds the checkout's run lock until all ten records are queued on it, then lets
    # them all go at once: each must see the entries the others wrote before it.
    from filelock import FileLock

    checkout = clone(repos, project, tmp_path / "c")
    text = checkout.pyproject.read_text().replace("lock_timeout = 2.0", "lock_timeout = 300.0")
    checkout.pyproject.write_text(text)
    versions = [f"0.9.{n}" for n in range(3, 13)]
    (checkout.root / "state").mkdir()
    held = FileLock(str(checkout.root / "state" / "run.lock"))
    held.acquire()
    logs = [tmp_path / f"{v}.err" for v in versions]
    procs = []
    try:
        for v, log in zip(versions, logs, strict=True):
            argv = record_args(v, TAG_A, COMMIT_A, "--sdk-version", "0.9.3")
            with log.open("w") as err:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *argv],
                        cwd=checkout.root,
                        env=checkout.env,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                    )
                )
        wait_for_lines(procs, logs, "waiting up to")
    finally:
        held.release()
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0] * 10, [log.read_text() for log in logs]
    entries = tomllib.loads((checkout.root / "ledger" / "releases.toml").read_text())["releases"]
    assert sorted(entries) == sorted(versions)
    notes = (checkout.root / "RELEASES.md").read_text()
    assert all(f"| {v} |" in notes for v in versions)
