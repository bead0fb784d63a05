"""The SDK's build inputs: the paths whose content decides what its smoke build does.

The closure is the SDK's directory, every workspace package it reaches through `workspace:`
dependencies (transitively), the lockfile and the root configuration pnpm and TypeScript read.
A commit that touches none of these paths builds exactly as its parent does, so `smoke.bisect`
only builds the commits that touch them, and a build cache can key on their content.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

# Root files every install and build reads, whether or not a commit has them yet.
ROOT_FILES = ("package.json", "pnpm-workspace.yaml", "pnpm-lock.yaml", ".npmrc", ".nvmrc")
ROOT_DIRS = ("patches",)  # pnpm's patchedDependencies live here by convention
TSCONFIG = "tsconfig*"
_DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_SKIP_DIRS = {"node_modules", ".git", "dist"}


class Tree(Protocol):
    """A source tree read by relative POSIX paths: a directory, or a commit in a repository."""

    def read(self, rel: str) -> str | None:
        """The text of the file at `rel`, or None when there is none."""
        ...

    def files(self) -> Iterable[str]:
        """Every file's relative path (no `node_modules`)."""
        ...


class DirTree:
    """A source tree on disk (an exported ref)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, rel: str) -> str | None:
        try:
            return (self.root / rel).read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnicodeDecodeError):
            return None

    def files(self) -> Iterable[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                yield name if rel == "." else f"{rel}/{name}"


def _json(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def workspace_patterns(tree: Tree) -> tuple[list[str], list[str]]:
    """`pnpm-workspace.yaml`'s package globs, split into includes and `!` excludes."""
    try:
        doc = yaml.safe_load(tree.read("pnpm-workspace.yaml") or "") or {}
    except yaml.YAMLError:
        doc = {}
    raw = doc.get("packages") if isinstance(doc, dict) else None
    globs = [str(p).strip().rstrip("/") for p in raw or [] if isinstance(p, str)]
    include = [g.removeprefix("./") for g in globs if not g.startswith("!")]
    exclude = [g[1:].removeprefix("./") for g in globs if g.startswith("!")]
    return include, exclude


def _glob_match(path: str, pattern: str) -> bool:
    """pnpm's glob on directory paths: `*` is one segment, `**` any number of them."""
    parts, pats = path.split("/"), pattern.split("/")

    def match(i: int, j: int) -> bool:
        if j == len(pats):
            return i == len(parts)
        if pats[j] == "**":
            return any(match(k, j + 1) for k in range(i, len(parts) + 1))
        return i < len(parts) and fnmatch.fnmatchcase(parts[i], pats[j]) and match(i + 1, j + 1)

    return match(0, 0)


def workspace_packages(tree: Tree) -> dict[str, tuple[str, dict[str, Any]]]:
    """Package name -> (directory, manifest) for every package the workspace globs select."""
    include, exclude = workspace_patterns(tree)
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for rel in sorted(tree.files()):
        if not rel.endswith("/package.json"):
            continue
        directory = rel[: -len("/package.json")]
        if not any(_glob_match(directory, p) for p in include):
            continue
        if any(_glob_match(directory, p) for p in exclude):
            continue
        manifest = _json(tree.read(rel))
        name = manifest.get("name")
        if isinstance(name, str) and name not in found:
            found[name] = (directory, manifest)
    return found


def _workspace_deps(manifest: Mapping[str, Any]) -> list[str]:
    names = []
    for field in _DEP_FIELDS:
        deps = manifest.get(field)
        if not isinstance(deps, dict):
            continue
        for name, spec in deps.items():
            if isinstance(spec, str) and spec.startswith("workspace:"):
                # `workspace:other-name@^` aliases another workspace package.
                target = spec.removeprefix("workspace:")
                alias = target.rsplit("@", 1)[0] if "@" in target[1:] else ""
                names.append(alias if alias and alias[0] not in "^~*" else str(name))
    return names


def build_input_paths(tree: Tree | Path, sdk_dir: str = "packages/node-sdk") -> list[str]:
    """The SDK's build inputs in `tree`, sorted: directories and root files, relative POSIX
    paths. Root files are listed even where absent, so a commit that adds one counts."""
    reader: Tree = DirTree(tree) if isinstance(tree, Path) else tree
    packages = workspace_packages(reader)
    by_dir = {d: (name, m) for name, (d, m) in packages.items()}
    sdk = sdk_dir.strip("/")
    dirs = {sdk}
    todo = [by_dir[sdk][1]] if sdk in by_dir else [_json(reader.read(f"{sdk}/package.json"))]
    while todo:
        for dep in _workspace_deps(todo.pop()):
            if dep in packages and packages[dep][0] not in dirs:
                dirs.add(packages[dep][0])
                todo.append(packages[dep][1])
    roots = set(ROOT_FILES) | set(ROOT_DIRS)
    roots |= {f for f in reader.files() if "/" not in f and fnmatch.fnmatchcase(f, TSCONFIG)}
    return sorted(dirs | roots)
