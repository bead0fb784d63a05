"""Every tag one verdict: tampering on origin, foreign tags, refused tags, version order, and
results on stdout (issues 20 and 23), through the real tasks and real repositories."""

from __future__ import annotations

import json

from conftest import do_sync
from gitrepos import TAG, git, seed


def sync(project, repos, *extra):
    return project.invoke("sync", "--origin", str(repos.origin), *extra)


def verify(project, repos, *extra):
    return project.invoke(
        "verify", "--origin", str(repos.origin), "--upstream", str(repos.upstream), *extra
    )


def origin_tag(repos, version):
    return repos.origin_refs().get(f"refs/tags/{TAG.format(version)}")


def move_on_origin(repos, version):
    """Someone force-pushes the mirror tag on origin to another tag object."""
    name = TAG.format(version)
    git("tag", "-f", "-a", "-m", "tampered", name, "HEAD", cwd=repos.work)
    git("push", "-q", "--force", str(repos.origin), f"refs/tags/{name}", cwd=repos.work)
    return git("rev-parse", f"refs/tags/{name}", cwd=repos.work)


def test_a_tag_moved_or_deleted_on_origin_is_alerted_exit_8_and_repaired(project, repos):
    objs = seed(repos, "0.14.2", "0.14.3")
    assert sync(project, repos).returncode == 0
    moved = move_on_origin(repos, "0.14.2")
    git("update-ref", "-d", f"refs/tags/{TAG.format('0.14.3')}", cwd=repos.origin)

    cp = sync(project, repos)

    assert cp.returncode == 8, cp.stderr
    assert "moved or deleted on origin itself" in cp.stderr.strip().splitlines()[-1]
    kinds = [ln.split()[1] for ln in cp.stdout.splitlines() if ln.startswith("alert ")]
    assert kinds == ["tag-moved-on-origin", "tag-deleted-on-origin"]  # once each, by version
    assert origin_tag(repos, "0.14.2") == moved and origin_tag(repos, "0.14.3") is None

    plan = project.invoke("verify", "--origin", str(repos.origin), "--repair")
    assert plan.returncode == 7
    assert "repair plan (dry run: nothing pushed)" in plan.stdout
    assert "(deleted)" in plan.stdout and "--force-with-lease" in plan.stderr
    assert origin_tag(repos, "0.14.2") == moved and origin_tag(repos, "0.14.3") is None

    done = project.invoke("verify", "--origin", str(repos.origin), "--repair", "--no-dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert origin_tag(repos, "0.14.2") == objs["0.14.2"]
    assert origin_tag(repos, "0.14.3") == objs["0.14.3"]
    assert sync(project, repos).returncode == 0


def test_a_foreign_tag_is_listed_as_foreign_never_counted(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    foreign = TAG.format("0.99.0")
    git("commit", "-q", "--allow-empty", "-m", "not upstream", cwd=repos.work)
    repos.tag(foreign)
    git("push", "-q", str(repos.origin), f"refs/tags/{foreign}", cwd=repos.work)

    cp = project.invoke(
        "status", "--json", "--origin", str(repos.origin), "--upstream", str(repos.upstream)
    )
    s = json.loads(cp.stdout)
    assert s["schema"] == 1 and s["tags"]["foreign"] == [foreign]
    assert (s["tags"]["mirrored"], s["tags"]["upstream"]) == (2, 2)
    assert s["tags"]["deleted_upstream"] == [] and s["tags"]["latest"] == TAG.format("0.14.3")
    assert foreign not in s["npm"]["unpublished_tags"]

    cp = verify(project, repos, "--json")
    assert cp.returncode == 7
    [f] = json.loads(cp.stdout)["foreign"]
    assert f["name"] == foreign
    assert f["delete"] == ["git", "push", "--", str(repos.origin), f":refs/tags/{foreign}"]
    text = verify(project, repos).stdout
    assert "foreign: 1 release tag(s)" in text and f":refs/tags/{foreign}" in text
    assert "git show --stat" in text
    assert origin_tag(repos, "0.99.0") is not None  # neither command was run


def test_tags_sync_will_not_take_are_rejected_once_not_pending(project, repos):
    seed(repos, "0.14.2")
    blob = git("hash-object", "-w", "--stdin", cwd=repos.work)  # the empty blob
    repos.tag(TAG.format("0.15.0"), blob)
    tree = git("rev-parse", "HEAD^{tree}", cwd=repos.work)
    repos.tag(TAG.format("0.16.0"), tree, annotated=False)
    repos.tag(TAG.format("0.17.0-rc.1"))
    repos.push_all()

    first = do_sync(project, repos)
    assert [(a["kind"], a["ref"]) for a in first.alerts] == [
        ("invalid-tag", TAG.format("0.15.0")),
        ("invalid-tag", TAG.format("0.16.0")),
        ("invalid-tag", TAG.format("0.17.0-rc.1")),
    ]
    assert "prerelease" in first.alerts[2]["detail"] and "blob" in first.alerts[0]["detail"]
    again = do_sync(project, repos)
    assert again.alerts == [] and again.status == "noop"
    assert [r["name"] for r in again.rejected][:2] == [TAG.format("0.15.0"), TAG.format("0.16.0")]

    cp = project.invoke(
        "status", "--json", "--origin", str(repos.origin), "--upstream", str(repos.upstream)
    )
    tags = json.loads(cp.stdout)["tags"]
    assert tags["missing"] == []
    assert [r["name"] for r in tags["rejected"]] == [TAG.format("0.15.0"), TAG.format("0.16.0")]
    cp = verify(project, repos, "--json")
    assert json.loads(cp.stdout)["pending"] == []


def test_versions_are_listed_in_version_order(project, repos):
    seed(repos, "0.9.0", "0.10.0")
    cp = sync(project, repos)
    assert cp.returncode == 0, cp.stderr
    rows = [ln.split()[1] for ln in cp.stdout.splitlines() if ln.startswith("tag ")]
    assert rows == [TAG.format("0.9.0"), TAG.format("0.10.0")]
    for v in ("0.10.0", "0.9.0"):
        repos.delete_upstream_tag(TAG.format(v))
    report = do_sync(project, repos)
    assert [a["ref"] for a in report.alerts] == [TAG.format("0.9.0"), TAG.format("0.10.0")]


def test_a_lightweight_release_tag_is_mirrored_with_one_notice(project, repos):
    seed(repos, "0.14.2")
    repos.commit("next")
    repos.tag(TAG.format("0.15.0"), annotated=False)
    repos.push_all()
    cp = sync(project, repos)
    assert cp.returncode == 0, cp.stderr
    notices = [ln for ln in cp.stderr.splitlines() if ln.startswith("notice:")]
    assert len(notices) == 1 and TAG.format("0.15.0") in notices[0]
    assert origin_tag(repos, "0.15.0") is not None
    assert not [ln for ln in sync(project, repos).stderr.splitlines() if "notice:" in ln]


def test_results_are_on_stdout_whole_and_json_has_a_schema(project, repos):
    seed(repos, "0.14.2")
    cp = sync(project, repos)
    assert f"tag {TAG.format('0.14.2')}" in cp.stdout
    assert "==>" not in cp.stdout  # progress stays on stderr
    cp = sync(project, repos, "--json")
    data = json.loads(cp.stdout)
    assert (data["schema"], data["kind"], data["status"]) == (1, "sync", "noop")
    cp = project.invoke("status", "--origin", str(repos.origin), "--upstream", str(repos.upstream))
    assert "mirror status: ok" in cp.stdout and TAG.format("0.14.2") in cp.stdout
    cp = verify(project, repos, "--json")
    data = json.loads(cp.stdout)
    assert (data["schema"], data["ok"]) == (1, True)
