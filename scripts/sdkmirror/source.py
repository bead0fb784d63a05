"""A clean source tree of one upstream ref: fetched shallowly into a scratch bare repository and
exported with `git archive`, so a build never runs in anyone's checkout."""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path

import git
from git.exc import GitCommandError

from . import identifiers
from .errors import MirrorError, RemoteError, UsageError
from .gitio import git_env, git_reason, ls_remote


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


class Scratch:
    """A throwaway bare repository holding one fetched commit."""

    def __init__(self, where: Path) -> None:
        self.repo = git.Repo.init(where, bare=True, initial_branch="main")

    def fetch(self, url: str, ref: str) -> str:
        full = resolve(url, ref)
        try:
            self.repo.git.execute(
                [
                    "git",
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--depth",
                    "1",
                    "--",
                    url,
                    f"+{full}:refs/smoke/source",
                ],
                env=git_env(url),
            )
            return self.repo.git.rev_parse("refs/smoke/source^{commit}").strip()
        except GitCommandError as exc:
            raise RemoteError(f"cannot fetch {ref} from {url}: {git_reason(exc)}") from exc

    def show(self, sha: str, path: str) -> str | None:
        try:
            return str(self.repo.git.show(f"{sha}:{path}"))
        except GitCommandError:
            return None

    def export(self, sha: str, dest: Path) -> None:
        buf = io.BytesIO()
        self.repo.archive(buf, sha, format="tar")
        buf.seek(0)
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(dest, filter="data")


def materialize(repo_url_or_path: str, ref: str, dest: Path) -> str:
    """Export `ref` of the repository into `dest` (which must be empty); returns the commit."""
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty; the build needs a fresh directory")
    with tempfile.TemporaryDirectory(prefix="sdkmirror-src-") as tmp:
        scratch = Scratch(Path(tmp) / "src.git")
        sha = scratch.fetch(repo_url_or_path, ref)
        scratch.export(sha, dest)
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
