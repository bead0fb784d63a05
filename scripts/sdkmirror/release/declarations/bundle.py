"""Declarations that stand on their own: inline the types the published package cannot resolve.

The SDK's rolled-up `.d.mts` imports types from packages a consumer does not install: private
workspace packages (never published) and published packages that are not runtime
dependencies (the runtime bundle inlined their code). rollup-plugin-dts, run in the built
source tree where the workspace's `node_modules` resolve them, inlines every such import; the
runtime dependencies and Node's builtins stay imports, since a consumer has them.

rollup-plugin-dts is reliable only on declarations the compiler emitted: a workspace package
whose types are TypeScript source is compiled first (`declaration_emit`), and the bundle reads
what the compiler wrote, never the source.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdkmirror.core.errors import CommandError, VerificationFailed
from sdkmirror.infra import console, npmtool
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.release.declarations import emit as declaration_emit
from sdkmirror.release.declarations.emit import EMIT_TIMEOUT, DeclarationEmitFailed, Emitted

DTS_PLUGIN = "rollup-plugin-dts"
DTS_PLUGIN_VERSION = "6.5.1"
ROLLUP_VERSION = "4.68.8"
RUNTIME_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")

SCRIPT = Path(__file__).resolve().parents[1] / "js" / "bundle-declarations.mjs"


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
    emitted: tuple[Emitted, ...] = ()  # the workspace packages compiled to declarations
    seconds: float = 0.0  # the whole stage: emit and bundle

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
    *,
    timeout: float = EMIT_TIMEOUT,
) -> BundleResult:
    """Rewrite the declaration files `publishConfig.exports` names so that they import nothing
    but `runtime_deps` and Node builtins; every other type is inlined from the source tree,
    the private workspace packages' from their compiler-emitted declarations."""
    start = time.monotonic()
    sdk_dir, dist_dir = sdk_dir.resolve(), dist_dir.resolve()
    pkg = json.loads((sdk_dir / "package.json").read_text(encoding="utf-8"))
    home = install(tc, cache_dir)
    source_root = _source_root(sdk_dir)
    external = sorted(set(runtime_deps))
    workspaces = [d for d in workspace_dirs(source_root) if d != sdk_dir]
    emitted: dict[Path, Emitted] = {}
    files: list[BundledFile] = []
    outputs: list[Path] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sdkmirror-dts-") as tmp:
            scratch = Path(tmp)
            # Our own tsconfig, so the upstream's (and whatever it extends) never steers it.
            (scratch / "empty.d.ts").write_text("export {};\n", encoding="utf-8")
            tsconfig = scratch / "tsconfig.json"
            tsconfig.write_text(json.dumps({"files": ["empty.d.ts"]}), encoding="utf-8")
            for rel in declaration_files(pkg):
                target = _inside(sdk_dir / rel, dist_dir, rel)
                out = scratch / f"out-{len(files)}.d.mts"
                job: dict[str, Any] = {
                    "home": str(home),
                    "input": str(target),
                    "output": str(out),
                    "tsconfig": str(tsconfig),
                    "external": external,
                    "workspaces": [str(d) for d in workspaces],
                    "root": str(source_root),
                }
                # Each round compiles the packages whose source the last one reached (a
                # package's emitted declarations may reach the source of another).
                for _ in range(len(workspaces) + 1):
                    job["emitted"] = [
                        {"package": str(e.package_dir), "out": str(e.out_dir)}
                        for e in emitted.values()
                    ]
                    report = _run_job(tc, scratch, job, rel, len(files), timeout)
                    if report["strays"]:
                        raise DeclarationsFailed(
                            f"the declarations {rel} reach the TypeScript source "
                            f"{report['strays'][0]}, which is in no workspace package; only "
                            "compiler-emitted declarations are bundled: publish that "
                            "package's declarations upstream"
                        )
                    if not report["needs"]:
                        break
                    for dir_ in map(Path, report["needs"]):
                        if dir_ in emitted:
                            raise DeclarationsFailed(
                                f"the declarations {rel} still reach {dir_.name}'s source "
                                "after its declaration emit; check its tsconfig.json includes "
                                "every file its exports name"
                            )
                        try:
                            emitted[dir_] = declaration_emit.emit(
                                tc,
                                home / "node_modules" / "typescript",
                                dir_,
                                source_root,
                                name=_name_of(dir_),
                                timeout=timeout,
                            )
                        except DeclarationEmitFailed as exc:
                            raise DeclarationsFailed(str(exc)) from None
                files.append(_check(report, target, out, source_root, rel))
                outputs.append(out)
            # Only once every file bundled, so a failure never leaves them half rewritten; each
            # replaces its file (a new inode), never writes through to whatever it shares one.
            for f, out in zip(files, outputs, strict=True):
                staged = f.path.with_name(f".{f.path.name}.bundled")
                shutil.copyfile(out, staged)
                os.replace(staged, f.path)
    finally:
        for dir_ in workspaces:  # the emitted trees are scratch: never left in the source
            shutil.rmtree(dir_ / declaration_emit.EMIT_DIR, ignore_errors=True)
            (dir_ / f"{declaration_emit.EMIT_DIR}.tsconfig.json").unlink(missing_ok=True)
    seconds = round(time.monotonic() - start, 2)
    return BundleResult(tuple(files), tuple(emitted.values()), seconds)


def _run_job(
    tc: Toolchain, scratch: Path, job: Mapping[str, Any], rel: str, n: int, timeout: float
) -> dict[str, Any]:
    path = scratch / f"job-{n}.json"
    path.write_text(json.dumps(job), encoding="utf-8")
    step = f"bundling the declarations {rel} (rollup-plugin-dts)"
    try:
        with console.step(step):
            res = tc.run(
                [tc.node, SCRIPT, path],
                cwd=Path(job["input"]).parent,
                writable=[scratch],
                readable=[Path(job["root"])],  # the workspace packages the types come from
                check=False,
                timeout=timeout,
            )
    except CommandError as exc:
        if exc.returncode == 124:
            raise DeclarationsFailed(f"the {step} did not finish within {timeout:.0f}s") from None
        raise
    if res.returncode != 0:
        raise DeclarationsFailed(
            f"bundling the declarations {rel} failed: {_first_error(res.output)}; "
            "the published types would not resolve, so nothing is packed"
        )
    report: dict[str, Any] = json.loads(res.stdout)
    return report


def _name_of(package_dir: Path) -> str:
    try:
        name = json.loads((package_dir / "package.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError):
        name = None
    return str(name or package_dir.name)


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
