"""`invoke status` against real repositories, reports and ledgers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conftest import do_sync
from gitrepos import TAG, git, seed

from sdkmirror.mirror.releases import Release, ReleaseLedger
from sdkmirror.ops import status


def run_status(project, repos, *extra, upstream=None):
    return project.invoke(
        "status", "--json", "--origin", str(repos.origin),
        "--upstream", upstream or str(repos.upstream), *extra,
    )  # fmt: skip


def as_json(cp):
    return json.loads(cp.stdout)


def smoke_report(project, name, commit, results, ref="upstream-main"):
    d = project.config().reports_dir
    d.mkdir(parents=True, exist_ok=True)
    report = {"kind": "smoke", "ref": ref, "commit": commit, "results": results}
    (d / f"{name}.json").write_text(json.dumps(report))


def result(status_, node="24.19.0", commit=None, allow_failure=False, category=None):
    return {
        "id": f"node='{node}', pnpm='10.33.0'",
        "toolchain": {"node": node, "pnpm": "10.33.0", "allow_failure": allow_failure},
        "status": status_,
        "category": category,
        "commit": commit,
    }


def commit_of(repos, version):
    return git("rev-parse", f"refs/tags/{TAG.format(version)}^{{commit}}", cwd=repos.origin)


def publish_record(project, repos, version, npm_version):
    ledger = ReleaseLedger(project.config().release_ledger)
    ledger.add(
        Release(
            npm_version=npm_version,
            npm_name="@botiverse/kimi-code-sdk",
            upstream_tag=TAG.format(version),
            commit=commit_of(repos, version),
            sdk_version=npm_version,
            integrity="sha512-test",
            published_at=datetime(2025, 1, 1, tzinfo=UTC),
            registry="http://127.0.0.1:1/",
        )
    )
    ledger.save()


def test_healthy_mirror_is_one_green_screen(project, repos):
    seed(repos, "0.14.2", "0.14.3", "0.17.0")
    do_sync(project, repos)
    head = repos.refs(repos.upstream)["refs/heads/main"]
    smoke_report(project, "smoke-24.19.0-10.33.0", head, [result("pass", commit=head)])
    smoke_report(
        project, "smoke-22.20.0-10.33.0", head,
        [result("unsupported", node="22.20.0", commit=head, allow_failure=True)],
    )  # fmt: skip
    publish_record(project, repos, "0.14.2", "0.9.3")

    cp = run_status(project, repos)

    assert cp.returncode == 0, cp.stderr
    s = as_json(cp)
    assert s["ok"] is True and s["attention"] == []
    assert s["branch"]["state"] == "in-sync"
    assert (s["tags"]["upstream"], s["tags"]["mirrored"], s["tags"]["missing"]) == (3, 3, [])
    assert s["tags"]["latest"] == TAG.format("0.17.0")
    # the mirror head is the 0.17.0 release commit, smoke-built green
    assert s["smoke"]["latest_green_tag"] == TAG.format("0.17.0")
    assert s["npm"]["latest_version"] == "0.9.3"
    assert s["npm"]["unpublished_tags"] == [TAG.format("0.14.3"), TAG.format("0.17.0")]
    assert "mirror status: ok" in cp.stderr


def test_pending_upstream_work_is_shown_but_needs_nobody(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    repos.commit("more")
    repos.release("0.14.10")
    repos.push_all()

    cp = run_status(project, repos)

    assert cp.returncode == 0, cp.stderr
    s = as_json(cp)
    assert s["branch"]["state"] == "behind"
    assert s["tags"]["missing"] == [TAG.format("0.14.10")]
    assert s["smoke"]["latest_green_tag"] is None


def test_divergence_needs_the_maintainer(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    git("reset", "--hard", "HEAD~1", cwd=repos.work)
    repos.commit("rewritten")
    repos.push(force=True)
    project.invoke("sync", "--origin", str(repos.origin))  # exits 3, keeps its report

    cp = run_status(project, repos)

    assert cp.returncode == status.EXIT_ATTENTION
    s = as_json(cp)
    assert s["branch"]["state"] == "diverged"
    assert any("diverged" in a for a in s["attention"])
    assert [a["kind"] for a in s["alerts"]] == ["diverged"]
    assert cp.stderr.rstrip().splitlines()[-1].startswith("error: 1 item(s) need the maintainer")


def test_divergence_seen_without_any_sync_report(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    git("reset", "--hard", "HEAD~1", cwd=repos.work)
    repos.commit("rewritten")
    repos.push(force=True)
    # the work repository already holds both heads: no fetch needed to see the rewrite
    git(
        "fetch",
        "-q",
        str(repos.upstream),
        "+refs/heads/main:refs/x",
        cwd=project.config().work_repo,
    )

    assert as_json(run_status(project, repos))["branch"]["state"] == "diverged"


def test_moved_tag_failing_smoke_and_unregistered_patch_branch(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    repos.commit("retag")
    repos.tag(TAG.format("0.14.3"), force=True)
    repos.push("refs/heads/main")
    git("push", "-q", "--force", "origin", f"refs/tags/{TAG.format('0.14.3')}", cwd=repos.work)
    c = commit_of(repos, "0.14.3")
    failed = [result("fail", commit=c, category="upstream-build")]
    smoke_report(project, "smoke-24.19.0-10.33.0", c, failed, ref=TAG.format("0.14.3"))
    git("update-ref", "refs/heads/patch-rogue", c, cwd=repos.origin)

    cp = run_status(project, repos)

    assert cp.returncode == status.EXIT_ATTENTION
    s = as_json(cp)
    assert s["tags"]["moved"] == [TAG.format("0.14.3")]
    assert s["smoke"]["latest_run"]["status"] == "fail"
    assert s["smoke"]["latest_green_tag"] is None
    assert s["unregistered_patch_branches"] == ["patch-rogue"]
    assert len(s["attention"]) == 3
    assert {a["kind"] for a in s["alerts"]} == {"smoke-failure"}


def test_registered_patch_shows_whether_its_base_is_newest(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    cp = project.invoke(
        "patch.new", "fix", "--base", TAG.format("0.14.2"), "--reason", "r",
        "--origin", str(repos.origin),
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert as_json(run_status(project, repos))["patches"][0]["base_is_newest"] is True
    repos.commit("more")
    repos.release("0.15.0")
    repos.push_all()
    do_sync(project, repos)

    cp = run_status(project, repos)

    assert cp.returncode == 0, cp.stderr
    [p] = as_json(cp)["patches"]
    assert (p["branch"], p["on_origin"], p["base_is_newest"]) == ("patch-fix", True, False)
    assert "rebase or retire" in cp.stderr


def test_unreachable_upstream_is_reported_not_a_traceback(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)

    cp = run_status(project, repos, upstream=str(repos.base / "gone.git"))

    assert cp.returncode == status.EXIT_ATTENTION
    assert "Traceback" not in cp.stderr
    s = as_json(cp)
    assert "upstream" in s["unreachable"]
    assert s["branch"]["state"] == "unknown"
    assert s["tags"]["mirrored"] == 1


def test_collect_is_pure_over_listings(project):
    from sdkmirror.infra.gitio import RemoteRefs
    from sdkmirror.mirror.ledger import MirrorLedger

    cfg = project.config()
    t = TAG.format("1.0.0")
    up = RemoteRefs({"refs/heads/main": "b" * 40, f"refs/tags/{t}": "c" * 40})
    org = RemoteRefs({"refs/heads/upstream-main": "a" * 40, f"refs/tags/{t}": "c" * 40})
    s = status.collect(
        cfg, upstream_url="u", origin_url="o", upstream=up, origin=org,
        ledger=MirrorLedger(cfg.mirror_ledger), releases={}, patches={}, last_sync=None,
        smoke_reports=[], is_ancestor=lambda a, b: True,
    )  # fmt: skip
    assert s.ok and s.branch.state == "behind"
    s = status.collect(
        cfg, upstream_url="u", origin_url="o", upstream=up, origin=org,
        ledger=MirrorLedger(cfg.mirror_ledger), releases={}, patches={}, last_sync=None,
        smoke_reports=[], is_ancestor=lambda a, b: False,
    )  # fmt: skip
    assert not s.ok and s.branch.state == "diverged"


def test_a_tag_moved_on_origin_is_blamed_on_origin(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    name = TAG.format("0.14.2")
    other = git("rev-parse", f"refs/tags/{TAG.format('0.14.3')}", cwd=repos.origin)
    git("update-ref", f"refs/tags/{name}", other, cwd=repos.origin)

    cp = run_status(project, repos)

    assert cp.returncode == status.EXIT_ATTENTION
    s = as_json(cp)
    assert s["tags"]["moved"] == []  # upstream did nothing
    assert s["tags"]["moved_on_origin"] == [name]
    assert "moved upstream" not in cp.stderr


def test_a_release_branch_conflict_needs_the_maintainer(project, repos):
    seed(repos, "0.14.2")
    do_sync(project, repos)
    repos.commit("later")
    repos.push()
    do_sync(project, repos)
    head = repos.refs(repos.upstream)["refs/heads/main"]
    git("update-ref", "refs/heads/release/v0.14.2", head, cwd=repos.origin)
    assert project.invoke("verify", "--origin", str(repos.origin)).returncode == 7

    cp = run_status(project, repos)

    assert cp.returncode == status.EXIT_ATTENTION
    assert as_json(cp)["tags"]["branch_conflicts"] == ["release/v0.14.2"]


def test_a_run_against_another_origin_does_not_poison_status(project, repos, tmp_path):
    seed(repos, "0.14.2")
    assert project.invoke("sync", "--origin", str(repos.origin)).returncode == 0
    typo = project.invoke("sync", "--origin", str(tmp_path / "typo.git"))
    assert typo.returncode == 4

    cp = run_status(project, repos)

    assert cp.returncode == 0, cp.stderr
    s = as_json(cp)
    assert s["last_sync"]["status"] == "updated"
    row = next(ln for ln in cp.stderr.splitlines() if ln.startswith("last sync"))
    assert "updated" in row and s["last_sync"]["started_at"] in row
