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

import yaml

# Bumped when what an entry holds, or how the key is computed, changes.
KEY_FORMAT = 1
# The sandbox's profile: `infra.sandbox.PROFILE_VERSION` once that exists here; until then the
# environment allow-list is the whole profile. A new profile is a new key.
SANDBOX_PROFILE = "env-allowlist-1"
# Root files every workspace build reads, besides the lockfile; `tsconfig*` is globbed.
ROOT_FILES = ("package.json", "pnpm-workspace.yaml", "pnpm-lock.yaml", ".npmrc", ".nvmrc")
ROOT_DIRS = ("patches",)  # pnpm's patchedDependencies live here by convention
DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def workspace_packages(tree: Path) -> dict[str, str]:
    """Package name -> its directory (relative, POSIX) for every package the workspace lists."""
    try:
        doc = yaml.safe_load((tree / "pnpm-workspace.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        doc = None
    patterns = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(patterns, list):
        return {}
    take = [p for p in patterns if isinstance(p, str) and not p.startswith("!")]
    drop = [p[1:] for p in patterns if isinstance(p, str) and p.startswith("!")]
    excluded = {d for pattern in drop for d in _dirs(tree, pattern)}
    found: dict[str, str] = {}
    for pattern in take:
        for rel in _dirs(tree, pattern):
            if rel in excluded:
                continue
            name = _read_json(tree / rel / "package.json").get("name")
            if isinstance(name, str):
                found.setdefault(name, rel)
    return found


def _dirs(tree: Path, pattern: str) -> list[str]:
    pattern = pattern.strip().rstrip("/")
    if not pattern or pattern.startswith("/") or ".." in pattern.split("/"):
        return []
    hits = [tree] if pattern == "." else sorted(tree.glob(pattern))
    return [
        h.relative_to(tree).as_posix()
        for h in hits
        if h.is_dir() and not h.is_symlink() and (h / "package.json").is_file()
    ]


def build_input_paths(tree: Path, sdk_dir: str = "packages/node-sdk") -> list[str]:
    """Every path (relative, POSIX, sorted) the SDK's build reads in the exported `tree`: the
    SDK's directory, the workspace packages it reaches through `workspace:` dependencies
    (transitively), the lockfile and the root configuration files that exist."""
    packages = workspace_packages(tree)
    closure: set[str] = set()
    todo = [sdk_dir]
    while todo:
        rel = todo.pop()
        if rel in closure:
            continue
        closure.add(rel)
        pkg = _read_json(tree / rel / "package.json")
        for field in DEP_FIELDS:
            deps = pkg.get(field)
            if not isinstance(deps, dict):
                continue
            for name, spec in deps.items():
                if isinstance(spec, str) and spec.startswith("workspace:") and name in packages:
                    todo.append(packages[name])
    roots = [f for f in ROOT_FILES if (tree / f).is_file()]
    roots += sorted(p.name for p in tree.glob("tsconfig*") if p.is_file())
    roots += [d for d in ROOT_DIRS if (tree / d).is_dir()]
    return sorted(closure | set(roots))


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
