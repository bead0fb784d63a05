"""The embedded sample upstream: its shape, its history and tags, its broken variants."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from gitrepos import git

from sdkmirror.core.errors import UsageError
from sdkmirror.devtools import sample


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
    assert sdk["publishConfig"]["provenance"] is True
    assert sdk["imports"] == {"#/*": "./src/*.ts"}  # the newest release: a plain string
    assert set(sdk["devDependencies"].values()) == {"workspace:^"}
    assert {"@moonshot-ai/protocol", "@sample-vendor/transport-types"} <= set(
        sdk["devDependencies"]
    )
    assert sdk["dependencies"] == {"smol-toml": "catalog:"}  # the one third-party package
    workspace = (tmp_path / "pnpm-workspace.yaml").read_text()
    assert "catalog:\n  smol-toml: 1.4.2\n" in workspace
    core = json.loads((tmp_path / "packages/agent-core/package.json").read_text())
    assert core["dependencies"]["smol-toml"] == "catalog:"
    protocol = json.loads((tmp_path / "packages/protocol/package.json").read_text())
    assert protocol["private"] is True
    assert protocol["exports"]["."]["types"] == "./src/index.ts"  # source, not declarations
    src = tmp_path / "packages/protocol/src"
    assert (src / "index.ts").read_text() == (
        'export * from "./display";\nexport { default as EventLog } from "./store";\n'
    )
    display = (src / "display.ts").read_text()
    assert 'export const ToolInputDisplaySchema = s.discriminatedUnion("kind", [' in display
    assert "export type ToolInputDisplay = s.Infer<typeof ToolInputDisplaySchema>;" in display
    assert "export enum ToolKind {" in display and 'export * from "./ids";' in display
    store = (src / "store.ts").read_text()
    assert "export default class EventLog" in store and "#events: T[] = [];" in store
    assert "private readonly limit: number;" in store
    ids = (src / "ids.ts").read_text()
    assert "export interface TurnEvent<T = unknown>" in ids
    assert ids.count("export function sessionId(") == 3  # two overloads and the body
    assert (tmp_path / "packages/protocol/tsconfig.json").is_file()
    vendor = json.loads((tmp_path / "packages/transport-types/package.json").read_text())
    assert "private" not in vendor and vendor["version"] == "1.2.0"
    assert vendor["exports"] == {".": {"types": "./index.d.ts"}}


def test_older_releases_have_the_older_shapes() -> None:
    first = sample.tree(sample.DEFAULT_RELEASES[0])
    sdk = json.loads(first["packages/node-sdk/package.json"])
    assert sdk["imports"] == {"#/*": ["./src/*.ts", "./src/*/index.ts"]}  # fallback array
    assert sdk["dependencies"] == {"smol-toml": "^1.4.2"}
    assert "catalog" not in first["pnpm-workspace.yaml"]
    assert "catalogs:" not in first["pnpm-lock.yaml"]
    middle = sample.tree(sample.DEFAULT_RELEASES[2])
    assert "catalog:" in middle["pnpm-workspace.yaml"]
    assert json.loads(middle["packages/node-sdk/package.json"])["dependencies"] == {
        "smol-toml": "^1.4.2"
    }  # only agent-core uses the catalog yet


def test_declarations_import_types_the_consumer_does_not_have() -> None:
    for rel in sample.DEFAULT_RELEASES:
        dts = sample.tree(rel)["packages/node-sdk/api/index.d.mts"]
        protocol = re.findall(r'^import type \{([^}]*)\} from "@moonshot-ai/protocol";', dts, re.M)
        assert len(protocol) >= 3
        assert len({n.strip() for line in protocol for n in line.split(",")}) >= 3
        assert 'from "@sample-vendor/transport-types";' in dts
        assert 'import type { TomlTable } from "smol-toml";' in dts
        assert "export declare class KimiClient {" in dts
        assert dts.count("export declare function createClient(") >= 2  # overloads
        assert "export type { RetryPolicy, StreamMode, ToolInputDisplay };" in dts
        # A value from the private package, re-exported: consumers import it at runtime too.
        assert 'import { ToolInputDisplaySchema } from "@moonshot-ai/protocol";' in dts
        assert "export { parseConfig as readConfig, ToolInputDisplaySchema };" in dts
        assert "export default createClient;" in dts
        assert "    on<E extends keyof ClientEvents>(\n        event: E,\n" in dts  # multi-line


def test_each_release_documents_its_interface_changes() -> None:
    first, *rest = sample.DEFAULT_RELEASES
    assert first.changes == ()
    kinds = {(change, severity) for rel in rest for _, change, severity in rel.changes}
    assert kinds == {
        ("export added", "additive"),
        ("export removed", "breaking"),
        ("overload added", "additive"),
        ("member added", "additive"),
        ("member added", "breaking"),  # a required member of an input type, an implemented one
        ("member removed", "breaking"),
        ("optional parameter added", "additive"),
        ("required parameter added", "breaking"),
        ("signature changed", "breaking"),
        ("signature changed", "additive"),  # text changed, the compiler finds it compatible
        ("no longer writable", "breaking"),  # a setter removed, a field turned into a getter
        ("no longer usable as before", "breaking"),
    }
    for rel in sample.DEFAULT_RELEASES:
        assert sample.exports_of(sample.tree(rel)["packages/node-sdk/src/index.ts"]) == list(
            rel.exports
        )


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
    assert exports["0.14.2"] == ["VERSION", "KimiClient", "createClient", "legacyPrompt"]
    assert exports["0.17.0"] == [
        "VERSION",
        "KimiClient",
        "createClient",
        "legacyPrompt",
        "isTurnEvent",
    ]
    assert exports["0.19.0"] == ["VERSION", "KimiClient", "createClient", "isTurnEvent"]
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
@pytest.mark.parametrize("index", [0, 2, 3], ids=["array-imports", "catalog", "sdk-catalog"])
def test_lockfile_is_what_pnpm_writes(tmp_path: Path, toolchain_primary, index: int) -> None:
    tree = sample.write_tree(tmp_path / "ws", sample.DEFAULT_RELEASES[index])
    ours = (tree / "pnpm-lock.yaml").read_text()
    toolchain_primary.run(
        [toolchain_primary.pnpm, "install", "--lockfile-only"], cwd=tree, network=True
    )
    assert (tree / "pnpm-lock.yaml").read_text() == ours


@pytest.mark.slow
def test_build_reexports_helpers_under_letters_that_move(tmp_path: Path, toolchain_primary) -> None:
    tc = toolchain_primary.with_store(Path(os.environ["SDKMIRROR_CACHE"]) / "pnpm-store")
    letters = {}
    for rel in (sample.DEFAULT_RELEASES[0], sample.DEFAULT_RELEASES[-1]):
        tree = sample.write_tree(tmp_path / rel.cli, rel)
        assert tc.store_dir is not None
        tc.store_dir.mkdir(parents=True, exist_ok=True)
        tc.run(
            [tc.pnpm, "install", "--frozen-lockfile"],
            cwd=tree,
            network=True,
            writable=[tc.store_dir],
        )
        tc.run([tc.pnpm, "--filter", sample.SDK_NAME, "build"], cwd=tree)
        dist = tree / sample.SDK_DIR / "dist"
        assert sorted(p.name for p in dist.iterdir()) == [
            "chunk-meta.mjs",
            "index.d.mts",
            "index.mjs",
        ]
        bundle = (dist / "index.mjs").read_text()
        assert bundle.startswith('import { parse } from "smol-toml";\n')  # stays external
        assert "function runTurn(" in bundle  # the workspace sibling is inlined
        helpers = re.search(r"^export \{ (__commonJSMin as \w, .*) \};$", bundle, re.M)
        assert helpers is not None
        letters[rel.cli] = dict(p.split(" as ")[::-1] for p in helpers.group(1).split(", "))
        assert set(letters[rel.cli]) == {"a", "i", "n", "r", "t"}
        chunk = (dist / "chunk-meta.mjs").read_text()
        assert re.match(r'import \{ \w as __export \} from "\./index\.mjs";', chunk)
        dts = (dist / "index.d.mts").read_text()
        assert "__toESM" not in dts and "__export" not in dts
    assert letters["0.14.2"] != letters["0.19.0"]
