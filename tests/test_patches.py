"""Patch branches: `invoke patch.new/list/retire/table` against real repositories."""

from __future__ import annotations

import json
from datetime import date

import pytest
import tomlkit
from conftest import do_sync
from gitrepos import TAG, git, seed

from sdkmirror.core.errors import UsageError, VerificationFailed
from sdkmirror.infra.gitio import RemoteRefs, ls_remote
from sdkmirror.mirror import patch_branches, patch_registry, patch_table, verify
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.patch_registry import PatchRegistry

README = """# mirror

## Relationship to upstream

<!-- patch-table:start -->
stale
<!-- patch-table:end -->

## After
"""


@pytest.fixture
def mirrored(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    (project.root / "README.md").write_text(README)
    return project


BASE = TAG.format("0.14.2")


def new(project, repos, name="fix-steer", base=BASE, *extra):
    # `--name=` keeps a name that starts with '-' a value, not a flag
    return project.invoke(
        "patch.new", f"--name={name}", "--base", base, "--reason", "steer drops the last chunk",
        "--origin", str(repos.origin), *extra,
    )  # fmt: skip


def tag_commit(repos, version):
    return git("rev-parse", f"refs/tags/{TAG.format(version)}^{{commit}}", cwd=repos.origin)


def test_new_creates_branch_on_the_tag_commit_and_registers_it(mirrored, repos):
    cp = mirrored.invoke(
        "patch.new", "fix-steer", "--base", BASE, "--reason", "steer drops the last chunk",
        "--upstream-pr", "https://example.invalid/kimi-code/pull/42", "--origin", str(repos.origin),
    )  # fmt: skip

    assert cp.returncode == 0, cp.stderr
    assert repos.origin_refs()["refs/heads/patch-fix-steer"] == tag_commit(repos, "0.14.2")
    reg = PatchRegistry(mirrored.config().patch_registry).patches
    p = reg["fix-steer"]
    assert (p.base, p.commit, p.status) == (
        TAG.format("0.14.2"),
        tag_commit(repos, "0.14.2"),
        "active",
    )
    assert p.upstream_pr == "https://example.invalid/kimi-code/pull/42"
    assert isinstance(p.created, date)
    # the README table was regenerated from the registry
    readme = (mirrored.root / "README.md").read_text()
    assert "| `patch-fix-steer` | `@moonshot-ai/kimi-code@0.14.2` |" in readme
    assert "stale" not in readme and readme.endswith("## After\n")
    assert "git commit -m 'Register patch branch patch-fix-steer'" in cp.stderr
    assert verify.run(mirrored.config(), origin=str(repos.origin)) == []


def test_registry_comments_survive_edits(mirrored, repos):
    path = mirrored.config().patch_registry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# our own note about patch policy\n")
    assert new(mirrored, repos, "one").returncode == 0
    assert new(mirrored, repos, "two", TAG.format("0.14.3")).returncode == 0
    text = path.read_text()
    assert text.startswith("# our own note about patch policy\n")
    assert set(tomlkit.parse(text)["patches"]) == {"one", "two"}


@pytest.mark.parametrize(
    "name",
    ["Fix", "-lead", "has space", "semi;colon", "a" * 64, "ünï", "dot.dot", "x/y", ""],
    ids=["upper", "leading-dash", "space", "semicolon", "too-long", "unicode", "dot", "slash",
         "empty"],
)  # fmt: skip
def test_invalid_names_are_refused_before_anything_changes(mirrored, repos, name):
    before = repos.origin_refs()
    cp = new(mirrored, repos, name)
    assert cp.returncode == UsageError.exit_code
    assert "invalid patch name" in cp.stderr
    assert len([ln for ln in cp.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert "Traceback" not in cp.stderr
    assert repos.origin_refs() == before
    assert not mirrored.config().patch_registry.exists()


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (TAG.format("0.99.0"), "not a mirror tag"),
        ("release/v0.14.2", "not a release tag name"),
    ],
    ids=["unknown-tag", "not-a-tag"],
)
def test_base_must_be_a_mirror_tag_in_the_ledger(mirrored, repos, base, message):
    before = repos.origin_refs()
    cp = new(mirrored, repos, "fix", base)
    assert cp.returncode == UsageError.exit_code
    assert message in cp.stderr
    assert repos.origin_refs() == before


def test_dry_run_changes_nothing(mirrored, repos):
    before = repos.origin_refs()
    cp = new(mirrored, repos, "fix", TAG.format("0.14.2"), "--dry-run")
    assert cp.returncode == 0, cp.stderr
    assert "create patch-fix on origin" in cp.stdout  # the plan is the dry run's result
    assert repos.origin_refs() == before
    assert not mirrored.config().patch_registry.exists()
    assert "stale" in (mirrored.root / "README.md").read_text()


def test_name_taken_is_refused(mirrored, repos):
    assert new(mirrored, repos, "fix").returncode == 0
    cp = new(mirrored, repos, "fix", TAG.format("0.14.3"))
    assert cp.returncode == UsageError.exit_code
    assert "already registered" in cp.stderr


def test_rerun_after_a_crash_between_push_and_record_converges(mirrored, repos):
    # The branch reached origin, the registry write did not happen.
    git("update-ref", "refs/heads/patch-fix", tag_commit(repos, "0.14.2"), cwd=repos.origin)
    with pytest.raises(VerificationFailed):
        verify.main(origin=str(repos.origin))

    cp = new(mirrored, repos, "fix")

    assert cp.returncode == 0, cp.stderr
    assert "register it only" in cp.stdout
    assert "fix" in PatchRegistry(mirrored.config().patch_registry).active()
    assert verify.run(mirrored.config(), origin=str(repos.origin)) == []


def test_retire_deletes_branch_keeps_record(mirrored, repos):
    assert new(mirrored, repos, "fix").returncode == 0
    # the fix itself is committed on the branch
    git("fetch", "-q", str(repos.origin), "refs/heads/patch-fix", cwd=repos.work)
    git("checkout", "-q", "-b", "patch-fix", "FETCH_HEAD", cwd=repos.work)
    fixed = repos.commit("fix steer")
    git("push", "-q", str(repos.origin), "patch-fix:refs/heads/patch-fix", cwd=repos.work)
    git("checkout", "-q", "main", cwd=repos.work)

    dry = mirrored.invoke("patch.retire", "fix", "--origin", str(repos.origin), "--dry-run")
    assert dry.returncode == 0 and "refs/heads/patch-fix" in repos.origin_refs()

    cp = mirrored.invoke("patch.retire", "fix", "--origin", str(repos.origin))

    assert cp.returncode == 0, cp.stderr
    assert "refs/heads/patch-fix" not in repos.origin_refs()
    p = PatchRegistry(mirrored.config().patch_registry).patches["fix"]
    assert (p.status, p.head) == ("retired", fixed)
    assert p.retired is not None
    assert "| `patch-fix` |" in (mirrored.root / "README.md").read_text()
    assert f"retired {p.retired}" in (mirrored.root / "README.md").read_text()
    assert verify.run(mirrored.config(), origin=str(repos.origin)) == []
    again = mirrored.invoke("patch.retire", "fix", "--origin", str(repos.origin))
    assert again.returncode == UsageError.exit_code and "already retired" in again.stderr


def test_list_json(mirrored, repos):
    assert new(mirrored, repos, "fix").returncode == 0
    cp = mirrored.invoke("patch.list", "--json")
    assert cp.returncode == 0, cp.stderr
    data = json.loads(cp.stdout)  # stdout alone is one JSON document
    assert data["schema"] == 1
    patches = data["patches"]
    assert [(d["name"], d["branch"], d["status"]) for d in patches] == [
        ("fix", "patch-fix", "active")
    ]


def test_table_check_fails_on_drift_and_rewrite_fixes_it(mirrored, repos):
    assert new(mirrored, repos, "fix").returncode == 0
    assert mirrored.invoke("patch.table", "--check").returncode == 0
    readme = mirrored.root / "README.md"
    readme.write_text(readme.read_text().replace("steer drops", "hand-edited"))

    cp = mirrored.invoke("patch.table", "--check")
    assert cp.returncode == patch_table.TableDrift.exit_code
    assert "invoke patch.table" in cp.stderr

    assert mirrored.invoke("patch.table").returncode == 0
    assert mirrored.invoke("patch.table", "--check").returncode == 0
    assert "steer drops" in readme.read_text()


def test_table_without_markers_is_one_clear_error(mirrored):
    (mirrored.root / "README.md").write_text("# no markers\n")
    cp = mirrored.invoke("patch.table")
    assert cp.returncode == UsageError.exit_code
    assert "patch-table:start" in cp.stderr


def test_empty_registry_renders_none_row():
    assert patch_table.render_table({}).splitlines()[-1] == "| (none) | | | | |"


def test_verify_flags_an_unregistered_patch_branch(mirrored, repos):
    git("update-ref", "refs/heads/patch-rogue", tag_commit(repos, "0.14.3"), cwd=repos.origin)
    found = verify.run(mirrored.config(), origin=str(repos.origin))
    assert [(v.rule, v.ref) for v in found] == [("unregistered-patch-branch", "patch-rogue")]
    cp = mirrored.invoke("verify", "--origin", str(repos.origin))
    assert cp.returncode == VerificationFailed.exit_code
    assert "unregistered-patch-branch" in cp.stdout  # the result, on stdout


def test_plan_new_is_pure_and_checks_origin_tag_against_ledger(mirrored, repos):
    cfg = mirrored.config()
    ledger = MirrorLedger(cfg.mirror_ledger)
    refs = ls_remote(str(repos.origin))
    plan = patch_branches.plan_new(
        cfg, "x", base=TAG.format("0.14.3"), reason="r", upstream_pr=None, origin=refs,
        registry=PatchRegistry(cfg.patch_registry), ledger=ledger, today=date(2025, 1, 2),
    )  # fmt: skip
    assert plan.patch.created == date(2025, 1, 2) and not plan.branch_exists
    # someone force-moved the mirror tag on origin: no patch starts there
    other = tag_commit(repos, "0.14.2")
    git("update-ref", f"refs/tags/{TAG.format('0.14.3')}", other, cwd=repos.origin)
    with pytest.raises(UsageError, match="invoke verify"):
        patch_branches.plan_new(
            cfg, "x", base=TAG.format("0.14.3"), reason="r", upstream_pr=None,
            origin=ls_remote(str(repos.origin)), registry=PatchRegistry(cfg.patch_registry),
            ledger=ledger,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("version", "ok"),
    [("0.9.3-patch.1", True), ("0.9.3", False), (None, False), ("v0.9.3-patch.1", False),
     ("0.9", False)],
)  # fmt: skip
def test_patch_publish_needs_a_prerelease_version(version, ok):
    p = patch_registry.Patch("fix", TAG.format("0.14.2"), "a" * 40, "r")
    if ok:
        assert patch_branches.check_patch_version(version, p) == version
    else:
        with pytest.raises(UsageError, match=r"0\.9\.3-patch\.1"):
            patch_branches.check_patch_version(version, p)


def test_readme_patch_table_matches_the_registry(monkeypatch):
    """The project's own README, as `invoke patch.table --check` runs in CI."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("SDKMIRROR_CONFIG", raising=False)
    cp = subprocess.run(
        [sys.executable, "-m", "invoke", "patch.table", "--check"],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "matches the registry" in cp.stdout


def test_publish_source_checks_patch_base_and_version(mirrored, repos):
    assert new(mirrored, repos, "fix").returncode == 0
    cfg = mirrored.config()
    p = patch_branches.publish_source(
        cfg, "patch-fix", source_tag=BASE, version_override="0.9.3-patch.1"
    )
    assert (p.branch, p.base) == ("patch-fix", BASE)
    with pytest.raises(UsageError, match="is based on"):
        patch_branches.publish_source(
            cfg, "patch-fix", source_tag=TAG.format("0.14.3"), version_override="0.9.3-patch.1"
        )
    with pytest.raises(UsageError, match="prerelease"):
        patch_branches.publish_source(cfg, "patch-fix", source_tag=BASE, version_override="0.9.4")
    with pytest.raises(UsageError, match="not registered"):
        patch_branches.publish_source(
            cfg, "patch-nope", source_tag=BASE, version_override="1.0.0-p.1"
        )
    with pytest.raises(UsageError, match="not a patch branch"):
        patch_branches.publish_source(cfg, "main", source_tag=BASE, version_override="1.0.0-p.1")


# --- the upstream's side: --upstream on patch.new and patch.retire ---------------------------


def warnings(cp) -> list[str]:
    return [ln for ln in cp.stderr.splitlines() if ln.startswith("warning:")]


def test_new_warns_once_when_upstream_moved_the_base_tag(mirrored, repos):
    up = ("--upstream", str(repos.upstream))
    calm = new(mirrored, repos, "before", BASE, "--dry-run", *up)
    assert calm.returncode == 0, calm.stderr
    assert warnings(calm) == []
    mirror_commit = tag_commit(repos, "0.14.2")
    # upstream re-cuts 0.14.2 on a later commit
    repos.commit("re-cut")
    moved = repos.tag(BASE, force=True)
    repos.push(f"refs/tags/{BASE}", force=True)

    cp = new(mirrored, repos, "after", BASE, *up)

    assert cp.returncode == 0, cp.stderr
    assert warnings(cp) == [
        f"warning: upstream's {BASE} points at {moved[:12]}; the mirror tag keeps "
        f"{ls_remote(str(repos.origin)).tags()[BASE][:12]} and the patch starts there "
        "(see the moved-tag runbook)"
    ]
    assert repos.origin_refs()["refs/heads/patch-after"] == mirror_commit  # never upstream's


def test_new_with_an_unreachable_upstream_still_works_and_says_so(mirrored, repos, tmp_path):
    cp = new(mirrored, repos, "fix", BASE, "--upstream", str(tmp_path / "gone.git"))
    assert cp.returncode == 0, cp.stderr
    [line] = warnings(cp)
    assert "cannot read upstream" in line and "skipped the upstream check" in line
    assert "refs/heads/patch-fix" in repos.origin_refs()


def test_retire_prints_upstreams_newest_release(mirrored, repos):
    up = ("--upstream", str(repos.upstream))
    assert new(mirrored, repos, "old", BASE).returncode == 0
    assert new(mirrored, repos, "new", TAG.format("0.14.3")).returncode == 0

    on_newest = mirrored.invoke("patch.retire", "new", "--origin", str(repos.origin), *up)
    assert on_newest.returncode == 0, on_newest.stderr
    assert (
        f"upstream's newest release is {TAG.format('0.14.3')}, not newer than the patch's base "
        f"{TAG.format('0.14.3')}: the fix has not shipped in a release yet"
    ) in on_newest.stdout

    repos.release("0.15.0")
    repos.push_all()
    cp = mirrored.invoke("patch.retire", "old", "--origin", str(repos.origin), "--dry-run", *up)
    assert cp.returncode == 0, cp.stderr
    assert (
        f"upstream's newest release is {TAG.format('0.15.0')}: confirm it carries the fix"
        in cp.stdout
    )


def test_release_hint_names_the_pr_and_handles_no_release(mirrored):
    cfg = mirrored.config()
    p = patch_registry.Patch("x", BASE, "c" * 40, "why", "https://example.invalid/pull/7")
    assert patch_branches.release_hint(cfg, p, None).startswith("upstream has no release tag yet")
    assert patch_branches.release_hint(cfg, p, TAG.format("0.14.10")).endswith(
        "confirm it carries the fix (upstream PR: https://example.invalid/pull/7)"
    )
    listing = RemoteRefs(
        {f"refs/tags/{TAG.format(v)}": "o" * 40 for v in ("0.9.0", "0.14.10", "0.14.9")}
        | {"refs/tags/@moonshot-ai/kimi-code@1.0.0-rc.1": "o" * 40}
    )
    assert patch_branches.newest_release(cfg, listing) == TAG.format("0.14.10")


def test_new_suggests_the_remote_that_origin_is(mirrored, repos):
    # --origin is a URL no remote of this checkout names: the checkout fetches it by URL.
    cp = new(mirrored, repos, "fix")
    assert cp.returncode == 0, cp.stderr
    assert f"    git fetch {repos.origin} patch-fix:patch-fix\n" in cp.stderr
    assert "origin/" not in cp.stderr
    # A remote named `fork` has that URL: the branch tracks fork/..., never origin/...
    git("init", "-q", "-b", "main", cwd=mirrored.root)
    git("remote", "add", "fork", str(repos.origin), cwd=mirrored.root)
    cp = new(mirrored, repos, "fix-two", TAG.format("0.14.3"))
    assert cp.returncode == 0, cp.stderr
    assert "    git switch -c patch-fix-two --track fork/patch-fix-two\n" in cp.stderr
    assert "origin/" not in cp.stderr
