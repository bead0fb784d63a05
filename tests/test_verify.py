"""`invoke verify` audits origin against the ledger."""

from __future__ import annotations

from conftest import do_sync
from gitrepos import TAG, git, seed

from sdkmirror.core.errors import VerificationFailed
from sdkmirror.mirror import verify
from sdkmirror.mirror.ledger import MirrorLedger


def audit(project, repos):
    return verify.run(project.config(), origin=str(repos.origin))


def test_clean_mirror_passes(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    cp = project.invoke("verify", "--origin", str(repos.origin))
    assert cp.returncode == 0, cp.stderr
    assert "verify: ok (2 mirror tag(s)" in cp.stdout  # the result, on stdout


def test_force_moved_mirror_tag_is_caught(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    other = repos.refs(repos.origin)[f"refs/tags/{TAG.format('0.14.3')}"]
    git("update-ref", f"refs/tags/{TAG.format('0.14.2')}", other, cwd=repos.origin)

    cp = project.invoke("verify", "--origin", str(repos.origin))

    assert cp.returncode == VerificationFailed.exit_code
    assert "tag-moved" in cp.stdout + cp.stderr
    assert [(v.rule, v.ref) for v in audit(project, repos)] == [("tag-moved", TAG.format("0.14.2"))]


def test_moved_and_missing_release_branches_are_caught(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    first = git("rev-list", "--max-parents=0", "refs/heads/upstream-main", cwd=repos.origin)
    git("update-ref", "refs/heads/release/v0.14.2", first, cwd=repos.origin)
    git("update-ref", "-d", "refs/heads/release/v0.14.3", cwd=repos.origin)

    found = {(v.rule, v.ref) for v in audit(project, repos)}

    assert found == {
        ("release-branch-moved", "release/v0.14.2"),
        ("release-branch-missing", "release/v0.14.3"),
    }


def test_rewritten_mirror_branch_is_caught(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    repos.commit("more")
    repos.push()
    do_sync(project, repos)
    assert len(MirrorLedger(project.config().mirror_ledger).heads("upstream-main")) == 2
    # someone force-pushes the mirror branch back and onto a fresh commit
    git("reset", "--hard", "HEAD~2", cwd=repos.work)
    repos.commit("forced")
    git("push", "-q", "--force", str(repos.origin), "HEAD:refs/heads/upstream-main", cwd=repos.work)

    rules = [v.rule for v in audit(project, repos)]

    assert rules == ["mirror-branch-rewritten", "mirror-branch-rewritten"]


def test_verify_works_without_a_work_repository(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    repos.commit("more")
    repos.push()
    do_sync(project, repos)
    import shutil

    shutil.rmtree(project.config().work_repo)
    assert audit(project, repos) == []


def test_following_a_permanent_rewrite_on_a_new_mirror_branch(project, repos):
    from sdkmirror.mirror import sync

    seed(repos, "0.14.2")
    do_sync(project, repos)
    held = repos.origin_refs()["refs/heads/upstream-main"]
    git("reset", "--hard", "HEAD~1", cwd=repos.work)
    repos.commit("rewritten history")
    repos.push(force=True)
    assert do_sync(project, repos).status == "diverged"

    # the runbook: leave the old branch frozen, follow upstream on a new one
    cfg = project.config(mirror_branch="upstream-main-2")
    report = sync.run(cfg, upstream=str(repos.upstream), origin=str(repos.origin))

    refs = repos.origin_refs()
    assert report.status == "updated"
    assert refs["refs/heads/upstream-main"] == held
    assert refs["refs/heads/upstream-main-2"] == repos.refs(repos.upstream)["refs/heads/main"]
    assert verify.run(cfg, origin=str(repos.origin)) == []
    git(
        "update-ref",
        "refs/heads/upstream-main",
        refs["refs/heads/upstream-main-2"],
        cwd=repos.origin,
    )
    assert [v.rule for v in verify.run(cfg, origin=str(repos.origin))] == [
        "mirror-branch-rewritten"
    ]


def test_upstream_flag_lists_release_tags_not_mirrored_yet(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    args = ("verify", "--origin", str(repos.origin), "--upstream", str(repos.upstream))
    calm = project.invoke(*args)
    assert calm.returncode == 0, calm.stderr
    assert "every upstream release tag is mirrored" in calm.stderr
    repos.release("0.14.10")
    repos.release("0.14.3")
    repos.tag("@moonshot-ai/kimi-code@0.15.0-rc.1")  # not a release: never listed
    repos.push_all()

    cp = project.invoke(*args)

    assert cp.returncode == 0, cp.stderr  # information, not a violation
    assert (
        "verify: 2 upstream release tag(s) not mirrored yet, the next `invoke sync` takes them "
        f"(not a violation): {TAG.format('0.14.3')}, {TAG.format('0.14.10')}"
    ) in cp.stderr
    assert "violation(s)" not in cp.stderr
    # without the flag, verify does not ask upstream at all
    assert (
        "upstream release tag" not in project.invoke("verify", "--origin", str(repos.origin)).stderr
    )


def test_upstream_flag_does_not_hide_violations(project, repos, tmp_path):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    git("update-ref", "-d", "refs/heads/release/v0.14.2", cwd=repos.origin)
    cp = project.invoke(
        "verify", "--origin", str(repos.origin), "--upstream", str(tmp_path / "gone.git")
    )
    assert cp.returncode == VerificationFailed.exit_code
    assert "release-branch-missing" in cp.stdout
    assert "upstream release tags not compared" in cp.stderr
