"""The published package.json plan and the package directory, from an SDK laid out here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PROV

from sdkmirror.release.package import repackage
from sdkmirror.release.package.repackage import RepackageError

SDK = {
    "name": "@moonshot-ai/kimi-code-sdk",
    "version": "0.9.3",
    "private": True,
    "type": "module",
    "license": "MIT",
    "exports": {".": "./src/index.ts"},
    "publishConfig": {
        "exports": {
            ".": {
                "types": "./dist/index.d.mts",
                "import": "./dist/index.mjs",
                "default": "./dist/index.mjs",
            }
        },
    },
    "files": ["dist", "README.md"],
    "scripts": {"build": "tsdown && pnpm run build:dts"},
    "dependencies": {"smol-toml": "^1.3.0", "zod": "catalog:"},
    "devDependencies": {"@moonshot-ai/agent-core": "workspace:^", "tsdown": "^0.12.0"},
}


def plan(sdk=SDK, **kw):
    args = {
        "npm_name": "@botiverse/kimi-code-sdk",
        "version": "0.9.3",
        "provenance": PROV,
        "catalog": {"zod": "4.3.6"},
    }
    return repackage.plan_package_json(sdk, **{**args, **kw})


def test_plan_renames_and_publishes_dist_only() -> None:
    pkg = plan()
    assert pkg["name"] == "@botiverse/kimi-code-sdk"
    assert pkg["version"] == "0.9.3"
    assert pkg["exports"] == SDK["publishConfig"]["exports"]
    assert (pkg["main"], pkg["module"], pkg["types"]) == (
        "./dist/index.mjs",
        "./dist/index.mjs",
        "./dist/index.d.mts",
    )
    for dropped in ("private", "devDependencies", "scripts"):
        assert dropped not in pkg
    assert pkg["publishConfig"] == {"access": "public"}
    assert pkg["files"] == ["dist", "LICENSE", "NOTICE.md", "README.md"]
    assert pkg["dependencies"] == {"smol-toml": "^1.3.0", "zod": "4.3.6"}
    assert pkg["sdkmirror"] == {
        "upstream": "@moonshot-ai/kimi-code-sdk",
        "upstreamVersion": "0.9.3",
        "releaseTag": "@moonshot-ai/kimi-code@0.14.2",
        "commit": "a" * 40,
    }
    assert pkg["type"] == "module" and pkg["license"] == "MIT"


def test_version_override_wins() -> None:
    assert plan(version="0.9.5")["version"] == "0.9.5"
    with pytest.raises(RepackageError, match="not a valid npm version"):
        plan(version="latest")


@pytest.mark.parametrize(
    ("deps", "kw", "expected"),
    [
        ({"kaos": "workspace:^"}, {"workspace_versions": {"kaos": "1.2.3"}}, "^1.2.3"),
        ({"kaos": "workspace:*"}, {"workspace_versions": {"kaos": "1.2.3"}}, "1.2.3"),
        ({"kaos": "workspace:~1.0.0"}, {}, "~1.0.0"),
    ],
    ids=["caret", "star", "range"],
)
def test_workspace_dependencies_are_resolved(deps, kw, expected) -> None:
    pkg = plan({**SDK, "dependencies": deps}, **kw)
    assert pkg["dependencies"] == {"kaos": expected}


@pytest.mark.parametrize(
    ("deps", "needle"),
    [
        ({"kaos": "workspace:^"}, "workspace package the source tree does not have"),
        ({"zod": "catalog:"}, "no entry in pnpm-workspace.yaml"),
        ({"zod": "catalog:next"}, "named catalog"),
    ],
    ids=["unknown-workspace", "no-catalog-entry", "named-catalog"],
)
def test_unresolvable_protocols_are_refused(deps, needle) -> None:
    with pytest.raises(RepackageError, match=needle):
        plan({**SDK, "dependencies": deps}, catalog={})


def test_exports_outside_dist_or_missing_are_refused() -> None:
    with pytest.raises(RepackageError, match=r"outside \./dist/"):
        plan({**SDK, "publishConfig": {}})  # falls back to ./src/index.ts
    with pytest.raises(RepackageError, match=r"no publishConfig\.exports"):
        plan({k: v for k, v in SDK.items() if k not in ("exports", "publishConfig")})


def make_source(root: Path) -> Path:
    sdk = root / "packages" / "node-sdk"
    (sdk / "dist").mkdir(parents=True)
    (sdk / "dist" / "index.mjs").write_text("export const VERSION = '0.9.3';\n")
    (sdk / "dist" / "index.d.mts").write_text("export declare const VERSION: string;\n")
    (sdk / "package.json").write_text(json.dumps(SDK))
    (root / "LICENSE").write_text("MIT License\n\nCopyright (c) Moonshot AI\n")
    (root / "pnpm-workspace.yaml").write_text(
        "packages:\n  - packages/*\ncatalog:\n  zod: 4.3.6\n  'smol-toml': ^1.3.0 # comment\n"
    )
    return sdk


def test_repackage_writes_the_package_dir(tmp_path: Path) -> None:
    sdk = make_source(tmp_path / "src")
    out = repackage.repackage(
        sdk,
        sdk / "dist",
        tmp_path / "pkg",
        sdk_pkg=SDK,
        source_root=tmp_path / "src",
        npm_name="@botiverse/kimi-code-sdk",
        version="0.9.3",
        provenance=PROV,
    )
    assert sorted(p.name for p in out.dir.iterdir()) == [
        "LICENSE",
        "NOTICE.md",
        "README.md",
        "dist",
        "package.json",
    ]
    assert (out.dir / "LICENSE").read_bytes() == (tmp_path / "src" / "LICENSE").read_bytes()
    assert json.loads((out.dir / "package.json").read_text())["dependencies"]["zod"] == "4.3.6"
    for generated in ("NOTICE.md", "README.md"):
        text = (out.dir / generated).read_text()
        assert "@moonshot-ai/kimi-code-sdk" in text
        assert "@moonshot-ai/kimi-code@0.14.2" in text
        assert "a" * 40 in text
    assert (out.dir / "dist" / "index.mjs").is_file()


def test_repackage_refuses_missing_license_and_used_dest(tmp_path: Path) -> None:
    sdk = make_source(tmp_path / "src")
    (tmp_path / "src" / "LICENSE").unlink()
    kw = {
        "sdk_pkg": SDK,
        "source_root": tmp_path / "src",
        "npm_name": "@botiverse/x",
        "version": "0.9.3",
        "provenance": PROV,
    }
    with pytest.raises(RepackageError, match="no LICENSE"):
        repackage.repackage(sdk, sdk / "dist", tmp_path / "pkg", **kw)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(RepackageError, match="not empty"):
        repackage.repackage(sdk, sdk / "dist", tmp_path / "used", **kw)


def test_default_catalog_reader(tmp_path: Path) -> None:
    make_source(tmp_path)
    assert repackage.default_catalog(tmp_path) == {"zod": "4.3.6", "smol-toml": "^1.3.0"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A flow mapping, a quoted range with a space, a key with a '#' in quotes.
        (
            'catalog: {zod: "4.3.6", "@antfu/utils": ">=9.2.0 <10"}  # pinned\n',
            {"zod": "4.3.6", "@antfu/utils": ">=9.2.0 <10"},
        ),
        # An indented comment, a blank-line gap, a version with a comment but no space before.
        (
            "packages:\n  - packages/*\ncatalog:\n    # runtime\n\n    zod: '4.3.6'\n"
            '    smol-toml: "^1.3.0"   # toml\noverrides:\n  foo: 1.0.0\n',
            {"zod": "4.3.6", "smol-toml": "^1.3.0"},
        ),
        # The default catalog spelled as a named one; other named catalogs are not read.
        (
            "catalogs:\n  default:\n    zod: 4.3.6\n  next:\n    zod: 5.0.0\n",
            {"zod": "4.3.6"},
        ),
        # No catalog at all, and an empty file.
        ("packages:\n  - packages/*\n", {}),
        ("", {}),
    ],
    ids=["flow-mapping", "comments-and-quotes", "catalogs-default", "no-catalog", "empty"],
)
def test_default_catalog_reads_yaml_as_pnpm_does(
    tmp_path: Path, text: str, expected: dict[str, str]
) -> None:
    (tmp_path / "pnpm-workspace.yaml").write_text(text, encoding="utf-8")
    assert repackage.default_catalog(tmp_path) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("catalog:\n  zod: 1.10\n", r"catalog entry 'zod': 1\.1 .*quote the version"),
        ("catalog: [zod]\n", "default catalog is not a mapping"),
        ("catalog: {zod: 4.3.6\n", "not valid YAML at line 2"),
        ("- packages/*\n", "not a mapping of settings"),
        (
            "catalog:\n  zod: 4.3.6\ncatalogs:\n  default:\n    zod: 4.3.5\n",
            "default catalog twice",
        ),
    ],
    ids=["number-version", "list", "broken-yaml", "top-level-list", "defined-twice"],
)
def test_a_default_catalog_that_cannot_be_read_is_one_error(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "pnpm-workspace.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RepackageError, match=problem):
        repackage.default_catalog(tmp_path)


REAL_SHAPED = {
    "name": "@moonshot-ai/kimi-code-sdk",
    "version": "0.19.1",
    "private": True,
    "description": "Kimi Code SDK",
    "license": "MIT",
    "homepage": "https://github.com/MoonshotAI/kimi-code",
    "repository": {"type": "git", "url": "https://github.com/MoonshotAI/kimi-code.git"},
    "keywords": ["kimi", "sdk"],
    "type": "module",
    "imports": {"#/*": ["./src/*.ts", "./src/*/index.ts"]},
    "exports": {".": "./src/index.ts"},
    "files": ["dist", "README.md"],
    "scripts": {"build": "tsdown && pnpm run build:dts", "build:dts": "node scripts/build-dts.mjs"},
    "dependencies": {"@antfu/utils": "^9.2.0", "smol-toml": "^1.3.0", "zod": "catalog:"},
    "devDependencies": {"@moonshot-ai/protocol": "workspace:^", "tsdown": "^0.12.0"},
    "engines": {"node": ">=24.15.0"},
    "sideEffects": False,
    "publishConfig": {
        "access": "public",
        "provenance": True,
        "registry": "http://127.0.0.1:9/",
        "exports": {
            ".": {
                "types": "./dist/index.d.mts",
                "import": "./dist/index.mjs",
                "default": "./dist/index.mjs",
            }
        },
    },
    "tsdown": {"entry": ["src/index.ts"]},
}


@pytest.mark.parametrize(
    "imports",
    [{"#/*": ["./src/*.ts", "./src/*/index.ts"]}, {"#/*": "./src/*.ts"}],
    ids=["fallback-array", "string"],
)
def test_published_package_json_is_an_allow_list(imports) -> None:
    result = repackage.plan_package(
        {**REAL_SHAPED, "imports": imports},
        npm_name="@botiverse/kimi-code-sdk",
        version="0.19.1",
        provenance=PROV,
        catalog={"zod": "4.3.6"},
    )
    published = REAL_SHAPED["publishConfig"]["exports"]
    assert json.dumps(result.package_json, indent=2) == json.dumps(
        {
            "name": "@botiverse/kimi-code-sdk",
            "version": "0.19.1",
            "description": "Kimi Code SDK",
            "license": "MIT",
            "homepage": "https://github.com/MoonshotAI/kimi-code",
            "repository": {"type": "git", "url": "https://github.com/MoonshotAI/kimi-code.git"},
            "keywords": ["kimi", "sdk"],
            "type": "module",
            "exports": published,
            "main": "./dist/index.mjs",
            "module": "./dist/index.mjs",
            "types": "./dist/index.d.mts",
            "files": ["dist", "LICENSE", "NOTICE.md", "README.md"],
            "dependencies": {"@antfu/utils": "^9.2.0", "smol-toml": "^1.3.0", "zod": "4.3.6"},
            "engines": {"node": ">=24.15.0"},
            "sideEffects": False,
            "publishConfig": {"access": "public"},
            "sdkmirror": PROV.as_json(),
        },
        indent=2,
    )
    assert result.dropped == (
        "private",
        "imports",
        "scripts",
        "devDependencies",
        "tsdown",
        "publishConfig.provenance",
        "publishConfig.registry",
    )
    assert (
        repackage.plan_package_json(
            REAL_SHAPED,
            npm_name="@botiverse/kimi-code-sdk",
            version="0.19.1",
            provenance=PROV,
            catalog={"zod": "4.3.6"},
        )
        == result.package_json
    )


def test_peer_dependencies_keep_their_meta_and_resolve_protocols() -> None:
    sdk = {
        **SDK,
        "peerDependencies": {"kaos": "workspace:^", "zod": "catalog:"},
        "peerDependenciesMeta": {"kaos": {"optional": True}},
        "optionalDependencies": {"fsevents": "^2.3.3"},
    }
    result = repackage.plan_package(
        sdk,
        npm_name="@botiverse/kimi-code-sdk",
        version="0.9.3",
        provenance=PROV,
        workspace_versions={"kaos": "1.2.3"},
        catalog={"zod": "4.3.6"},
    )
    pkg = result.package_json
    assert pkg["peerDependencies"] == {"kaos": "^1.2.3", "zod": "4.3.6"}
    assert pkg["peerDependenciesMeta"] == {"kaos": {"optional": True}}
    assert pkg["optionalDependencies"] == {"fsevents": "^2.3.3"}
    assert "peerDependenciesMeta" not in result.dropped
    # Without peers, their meta has nothing to describe and is dropped.
    alone = {k: v for k, v in sdk.items() if k != "peerDependencies"}
    assert "peerDependenciesMeta" in repackage.dropped_fields(alone)
