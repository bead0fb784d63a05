"""The embedded sample upstream: its shape, its history and tags, its broken variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepos import git

from sdkmirror import sample
from sdkmirror.errors import UsageError


def test_tree_has_the_upstream_shape(tmp_path: Path) -> None:
    sample.write_tree(tmp_path)
    root = json.loads((tmp_path / "package.json").read_text())
    assert root["private"] is True
    assert root["packageManager"] == "pnpm@10.33.0"
    assert root["engines"] == {"node": ">=24.15.0"}
    assert "prepare" in root["scripts"]
    npmrc = (tmp_path / ".npmrc").read_text().splitlines()
    assert npmrc == [
        "engine-strict=true",
        "auto-install-peers=true",
        "strict-peer-dependencies=false",
    ]
    assert (tmp_path / ".nvmrc").read_text().strip() == "24.15.0"
    assert (tmp_path / "LICENSE").read_text().startswith("MIT License")
    assert "packages/*" in (tmp_path / "pnpm-workspace.yaml").read_text()
    assert (tmp_path / "pnpm-lock.yaml").read_text().startswith("lockfileVersion: '9.0'")
    sdk = json.loads((tmp_path / "packages/node-sdk/package.json").read_text())
    assert sdk["name"] == "@moonshot-ai/kimi-code-sdk" and sdk["private"] is True
    assert sdk["type"] == "module" and sdk["files"] == ["dist", "README.md"]
    assert sdk["publishConfig"]["exports"]["."]["types"] == "./dist/index.d.mts"
    assert sdk["publishConfig"]["exports"]["."]["import"] == "./dist/index.mjs"
    assert set(sdk["devDependencies"].values()) == {"workspace:^"}
    assert "dependencies" not in sdk  # zero third-party packages: no network needed


def test_history_tags_and_sdk_versions(tmp_path: Path) -> None:
    up = sample.create_upstream(tmp_path / "up.git")
    assert git("rev-parse", "refs/heads/main", cwd=up.bare) == up.head
    expected = {"0.14.2": "0.9.3", "0.14.3": "0.9.3", "0.17.0": "0.9.4", "0.19.0": "0.10.0"}
    assert set(up.tags) == {sample.TAG.format(v) for v in expected}
    for cli, sdk in expected.items():
        tag = sample.TAG.format(cli)
        assert git("cat-file", "-t", f"refs/tags/{tag}", cwd=up.bare) == "tag"  # annotated
        pkg = json.loads(git("show", f"{tag}:packages/node-sdk/package.json", cwd=up.bare))
        assert pkg["version"] == sdk
    exports = {
        cli: sample.exports_of(
            git("show", f"{sample.TAG.format(cli)}:packages/node-sdk/src/index.ts", cwd=up.bare)
        )
        for cli in expected
    }
    assert exports["0.14.2"] == ["VERSION", "createClient", "legacyPrompt"]
    assert exports["0.17.0"] == ["VERSION", "createClient", "legacyPrompt", "steer"]
    assert exports["0.19.0"] == ["VERSION", "createClient", "steer"]
    # main is one unreleased commit past the last release
    assert git("rev-parse", "HEAD~1", cwd=up.bare) == up.tags[sample.TAG.format("0.19.0")]


def test_same_sample_same_ids(tmp_path: Path) -> None:
    a = sample.create_upstream(tmp_path / "a.git")
    b = sample.create_upstream(tmp_path / "b.git")
    assert a.head == b.head and a.tags == b.tags


def test_variant_breaks_main_only(tmp_path: Path) -> None:
    good = sample.create_upstream(tmp_path / "good.git")
    bad = sample.create_upstream(tmp_path / "bad.git", variant="upstream-build")
    assert bad.tags == good.tags
    assert git("rev-parse", "HEAD~1", cwd=bad.bare) == good.head
    src = git("show", "main:packages/node-sdk/src/index.ts", cwd=bad.bare)
    assert "runTurnWithTools" in src


def test_unknown_variant_and_non_empty_destination(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown sample variant"):
        sample.create_upstream(tmp_path / "x.git", variant="nope")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        sample.create_upstream(tmp_path / "full")


@pytest.mark.slow
def test_lockfile_is_what_pnpm_writes(tmp_path: Path, toolchain_primary) -> None:
    tree = sample.write_tree(tmp_path / "ws")
    ours = (tree / "pnpm-lock.yaml").read_text()
    toolchain_primary.run([toolchain_primary.pnpm, "install", "--lockfile-only"], cwd=tree)
    assert (tree / "pnpm-lock.yaml").read_text() == ours
