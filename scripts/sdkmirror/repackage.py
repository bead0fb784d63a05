"""Turn the built SDK into the dist-only package: a pure package.json plan, then the directory."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nodesemver

from . import node_exports
from .errors import MirrorError

PACKAGE_FILES = ["dist", "LICENSE", "NOTICE.md", "README.md"]
# Workspace-only fields: the published package must not carry how the monorepo builds itself.
DROPPED = (
    "private",
    "devDependencies",
    "scripts",
    "publishConfig",
    "packageManager",
    "workspaces",
    "pnpm",
    "simple-git-hooks",
    "lint-staged",
    "files",
    "exports",
    "main",
    "module",
    "types",
    "typings",
)
# pnpm's own publish-time overrides: these fields in publishConfig replace the top-level ones.
PUBLISH_OVERRIDES = ("exports", "main", "module", "types", "typings", "bin")
RUNTIME_DEPS = ("dependencies", "optionalDependencies", "peerDependencies")


class RepackageError(MirrorError):
    """The built SDK cannot be turned into a publishable package as it is."""

    exit_code = 7


@dataclass(frozen=True)
class Provenance:
    """Where a published package comes from; recorded in its package.json and NOTICE.md."""

    upstream: str  # the upstream package name
    upstream_version: str
    release_tag: str
    commit: str
    source_ref: str | None = None  # the local patch branch built instead of the tag's commit
    patch_reason: str = ""  # from the patch registry, for NOTICE.md
    patch_upstream_pr: str = ""

    def as_json(self) -> dict[str, str]:
        data = {
            "upstream": self.upstream,
            "upstreamVersion": self.upstream_version,
            "releaseTag": self.release_tag,
            "commit": self.commit,
        }
        if self.source_ref:
            data["sourceRef"] = self.source_ref
        return data


@dataclass(frozen=True)
class Package:
    dir: Path
    package_json: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.package_json["name"])

    @property
    def version(self) -> str:
        return str(self.package_json["version"])


def _resolve(exports: Any, conditions: tuple[str, ...]) -> str | None:
    """What Node resolves the package root to under `conditions` (object order, `default`)."""
    try:
        return node_exports.resolve(exports, ".", conditions)
    except node_exports.InvalidExports:
        return None


def root_export(exports: Any) -> Any:
    """The `.` entry of an `exports` field (a bare string or condition map is `.` itself)."""
    if isinstance(exports, dict) and any(k.startswith(".") for k in exports):
        return exports.get(".")
    return exports


def entry_points(exports: Any) -> dict[str, str]:
    """`main`/`module`/`types` derived from `exports["."]`, so that the three never disagree."""
    types = _resolve(exports, ("types", "import", "node"))
    points = {
        "main": _resolve(exports, ("require", "node", "import")),
        "module": _resolve(exports, ("import", "module")),
        "types": types if types and types.endswith((".d.ts", ".d.mts", ".d.cts")) else None,
    }
    return {k: v for k, v in points.items() if v}


def _targets(entry: Any) -> list[str]:
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, list):
        return [t for item in entry for t in _targets(item)]
    if isinstance(entry, dict):
        return [t for v in entry.values() for t in _targets(v)]
    return []


def resolve_protocol(
    name: str,
    spec: str,
    *,
    workspace_versions: Mapping[str, str],
    catalog: Mapping[str, str],
) -> str:
    """A runtime dependency's `workspace:`/`catalog:` spec as npm understands it, or an error."""
    if spec.startswith("workspace:"):
        rest = spec[len("workspace:") :]
        version = workspace_versions.get(name)
        if rest in ("*", "^", "~"):
            if version is None:
                raise RepackageError(
                    f"runtime dependency {name}@{spec} names a workspace package the source "
                    "tree does not have; make it a devDependency (bundled) or publish it"
                )
            return {"*": version, "^": f"^{version}", "~": f"~{version}"}[rest]
        if nodesemver.valid_range(rest, loose=False) is not None:
            return rest
        raise RepackageError(f"runtime dependency {name}@{spec} cannot be resolved to a version")
    if spec.startswith("catalog:"):
        which = spec[len("catalog:") :]
        if which not in ("", "default"):
            raise RepackageError(
                f"runtime dependency {name}@{spec} uses the named catalog {which!r}, which "
                "repackaging does not read; pin the version in the SDK's package.json"
            )
        if name not in catalog:
            raise RepackageError(
                f"runtime dependency {name}@{spec} has no entry in pnpm-workspace.yaml's catalog"
            )
        return catalog[name]
    return spec


def plan_package_json(
    sdk_pkg: Mapping[str, Any],
    *,
    npm_name: str,
    version: str,
    provenance: Provenance,
    workspace_versions: Mapping[str, str] | None = None,
    catalog: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The published package.json, computed from the SDK's own (pure: no I/O)."""
    if nodesemver.valid(version, loose=False) is None:
        raise RepackageError(f"{version!r} is not a valid npm version; pass X.Y.Z")
    publish = sdk_pkg.get("publishConfig") or {}
    exports = publish.get("exports", sdk_pkg.get("exports"))
    if not exports:
        raise RepackageError(
            f"{provenance.upstream} declares no publishConfig.exports; "
            "the published entry points are unknown, so nothing is repackaged"
        )
    outside = [t for t in _targets(exports) if not t.startswith("./dist/")]
    if outside:
        raise RepackageError(
            f"exports target {outside[0]!r} lies outside ./dist/ (only dist is published); "
            "the SDK's publishConfig.exports must point at built files"
        )

    out: dict[str, Any] = {"name": npm_name, "version": version}
    for key, value in sdk_pkg.items():
        if key in ("name", "version") or key in DROPPED:
            continue
        out[key] = value
    for key in PUBLISH_OVERRIDES:
        if key in publish and key != "exports":
            out[key] = publish[key]
    out["exports"] = exports
    out.update(entry_points(exports))
    out["files"] = list(PACKAGE_FILES)
    for field in RUNTIME_DEPS:
        deps = sdk_pkg.get(field)
        if deps:
            out[field] = {
                n: resolve_protocol(
                    n, str(s), workspace_versions=workspace_versions or {}, catalog=catalog or {}
                )
                for n, s in deps.items()
            }
    # A scoped name publishes restricted unless told otherwise.
    out["publishConfig"] = {"access": publish.get("access", "public")}
    out["sdkmirror"] = provenance.as_json()
    return out


# --- reading the source tree ----------------------------------------------------------------


def workspace_versions(source_root: Path) -> dict[str, str]:
    """name -> version of every package in the source tree (for `workspace:` specs)."""
    found: dict[str, str] = {}
    for pj in sorted(source_root.glob("*/*/package.json")) + sorted(
        source_root.glob("*/package.json")
    ):
        if "node_modules" in pj.parts:
            continue
        try:
            data = json.loads(pj.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") and data.get("version"):
            found.setdefault(str(data["name"]), str(data["version"]))
    return found


_CATALOG_ENTRY = re.compile(
    r"""^\s+['"]?([^'":\s]+)['"]?\s*:\s*['"]?([^'"#\s]+)['"]?\s*(?:#.*)?$"""
)


def default_catalog(source_root: Path) -> dict[str, str]:
    """The `catalog:` map of pnpm-workspace.yaml (the default catalog only, flat entries)."""
    path = source_root / "pnpm-workspace.yaml"
    if not path.is_file():
        return {}
    catalog: dict[str, str] = {}
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.rstrip() == "catalog:"
            continue
        if inside:
            m = _CATALOG_ENTRY.match(line)
            if m:
                catalog[m.group(1)] = m.group(2)
    return catalog


def find_license(sdk_dir: Path, source_root: Path) -> Path:
    for candidate in (sdk_dir / "LICENSE", source_root / "LICENSE"):
        if candidate.is_file():
            return candidate
    raise RepackageError(
        f"no LICENSE in {sdk_dir} or at the source root {source_root}; "
        "the upstream license must ship unchanged, so nothing is repackaged"
    )


# --- writing the package directory -----------------------------------------------------------


def notice_md(pkg: Mapping[str, Any], provenance: Provenance) -> str:
    p = provenance
    head = (
        f"# NOTICE\n\n"
        f"`{pkg['name']}` {pkg['version']} is a dist-only repackage of the upstream package "
        f"`{p.upstream}` {p.upstream_version}, built from the upstream "
    )
    if not p.source_ref:
        return (
            head + f"release tag `{p.release_tag}` at commit `{p.commit}`.\n\n"
            "All code in this package belongs to the upstream project and is distributed under "
            "the upstream license, included unchanged in `LICENSE`. This package adds no code: "
            "only `package.json`, this notice and the README are generated.\n"
        )
    name = p.source_ref.removeprefix("patch-")
    pr = f"- Upstream pull request: {p.patch_upstream_pr}\n" if p.patch_upstream_pr else ""
    return (
        head + f"release tag `{p.release_tag}` with a local change.\n\n"
        f"This package carries the local patch `{name}` (branch `{p.source_ref}`, commit "
        f"`{p.commit}`) on top of the upstream release tag `{p.release_tag}`; it is not an "
        "upstream release.\n\n"
        f"- Reason: {p.patch_reason.rstrip('.') or '(not recorded)'}.\n{pr}\n"
        "The code belongs to the upstream project and this mirror's patch, and is distributed "
        "under the upstream license, included unchanged in `LICENSE`. Only `package.json`, "
        "this notice and the README are generated.\n"
    )


def readme_md(pkg: Mapping[str, Any], provenance: Provenance) -> str:
    p = provenance
    rows = [
        f"| upstream package | `{p.upstream}` {p.upstream_version} |",
        f"| upstream release tag | `{p.release_tag}` |",
    ]
    if p.source_ref:
        rows += [
            f"| local patch | `{p.source_ref}` (see `NOTICE.md`) |",
            f"| commit | `{p.commit}` |",
        ]
    else:
        rows.append(f"| upstream commit | `{p.commit}` |")
    return (
        f"# {pkg['name']}\n\n"
        f"The built Node SDK of `{p.upstream}` {p.upstream_version}, "
        "republished as a dist-only npm package so that it can be pinned and installed "
        "without the upstream monorepo.\n\n"
        "```sh\n"
        f"npm install {pkg['name']}@{pkg['version']}\n"
        "```\n\n"
        "| | |\n|---|---|\n" + "\n".join(rows) + "\n\n"
        "The code is the upstream's, under the license in `LICENSE`; see `NOTICE.md`.\n"
    )


def repackage(
    sdk_dir: Path,
    dist_dir: Path,
    dest_dir: Path,
    *,
    sdk_pkg: Mapping[str, Any],
    source_root: Path,
    npm_name: str,
    version: str,
    provenance: Provenance,
) -> Package:
    """Write the package directory: dist copied, LICENSE unchanged, generated metadata."""
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise RepackageError(f"{dest_dir} is not empty; repackaging needs a fresh directory")
    if not dist_dir.is_dir() or not any(dist_dir.iterdir()):
        raise RepackageError(f"{dist_dir} is missing or empty; build the SDK first")
    license_file = find_license(sdk_dir, source_root)
    pkg = plan_package_json(
        sdk_pkg,
        npm_name=npm_name,
        version=version,
        provenance=provenance,
        workspace_versions=workspace_versions(source_root),
        catalog=default_catalog(source_root),
    )
    dest_dir.mkdir(parents=True, exist_ok=True)
    # symlinks=False: a link in the build output becomes a plain file, never a link in the tarball.
    shutil.copytree(dist_dir, dest_dir / "dist", symlinks=False)
    shutil.copyfile(license_file, dest_dir / "LICENSE")
    (dest_dir / "NOTICE.md").write_text(notice_md(pkg, provenance), encoding="utf-8")
    (dest_dir / "README.md").write_text(readme_md(pkg, provenance), encoding="utf-8")
    (dest_dir / "package.json").write_text(json.dumps(pkg, indent=2) + "\n", encoding="utf-8")
    return Package(dest_dir, pkg)
