"""A clean source tree of one upstream ref: fetched shallowly into a scratch bare repository and
exported with `git archive`, so a build never runs in anyone's checkout."""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
from pathlib import Path

from sdkmirror.core import identifiers
from sdkmirror.core.errors import GitError, MirrorError, RemoteError, UsageError
from sdkmirror.infra import gitio
from sdkmirror.infra.gitio import ls_remote


def resolve(url: str, ref: str) -> str:
    """The full ref name (or commit id) that `ref` names on the remote at `url`."""
    if not ref or ref.startswith("-") or any(c.isspace() or c in "~^:?*[\\" for c in ref):
        raise UsageError(f"{ref!r} is not a usable ref; pass a branch, tag or 40-hex commit")
    if identifiers.is_hex40(ref):
        return ref
    refs = ls_remote(url, name="upstream").refs
    for full in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if full.startswith("refs/") and full in refs:
            return full
    raise UsageError(f"{url} has no branch or tag {ref!r}; list them with `git ls-remote {url}`")


def _tar_env() -> dict[str, str]:
    """The whole environment of the tar child: nothing else is inherited, so `TAR_OPTIONS`
    cannot change what it writes."""
    return {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}


def leaves_tree(path: str, target: str) -> bool:
    """Whether a symbolic link at `path` (relative to the tree's root) to `target` leads out."""
    if not target or target.startswith("/"):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return resolved == ".." or resolved.startswith("../")


class Scratch:
    """A throwaway bare repository holding one fetched commit.

    Made without templates and driven with hooks off, so no hook (from a template directory or
    the fetched data) runs.
    """

    def __init__(self, where: Path) -> None:
        gitio.run("init", "--quiet", "--bare", "--template=", "-b", "main", where)
        self.path = where

    def git(self, *args: str, url: str | None = None) -> str:
        return gitio.run(f"--git-dir={self.path}", *args, url=url)

    def fetch(self, url: str, ref: str) -> str:
        full = resolve(url, ref)
        try:
            self.git(
                "fetch",
                "--quiet",
                "--no-tags",
                "--depth",
                "1",
                "--",
                url,
                f"+{full}:refs/smoke/source",
                url=url,
            )
            return self.git("rev-parse", "refs/smoke/source^{commit}").strip()
        except GitError as exc:
            raise RemoteError(f"cannot fetch {ref} from {url}: {exc.reason}") from exc

    def show(self, sha: str, path: str) -> str | None:
        try:
            return self.git("show", f"{sha}:{path}")
        except GitError:
            return None

    def check_tree(self, sha: str) -> None:
        """Refuse a tree with a path or symbolic link that leads out of it, before writing."""
        raw = self.git("ls-tree", "-r", "-z", "--full-tree", sha)
        for entry in raw.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            parts = path.split("/")
            if path.startswith("/") or any(
                p in ("", ".", "..") or p.lower() == ".git" for p in parts
            ):
                raise MirrorError(f"{sha[:12]} has the path {path!r}; the export refuses it")
            mode, _kind, oid = meta.split()
            if mode != "120000":  # not a symbolic link
                continue
            target_text = self.git("cat-file", "blob", oid)
            if leaves_tree(path, target_text):
                raise MirrorError(
                    f"{sha[:12]} has a symbolic link {path} -> {target_text} that leads out of "
                    "the tree; the export refuses it: build a ref whose links stay inside"
                )

    def export(self, sha: str, dest: Path) -> None:
        """Write the tree of `sha` into `dest` with `git archive | tar -x`, after `check_tree`."""
        self.check_tree(sha)
        dest.mkdir(parents=True, exist_ok=True)
        gitio.pipe(
            [f"--git-dir={self.path}", "archive", "--format=tar", sha],
            ["tar", "-x", "-f", "-", "-C", dest, "--no-same-owner", "--no-same-permissions"],
            reader_env=_tar_env(),
            what=f"exporting {sha[:12]}",
        )


def materialize(repo_url_or_path: str, ref: str, dest: Path) -> str:
    """Export `ref` of the repository into `dest` (which must be empty); returns the commit."""
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty; the build needs a fresh directory")
    # A scratch directory that cannot be removed is left behind rather than turning the
    # build's own outcome (or a Ctrl-C) into a disk error.
    with tempfile.TemporaryDirectory(prefix="sdkmirror-src-", ignore_cleanup_errors=True) as tmp:
        scratch = Scratch(Path(tmp) / "src.git")
        sha = scratch.fetch(repo_url_or_path, ref)
        try:
            scratch.export(sha, dest)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)  # no half-written tree is left to build
            raise
    return sha


def sdk_version(package_json: str | None, *, where: str, sdk_dir: str) -> str:
    """The `version` of the SDK's package.json text as read from git at `where`."""
    try:
        version = json.loads(package_json).get("version") if package_json else None
    except (ValueError, AttributeError):
        version = None
    if not isinstance(version, str):
        raise MirrorError(f"{where} has no {sdk_dir}/package.json with a version; check sdk_dir")
    return version
