"""Fault injection: each fault loses nothing on the mirror, and the next run converges.

Every case checks the same three things: no mirror tag moved and no release branch vanished on
origin; no mirror-ledger entry was lost; a re-run brings origin and the ledger to the state a
fault-free run would have reached (and `invoke verify` agrees).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import do_sync
from gitrepos import TAG, GitRepos, git, seed

# The real-registry fixtures of the publish tests: a provisioned toolchain, the sample mirror
# with its ledger, and a Verdaccio on loopback.
from sdkmirror.core.errors import LockHeld, PushRefused, RemoteError
from sdkmirror.mirror import verify
from sdkmirror.mirror.ledger import MirrorLedger

# Crashes and refusals are the subject here, not building: builds are shared across tests.
pytestmark = pytest.mark.usefixtures("shared_build_cache")

REPO_ROOT = Path(__file__).resolve().parents[1]
KILLED = -signal.SIGKILL


@dataclass
class Before:
    refs: dict[str, str]
    ledger: dict[str, str]  # tag -> object


def snapshot(project, repos: GitRepos) -> Before:
    ledger = MirrorLedger(project.config().mirror_ledger)
    return Before(repos.origin_refs(), {n: r.object for n, r in ledger.tags.items()})


def assert_nothing_lost(project, repos: GitRepos, before: Before) -> None:
    now = repos.origin_refs()
    for ref, obj in before.refs.items():
        if ref.startswith(("refs/tags/", "refs/heads/release/")):
            assert now.get(ref) == obj, f"{ref} moved or vanished"
    branch = "refs/heads/upstream-main"
    if branch in before.refs:
        assert now[branch] == before.refs[branch] or _is_ancestor(
            repos.origin, before.refs[branch], now[branch]
        )
    ledger = MirrorLedger(project.config().mirror_ledger).tags
    for name, obj in before.ledger.items():
        assert name in ledger and ledger[name].object == obj, f"ledger lost {name}"


def _is_ancestor(repo: Path, a: str, b: str) -> bool:
    cp = subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=repo, check=False)
    return cp.returncode == 0


def expected_origin(repos: GitRepos) -> dict[str, str]:
    """What origin holds after a fault-free sync: mirror branch, tags, release branches."""
    up = repos.refs(repos.upstream)
    out = {"refs/heads/upstream-main": up["refs/heads/main"]}
    for ref, obj in up.items():
        if ref.startswith("refs/tags/"):
            out[ref] = obj
            version = ref.rsplit("@", 1)[1]
            out[f"refs/heads/release/v{version}"] = git("rev-parse", f"{obj}^{{commit}}",
                                                         cwd=repos.upstream)  # fmt: skip
    return out


def assert_converges(project, repos: GitRepos) -> None:
    report = do_sync(project, repos)
    assert report.status in ("updated", "noop")
    assert repos.origin_refs() == expected_origin(repos)
    ledger = MirrorLedger(project.config().mirror_ledger)
    upstream_tags = {
        r[len("refs/tags/") :]: o for r, o in repos.refs(repos.upstream).items() if "tags/" in r
    }
    assert {n: r.object for n, r in ledger.tags.items()} == upstream_tags
    assert ledger.heads("upstream-main")[-1] == repos.refs(repos.upstream)["refs/heads/main"]
    assert verify.run(project.config(), origin=str(repos.origin)) == []
    assert do_sync(project, repos).status == "noop"


@pytest.fixture
def moved_on(project, repos) -> Before:
    """A mirror with two releases, and upstream one commit and one release further."""
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    repos.commit("feature work")
    repos.release("0.17.0")
    repos.push_all()
    return snapshot(project, repos)


def sync_argv(repos: GitRepos, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT),
        "sync", "--origin", str(repos.origin), *extra,
    ]  # fmt: skip


def popen_sync(project, repos: GitRepos, env: dict[str, str] | None = None) -> subprocess.Popen:
    # A session of its own, so the test can kill the sync with every child it started.
    return subprocess.Popen(
        sync_argv(repos),
        cwd=project.root,
        env={**project.env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def hold_until(started: Path, release: Path, timeout: int = 120) -> str:
    """A hook that says it started, then waits for `release` (a file barrier, not a sleep)."""
    polls = timeout * 20
    return (
        f"touch '{started}'\ni=0\nwhile [ ! -e '{release}' ]; do\n"
        f"  i=$((i + 1)); [ $i -gt {polls} ] && exit 1; sleep 0.05\ndone\n"
    )


def wait_any_exit(procs: list[subprocess.Popen], timeout: float = 120) -> subprocess.Popen:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                return p
        time.sleep(0.05)
    raise AssertionError("no process exited")


def wait_group_gone(pgid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} still running")


# --- the sync killed ------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["after-fetch", "after-local-refs"])
def test_sync_killed_before_its_push_leaves_origin_untouched(project, repos, moved_on, point):
    cp = project.invoke("sync", "--origin", str(repos.origin), env={"SDKMIRROR_FAILPOINTS": point})

    assert cp.returncode == KILLED, cp.stderr
    assert repos.origin_refs() == moved_on.refs
    assert_nothing_lost(project, repos, moved_on)
    assert_converges(project, repos)


def test_sync_killed_after_its_push_rerun_records_the_ledger(project, repos, moved_on):
    cp = project.invoke(
        "sync", "--origin", str(repos.origin), env={"SDKMIRROR_FAILPOINTS": "after-push"}
    )

    assert cp.returncode == KILLED, cp.stderr
    assert repos.origin_refs() == expected_origin(repos)  # the push had completed
    ledger = MirrorLedger(project.config().mirror_ledger)
    assert TAG.format("0.17.0") not in ledger.tags  # ... the ledger write had not
    assert_nothing_lost(project, repos, moved_on)
    assert_converges(project, repos)  # the re-run adopts what origin already has


def test_sync_killed_during_its_push_is_all_or_nothing(project, repos, moved_on):
    started = repos.base / "push-started"
    # The hook holds the push open until the kill: a release file that never comes.
    repos.install_hook(repos.origin, "pre-receive", hold_until(started, repos.base / "never"))
    proc = popen_sync(project, repos)
    wait_for(started)

    os.killpg(proc.pid, signal.SIGKILL)  # the machine dies: sync, git push, receive-pack
    proc.wait(timeout=30)
    wait_group_gone(proc.pid)

    assert repos.origin_refs() == moved_on.refs  # nothing, since not everything
    assert_nothing_lost(project, repos, moved_on)
    (repos.origin / "hooks" / "pre-receive").unlink()
    assert_converges(project, repos)


def test_sync_killed_while_its_push_finishes_alone_lands_everything(project, repos, moved_on):
    started, release = repos.base / "push-started", repos.base / "push-release"
    seen = repos.base / "pushed-refs"
    hook = f"cat > '{seen}'\n" + hold_until(started, release)
    repos.install_hook(repos.origin, "pre-receive", hook)
    proc = popen_sync(project, repos)
    wait_for(started)

    os.kill(proc.pid, signal.SIGKILL)  # only the sync dies; its git push carries on
    proc.wait(timeout=30)
    release.touch()  # ... and finishes only after the sync is gone
    wait_group_gone(proc.pid)

    # one pre-receive run saw every ref: the push was one transaction, and it landed whole
    assert len(seen.read_text().splitlines()) == 3  # branch, tag, release branch
    assert repos.origin_refs() == expected_origin(repos)
    assert_nothing_lost(project, repos, moved_on)
    (repos.origin / "hooks" / "pre-receive").unlink()
    assert_converges(project, repos)


# --- origin and upstream misbehaving --------------------------------------------------------------


def test_origin_refusing_the_push(project, repos, moved_on):
    repos.install_hook(repos.origin, "pre-receive", "echo 'quota exceeded' >&2\nexit 1\n")

    with pytest.raises(PushRefused, match="quota exceeded"):
        do_sync(project, repos)

    assert repos.origin_refs() == moved_on.refs
    assert_nothing_lost(project, repos, moved_on)
    (repos.origin / "hooks" / "pre-receive").unlink()
    assert_converges(project, repos)


def test_origin_refusing_one_ref_refuses_them_all(project, repos, moved_on):
    # an update hook runs per ref: refusing only the tag must not let the branch through
    repos.install_hook(
        repos.origin,
        "update",
        'case "$1" in refs/tags/*) echo "no tags today" >&2; exit 1;; esac\n',
    )

    with pytest.raises(PushRefused, match="no tags today"):
        do_sync(project, repos)

    assert repos.origin_refs() == moved_on.refs
    assert_nothing_lost(project, repos, moved_on)
    (repos.origin / "hooks" / "update").unlink()
    assert_converges(project, repos)


def test_two_syncs_at_once(project, repos, moved_on):
    # The first sync to reach its push holds it there until the other has given up on the lock.
    started, release = repos.base / "push-started", repos.base / "push-release"
    repos.install_hook(repos.origin, "pre-receive", hold_until(started, release))
    procs = [popen_sync(project, repos) for _ in range(2)]
    try:
        wait_for(started)
        loser = wait_any_exit(procs)
        assert loser.returncode == LockHeld.exit_code, loser.stderr.read()
        release.touch()
        (winner,) = [p for p in procs if p is not loser]
        assert winner.wait(timeout=120) == 0, winner.stderr.read()
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert re.search(r"another run \(pid \d+\) holds", loser.stderr.read())
    assert_nothing_lost(project, repos, moved_on)
    assert repos.origin_refs() == expected_origin(repos)
    upstream_tags = {
        r.removeprefix("refs/tags/") for r in repos.refs(repos.upstream) if "tags/" in r
    }
    assert set(MirrorLedger(project.config().mirror_ledger).tags) == upstream_tags
    (repos.origin / "hooks" / "pre-receive").unlink()
    assert_converges(project, repos)


def test_upstream_unreachable(project, repos, moved_on):
    from sdkmirror.mirror import sync

    with pytest.raises(RemoteError, match="cannot read upstream"):
        sync.run(project.config(), upstream=str(repos.base / "gone.git"), origin=str(repos.origin))

    assert repos.origin_refs() == moved_on.refs
    assert_nothing_lost(project, repos, moved_on)
    assert_converges(project, repos)


def test_upstream_vanishing_between_listing_and_fetch(project, repos, moved_on, monkeypatch):
    # ls-remote answers, then the fetch finds no repository there: nothing is pushed
    from sdkmirror.mirror import sync

    hidden = repos.base / "hidden.git"
    real_fetch = sync._fetch

    def fetch_after_vanish(*args, **kwargs):
        repos.upstream.rename(hidden)
        try:
            return real_fetch(*args, **kwargs)
        finally:
            hidden.rename(repos.upstream)

    monkeypatch.setattr(sync, "_fetch", fetch_after_vanish)
    with pytest.raises(RemoteError, match="cannot fetch from upstream"):
        do_sync(project, repos)
    monkeypatch.undo()

    assert repos.origin_refs() == moved_on.refs
    assert_nothing_lost(project, repos, moved_on)
    assert_converges(project, repos)


# --- the work repository damaged ------------------------------------------------------------------


def _objects(work: Path) -> list[Path]:
    return [p for p in (work / "objects").rglob("*") if p.is_file() and p.stat().st_size > 0]


def damage(work: Path, how: str) -> None:
    if how == "deleted":
        shutil.rmtree(work)
    elif how == "garbage-head":
        (work / "HEAD").write_bytes(b"\x00garbage\xff\n")
    elif how == "garbage-config":
        (work / "config").write_text("[core\n\tbare = maybe\n<<<\n")
    elif how == "truncated-loose-objects":
        loose = [p for p in _objects(work) if "pack" not in p.parts and "info" not in p.parts]
        assert loose
        for p in loose:
            p.chmod(0o644)
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif how == "truncated-packs":
        git("repack", "-a", "-d", "-q", cwd=work)
        packs = list((work / "objects" / "pack").glob("*.pack"))
        assert packs
        for p in packs:
            p.chmod(0o644)
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["deleted", "garbage-head", "garbage-config", "truncated-loose-objects", "truncated-packs"],
)
def test_damaged_work_repository_is_rebuilt(project, repos, moved_on, how):
    damage(project.config().work_repo, how)

    report = do_sync(project, repos)  # the first run after the damage already converges

    assert report.status == "updated"
    assert repos.origin_refs() == expected_origin(repos)
    assert_nothing_lost(project, repos, moved_on)
    assert_converges(project, repos)


@pytest.mark.parametrize(
    "how",
    [
        "truncated-loose-objects",
        "truncated-packs",
    ],
)
def test_damage_to_objects_a_run_already_fetched_is_rebuilt(project, repos, moved_on, how):
    # the fetched objects are local (a run died after its fetch), then they rot: nothing
    # is fetched again, so the damage only shows when the push reads them
    cp = project.invoke(
        "sync", "--origin", str(repos.origin), env={"SDKMIRROR_FAILPOINTS": "after-fetch"}
    )
    assert cp.returncode == KILLED, cp.stderr
    damage(project.config().work_repo, how)

    report = do_sync(project, repos)

    assert report.status == "updated"
    assert repos.origin_refs() == expected_origin(repos)
    assert_nothing_lost(project, repos, moved_on)
    assert_converges(project, repos)


# --- GitHub down ----------------------------------------------------------------------------------


def test_github_api_failing_throughout(project, repos, moved_on, httpserver, tmp_path):
    import json
    import re

    # a run with something to report: upstream moved a mirrored tag
    repos.tag(TAG.format("0.14.2"), "HEAD", force=True)
    git("push", "-q", "--force", "origin", f"refs/tags/{TAG.format('0.14.2')}", cwd=repos.work)
    sync_json = tmp_path / "sync.json"
    cp = project.invoke("sync", "--origin", str(repos.origin), "--report", str(sync_json))
    assert cp.returncode == 0, cp.stderr
    assert [a["kind"] for a in json.loads(sync_json.read_text())["alerts"]] == ["tag-moved"]
    httpserver.expect_request(re.compile(".*")).respond_with_json(
        {"message": "Server Error"}, status=502
    )
    summary = tmp_path / "summary.md"
    env = {
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": "botiverse/kimi-code-sdk",
        "GITHUB_API_URL": httpserver.url_for("/api"),
        "GITHUB_STEP_SUMMARY": str(summary),
        "SDKMIRROR_GITHUB_RETRY": "attempts=3,backoff=0.01,max_wait=0.1,write_gap=0",
    }

    cp = project.invoke("report", "--sync-report", str(sync_json), env=env)

    assert cp.returncode == 0, cp.stderr  # the sync was green; GitHub's trouble does not change it
    assert "Traceback" not in cp.stderr
    assert "502" in cp.stderr
    assert "GitHub problems" in summary.read_text()
    requests = [(r.method, r.path) for r, _ in httpserver.log]
    assert len(requests) == 3  # the bounded retries of one listing, then no write at all
    assert {m for m, _ in requests} == {"GET"}
    assert all(p.startswith("/api/repos/botiverse/kimi-code-sdk/issues") for _, p in requests)
    assert_nothing_lost(project, repos, moved_on)
    assert (
        repos.origin_refs()[f"refs/tags/{TAG.format('0.14.2')}"]
        == moved_on.refs[f"refs/tags/{TAG.format('0.14.2')}"]
    )


# --- publish interrupted -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-pack", "after-upload"])
def test_publish_killed_then_rerun_converges(point, project, cfg, mirror, registry, toolchain):
    from sdkmirror.mirror.releases import ReleaseLedger
    from sdkmirror.release.publish import pipeline as publish

    tag, name = TAG.format("0.14.2"), cfg.npm_name
    argv = ["publish", "--source-tag", tag, "--no-dry-run", "--registry", registry.url,
            "--origin", str(mirror)]  # fmt: skip
    env = registry.npm_env()
    mirror_refs, mirror_ledger = GitRepos.refs(mirror), cfg.mirror_ledger.read_text()

    cp = project.invoke(*argv, env={**env, "SDKMIRROR_FAILPOINTS": point})

    assert cp.returncode == KILLED, cp.stderr
    on_registry = publish.registry_integrity(name, "0.9.3", registry.url)
    assert (on_registry is not None) == (point == "after-upload")
    assert ReleaseLedger(cfg.release_ledger).releases == {}  # recorded only once verified
    assert GitRepos.refs(mirror) == mirror_refs
    assert cfg.mirror_ledger.read_text() == mirror_ledger

    cp = project.invoke(*argv, env=env)  # the same command again

    assert cp.returncode == 0, cp.stderr
    release = ReleaseLedger(cfg.release_ledger).releases["0.9.3"]
    assert release.upstream_tag == tag
    assert release.integrity == publish.registry_integrity(name, "0.9.3", registry.url)
    if on_registry is not None:  # the upload had landed: the re-run found it identical
        assert release.integrity == on_registry
        assert "already published" in cp.stderr
    assert GitRepos.refs(mirror) == mirror_refs
