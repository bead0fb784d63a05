"""What a build of the SDK depends on, as one content address.

The key is computed on the exported source tree before anything runs in it: the git ids
(blob and tree ids, exactly as git computes them) of every path the SDK's build reads, the
toolchain, this tool's version and the sandbox profile. The same key means the same inputs,
so a build stored under it can stand in for building again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sdkmirror.infra import sandbox
from sdkmirror.smoke import build_inputs

# Bumped when what an entry holds, or how the key is computed, changes.
KEY_FORMAT = 1
# The sandbox every build runs in: a new profile is a new key.
SANDBOX_PROFILE = sandbox.PROFILE_VERSION


def build_input_paths(tree: Path, sdk_dir: str = "packages/node-sdk") -> list[str]:
    """The SDK's build inputs (`build_inputs.build_input_paths`, the closure `smoke.bisect`
    walks too) that exist in the exported `tree`: relative POSIX paths, sorted."""
    return [rel for rel in build_inputs.build_input_paths(tree, sdk_dir) if (tree / rel).exists()]


# --- git's object ids, computed from the files ------------------------------------------------


def _object_id(kind: bytes, body: bytes) -> bytes:
    return hashlib.sha1(b"%s %d\0" % (kind, len(body)) + body, usedforsecurity=False).digest()


def _file_id(path: Path) -> tuple[bytes, bytes]:
    """(git mode, blob id) of a file or symbolic link, never following the link."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return b"120000", _object_id(b"blob", os.fsencode(os.readlink(path)))
    mode = b"100755" if st.st_mode & stat.S_IXUSR else b"100644"
    return mode, _object_id(b"blob", path.read_bytes())


def _tree_id(path: Path) -> bytes | None:
    """The git tree id of a directory, as `git write-tree` gives it; None when it holds no
    file (git has no empty trees)."""
    entries: list[tuple[bytes, bytes, bytes]] = []
    with os.scandir(path) as it:
        for child in it:
            name = os.fsencode(child.name)
            if child.is_dir(follow_symlinks=False):
                sub = _tree_id(Path(child.path))
                if sub is not None:
                    entries.append((name + b"/", b"40000", sub))
            else:
                mode, oid = _file_id(Path(child.path))
                entries.append((name, mode, oid))
    if not entries:
        return None
    entries.sort(key=lambda e: e[0])  # git orders a directory as if its name ended in "/"
    body = b"".join(mode + b" " + name.rstrip(b"/") + b"\0" + oid for name, mode, oid in entries)
    return _object_id(b"tree", body)


def git_id(path: Path) -> str | None:
    """The git object id of a file (blob) or directory (tree) on disk; None for nothing."""
    if path.is_dir() and not path.is_symlink():
        tree = _tree_id(path)
        return tree.hex() if tree is not None else None
    if path.exists() or path.is_symlink():
        return _file_id(path)[1].hex()
    return None


# --- the key ----------------------------------------------------------------------------------


_PACKAGE = Path(__file__).resolve().parent.parent


def code_digest(*modules: str) -> str:
    """A digest of our own modules (paths under the `sdkmirror` package) that decide what a
    stage produces: the version alone does not move while the code is being worked on."""
    digest = hashlib.sha256()
    for rel in sorted(set(modules)):
        digest.update(rel.encode() + b"\0")
        try:
            digest.update((_PACKAGE / rel).read_bytes())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()[:16]


def tool_version() -> str:
    try:
        return metadata.version("sdkmirror")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class BuildKey:
    """A content address (`digest`) and the inputs it was computed from (for listings)."""

    digest: str
    inputs: Mapping[str, Any]

    @property
    def short(self) -> str:
        return self.digest[:16]


def compute(
    tree: Path,
    *,
    sdk_dir: str,
    sdk_package: str,
    toolchain: Mapping[str, str],
    stage: str = "build",
    extra: Mapping[str, str] | None = None,
    profile: str = SANDBOX_PROFILE,
    paths: Iterable[str] | None = None,
) -> BuildKey:
    """The key of building `sdk_package` in `tree` with `toolchain` (`node`, `pnpm`: the
    versions the binaries report) up to `stage`; `extra` pins what a later stage adds."""
    rels = sorted(paths) if paths is not None else build_input_paths(tree, sdk_dir)
    inputs: dict[str, Any] = {
        "format": KEY_FORMAT,
        "stage": stage,
        "sdk_dir": sdk_dir,
        "sdk_package": sdk_package,
        "toolchain": dict(sorted(toolchain.items())),
        "tool": tool_version(),
        "sandbox_profile": profile,
        "extra": dict(sorted((extra or {}).items())),
        "paths": {rel: git_id(tree / rel) for rel in rels},
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return BuildKey(hashlib.sha256(text.encode()).hexdigest(), inputs)
