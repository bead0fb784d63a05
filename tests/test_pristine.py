"""The pristine npm's check: every file against its recorded digest, hashed again only when
its stat signature moved since it last matched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import pristine


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    root = tmp_path / "pristine"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "node").write_bytes(b"\x7fELF node")
    (root / "lib").mkdir()
    (root / "lib" / "npm-cli.js").write_text("console.log('npm');\n")
    (root / "bin" / "npm").symlink_to("../lib/npm-cli.js")
    (root / pristine.HASHES).write_text(json.dumps(pristine.digests(root)))
    return root


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files each check reads and hashes."""
    seen: list[str] = []
    real = pristine._digest

    def counting(entry: os.DirEntry[str]) -> str:
        seen.append(os.path.basename(entry.path))
        return real(entry)

    monkeypatch.setattr(pristine, "_digest", counting)
    return seen


def test_an_unchanged_install_is_hashed_once_then_only_stated(
    installed: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pristine, "_SETTLE_NS", 0)
    pristine.check(installed, what="npm")
    assert sorted(hashed) == ["node", "npm", "npm-cli.js"]
    hashed.clear()
    pristine.check(installed, what="npm")
    assert hashed == []


def test_a_write_that_restores_size_and_mtime_is_still_caught(
    installed: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pristine, "_SETTLE_NS", 0)
    pristine.check(installed, what="npm")
    cli = installed / "lib" / "npm-cli.js"
    before = cli.stat()
    cli.write_text("console.log('own');\n")  # the same length
    os.utime(cli, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert cli.stat().st_size == before.st_size
    with pytest.raises(MirrorError, match=r"npm in .* changed since it was installed \(lib/npm"):
        pristine.check(installed, what="npm")


def test_a_replaced_file_or_link_and_an_added_one_are_caught(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pristine, "_SETTLE_NS", 0)
    pristine.check(installed, what="npm")
    node = installed / "bin" / "node"
    before = node.stat()
    spare = installed / "node.new"
    spare.write_bytes(b"\x7fELF evil")  # the same size and mtime, another inode
    os.utime(spare, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(spare, node)
    with pytest.raises(MirrorError, match=r"\(bin/node\)"):
        pristine.check(installed, what="npm")
    node.write_bytes(b"\x7fELF node")
    (installed / "bin" / "npm").unlink()
    (installed / "bin" / "npm").symlink_to("/tmp/elsewhere.js")
    (installed / "lib" / "extra.js").write_text("")
    with pytest.raises(MirrorError, match=r"\(bin/npm and 1 more\)"):
        pristine.check(installed, what="npm")


def test_files_changed_within_the_timestamp_granularity_are_not_trusted(
    installed: Path, hashed: list[str]
) -> None:
    # Just written: a later write in the same clock tick could leave the same ctime, so their
    # signatures are not kept and the next check hashes them again.
    pristine.check(installed, what="npm")
    hashed.clear()
    pristine.check(installed, what="npm")
    assert sorted(hashed) == ["node", "npm", "npm-cli.js"]
    assert not (installed / pristine.STATS).exists()


def test_an_unreadable_signature_file_means_hashing_everything(
    installed: Path, hashed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pristine, "_SETTLE_NS", 0)
    pristine.check(installed, what="npm")
    (installed / pristine.STATS).write_text("{not json")
    hashed.clear()
    pristine.check(installed, what="npm")
    assert sorted(hashed) == ["node", "npm", "npm-cli.js"]
