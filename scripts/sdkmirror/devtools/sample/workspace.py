"""The whole workspace at one release: every file, the lockfile pnpm would write, variants."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sdkmirror.core.errors import UsageError
from sdkmirror.devtools.sample.api import declarations
from sdkmirror.devtools.sample.bundler import BUILD_MJS
from sdkmirror.devtools.sample.protocol import protocol_files
from sdkmirror.devtools.sample.releases import (
    CLI_DIR,
    DEFAULT_RELEASES,
    ENGINES,
    NODE_PIN,
    PNPM_PIN,
    PROTOCOL_NAME,
    SDK_DIR,
    SDK_NAME,
    TOML_INTEGRITY,
    TOML_NAME,
    TOML_RANGE,
    TOML_VERSION,
    UNREACHABLE_REGISTRY,
    VARIANTS,
    VENDOR_TYPES_NAME,
    Release,
)
from sdkmirror.devtools.sample.sdk import sdk_index
from sdkmirror.devtools.sample.siblings import AGENT_CORE, KAOS, VENDOR_TYPES

MIT_LICENSE = """MIT License

Copyright (c) 2025 Moonshot AI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def to_json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


def _workspace_yaml(release: Release) -> str:
    text = "packages:\n  - packages/*\n  - apps/*\n"
    if release.catalog:
        text += f"\ncatalog:\n  {TOML_NAME}: {TOML_VERSION}\n"
    return text


def _lockfile(release: Release, sdk_dir: str, *, network: bool) -> str:
    """The pnpm lockfile pnpm itself would write for this workspace (format 9.0)."""
    sdk_up = "/".join([".."] * len(Path(sdk_dir).parts))
    toml_spec = "'catalog:'" if release.sdk_catalog else TOML_RANGE

    def dep(name: str, specifier: str, version: str) -> list[str]:
        key = f"'{name}'" if name.startswith("@") else name
        return [f"      {key}:", f"        specifier: {specifier}", f"        version: {version}"]

    def link(name: str, path: str) -> list[str]:
        return dep(name, "workspace:^", f"link:{path}")

    agent_core = ["    dependencies:", *link("@moonshot-ai/kaos", "../kaos")]
    if release.catalog:
        agent_core += dep(TOML_NAME, "'catalog:'", TOML_VERSION)
    sdk = ["    dependencies:"]
    if network:
        sdk += dep("@sample-upstream/telemetry", "1.0.0", "1.0.0")
    sdk += dep(TOML_NAME, toml_spec, TOML_VERSION)
    sdk += ["    devDependencies:"]
    for name, path in (
        ("@moonshot-ai/agent-core", "packages/agent-core"),
        ("@moonshot-ai/kaos", "packages/kaos"),
        (PROTOCOL_NAME, "packages/protocol"),
        (VENDOR_TYPES_NAME, "packages/transport-types"),
    ):
        sdk += link(name, f"{sdk_up}/{path}")
    importers: dict[str, list[str]] = {
        ".": [],
        CLI_DIR: [],
        "packages/agent-core": agent_core,
        "packages/kaos": [],
        "packages/protocol": [],
        "packages/transport-types": [],
        sdk_dir: sdk,
    }
    lines = [
        "lockfileVersion: '9.0'",
        "",
        "settings:",
        "  autoInstallPeers: true",
        "  excludeLinksFromLockfile: false",
        "",
    ]
    if release.catalog:
        lines += [
            "catalogs:",
            "  default:",
            f"    {TOML_NAME}:",
            f"      specifier: {TOML_VERSION}",
            f"      version: {TOML_VERSION}",
            "",
        ]
    lines += ["importers:", ""]
    for path in sorted(importers):
        body = importers[path]
        lines += [f"  {path}:{'' if body else ' {}'}", *body, ""]
    packages = [
        f"  {TOML_NAME}@{TOML_VERSION}:",
        f"    resolution: {{integrity: {TOML_INTEGRITY}}}",
        "    engines: {node: '>= 18'}",
    ]
    snapshots = [f"  {TOML_NAME}@{TOML_VERSION}: {{}}"]
    if network:
        integrity = "sha512-" + "A" * 86 + "=="
        packages = [
            "  '@sample-upstream/telemetry@1.0.0':",
            f"    resolution: {{integrity: {integrity}}}",
            "",
            *packages,
        ]
        snapshots = ["  '@sample-upstream/telemetry@1.0.0': {}", "", *snapshots]
    lines += ["packages:", "", *packages, "", "snapshots:", "", *snapshots]
    return "\n".join(lines) + "\n"


def tree(release: Release, variant: str | None = None) -> dict[str, str]:
    """Every file of the sample workspace at `release`, as relative path -> text."""
    if variant is not None and variant not in VARIANTS:
        raise UsageError(f"unknown sample variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    sdk_dir = "packages/sdk" if variant == "layout" else SDK_DIR
    sdk_name = "@moonshot-ai/kimi-sdk" if variant == "layout" else SDK_NAME
    network = variant == "network"

    npmrc = "engine-strict=true\nauto-install-peers=true\nstrict-peer-dependencies=false\n"
    if network:
        npmrc += f"registry={UNREACHABLE_REGISTRY}\nfetch-retries=0\nfetch-timeout=3000\n"

    sdk_dev = {
        "@moonshot-ai/agent-core": "workspace:^",
        "@moonshot-ai/kaos": "workspace:^",
        PROTOCOL_NAME: "workspace:^",
        VENDOR_TYPES_NAME: "workspace:^",
    }
    if variant == "lockfile":  # a specifier changed in package.json, not in the lockfile
        sdk_dev["@moonshot-ai/kaos"] = "workspace:*"
    sdk_deps = {TOML_NAME: "catalog:" if release.sdk_catalog else TOML_RANGE}
    if network:
        sdk_deps = {"@sample-upstream/telemetry": "1.0.0", **sdk_deps}
    imports: str | list[str] = (
        ["./src/*.ts", "./src/*/index.ts"] if release.imports_form == "array" else "./src/*.ts"
    )
    sdk_pkg: dict[str, object] = {
        "name": sdk_name,
        "version": release.sdk,
        "description": "Node SDK for Kimi Code",
        "license": "MIT",
        "private": True,
        "type": "module",
        "imports": {"#/*": imports},
        "exports": {".": "./src/index.ts"},
        "files": ["dist", "README.md"],
        "scripts": {
            "build": "node build.mjs --no-dts"
            if variant == "missing-artifact"
            else "node build.mjs"
        },
        "dependencies": sdk_deps,
        "devDependencies": sdk_dev,
        "publishConfig": {
            "exports": {
                ".": {
                    "types": "./dist/index.d.mts",
                    "import": "./dist/index.mjs",
                    "default": "./dist/index.mjs",
                }
            },
            "provenance": True,
        },
    }

    root_pkg = {
        "name": "kimi-code-monorepo",
        "private": True,
        "packageManager": f"pnpm@{PNPM_PIN}",
        "engines": {"node": ">=99" if variant == "unsupported-toolchain" else ENGINES},
        "scripts": {"prepare": "node -e \"console.log('git hooks: nothing to install')\""},
    }

    def pkg(name: str, version: str, entry: str = "./src/index.js", **extra: object) -> str:
        return to_json(
            {
                "name": name,
                "version": version,
                "private": True,
                "type": "module",
                "exports": {".": entry},
                **extra,
            }
        )

    agent_deps = {"@moonshot-ai/kaos": "workspace:^"}
    if release.catalog:
        agent_deps[TOML_NAME] = "catalog:"
    files = {
        "package.json": to_json(root_pkg),
        ".npmrc": npmrc,
        ".nvmrc": NODE_PIN + "\n",
        "LICENSE": MIT_LICENSE,
        "README.md": "# Kimi Code (sample upstream)\n\nShaped like the real workspace.\n",
        "pnpm-workspace.yaml": _workspace_yaml(release),
        "pnpm-lock.yaml": _lockfile(release, sdk_dir, network=network),
        f"{CLI_DIR}/package.json": to_json(
            {
                "name": "@moonshot-ai/kimi-code",
                "version": release.cli,
                "private": True,
                "bin": {"kimi": "./src/cli.js"},
            }
        ),
        f"{CLI_DIR}/src/cli.js": f'console.log("kimi {release.cli}: {release.note}");\n',
        "packages/kaos/package.json": pkg("@moonshot-ai/kaos", "0.3.0"),
        "packages/kaos/src/index.js": KAOS,
        "packages/agent-core/package.json": pkg(
            "@moonshot-ai/agent-core", "0.5.0", dependencies=agent_deps
        ),
        "packages/agent-core/src/index.js": AGENT_CORE,
        **{f"packages/protocol/{k}": v for k, v in protocol_files(release.api).items()},
        "packages/transport-types/package.json": to_json(
            {
                "name": VENDOR_TYPES_NAME,
                "version": "1.2.0",
                "description": "Transport interfaces (types only)",
                "license": "MIT",
                "type": "module",
                "types": "./index.d.ts",
                "exports": {".": {"types": "./index.d.ts"}},
                "files": ["index.d.ts"],
            }
        ),
        "packages/transport-types/index.d.ts": VENDOR_TYPES,
        f"{sdk_dir}/package.json": to_json(sdk_pkg),
        f"{sdk_dir}/README.md": f"# {SDK_NAME}\n\nThe Kimi Code Node SDK, version {release.sdk}.\n",
        f"{sdk_dir}/build.mjs": BUILD_MJS,
        f"{sdk_dir}/api/index.d.mts": declarations(release.api),
        f"{sdk_dir}/src/index.ts": sdk_index(release, broken_import=variant == "upstream-build"),
        f"{sdk_dir}/src/meta.ts": f'export const SDK_VERSION = "{release.sdk}";\n',
    }
    return files


def write_tree(dest: Path, release: Release | None = None, variant: str | None = None) -> Path:
    """Write the workspace at `release` (default: the newest) into `dest`, no git involved."""
    write_files(dest, tree(release or DEFAULT_RELEASES[-1], variant))
    return dest


def write_files(dest: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def exports_of(index_source: str) -> list[str]:
    """The value exports of an SDK source or built module, in order (for tests and notes)."""
    return re.findall(
        r"^export (?:declare )?(?:async )?(?:function|const|class) (\w+)", index_source, re.M
    )
