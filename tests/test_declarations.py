"""Declarations that stand on their own, the strict consumer type-check and attw, on a built
SDK laid out here the way pnpm leaves a workspace: private packages linked into node_modules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import PROV

from sdkmirror.release.declarations import bundle as declarations
from sdkmirror.release.declarations import consumer as typecheck
from sdkmirror.release.package import repackage
from sdkmirror.release.publish import build as publish_build

NPM_NAME = "@botiverse/kimi-code-sdk"
RUNTIME = {"smol-toml": "1.4.2"}
SDK_PKG = {
    "name": "@moonshot-ai/kimi-code-sdk",
    "version": "0.9.3",
    "private": True,
    "type": "module",
    "license": "MIT",
    "imports": {"#/*": ["./src/*.ts", "./src/*/index.ts"]},
    "exports": {".": "./src/index.ts"},
    "publishConfig": {
        "exports": {
            ".": {
                "types": "./dist/index.d.mts",
                "import": "./dist/index.mjs",
                "default": "./dist/index.mjs",
            }
        }
    },
    "dependencies": RUNTIME,
    "devDependencies": {"@moonshot-ai/protocol": "workspace:^", "netkit": "2.0.0"},
}
# The private workspace package exposes TypeScript source, not declarations.
PROTOCOL_PKG = {
    "name": "@moonshot-ai/protocol",
    "version": "0.0.0",
    "private": True,
    "type": "module",
    "exports": {".": "./src/index.ts"},
}
PROTOCOL_INDEX = """\
export type { Role } from "./role.js";
import type { Role } from "./role.js";

export interface Message {
  role: Role;
  content: string;
}

export type Event = { kind: "message"; message: Message } | { kind: "done"; turns: number };
"""
PROTOCOL_ROLE = 'export type Role = "user" | "assistant" | "tool";\n'
# A published package that is not a runtime dependency (the runtime bundle inlined its code).
NETKIT_DTS = """\
export interface Dispatcher {
  dispatch(url: string, init?: { method?: string }): Promise<number>;
}
export declare class Agent implements Dispatcher {
  dispatch(url: string): Promise<number>;
}
"""
SDK_DTS = """\
import { EventEmitter } from "node:events";
import type { Event, Message, Role } from "@moonshot-ai/protocol";
import type { Dispatcher } from "netkit";
import type { Tool } from "mcpkit";
import type { TomlTable } from "smol-toml";

export interface SessionOptions {
  dispatcher?: Dispatcher;
  config?: TomlTable;
  tools?: Tool[];
}

export declare class Session extends EventEmitter {
  constructor(options?: SessionOptions);
  send(message: Message): Promise<void>;
  send(text: string, role?: Role): Promise<void>;
  events(): AsyncIterable<Event>;
}

export declare function createSession(
  options?: SessionOptions,
): Session;

export declare const VERSION: string;

export type { Message, Role };
"""
SDK_MJS = """\
import { EventEmitter } from "node:events";
export class Session extends EventEmitter {
  async send() {}
  async *events() {}
}
export function createSession(options) { return new Session(options); }
export const VERSION = "0.9.3";
const __toESM = (m) => m;
export { __toESM as t };
"""


def write_workspace(root: Path) -> Path:
    """A built workspace: protocol and the SDK under packages/, dist written, links as pnpm's."""
    root.mkdir(parents=True)
    (root / "pnpm-workspace.yaml").write_text("packages:\n  - packages/*\n")
    (root / "LICENSE").write_text("MIT License\n\nCopyright (c) Moonshot AI\n")
    protocol = root / "packages" / "protocol"
    (protocol / "src").mkdir(parents=True)
    (protocol / "package.json").write_text(json.dumps(PROTOCOL_PKG))
    (protocol / "src" / "index.ts").write_text(PROTOCOL_INDEX)
    (protocol / "src" / "role.ts").write_text(PROTOCOL_ROLE)
    sdk = root / "packages" / "node-sdk"
    (sdk / "dist").mkdir(parents=True)
    (sdk / "package.json").write_text(json.dumps(SDK_PKG))
    (sdk / "dist" / "index.mjs").write_text(SDK_MJS)
    (sdk / "dist" / "index.d.mts").write_text(SDK_DTS)
    modules = sdk / "node_modules"
    (modules / "@moonshot-ai").mkdir(parents=True)
    os.symlink("../../../protocol", modules / "@moonshot-ai" / "protocol")
    netkit = modules / "netkit"
    netkit.mkdir()
    (netkit / "package.json").write_text(
        json.dumps({"name": "netkit", "version": "2.0.0", "types": "./index.d.ts"})
    )
    (netkit / "index.d.ts").write_text(NETKIT_DTS)
    # Linked only into the sibling that depends on it, as pnpm does: not into the SDK's.
    mcpkit = root / "packages" / "agent-core" / "node_modules" / "mcpkit"
    mcpkit.mkdir(parents=True)
    (mcpkit.parent.parent / "package.json").write_text(
        json.dumps({"name": "@moonshot-ai/agent-core", "version": "0.0.0", "private": True})
    )
    (mcpkit / "package.json").write_text(
        json.dumps({"name": "mcpkit", "version": "1.0.0", "exports": {".": "./index.js"}})
    )
    (mcpkit / "index.d.ts").write_text("export interface Tool { name: string }\n")
    return sdk


def pack(tc, sdk: Path, dest: Path) -> Path:
    pkg = repackage.repackage(
        sdk,
        sdk / "dist",
        dest / "package",
        sdk_pkg=SDK_PKG,
        source_root=sdk.parent.parent,
        npm_name=NPM_NAME,
        version="0.9.3",
        provenance=PROV,
    )
    return publish_build.pack(tc, pkg.dir, dest / "pack")


def cache() -> Path:
    return Path(os.environ["SDKMIRROR_CACHE"])


# --- pure parts -------------------------------------------------------------------------------


def test_declaration_files_and_runtime_dependencies() -> None:
    assert declarations.declaration_files(SDK_PKG) == ["./dist/index.d.mts"]
    nested = {"publishConfig": {"exports": {"./x": {"import": {"types": "./dist/x.d.mts"}}}}}
    assert declarations.declaration_files(nested) == ["./dist/x.d.mts"]
    both = {**SDK_PKG, "peerDependencies": {"zod": "^4"}}
    assert declarations.runtime_dependencies(both) == ("smol-toml", "zod")


def test_consumer_source_imports_every_export_once() -> None:
    src = typecheck.consumer_source(
        NPM_NAME,
        {
            ".": typecheck.ExportNames(("VERSION", "default"), ("Message",)),
            "./extra": typecheck.ExportNames((), ("Message",)),
        },
    )
    assert src == (
        'import { VERSION as __0, default as __1 } from "@botiverse/kimi-code-sdk";\n'
        'import type { Message as __2 } from "@botiverse/kimi-code-sdk";\n'
        'import type { Message as __3 } from "@botiverse/kimi-code-sdk/extra";\n'
        "export { __0, __1 };\n"
        "export type { __2, __3 };\n"
    )


def test_first_compiler_error_is_one_line() -> None:
    out = (
        "node_modules/@botiverse/kimi-code-sdk/dist/index.d.mts(2,44): error TS2307: Cannot "
        "find module '@moonshot-ai/protocol' or its corresponding type declarations.\n"
        "consumer.ts(1,1): error TS2305: later\n"
    )
    assert typecheck.first_error(out) == (
        "TS2307: Cannot find module '@moonshot-ai/protocol' or its corresponding type "
        "declarations. (@botiverse/kimi-code-sdk/dist/index.d.mts:2)"
    )
    assert typecheck.first_error("all good\n") is None


def test_typed_subpaths() -> None:
    assert typecheck.typed_subpaths({"exports": {".": {"types": "./a.d.mts"}}}) == {
        ".": "./a.d.mts"
    }
    assert typecheck.typed_subpaths({"exports": {"types": "./a.d.mts", "import": "./a.mjs"}}) == {
        ".": "./a.d.mts"
    }
    assert typecheck.typed_subpaths({"exports": {"./p/*": {"types": "./p/*.d.ts"}}}) == {}
    assert typecheck.typed_subpaths({"types": "./index.d.ts"}) == {".": "./index.d.ts"}


# --- real toolchain ---------------------------------------------------------------------------


@pytest.mark.slow
def test_export_names_come_from_the_compiler(toolchain_primary, tmp_path: Path) -> None:
    home = declarations.install(toolchain_primary, cache())
    dts = tmp_path / "index.d.mts"
    dts.write_text(
        "declare class Hidden {}\n"
        "export declare class Session { send(): void; }\n"
        "export declare function createSession(\n  name: string,\n): Session;\n"
        "export declare function createSession(): Session;\n"
        "export interface Options { a: string }\n"
        "export type Role = 'user';\n"
        "export declare const VERSION: string;\n"
        "declare const local: number;\n"
        "export { local as renamed, Hidden as type_only_class };\n"
        "export type { Hidden as HiddenType };\n"
        "export default Session;\n"
        "// export declare const inComment: string;\n"
    )
    [names] = typecheck.export_names(toolchain_primary, home / "node_modules" / "typescript", [dts])
    assert names.values == (
        "Session",
        "VERSION",
        "createSession",
        "default",
        "renamed",
        "type_only_class",
    )
    assert names.types == ("HiddenType", "Options", "Role")


@pytest.mark.slow
def test_bundled_declarations_pass_a_strict_consumer(toolchain_primary, tmp_path: Path) -> None:
    tc = toolchain_primary
    sdk = write_workspace(tmp_path / "src")

    before = pack(tc, sdk, tmp_path / "before")
    with pytest.raises(typecheck.TypeCheckFailed) as failed:
        typecheck.typecheck(tc, cache(), before, NPM_NAME, tmp_path / "consumer-before")
    # The audit of the published files names the import before any compiler runs.
    assert "import '@moonshot-ai/protocol' (dist/index.d.mts:2) (and 2 more)" in str(failed.value)
    assert failed.value.exit_code == 7

    result = declarations.bundle(
        tc, cache(), sdk, sdk / "dist", declarations.runtime_dependencies(SDK_PKG)
    )
    [bundled] = result.files
    assert bundled.path == sdk / "dist" / "index.d.mts"
    assert result.inlined == ("@moonshot-ai/protocol", "mcpkit", "netkit")
    assert sorted(bundled.kept_imports) == ["node:events", "smol-toml"]
    text = bundled.path.read_text()
    assert "@moonshot-ai/protocol" not in text and "netkit" not in text
    assert "from 'smol-toml'" in text or 'from "smol-toml"' in text
    assert "interface Message" in text and "interface Dispatcher" in text
    assert "interface Tool" in text

    after = pack(tc, sdk, tmp_path / "after")
    checked = typecheck.check(tc, cache(), after, NPM_NAME, tmp_path / "consumer-after")
    assert checked.resolutions == ("nodenext", "bundler")
    assert checked.exports["."].values == ("Session", "VERSION", "createSession")
    assert checked.exports["."].types == ("Message", "Role", "SessionOptions")


def _declarations_only(tc, tmp_path: Path, name: str, dts: dict[str, str]) -> Path:
    """A packed package that is declarations and an empty module, nothing else."""
    pkg = tmp_path / name
    (pkg / "dist").mkdir(parents=True)
    (pkg / "dist" / "index.mjs").write_text("export {};\n")
    for rel, text in dts.items():
        (pkg / "dist" / rel).write_text(text)
    exports = {".": {"types": "./dist/index.d.mts", "import": "./dist/index.mjs"}}
    manifest = {"name": f"@botiverse/{name}", "version": "1.0.0", "type": "module"}
    (pkg / "package.json").write_text(json.dumps({**manifest, "exports": exports}))
    return publish_build.pack(tc, pkg, tmp_path / f"{name}-pack")


@pytest.mark.slow
def test_a_declaration_error_fails_only_the_resolution_it_breaks(
    toolchain_primary, tmp_path: Path
) -> None:
    # An extensionless relative import: a bundler resolves it, Node's ESM resolution does not.
    tgz = _declarations_only(
        toolchain_primary,
        tmp_path,
        "extensionless",
        {
            "index.d.mts": 'import type { Id } from "./types";\nexport declare const id: Id;\n',
            "types.d.ts": "export type Id = string;\n",
        },
    )
    result = typecheck.typecheck(
        toolchain_primary, cache(), tgz, "@botiverse/extensionless", tmp_path / "c", keep_going=True
    )
    assert list(result.failed) == ["nodenext"]
    assert "nodenext resolution) cannot type-check @botiverse/extensionless: TS2834: " in str(
        result.failed["nodenext"]
    )
    assert "(@botiverse/extensionless/dist/index.d.mts:1)" in str(result.failed["nodenext"])
    assert result.exports["."].values == ("id",)


@pytest.mark.slow
def test_a_global_declaration_that_breaks_node_types_is_caught_in_node_types(
    toolchain_primary, tmp_path: Path
) -> None:
    # The package's global comes first in the program, so the compiler reports the conflict
    # at @types/node's declaration: the pinned files are checked again once a package can
    # change what they mean.
    tgz = _declarations_only(
        toolchain_primary,
        tmp_path,
        "globals",
        {"index.d.mts": "declare global {\n  var __dirname: number;\n}\nexport const x: 1;\n"},
    )
    with pytest.raises(typecheck.TypeCheckFailed) as failed:
        typecheck.typecheck(toolchain_primary, cache(), tgz, "@botiverse/globals", tmp_path / "c")
    assert "nodenext resolution) cannot" in str(failed.value)
    assert "TS2403: Subsequent variable declarations must have the same type." in str(failed.value)
    assert str(failed.value).endswith("(@types/node/module.d.ts:805)")


@pytest.mark.slow
def test_an_import_nobody_provides_is_refused(toolchain_primary, tmp_path: Path) -> None:
    sdk = write_workspace(tmp_path / "src")
    dts = sdk / "dist" / "index.d.mts"
    dts.write_text('import type { Pool } from "undici";\nexport declare const pool: Pool;\n')
    with pytest.raises(declarations.DeclarationsFailed, match=r"import 'undici'.*neither"):
        declarations.bundle(toolchain_primary, cache(), sdk, sdk / "dist", ["smol-toml"])
    assert dts.read_text().startswith('import type { Pool } from "undici"')  # untouched


@pytest.mark.slow
def test_attw_rejects_types_that_point_nowhere(toolchain_primary, tmp_path: Path) -> None:
    tc = toolchain_primary
    pkg = tmp_path / "pkg"
    (pkg / "dist").mkdir(parents=True)
    (pkg / "dist" / "index.mjs").write_text("export const x = 1;\n")
    (pkg / "dist" / "index.d.mts").write_text("export declare const x: number;\n")
    (pkg / "package.json").write_text(
        json.dumps(
            {
                "name": "@botiverse/nowhere",
                "version": "1.0.0",
                "type": "module",
                "exports": {".": {"types": "./dist/missing.d.mts", "import": "./dist/index.mjs"}},
            }
        )
    )
    tgz = publish_build.pack(tc, pkg, tmp_path / "pack")
    with pytest.raises(typecheck.TypeCheckFailed, match=r"attw \(esm-only\) rejects") as failed:
        typecheck.attw(tc, cache(), tgz)
    # The first problem the ESM-only profile counts: node16-cjs and node10 are not reported.
    assert "FallbackCondition at ., node16-esm" in str(failed.value)
    assert "node10" not in str(failed.value)


def test_attw_problems_outside_the_profile_do_not_count() -> None:
    def report(*problems: tuple[str, str]) -> str:
        listed = [{"kind": k, "entrypoint": ".", "resolutionKind": r} for k, r in problems]
        return json.dumps({"analysis": {"types": {"kind": "included"}, "problems": listed}})

    assert typecheck.attw_problem(report(("NoResolution", "node10"))) is None
    assert typecheck.attw_problem(report(("CJSResolvesToESM", "node16-cjs"))) is None
    assert typecheck.attw_problem(report(("NoResolution", "bundler"), ("X", "node16-esm"))) == (
        "NoResolution at ., bundler (and 1 more)"
    )
    assert typecheck.attw_problem(json.dumps({"analysis": {"types": False}})) == (
        "the package contains no type declarations"
    )
