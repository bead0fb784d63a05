"""Turn the built SDK into the dist-only package: a pure package.json plan, then the directory."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nodesemver
import yaml

from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import node_exports, plainfiles

PACKAGE_FILES = ["dist", "LICENSE", "NOTICE.md", "README.md"]
# The published package.json is built from an allow-list: a field the upstream adds tomorrow
# stays out until someone decides it belongs in a dist-only package.
COPIED = (
    "description",
    "license",
    "author",
    "contributors",
    "homepage",
    "repository",
    "bugs",
    "keywords",
    "type",
)
COPIED_AFTER = ("engines", "sideEffects")
# Rebuilt rather than copied: replaced by our values or derived from publishConfig.exports.
REBUILT = ("name", "version", "exports", "main", "module", "types", "files", "publishConfig")
# `publishConfig.provenance` stays out: `npm publish` outside a CI with OIDC fails on it; the
# publish step asks for provenance itself (`--provenance`) when it can have it.
PUBLISH_KEPT = ("exports", "access")
RUNTIME_DEPS = ("dependencies", "optionalDependencies", "peerDependencies")
RUNTIME_META = ("peerDependenciesMeta",)


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


@dataclass(frozen=True)
class PackageJsonPlan:
    """The published package.json and the upstream fields it leaves out, for the plan."""

    package_json: dict[str, Any]
    dropped: tuple[str, ...]


def dropped_fields(sdk_pkg: Mapping[str, Any]) -> tuple[str, ...]:
    """The SDK's fields the published package.json does not carry (`publishConfig.X` too)."""
    kept = {*COPIED, *COPIED_AFTER, *REBUILT, *RUNTIME_DEPS}
    if sdk_pkg.get("peerDependencies"):
        kept.update(RUNTIME_META)
    dropped = [key for key in sdk_pkg if key not in kept]
    publish = sdk_pkg.get("publishConfig")
    if isinstance(publish, dict):
        dropped += [f"publishConfig.{k}" for k in publish if k not in PUBLISH_KEPT]
    return tuple(dropped)


def plan_package(
    sdk_pkg: Mapping[str, Any],
    *,
    npm_name: str,
    version: str,
    provenance: Provenance,
    workspace_versions: Mapping[str, str] | None = None,
    catalog: Mapping[str, str] | None = None,
) -> PackageJsonPlan:
    """The published package.json from an allow-list of the SDK's own (pure: no I/O)."""
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
    out.update({key: sdk_pkg[key] for key in COPIED if key in sdk_pkg})
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
    if out.get("peerDependencies") and sdk_pkg.get("peerDependenciesMeta"):
        out["peerDependenciesMeta"] = sdk_pkg["peerDependenciesMeta"]
    out.update({key: sdk_pkg[key] for key in COPIED_AFTER if key in sdk_pkg})
    # A scoped name publishes restricted unless told otherwise.
    out["publishConfig"] = {"access": publish.get("access", "public")}
    out["sdkmirror"] = provenance.as_json()
    return PackageJsonPlan(out, dropped_fields(sdk_pkg))


def plan_package_json(sdk_pkg: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
    """The published package.json alone (see `plan_package`)."""
    return plan_package(sdk_pkg, **kw).package_json


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


def default_catalog(source_root: Path) -> dict[str, str]:
    """The default catalog of pnpm-workspace.yaml: `catalog:`, or `catalogs: default:`.

    Read as YAML, so quoting, flow mappings and comments mean what they mean to pnpm. A
    version must be a string: a YAML number (`1.10` reads as 1.1) is refused, not guessed."""
    path = source_root / "pnpm-workspace.yaml"
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RepackageError(f"{path.name} is not valid YAML{where}: {problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise RepackageError(f"{path.name} is not a mapping of settings")
    named = doc.get("catalogs") or {}
    if not isinstance(named, dict):
        raise RepackageError(f"{path.name}'s `catalogs` is not a mapping of catalogs")
    if doc.get("catalog") is not None and named.get("default") is not None:
        raise RepackageError(
            f"{path.name} defines the default catalog twice (`catalog` and `catalogs.default`)"
        )
    entries = doc.get("catalog") or named.get("default") or {}
    if not isinstance(entries, dict):
        raise RepackageError(f"{path.name}'s default catalog is not a mapping of versions")
    catalog: dict[str, str] = {}
    for name, version in entries.items():
        if not isinstance(name, str) or not isinstance(version, str):
            raise RepackageError(
                f"{path.name}'s catalog entry {name!r}: {version!r} is not a package name and "
                "a version string; quote the version"
            )
        catalog[name] = version
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
    max_bytes: int = plainfiles.DEFAULT_MAX_BYTES,
) -> Package:
    """Write the package directory: dist copied, LICENSE unchanged, generated metadata.

    `dist/` is copied as plain files only (see `plainfiles`): a link, device or oversized
    file stops the repackage before anything is written."""
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
    # Everything lands in a temporary sibling first: a refused file leaves no package behind.
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", dir=dest_dir.parent))
    try:
        plainfiles.copy_tree(dist_dir, tmp / "dist", max_bytes=max_bytes)
        files = {
            "LICENSE": plainfiles.read_plain(license_file, max_bytes),
            "NOTICE.md": notice_md(pkg, provenance).encode(),
            "README.md": readme_md(pkg, provenance).encode(),
            "package.json": (json.dumps(pkg, indent=2) + "\n").encode(),
        }
        for name, data in files.items():
            plainfiles.write_plain(tmp / name, data)
        plainfiles.stamp_dir(tmp)
        if dest_dir.exists():
            dest_dir.rmdir()  # empty, checked above
        os.replace(tmp, dest_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Package(dest_dir, pkg)
