"""`invoke release.tag` and `invoke release.render` on a mirror of the sample upstream."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sdkmirror.infra import proc
from sdkmirror.mirror.ledger import MirrorLedger


@pytest.fixture
def mirrored(project, tmp_path: Path, sample_upstream):
    up = sample_upstream(tmp_path / "upstream.git")
    origin = tmp_path / "origin.git"
    proc.run(["git", "clone", "-q", "--bare", str(up.bare), str(origin)])
    ledger = MirrorLedger(project.config().mirror_ledger)
    for name, commit in up.tags.items():
        ledger.add_tag(name, commit, commit)
    ledger.save()
    return up, origin


def tags_of(bare: Path) -> dict[str, str]:
    out = proc.run(
        ["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags/publish-sdk"],
        cwd=bare,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def test_release_tag_needs_notes_then_pushes_once(project, mirrored) -> None:
    up, origin = mirrored
    tag = up.tag("0.14.2")
    cp = project.invoke("release.tag", "--source-tag", tag, "--origin", str(origin), "--push")
    assert cp.returncode == 2
    assert "RELEASES.md has no entry for 0.9.3" in cp.stderr and "notes/0.9.3.md" in cp.stderr
    assert tags_of(origin) == {}

    notes = project.root / "notes"
    notes.mkdir()
    (notes / "0.9.3.md").write_text("First SDK release: `createClient`, `legacyPrompt`.\n")
    project.invoke("release.render", check=True)
    assert "## 0.9.3" in (project.root / "RELEASES.md").read_text()
    project.invoke("release.render", "--check", check=True)

    cp = project.invoke("release.tag", "--source-tag", tag, "--origin", str(origin), check=True)
    assert f"{up.tags[tag]}:refs/tags/publish-sdk/v0.9.3" in cp.stderr  # the printed push
    assert tags_of(origin) == {}  # without --push nothing reaches origin

    cp = project.invoke(
        "release.tag", "--source-tag", tag, "--origin", str(origin), "--push", check=True
    )
    assert tags_of(origin) == {"publish-sdk/v0.9.3": up.tags[tag]}
    # The tag sits on an upstream commit without the workflow: the publish starts by hand,
    # naming the publish tag so the workflow checks the version.
    dispatch = shlex.join(
        ["gh", "workflow", "run", "publish-sdk.yml", "-f", "source_tag=publish-sdk/v0.9.3", "-f",
         "dry_run=false"]
    )  # fmt: skip
    assert f"    {dispatch}\n" in cp.stderr
    cp = project.invoke(
        "release.tag", "--source-tag", tag, "--origin", str(origin), "--push", check=True
    )
    assert "nothing to do" in cp.stdout

    # 0.14.3 ships the same SDK version from another commit: the publish tag may not move.
    cp = project.invoke(
        "release.tag", "--source-tag", up.tag("0.14.3"), "--origin", str(origin), "--push"
    )
    assert cp.returncode == 2 and "already exists" in cp.stderr
    assert tags_of(origin) == {"publish-sdk/v0.9.3": up.tags[tag]}


def test_render_check_fails_on_drift(project, mirrored) -> None:
    project.invoke("release.render", check=True)
    (project.root / "notes").mkdir()
    (project.root / "notes" / "0.9.4.md").write_text("Adds `steer`.\n")
    cp = project.invoke("release.render", "--check")
    assert cp.returncode == 7 and "out of date" in cp.stderr


def test_override_tag_publishes_as_an_override_from_the_workflow(project, mirrored) -> None:
    """`release.tag --version-override` puts publish-sdk/v0.9.5 on a commit whose SDK says
    0.9.3: the workflow's arguments publish 0.9.5 as an override instead of failing closed."""
    from sdkmirror.ops import ci

    up, origin = mirrored
    tag = up.tag("0.14.2")
    notes = project.root / "notes"
    notes.mkdir()
    (notes / "0.9.5.md").write_text("Re-bundled `createClient`.\n")
    project.invoke("release.render", check=True)
    project.invoke(
        "release.tag", "--source-tag", tag, "--origin", str(origin), "--version-override",
        "0.9.5", "--push", check=True,
    )  # fmt: skip
    assert tags_of(origin) == {"publish-sdk/v0.9.5": up.tags[tag]}

    # the workflow reads X.Y.Z back from a publish tag: a prerelease tag is refused up front
    cp = project.invoke(
        "release.tag", "--source-tag", tag, "--origin", str(origin), "--version-override",
        "0.9.5-rc.1", "--push",
    )  # fmt: skip
    assert cp.returncode == 2 and "X.Y.Z versions only, not 0.9.5-rc.1" in cp.stderr
    assert tags_of(origin) == {"publish-sdk/v0.9.5": up.tags[tag]}

    cfg = project.config()
    event = {
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "INPUT_SOURCE_TAG": "publish-sdk/v0.9.5",
        "INPUT_DRY_RUN": "false",
    }
    args = ci.publish_args(cfg, event, str(origin))
    assert args == {
        "source_tag": tag,
        "expected_version": "",
        "version_override": "0.9.5",
        "override_reason": "publish tag publish-sdk/v0.9.5 on SDK 0.9.3",
        "dry_run": "false",
    }
