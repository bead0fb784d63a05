"""The embedded sample upstream: a small pnpm workspace with the real upstream's shape.

It needs no network to install or build (zero third-party npm packages), so tests and the
demo run anywhere. Variants break it the way each smoke failure category looks in the wild.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import proc
from .errors import UsageError

TAG = "@moonshot-ai/kimi-code@{}"
SDK_NAME = "@moonshot-ai/kimi-code-sdk"
SDK_DIR = "packages/node-sdk"
CLI_DIR = "apps/kimi-cli"
NODE_PIN = "24.15.0"
PNPM_PIN = "10.33.0"
ENGINES = ">=24.15.0"

# A closed loopback port: connections are refused at once, nothing is ever reached.
UNREACHABLE_REGISTRY = "http://127.0.0.1:9/"

VARIANTS = (
    "unsupported-toolchain",
    "lockfile",
    "layout",
    "network",
    "upstream-build",
    "missing-artifact",
)


@dataclass(frozen=True)
class Release:
    """One upstream release: the CLI tag's version, the SDK version it ships, its exports."""

    cli: str
    sdk: str
    exports: tuple[str, ...]
    note: str


DEFAULT_RELEASES: tuple[Release, ...] = (
    Release("0.14.2", "0.9.3", ("VERSION", "createClient", "legacyPrompt"), "first SDK release"),
    Release("0.14.3", "0.9.3", ("VERSION", "createClient", "legacyPrompt"), "CLI-only changes"),
    Release("0.17.0", "0.9.4", ("VERSION", "createClient", "legacyPrompt", "steer"), "add steer"),
    Release("0.19.0", "0.10.0", ("VERSION", "createClient", "steer"), "remove legacyPrompt"),
)


@dataclass(frozen=True)
class SampleUpstream:
    bare: Path
    head: str
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> commit it peels to
    releases: tuple[Release, ...] = DEFAULT_RELEASES
    variant: str | None = None
    sdk_dir: str = SDK_DIR

    @property
    def url(self) -> str:
        return str(self.bare)

    def tag(self, cli_version: str) -> str:
        return TAG.format(cli_version)


# --- file contents ------------------------------------------------------------------------------

_MIT = """MIT License

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

# A bundler in miniature, with no dependency: type-only blocks are stripped, workspace
# siblings are resolved through node_modules (so a build proves the install linked them) and
# inlined, each local module becomes a chunk, and the declaration file is written.
_BUILD_MJS = r"""import {
  existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const withDts = !process.argv.includes("--no-dts");
const IMPORT = /^import \{([^}]*)\} from "([^"]+)";[ \t]*$/gm;
const TYPE_BLOCK = /^export type \w+ = \{[\s\S]*?^\};[ \t]*\n?/gm;
const EXPORT = /^export (?:async )?(function|const) (\w+)(\([^)]*\))?/gm;

const fail = (file, src, index, code, message) => {
  const line = src.slice(0, index).split("\n").length;
  console.error(`${relative(root, file)}(${line},1): error ${code}: ${message}`);
  process.exit(2);
};
const names = (list) => list.split(",").map((s) => s.trim()).filter(Boolean);
const exportsOf = (src) => [...src.matchAll(EXPORT)].map((m) => m[2]);

const inlined = [];
const seen = new Set();

function sibling(name, fromDir, file, src, index, wanted) {
  let dir;
  try {
    dir = realpathSync(join(fromDir, "node_modules", name));
  } catch {
    const why = `Cannot find module '${name}' or its corresponding type declarations.`;
    fail(file, src, index, "TS2307", why);
  }
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const entry = join(dir, typeof pkg.exports === "string" ? pkg.exports : pkg.exports["."]);
  const code = readFileSync(entry, "utf8");
  for (const w of wanted) {
    if (!exportsOf(code).includes(w)) {
      fail(file, src, index, "TS2305", `Module '"${name}"' has no exported member '${w}'.`);
    }
  }
  if (seen.has(name)) return;
  seen.add(name);
  const body = transform(code, entry, dir, false).replace(/^export /gm, "");
  inlined.push(`// ${name}@${pkg.version} (inlined)\n${body.trim()}\n`);
}

function transform(src, file, dir, entry) {
  let out = src.replace(TYPE_BLOCK, "");
  for (const m of [...src.matchAll(IMPORT)]) {
    const [line, list, spec] = m;
    if (spec.startsWith(".")) {
      const chunk = `chunk-${spec.replace(/^\.\//, "").replace(/\W/g, "-")}.mjs`;
      const local = join(dirname(file), `${spec}.ts`);
      const code = transform(readFileSync(local, "utf8"), local, dir, false);
      writeFileSync(join(dist, chunk), code);
      out = out.replace(line, `import {${list}} from "./${chunk}";`);
    } else {
      sibling(spec, dir, file, src, m.index, names(list));
      out = out.replace(line, "");
    }
  }
  return out.replace(/^\n+/, "");
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const entryFile = join(root, "src", "index.ts");
const source = readFileSync(entryFile, "utf8");
const main = transform(source, entryFile, root, true);
const imports = main.match(/^import .*$/gm) ?? [];
const body = main.replace(/^import .*\n+/gm, "");
writeFileSync(join(dist, "index.mjs"), `${[...imports, "", ...inlined].join("\n")}\n${body}`);

if (withDts) {
  const types = [...source.matchAll(TYPE_BLOCK)].map((m) => m[0].trim());
  const decls = [...source.matchAll(EXPORT)].map(([, kind, name, params]) =>
    kind === "const"
      ? `export declare const ${name}: string;`
      : `export declare function ${name}${params.replace(/(\w+)(?=[,)])/g, "$1: unknown")}` +
        ": unknown;",
  );
  writeFileSync(join(dist, "index.d.mts"), `${[...types, ...decls].join("\n")}\n`);
}
const built = ["index.mjs", ...(withDts ? ["index.d.mts"] : [])]
  .filter((f) => existsSync(join(dist, f)));
console.log(`built ${built.join(", ")} with ${inlined.length} inlined workspace packages`);
"""

_KAOS = """export function kaosPlatform() {
  return { os: "sample", shell: "sh" };
}
"""

_AGENT_CORE = """import { kaosPlatform } from "@moonshot-ai/kaos";

export function runTurn(session, text) {
  const platform = kaosPlatform();
  return { session: session.id, text, platform: platform.os };
}

export function newSession(model) {
  return { id: `session-${model}`, model };
}
"""

_SDK_FUNCTIONS = {
    "createClient": """export function createClient(options) {
  const opts = { model: "kimi-latest", ...options };
  return { options: opts, session: newSession(opts.model) };
}
""",
    "legacyPrompt": """export function legacyPrompt(client, text) {
  return runTurn(client.session, text);
}
""",
    "steer": """export async function steer(client, instruction) {
  return runTurn(client.session, `[steer] ${instruction}`);
}
""",
}


def _sdk_index(exports: Sequence[str], *, broken_import: bool = False) -> str:
    core = ["newSession", "runTurn"] + (["runTurnWithTools"] if broken_import else [])
    parts = [
        f'import {{ {", ".join(core)} }} from "@moonshot-ai/agent-core";\n',
        'import { SDK_VERSION } from "./meta";\n',
        "\n",
        "export type ClientOptions = {\n  model?: string;\n  baseUrl?: string;\n};\n",
    ]
    if "VERSION" in exports:
        parts.append("\nexport const VERSION = SDK_VERSION;\n")
    for name in exports:
        if name in _SDK_FUNCTIONS:
            parts.append("\n" + _SDK_FUNCTIONS[name])
    return "".join(parts)


def _json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


def _lockfile(sdk_dir: str, *, network: bool) -> str:
    """The pnpm lockfile pnpm itself would write for this workspace (format 9.0)."""
    sdk_up = "/".join([".."] * len(Path(sdk_dir).parts))
    lines = [
        "lockfileVersion: '9.0'",
        "",
        "settings:",
        "  autoInstallPeers: true",
        "  excludeLinksFromLockfile: false",
        "",
        "importers:",
        "",
        "  .: {}",
        "",
        f"  {CLI_DIR}: {{}}",
        "",
        "  packages/agent-core:",
        "    dependencies:",
        "      '@moonshot-ai/kaos':",
        "        specifier: workspace:^",
        "        version: link:../kaos",
        "",
        "  packages/kaos: {}",
        "",
        f"  {sdk_dir}:",
    ]
    if network:
        lines += [
            "    dependencies:",
            "      '@sample-upstream/telemetry':",
            "        specifier: 1.0.0",
            "        version: 1.0.0",
        ]
    lines += [
        "    devDependencies:",
        "      '@moonshot-ai/agent-core':",
        "        specifier: workspace:^",
        f"        version: link:{sdk_up}/packages/agent-core",
        "      '@moonshot-ai/kaos':",
        "        specifier: workspace:^",
        f"        version: link:{sdk_up}/packages/kaos",
    ]
    if network:
        integrity = "sha512-" + "A" * 86 + "=="
        lines += [
            "",
            "packages:",
            "",
            "  '@sample-upstream/telemetry@1.0.0':",
            f"    resolution: {{integrity: {integrity}}}",
            "",
            "snapshots:",
            "",
            "  '@sample-upstream/telemetry@1.0.0': {}",
        ]
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

    sdk_dev = {"@moonshot-ai/agent-core": "workspace:^", "@moonshot-ai/kaos": "workspace:^"}
    if variant == "lockfile":  # a specifier changed in package.json, not in the lockfile
        sdk_dev["@moonshot-ai/kaos"] = "workspace:*"
    sdk_pkg: dict[str, object] = {
        "name": sdk_name,
        "version": release.sdk,
        "description": "Node SDK for Kimi Code",
        "license": "MIT",
        "private": True,
        "type": "module",
        "exports": {".": "./src/index.ts"},
        "files": ["dist", "README.md"],
        "scripts": {
            "build": "node build.mjs --no-dts"
            if variant == "missing-artifact"
            else "node build.mjs"
        },
        "publishConfig": {
            "exports": {
                ".": {
                    "types": "./dist/index.d.mts",
                    "import": "./dist/index.mjs",
                    "default": "./dist/index.mjs",
                }
            }
        },
        "devDependencies": sdk_dev,
    }
    if network:
        sdk_pkg["dependencies"] = {"@sample-upstream/telemetry": "1.0.0"}

    root_pkg = {
        "name": "kimi-code-monorepo",
        "private": True,
        "packageManager": f"pnpm@{PNPM_PIN}",
        "engines": {"node": ">=99" if variant == "unsupported-toolchain" else ENGINES},
        "scripts": {"prepare": "node -e \"console.log('git hooks: nothing to install')\""},
    }

    def pkg(name: str, version: str, **extra: object) -> str:
        return _json(
            {
                "name": name,
                "version": version,
                "private": True,
                "type": "module",
                "exports": {".": "./src/index.js"},
                **extra,
            }
        )

    files = {
        "package.json": _json(root_pkg),
        ".npmrc": npmrc,
        ".nvmrc": NODE_PIN + "\n",
        "LICENSE": _MIT,
        "README.md": "# Kimi Code (sample upstream)\n\nShaped like the real workspace.\n",
        "pnpm-workspace.yaml": "packages:\n  - packages/*\n  - apps/*\n",
        "pnpm-lock.yaml": _lockfile(sdk_dir, network=network),
        f"{CLI_DIR}/package.json": _json(
            {
                "name": "@moonshot-ai/kimi-code",
                "version": release.cli,
                "private": True,
                "bin": {"kimi": "./src/cli.js"},
            }
        ),
        f"{CLI_DIR}/src/cli.js": f'console.log("kimi {release.cli}: {release.note}");\n',
        "packages/kaos/package.json": pkg("@moonshot-ai/kaos", "0.3.0"),
        "packages/kaos/src/index.js": _KAOS,
        "packages/agent-core/package.json": pkg(
            "@moonshot-ai/agent-core",
            "0.5.0",
            dependencies={"@moonshot-ai/kaos": "workspace:^"},
        ),
        "packages/agent-core/src/index.js": _AGENT_CORE,
        f"{sdk_dir}/package.json": _json(sdk_pkg),
        f"{sdk_dir}/README.md": f"# {SDK_NAME}\n\nThe Kimi Code Node SDK, version {release.sdk}.\n",
        f"{sdk_dir}/build.mjs": _BUILD_MJS,
        f"{sdk_dir}/src/index.ts": _sdk_index(
            release.exports, broken_import=variant == "upstream-build"
        ),
        f"{sdk_dir}/src/meta.ts": f'export const SDK_VERSION = "{release.sdk}";\n',
    }
    return files


def write_tree(dest: Path, release: Release | None = None, variant: str | None = None) -> Path:
    """Write the workspace at `release` (default: the newest) into `dest`, no git involved."""
    write_files(dest, tree(release or DEFAULT_RELEASES[-1], variant))
    return dest


# --- history ------------------------------------------------------------------------------------

# Fixed identity and dates: the same sample has the same commit and tag ids on every machine.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Sample Upstream",
    "GIT_AUTHOR_EMAIL": "sample-upstream@example.invalid",
    "GIT_COMMITTER_NAME": "Sample Upstream",
    "GIT_COMMITTER_EMAIL": "sample-upstream@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
_EPOCH = 1_760_000_000


def _git(work: Path, *args: str, when: int) -> str:
    stamp = f"@{when} +0000"
    env = {**os.environ, **_IDENTITY, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return proc.run(["git", *args], cwd=work, env=env).stdout.strip()


def create_upstream(
    dest_bare: Path,
    *,
    variant: str | None = None,
    releases: Sequence[Release] = DEFAULT_RELEASES,
    unreleased_commit: bool = True,
) -> SampleUpstream:
    """Create a bare repository at `dest_bare` holding the sample's history and release tags.

    Each release is a commit plus an annotated tag `@moonshot-ai/kimi-code@X.Y.Z`; `main` ends
    one unreleased commit past the last release. A `variant` adds a final commit on `main`
    that breaks the build in that category's way; the release tags stay good.
    """
    if not releases:
        raise UsageError("the sample upstream needs at least one release")
    if variant is not None and variant not in VARIANTS:
        raise UsageError(f"unknown sample variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if dest_bare.exists() and any(dest_bare.iterdir()):
        raise UsageError(f"{dest_bare} already exists and is not empty; choose a new path")
    dest_bare.parent.mkdir(parents=True, exist_ok=True)
    proc.run(["git", "init", "-q", "--bare", "-b", "main", str(dest_bare)])

    tags: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sample-upstream-") as tmp:
        work = Path(tmp) / "work"
        proc.run(["git", "init", "-q", "-b", "main", str(work)])
        when = _EPOCH

        def commit(files: dict[str, str], message: str) -> str:
            nonlocal when
            when += 3600
            for old in [p for p in work.iterdir() if p.name != ".git"]:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            write_files(work, files)
            _git(work, "add", "-A", when=when)
            _git(work, "commit", "-q", "--allow-empty", "-m", message, when=when)
            return _git(work, "rev-parse", "HEAD", when=when)

        for rel in releases:
            sha = commit(
                tree(rel), f"release: kimi-code {rel.cli} (node-sdk {rel.sdk}): {rel.note}"
            )
            name = TAG.format(rel.cli)
            _git(work, "tag", "-a", "-m", f"Release {rel.cli}", "--", name, sha, when=when)
            tags[name] = sha
        last = releases[-1]
        files = tree(last)
        if unreleased_commit:
            files["README.md"] += "\nUnreleased: work in progress on main.\n"
            commit(files, "docs: note unreleased work")
        if variant:
            broken = tree(last, variant)
            broken["README.md"] = files["README.md"]
            commit(broken, f"sample: break the build ({variant})")
        head = _git(work, "rev-parse", "HEAD", when=when)
        _git(
            work,
            "push",
            "-q",
            str(dest_bare),
            "refs/heads/main:refs/heads/main",
            "refs/tags/*:refs/tags/*",
            when=when,
        )
    return SampleUpstream(
        bare=dest_bare,
        head=head,
        tags=tags,
        releases=tuple(releases),
        variant=variant,
        sdk_dir="packages/sdk" if variant == "layout" else SDK_DIR,
    )


def write_files(dest: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def exports_of(index_source: str) -> list[str]:
    """The value exports of an SDK source or built module, in order (for tests and notes)."""
    return re.findall(
        r"^export (?:declare )?(?:async )?(?:function|const) (\w+)", index_source, re.M
    )
