"""Passed checks are remembered by the tarball's bytes and the tools: the same bytes skip the
checks, other bytes or a failure run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdkmirror.core import config
from sdkmirror.core.errors import MirrorError
from sdkmirror.release.package.repackage import Package
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish.verdicts import Verdicts

INTEGRITY = "sha512-" + "A" * 86 + "=="
TOOLS = {"node": "24.19.0", "pnpm": "10.33.0", "attw": "0.18.5"}


def test_a_recorded_pass_is_found_only_for_its_key_and_bytes(tmp_path: Path) -> None:
    store = Verdicts(tmp_path / "verdicts")
    key = store.key(INTEGRITY, ["publint"], TOOLS)
    assert store.passed(key, INTEGRITY) is None
    store.record(key, INTEGRITY, ["publint"], ["createClient"])
    found = store.passed(key, INTEGRITY)
    assert found is not None and found.exports == ("createClient",)
    assert store.passed(key, "sha512-" + "B" * 86 + "==") is None  # a record for other bytes
    # Every input moves the key: other bytes, other checks, another tool pin.
    assert store.key("sha512-" + "B" * 86 + "==", ["publint"], TOOLS) != key
    assert store.key(INTEGRITY, ["publint", "attw"], TOOLS) != key
    assert store.key(INTEGRITY, ["publint"], {**TOOLS, "attw": "0.18.6"}) != key
    assert [p.name for p in store.root.iterdir()] == [f"{key}.json"]  # no temp file left


@pytest.mark.parametrize("body", ["", "{", "[]", '{"format": 1}', '{"format": 99}'])
def test_an_unreadable_record_is_no_pass(tmp_path: Path, body: str) -> None:
    store = Verdicts(tmp_path)
    key = store.key(INTEGRITY, ["publint"], TOOLS)
    store.record(key, INTEGRITY, ["publint"], [])
    (tmp_path / f"{key}.json").write_text(body)
    assert store.passed(key, INTEGRITY) is None


def _package(root: Path, *, declared: str = "number", value: int = 1) -> Package:
    pkg = {
        "name": "@botiverse/verdicts",
        "version": "1.0.0",
        "type": "module",
        "license": "MIT",
        "files": ["dist", "NOTICE.md"],
        "exports": {".": {"types": "./dist/index.d.mts", "import": "./dist/index.mjs"}},
    }
    (root / "dist").mkdir(parents=True)
    (root / "dist" / "index.mjs").write_text(f"export const x = {value};\n")
    (root / "dist" / "index.d.mts").write_text(f"export declare const x: {declared};\n")
    (root / "package.json").write_text(json.dumps(pkg, indent=2))
    for name in ("LICENSE", "NOTICE.md", "README.md"):  # what every published tarball carries
        (root / name).write_text(f"{name}\n")
    return Package(root, pkg)


@pytest.mark.slow
def test_the_same_bytes_are_checked_once_and_a_failure_every_time(
    tmp_path: Path, toolchain_primary, npm_tools, own_build_cache: Path, capsys
) -> None:
    cfg = config.from_mapping(
        {"work_dir": str(tmp_path / "state")},
        root=tmp_path,
    )
    tc = toolchain_primary

    def verify(pkg: Package, work: str, **kw: bool) -> str:
        outcome = publish_build.Checks()
        publish_build.verify(cfg, tc, pkg, tmp_path / work, outcome, **kw)
        assert outcome.exports == ["x"]
        return capsys.readouterr().err

    good = _package(tmp_path / "good")
    first = verify(good, "w1")
    assert "strict consumer type-check" in first and "not run again" not in first
    again = verify(good, "w2")
    assert "not run again" in again and "strict consumer type-check" not in again
    assert "publint" not in again.split("not run again")[-1]
    recorded = list((own_build_cache / "verdicts").glob("*.json"))
    assert len(recorded) == 1

    # The last check fails (the type-check), after the others passed: nothing is recorded, so
    # the same bytes are checked again next time.
    bad = _package(tmp_path / "bad", declared="Missing")
    with pytest.raises(MirrorError, match="TS2304"):
        verify(bad, "w3")
    assert list((own_build_cache / "verdicts").glob("*.json")) == recorded
