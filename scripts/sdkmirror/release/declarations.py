"""Declarations that stand on their own: inline the types the published package cannot resolve.

The SDK's rolled-up `.d.mts` imports types from packages a consumer does not install: private
workspace packages (never published) and published packages that are not runtime
dependencies (the runtime bundle inlined their code). rollup-plugin-dts, run in the built
source tree where the workspace's `node_modules` resolve them, inlines every such import; the
runtime dependencies and Node's builtins stay imports, since a consumer has them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdkmirror.core.errors import VerificationFailed
from sdkmirror.infra import console, npmtool
from sdkmirror.infra.toolchain import Toolchain

DTS_PLUGIN = "rollup-plugin-dts"
DTS_PLUGIN_VERSION = "6.5.1"
ROLLUP_VERSION = "4.68.8"
RUNTIME_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")

# Bundles one declaration file. argv: the job file (JSON). Prints what it did as JSON.
_BUNDLE_MJS = r"""
import { readFileSync, writeFileSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";
import path from "node:path";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const need = createRequire(job.home + "/package.json");
const { rollup } = need("rollup");
const ts = need("typescript");
const plugin = need("rollup-plugin-dts");
const dts = plugin.dts ?? plugin.default;

const builtins = new Set(builtinModules);
const external = (id) =>
  id.startsWith("node:") ||
  builtins.has(id) ||
  job.external.some((dep) => id === dep || id.startsWith(dep + "/"));

const resolution = {
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  skipLibCheck: true,
};
// The rolled-up declarations import what the sibling packages they came from import; pnpm
// links a package only into its dependents' node_modules, so try from each workspace package.
const siblings = {
  name: "sdkmirror-workspace-packages",
  resolveId(source, importer) {
    if (!importer || source.startsWith(".") || path.isAbsolute(source) || external(source)) {
      return null;
    }
    for (const dir of job.workspaces) {
      const from = path.join(dir, "index.ts");
      const { resolvedModule } = ts.resolveModuleName(source, from, resolution, ts.sys);
      if (resolvedModule) return path.resolve(resolvedModule.resolvedFileName);
    }
    return null;
  },
};

async function main() {
  const warnings = [];
  const bundle = await rollup({
    input: job.input,
    external,
    onwarn: (w) => warnings.push(w.message),
    plugins: [
      // `exports` maps decide how workspace packages resolve, as for their own bundler.
      dts({ respectExternal: true, tsconfig: job.tsconfig, compilerOptions: resolution }),
      siblings, // only asked when the plugin could not resolve an import
    ],
  });
  const { output } = await bundle.generate({ format: "es" });
  await bundle.close();
  const chunk = output.find((o) => o.type === "chunk" && o.isEntry);
  writeFileSync(job.output, chunk.code);
  return {
    imports: chunk.imports,
    unexpected: chunk.imports.filter((id) => !external(id)),
    modules: Object.keys(chunk.modules),
    warnings,
  };
}

try {
  process.stdout.write(JSON.stringify(await main()));
} catch (e) {
  process.stderr.write(`error: ${String(e?.message ?? e).split("\n")[0]}\n`);
  process.exit(1);
}
"""


class DeclarationsFailed(VerificationFailed):
    """The published declarations cannot be made to stand on their own."""


@dataclass(frozen=True)
class BundledFile:
    path: Path  # the declaration file, rewritten in place
    kept_imports: tuple[str, ...]  # what it still imports: runtime dependencies and builtins
    inlined: tuple[str, ...]  # the packages whose declarations it now carries
    size_before: int
    size_after: int


@dataclass(frozen=True)
class BundleResult:
    files: tuple[BundledFile, ...]

    @property
    def inlined(self) -> tuple[str, ...]:
        return tuple(sorted({p for f in self.files for p in f.inlined}))


def runtime_dependencies(pkg: Mapping[str, Any]) -> tuple[str, ...]:
    """The package names a consumer installs with the SDK (the imports that may stay)."""
    names = {n for field in RUNTIME_FIELDS for n in (pkg.get(field) or {})}
    return tuple(sorted(names))


def declaration_files(pkg: Mapping[str, Any]) -> list[str]:
    """Every file a `types` condition of `publishConfig.exports` names, in order."""
    publish = pkg.get("publishConfig")
    exports = publish.get("exports") if isinstance(publish, dict) else None
    found: list[str] = []

    def walk(node: Any, under_types: bool) -> None:
        if isinstance(node, str):
            if under_types and node not in found:
                found.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item, under_types)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, under_types or key == "types")

    walk(exports, False)
    return found


def install(tc: Toolchain, cache_dir: Path) -> Path:
    """rollup, rollup-plugin-dts and the TypeScript it drives, pinned, installed once."""
    return npmtool.install(
        cache_dir,
        DTS_PLUGIN,
        DTS_PLUGIN_VERSION,
        tc,
        with_packages={"rollup": ROLLUP_VERSION, "typescript": npmtool.TYPESCRIPT_VERSION},
    )


def bundle(
    tc: Toolchain,
    cache_dir: Path,
    sdk_dir: Path,
    dist_dir: Path,
    runtime_deps: Iterable[str],
) -> BundleResult:
    """Rewrite the declaration files `publishConfig.exports` names so that they import nothing
    but `runtime_deps` and Node builtins; every other type is inlined from the source tree."""
    sdk_dir, dist_dir = sdk_dir.resolve(), dist_dir.resolve()
    pkg = json.loads((sdk_dir / "package.json").read_text(encoding="utf-8"))
    home = install(tc, cache_dir)
    source_root = _source_root(sdk_dir)
    external = sorted(set(runtime_deps))
    workspaces = [str(d) for d in workspace_dirs(source_root) if d != sdk_dir]
    files: list[BundledFile] = []
    outputs: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="sdkmirror-dts-") as tmp:
        scratch = Path(tmp)
        script = scratch / "bundle.mjs"
        script.write_text(_BUNDLE_MJS, encoding="utf-8")
        # Our own tsconfig, so the upstream's (and whatever it extends) never steers the bundle.
        (scratch / "empty.d.ts").write_text("export {};\n", encoding="utf-8")
        tsconfig = scratch / "tsconfig.json"
        tsconfig.write_text(json.dumps({"files": ["empty.d.ts"]}), encoding="utf-8")
        for rel in declaration_files(pkg):
            target = _inside(sdk_dir / rel, dist_dir, rel)
            out = scratch / f"out-{len(files)}.d.mts"
            job = scratch / f"job-{len(files)}.json"
            job.write_text(
                json.dumps(
                    {
                        "home": str(home),
                        "input": str(target),
                        "output": str(out),
                        "tsconfig": str(tsconfig),
                        "external": external,
                        "workspaces": workspaces,
                    }
                ),
                encoding="utf-8",
            )
            with console.step(f"inlining the declarations {rel} imports"):
                res = tc.run(
                    [tc.node, script, job],
                    cwd=sdk_dir,
                    writable=[scratch],
                    readable=[source_root],  # the workspace packages the types come from
                    check=False,
                    timeout=600,
                )
            if res.returncode != 0:
                raise DeclarationsFailed(
                    f"bundling the declarations {rel} failed: {_first_error(res.output)}; "
                    "the published types would not resolve, so nothing is packed"
                )
            report = json.loads(res.stdout)
            files.append(_check(report, target, out, source_root, rel))
            outputs.append(out)
        # Only once every file bundled, so a failure never leaves them half rewritten; each
        # replaces its file (a new inode), never writes through to whatever it shares one with.
        for f, out in zip(files, outputs, strict=True):
            staged = f.path.with_name(f".{f.path.name}.bundled")
            shutil.copyfile(out, staged)
            os.replace(staged, f.path)
    return BundleResult(tuple(files))


def _check(
    report: Mapping[str, Any],
    target: Path,
    out: Path,
    source_root: Path,
    rel: str,
) -> BundledFile:
    """The bundled file's facts, once its imports and sources are known to be acceptable."""
    kept = tuple(str(i) for i in report["imports"])
    unresolved = [str(i) for i in report["unexpected"]]
    if unresolved:
        raise DeclarationsFailed(
            f"the declarations {rel} import {unresolved[0]!r}, which is neither a runtime "
            "dependency nor resolvable in the built source tree; add it to the SDK's "
            "dependencies upstream, or make the build install it"
        )
    outside = [m for m in report["modules"] if not _within(Path(m), source_root)]
    if outside:
        raise DeclarationsFailed(
            f"the declarations {rel} resolve {outside[0]} outside the source tree; "
            "declarations are only read from the built tree, never through a link out of it"
        )
    inlined = sorted(
        {name for m in report["modules"] if (name := _package_of(Path(m), target.parent))}
    )
    return BundledFile(
        path=target,
        kept_imports=kept,
        inlined=tuple(inlined),
        size_before=target.stat().st_size,
        size_after=out.stat().st_size,
    )


def _package_of(module: Path, dist_dir: Path) -> str | None:
    """The package a module file belongs to (nearest package.json), unless it is our dist."""
    if _within(module, dist_dir.resolve()):
        return None
    for parent in module.parents:
        pj = parent / "package.json"
        if pj.is_file():
            try:
                name = json.loads(pj.read_text(encoding="utf-8")).get("name")
            except (OSError, ValueError):
                return None
            return str(name) if name else None
    return None


def workspace_dirs(source_root: Path) -> list[Path]:
    """The directories of the source tree's packages (up to three levels down, as the
    upstream's `packages/*`, `apps/*` and `apps/vis/server` are), without node_modules."""
    found = {
        pj.parent.resolve()
        for pattern in ("*/package.json", "*/*/package.json", "*/*/*/package.json")
        for pj in source_root.glob(pattern)
        if "node_modules" not in pj.parts and not pj.parent.is_symlink()
    }
    return sorted(found)


def _source_root(sdk_dir: Path) -> Path:
    """The workspace root above the SDK (where pnpm-workspace.yaml is), resolved."""
    for parent in [sdk_dir, *sdk_dir.parents]:
        if (parent / "pnpm-workspace.yaml").is_file():
            return parent.resolve()
    return sdk_dir.resolve()


def _within(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _inside(path: Path, dist_dir: Path, rel: str) -> Path:
    if path.is_symlink() or not _within(path, dist_dir.resolve()) or not path.is_file():
        raise DeclarationsFailed(
            f"publishConfig.exports names the declarations {rel}, which is not a file in "
            f"{dist_dir.name}/; build the SDK first"
        )
    return path


def _first_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("error: "):
            return line.removeprefix("error: ")[:300]
    return lines[-1][:300] if lines else "no output"
