"""npm programs the pipeline runs (Verdaccio, publint): installed once into the shared cache.

Each tool is pinned to an exact version and installed with the provisioned toolchain's npm
from the registry the user's npm config names; a marker file makes a finished install reusable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import nodesemver

from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import console
from sdkmirror.infra.install_once import install_once

if TYPE_CHECKING:
    from sdkmirror.infra.toolchain import Toolchain

MARKER = ".sdkmirror-installed"
# One TypeScript for every reader of declarations (interface notes, the declaration bundler,
# the consumer type-check): 6.0 is the last line with the JavaScript API those drive.
TYPESCRIPT_VERSION = "6.0.3"
TYPES_NODE_VERSION = "24.19.2"  # the Node line the upstream declares (engines >=24.15)


def node_version(tc: Toolchain) -> str:
    return tc.run([tc.node, "--version"]).stdout.strip().lstrip("v")


def npm_version(tc: Toolchain) -> str:
    return tc.run([tc.npm, "--version"]).stdout.strip()


def require_node(tc: Toolchain, wanted: str, what: str) -> None:
    have = node_version(tc)
    if not nodesemver.satisfies(have, wanted, loose=False):
        raise MirrorError(f"{what} needs Node {wanted}, the toolchain has {have}; use a newer one")


def install(
    cache_dir: Path,
    name: str,
    version: str,
    tc: Toolchain,
    *,
    overrides: dict[str, str] | None = None,
    with_packages: dict[str, str] | None = None,
) -> Path:
    """`<cache_dir>/<name>` holding `node_modules/<name>` at `version`; installed at most once.

    `with_packages` pins packages installed beside it (a plugin's peers, such as TypeScript).
    """
    slug = name.lstrip("@").replace("/", "-")  # a scoped name is one directory, one lock
    extra = sorted((with_packages or {}).items())
    wanted = " ".join([f"{name}@{version}", *(f"{n}@{v}" for n, v in extra)])
    manifest: dict[str, object] = {
        "name": f"sdkmirror-{slug}-install",
        "private": True,
        "dependencies": {name: version, **dict(extra)},
    }
    if overrides:
        manifest["overrides"] = overrides

    def npm_install(home: Path) -> None:
        (home / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        with console.step(f"installing {wanted} into {cache_dir / slug}"):
            tc.run(
                [
                    tc.npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--no-update-notifier",
                    "--loglevel=error",
                ],
                cwd=home,
                what=f"installing {wanted}",
                timeout=600,
                network=True,
            )

    return install_once(
        cache_dir / slug,
        npm_install,
        lock=cache_dir / f"{slug}.lock",
        marker=MARKER,
        stamp=wanted,
        timeout=600,
    )


def bin_script(home: Path, name: str, bin_name: str | None = None) -> Path:
    """The JS file a package declares as its bin, to run with the toolchain's own node."""
    pkg_dir = home / "node_modules" / name
    data = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
    bins = data.get("bin")
    rel = bins if isinstance(bins, str) else (bins or {}).get(bin_name or name.split("/")[-1])
    if not rel:
        raise MirrorError(f"{name} in {home} declares no bin {bin_name or name}; reinstall it")
    return pkg_dir / rel


def typescript(tc: Toolchain, cache_dir: Path) -> Path:
    """The pinned TypeScript with `@types/node`, installed once into the cache; its home
    (`node_modules/typescript` inside it)."""
    return install(
        cache_dir,
        "typescript",
        TYPESCRIPT_VERSION,
        tc,
        with_packages={"@types/node": TYPES_NODE_VERSION},
    )
