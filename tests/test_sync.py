"""`invoke sync` against real bare repositories: upstream, origin, and a pre-receive hook."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import do_sync
from gitrepos import TAG, GitRepos, git, seed

from sdkmirror.core.errors import LockHeld, PushRefused, RemoteError
from sdkmirror.infra.gitio import PUSH_TOKEN_ENV, WorkRepo, git_env
from sdkmirror.infra.lock import exclusive
from sdkmirror.mirror import sync
from sdkmirror.mirror.ledger import MirrorLedger


def test_initial_sync_into_empty_origin(project, repos):
    objs = seed(repos, "0.14.2", "0.14.3")
    report = do_sync(project, repos)

    assert report.status == "updated"
    refs = repos.origin_refs()
    upstream_refs = repos.refs(repos.upstream)
    assert refs["refs/heads/upstream-main"] == upstream_refs["refs/heads/main"]
    for v, obj in objs.items():
        assert refs[f"refs/tags/{TAG.format(v)}"] == obj  # the same annotated tag object
        commit = git("rev-parse", f"{obj}^{{commit}}", cwd=repos.upstream)
        assert refs[f"refs/heads/release/v{v}"] == commit
    # upstream's own main is not pushed to origin's main: main is ours
    assert "refs/heads/main" not in refs
    ledger = MirrorLedger(project.config().mirror_ledger)
    assert set(ledger.tags) == {TAG.format("0.14.2"), TAG.format("0.14.3")}
    assert ledger.heads("upstream-main") == [upstream_refs["refs/heads/main"]]


def test_incremental_sync_creates_release_branches_for_new_tags(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    repos.commit("feature work")
    new_obj = repos.release("0.17.0")
    repos.push_all()

    report = do_sync(project, repos)

    assert report.status == "updated"
    assert [t["name"] for t in report.new_tags] == [TAG.format("0.17.0")]
    assert [b["name"] for b in report.new_release_branches] == ["release/v0.17.0"]
    refs = repos.origin_refs()
    assert refs[f"refs/tags/{TAG.format('0.17.0')}"] == new_obj
    assert refs["refs/heads/release/v0.17.0"] == repos.refs(repos.upstream)["refs/heads/main"]
    assert refs["refs/heads/upstream-main"] == repos.refs(repos.upstream)["refs/heads/main"]


def test_noop_fetches_nothing(project, repos, monkeypatch):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    work = project.config().work_repo
    objects_before = sorted(p.name for p in (work / "objects").rglob("*") if p.is_file())
    ledger_before = project.config().mirror_ledger.read_text()

    def no_fetch(*args, **kwargs):
        raise AssertionError("a no-op run must not open the work repository or fetch")

    monkeypatch.setattr(sync, "WorkRepo", no_fetch)
    monkeypatch.setattr(WorkRepo, "fetch", no_fetch)
    report = do_sync(project, repos)

    assert report.status == "noop"
    assert not report.changed and not report.ledger_changed
    assert sorted(p.name for p in (work / "objects").rglob("*") if p.is_file()) == objects_before
    assert project.config().mirror_ledger.read_text() == ledger_before


def test_push_token_goes_to_origin_only(monkeypatch):
    monkeypatch.setenv(PUSH_TOKEN_ENV, "s3cret")
    url = "https://git.example.invalid/mirror.git"
    assert not any(k.startswith("GIT_CONFIG_KEY") for k in git_env(url))
    with_auth = git_env(url, auth=True)
    n = int(with_auth["GIT_CONFIG_COUNT"]) - 1
    header = with_auth[f"GIT_CONFIG_VALUE_{n}"]
    assert header.startswith("AUTHORIZATION: basic ")
    # Scoped to the origin URL: a rewrite rule sending the push elsewhere loses the header.
    assert with_auth[f"GIT_CONFIG_KEY_{n}"] == f"http.{url}.extraheader"
    assert not any("s3cret" in v for v in with_auth.values())  # encoded, never plain
    assert not any(k.startswith("GIT_CONFIG_KEY") for k in git_env("/local/path", auth=True))


def test_upstream_rewrite_holds_branch_and_exits_3(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    before = repos.origin_refs()
    git("reset", "--hard", "HEAD~1", cwd=repos.work)
    repos.commit("rewritten history")
    repos.push(force=True)

    cp = project.invoke("sync", "--origin", str(repos.origin), "--report", "r.json")

    assert cp.returncode == 3, cp.stderr
    assert "held" in cp.stderr
    assert repos.origin_refs() == before
    report = json.loads((project.root / "r.json").read_text())
    assert report["status"] == "diverged"
    assert [a["kind"] for a in report["alerts"]] == ["diverged"]
    assert report["mirror_branch"]["before"] == report["mirror_branch"]["after"]


def test_divergence_still_mirrors_new_tags(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    git("reset", "--hard", "HEAD~1", cwd=repos.work)
    new_obj = repos.release("0.15.0")
    repos.push_all(force=True)

    report = do_sync(project, repos)

    assert report.status == "diverged"
    refs = repos.origin_refs()
    assert refs[f"refs/tags/{TAG.format('0.15.0')}"] == new_obj
    assert "refs/heads/release/v0.15.0" in refs


def test_moved_tag_keeps_ours_and_alerts(project, repos):
    objs = seed(repos, "0.14.2")
    do_sync(project, repos)
    repos.commit("retagged")
    moved = repos.tag(TAG.format("0.14.2"), force=True)
    repos.push("refs/heads/main")
    git("push", "-q", "--force", "origin", f"refs/tags/{TAG.format('0.14.2')}", cwd=repos.work)
    assert moved != objs["0.14.2"]

    report = do_sync(project, repos)

    assert repos.origin_refs()[f"refs/tags/{TAG.format('0.14.2')}"] == objs["0.14.2"]
    assert {"kind": "tag-moved", "ref": TAG.format("0.14.2")}.items() <= report.alerts[0].items()
    assert report.status == "updated"  # the branch still fast-forwarded


def test_deleted_tag_keeps_ours_and_alerts(project, repos):
    objs = seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    repos.delete_upstream_tag(TAG.format("0.14.2"))

    report = do_sync(project, repos)

    assert report.status == "noop"
    assert repos.origin_refs()[f"refs/tags/{TAG.format('0.14.2')}"] == objs["0.14.2"]
    assert [(a["kind"], a["ref"]) for a in report.alerts] == [("tag-deleted", TAG.format("0.14.2"))]


@pytest.mark.parametrize(
    "name",
    [
        "@moonshot-ai/kimi-code@1.0.0;touch${IFS}pwned",
        "@moonshot-ai/kimi-code@1.0.0$(touch${IFS}pwned)",
        "@moonshot-ai/kimi-code@1.0",
        "@moonshot-ai/kimi-code@01.0.0",
        "@moonshot-ai/kimi-code@1.0.0-rc.1",
        "@moonshot-ai/kimi-code@1.0.0" + "/x" * 150,
        "`touch${IFS}pwned`",
    ],
    ids=["semicolon", "subshell", "not-semver", "leading-zero", "prerelease", "absurd", "backtick"],
)
def test_hostile_tag_names_are_ignored_with_an_alert(project, repos, name):
    seed(repos, "0.14.2")
    repos.tag(name)
    repos.push_all()

    report = do_sync(project, repos)

    kinds = [a["kind"] for a in report.alerts]
    assert kinds == ["invalid-tag"]
    origin_tags = {r for r in repos.origin_refs() if r.startswith("refs/tags/")}
    assert origin_tags == {f"refs/tags/{TAG.format('0.14.2')}"}
    assert not (project.root / "pwned").exists()
    assert not Path("pwned").exists()


def test_refused_push_changes_nothing_and_rerun_converges(project, repos):
    seed(repos, "0.14.2")
    repos.install_hook(
        repos.origin, "pre-receive", "echo 'policy: mirror is frozen today' >&2\nexit 1\n"
    )

    with pytest.raises(PushRefused, match="policy: mirror is frozen today"):
        do_sync(project, repos)
    assert repos.origin_refs() == {}
    assert not project.config().mirror_ledger.exists()

    (repos.origin / "hooks" / "pre-receive").unlink()
    report = do_sync(project, repos)
    assert report.status == "updated"
    assert f"refs/tags/{TAG.format('0.14.2')}" in repos.origin_refs()
    assert TAG.format("0.14.2") in MirrorLedger(project.config().mirror_ledger).tags


def test_workflow_scope_refusal_gets_its_own_alert(project, repos):
    seed(repos, "0.14.2")
    repos.install_hook(
        repos.origin,
        "pre-receive",
        'echo "refusing to allow a Personal Access Token to create or update workflow '
        '\\`.github/workflows/ci.yml\\` without \\`workflow\\` scope" >&2\nexit 1\n',
    )

    cp = project.invoke("sync", "--origin", str(repos.origin), "--report", "r.json")

    assert cp.returncode == PushRefused.exit_code
    assert "SYNC_PAT" in cp.stderr and "workflow" in cp.stderr
    assert len([ln for ln in cp.stderr.splitlines() if ln.startswith("error:")]) == 1
    report = json.loads((project.root / "r.json").read_text())
    assert report["status"] == "failed"
    assert [a["kind"] for a in report["alerts"]] == ["push-auth-workflows"]


def test_second_concurrent_run_waits_then_fails_clearly(project, repos, capsys):
    seed(repos, "0.14.2")
    cfg = project.config(lock_timeout=0.5)
    with exclusive(cfg.work_dir, 5):
        start = time.monotonic()
        with pytest.raises(LockHeld, match=rf"another run \(pid {os.getpid()}\) holds"):
            sync.run(cfg, upstream=str(repos.upstream), origin=str(repos.origin))
        assert time.monotonic() - start >= cfg.lock_timeout * 0.9
    # said at once, before the wait, naming whom it waits for
    assert f"waiting up to 0.5 s for the run held by pid {os.getpid()}" in capsys.readouterr().err
    assert repos.origin_refs() == {}


def test_a_noop_sync_reads_without_waiting_for_a_run_holding_the_lock(project, repos, capsys):
    seed(repos, "0.14.2")
    cfg = project.config(lock_timeout=30)
    sync.run(cfg, upstream=str(repos.upstream), origin=str(repos.origin))
    ledger = (project.root / "ledger" / "mirror-tags.toml").read_bytes()
    capsys.readouterr()
    with exclusive(cfg.work_dir, 5):
        report = sync.run(cfg, upstream=str(repos.upstream), origin=str(repos.origin))
        assert report.status == "noop" and not report.ledger_changed
        assert "waiting" not in capsys.readouterr().err
        # Work to do needs the lock again: upstream has a new release.
        repos.release("0.14.3")
        repos.push_all()
        with pytest.raises(LockHeld):
            sync.run(project.config(lock_timeout=0.2), upstream=str(repos.upstream),
                     origin=str(repos.origin))  # fmt: skip
    assert (project.root / "ledger" / "mirror-tags.toml").read_bytes() == ledger


def test_dry_run_changes_nothing(project, repos):
    seed(repos, "0.14.2")

    cp = project.invoke("sync", "--origin", str(repos.origin), "--dry-run", "--report", "r.json")

    assert cp.returncode == 0, cp.stderr
    assert repos.origin_refs() == {}
    assert not project.config().mirror_ledger.exists()
    assert "would run: git push --atomic" in cp.stderr
    report = json.loads((project.root / "r.json").read_text())
    assert report["dry_run"] is True
    assert [t["name"] for t in report["new_tags"]] == [TAG.format("0.14.2")]


def test_unreachable_upstream_is_one_clear_line(project, repos, tmp_path):
    cp = project.invoke(
        "sync", "--upstream", str(tmp_path / "nowhere.git"), "--origin", str(repos.origin)
    )
    assert cp.returncode == RemoteError.exit_code
    errors = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: cannot read upstream")
    assert "Traceback" not in cp.stderr


def test_missing_release_branch_is_recreated(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    git("update-ref", "-d", "refs/heads/release/v0.14.2", cwd=repos.origin)

    report = do_sync(project, repos)

    assert [b["name"] for b in report.new_release_branches] == ["release/v0.14.2"]
    assert "refs/heads/release/v0.14.2" in repos.origin_refs()


def test_report_json_shape(project, repos):
    seed(repos, "0.14.2")
    cp = project.invoke("sync", "--origin", str(repos.origin), "--report", "out/r.json")
    assert cp.returncode == 0, cp.stderr
    report = json.loads((project.root / "out/r.json").read_text())
    assert report["status"] == "updated"
    assert set(report["mirror_branch"]) >= {"before", "after"}
    assert report["mirror_branch"]["before"] is None
    assert report["new_release_branches"] == [
        {"name": "release/v0.14.2", "commit": repos.refs(repos.upstream)["refs/heads/main"]}
    ]
    assert report["alerts"] == []


# --- the work repository is a cache of objects only ---------------------------------------------


def test_hooks_planted_in_the_work_repository_never_run(project, repos, tmp_path):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    work = project.config().work_repo
    marker = tmp_path / "hook-ran"
    for hook in ("pre-push", "reference-transaction", "post-update"):
        repos.install_hook(work, hook, f'echo "$0" >> "{marker}"\n')
    repos.commit("more work")
    repos.release("0.15.0")
    repos.push_all()

    report = do_sync(project, repos)

    assert report.status == "updated"
    assert f"refs/tags/{TAG.format('0.15.0')}" in repos.origin_refs()
    assert not marker.exists()


def test_insteadof_planted_in_the_work_repository_does_not_redirect_the_push(
    project, repos, tmp_path
):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    decoy = tmp_path / "decoy.git"
    git("init", "--bare", "-q", "-b", "main", str(decoy))
    work = project.config().work_repo
    with (work / "config").open("a") as fh:
        fh.write(f'[url "{decoy}"]\n\tinsteadOf = {repos.origin}\n')
    repos.commit("more work")
    new_obj = repos.release("0.15.0")
    repos.push_all()

    do_sync(project, repos)

    assert repos.origin_refs()[f"refs/tags/{TAG.format('0.15.0')}"] == new_obj
    assert repos.refs(decoy) == {}
    assert "insteadOf" not in (work / "config").read_text()


def test_stale_locks_a_killed_git_left_are_removed(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    work = project.config().work_repo
    stale = [work / "refs/upstream/heads/main.lock", work / "packed-refs.lock"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("0" * 40 + "\n")
    repos.commit("more work")
    repos.push_all()

    report = do_sync(project, repos)

    assert report.status == "updated"
    assert not any(p.exists() for p in stale)


def test_a_stalled_remote_fails_with_exit_4_naming_it(project, repos, monkeypatch):
    import socket

    from sdkmirror.infra import gitio

    seed(repos, "0.14.2")
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/upstream.git"
        monkeypatch.setattr(gitio, "LIST_TIMEOUT", 2.0)
        start = time.monotonic()
        with pytest.raises(RemoteError) as err:
            sync.run(project.config(), upstream=url, origin=str(repos.origin))
    assert time.monotonic() - start < 20
    assert err.value.exit_code == 4
    assert f"upstream {url} stalled" in str(err.value)
    assert repos.origin_refs() == {}


def test_a_missing_origin_shows_gits_own_reason(project, repos, tmp_path):
    seed(repos, "0.14.2")
    cp = project.invoke("sync", "--origin", str(tmp_path / "no-such.git"))
    assert cp.returncode == 4
    assert "does not appear to be a git repository" in cp.stderr
    assert "Traceback" not in cp.stderr


# --- origin is trusted only where upstream or the ledger vouches for it -------------------------


def _push_to_origin_only(repos: GitRepos, name: str) -> str:
    """A release-shaped tag pushed straight to origin, on a commit upstream never had."""
    git("commit", "-q", "--allow-empty", "-m", "not upstream", cwd=repos.work)
    obj = repos.tag(name)
    git("push", "-q", str(repos.origin), f"refs/tags/{name}", cwd=repos.work)
    git("reset", "-q", "--hard", "HEAD~1", cwd=repos.work)
    git("tag", "-d", name, cwd=repos.work)
    return obj


def test_a_tag_upstream_never_had_is_not_adopted(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    foreign = TAG.format("9.9.9")
    _push_to_origin_only(repos, foreign)

    report = do_sync(project, repos)

    assert ("foreign-tag", foreign) in [(a["kind"], a["ref"]) for a in report.alerts]
    assert foreign not in MirrorLedger(project.config().mirror_ledger).tags
    assert "refs/heads/release/v9.9.9" not in repos.origin_refs()
    cp = project.invoke("verify", "--origin", str(repos.origin))
    assert cp.returncode == 7
    assert "foreign-tag" in cp.stdout and foreign in cp.stdout


def test_a_tag_pushed_to_origin_before_the_sync_is_not_recorded(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    name = TAG.format("0.15.0")
    _push_to_origin_only(repos, name)
    repos.commit("real 0.15.0")
    upstream_obj = repos.release("0.15.0")
    repos.push_all()

    report = do_sync(project, repos)

    assert [(a["kind"], a["ref"]) for a in report.alerts] == [("foreign-tag", name)]
    assert name not in MirrorLedger(project.config().mirror_ledger).tags
    assert repos.origin_refs()[f"refs/tags/{name}"] != upstream_obj
    assert "refs/heads/release/v0.15.0" not in repos.origin_refs()
