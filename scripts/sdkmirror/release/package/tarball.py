"""Inspect a packed npm tarball before anyone can install it: names, links, paths, digests."""

from __future__ import annotations

import base64
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sdkmirror.core.errors import VerificationFailed

PREFIX = "package"
# What a dist-only package may carry: the bundle and the files that travel with it.
TOP_LEVEL_FILES = frozenset({"package.json", "LICENSE", "NOTICE.md", "README.md"})
REQUIRED_FILES = ("package.json", "LICENSE", "NOTICE.md", "README.md")
DIST = "dist"


class TarballRejected(VerificationFailed):
    """The tarball holds something the registry or a consumer must never receive."""


@dataclass(frozen=True)
class TarballReport:
    path: Path
    size: int
    unpacked_size: int
    files: tuple[str, ...]
    integrity: str
    shasum: str

    @property
    def file_count(self) -> int:
        return len(self.files)


def integrity(path: Path) -> str:
    """npm's Subresource Integrity string for a tarball: `sha512-<base64>`."""
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def shasum(path: Path) -> str:
    """The hex sha1 npm also records as `dist.shasum`."""
    return hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()


def _problem(member: tarfile.TarInfo) -> str | None:
    """Why one member may not ship, or None when it may."""
    name = member.name
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hardlink"
        return f"{name!r} is a {kind} (to {member.linkname!r})"
    if not (member.isfile() or member.isdir()):
        return f"{name!r} is not a regular file"
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return f"{name!r} is an absolute path"
    parts = PurePosixPath(name).parts
    if ".." in parts or "\\" in name:
        return f"{name!r} escapes the package directory"
    if not parts or parts[0] != PREFIX:
        return f"{name!r} is outside {PREFIX}/"
    rest = parts[1:]
    if member.isdir():
        return None if not rest or rest[0] == DIST else f"{name!r} is an unexpected directory"
    if len(rest) == 1 and rest[0] in TOP_LEVEL_FILES:
        return None
    if len(rest) >= 2 and rest[0] == DIST:
        return None
    return f"{name!r} is not one of dist/**, {', '.join(sorted(TOP_LEVEL_FILES))}"


def inspect(path: Path) -> TarballReport:
    """Read every member header; refuse the tarball on the first member that may not ship."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
    except (OSError, tarfile.TarError) as exc:
        raise TarballRejected(f"{path} is not a readable .tgz ({exc}); pack it again") from exc
    files: list[str] = []
    unpacked = 0
    for m in members:
        problem = _problem(m)
        if problem:
            raise TarballRejected(
                f"tarball {path.name} refused: {problem}; "
                "fix the package directory so that `npm pack` yields only regular files"
            )
        if m.isfile():
            files.append(m.name[len(PREFIX) + 1 :])
            unpacked += m.size
    missing = [f for f in REQUIRED_FILES if f not in files]
    if not any(f.startswith(DIST + "/") for f in files):
        missing.append("dist/**")
    if missing:
        raise TarballRejected(
            f"tarball {path.name} refused: it lacks {', '.join(missing)}; "
            "repackage from a complete build"
        )
    return TarballReport(
        path=path,
        size=path.stat().st_size,
        unpacked_size=unpacked,
        files=tuple(sorted(files)),
        integrity=integrity(path),
        shasum=shasum(path),
    )
