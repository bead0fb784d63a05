"""The sample as a git history: one annotated tag per release, in a bare repository."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sdkmirror.core.errors import UsageError
from sdkmirror.devtools.sample.releases import (
    DEFAULT_RELEASES,
    SDK_DIR,
    TAG,
    VARIANTS,
    Release,
    SampleUpstream,
)
from sdkmirror.devtools.sample.workspace import tree, write_files
from sdkmirror.infra import gitio

# Fixed identity and dates: the same sample has the same commit and tag ids on every machine.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Sample Upstream",
    "GIT_AUTHOR_EMAIL": "sample-upstream@example.invalid",
    "GIT_COMMITTER_NAME": "Sample Upstream",
    "GIT_COMMITTER_EMAIL": "sample-upstream@example.invalid",
}
_EPOCH = 1_760_000_000


def _git(work: Path, *args: str, when: int) -> str:
    stamp = f"@{when} +0000"
    dated = {**_IDENTITY, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return gitio.run(*args, cwd=work, env_extra=dated).strip()


def create_upstream(
    dest_bare: Path,
    *,
    variant: str | None = None,
    releases: Sequence[Release] = DEFAULT_RELEASES,
    unreleased_commit: bool = True,
) -> SampleUpstream:
    """Create a bare repository at `dest_bare` holding the sample's history and release tags.

    Each release is a commit plus an annotated tag `@moonshot-ai/kimi-code@X.Y.Z`; `main` ends
    one unreleased commit past the last release. A `variant` adds a final commit on `main`
    that breaks the build in that category's way; the release tags stay good.
    """
    if not releases:
        raise UsageError("the sample upstream needs at least one release")
    if variant is not None and variant not in VARIANTS:
        raise UsageError(f"unknown sample variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if dest_bare.exists() and any(dest_bare.iterdir()):
        raise UsageError(f"{dest_bare} already exists and is not empty; choose a new path")
    dest_bare.parent.mkdir(parents=True, exist_ok=True)
    gitio.run("init", "-q", "--bare", "-b", "main", dest_bare)

    tags: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sample-upstream-") as tmp:
        work = Path(tmp) / "work"
        gitio.run("init", "-q", "-b", "main", work)
        when = _EPOCH

        def commit(files: dict[str, str], message: str) -> str:
            nonlocal when
            when += 3600
            for old in [p for p in work.iterdir() if p.name != ".git"]:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            write_files(work, files)
            _git(work, "add", "-A", when=when)
            _git(work, "commit", "-q", "--allow-empty", "-m", message, when=when)
            return _git(work, "rev-parse", "HEAD", when=when)

        for rel in releases:
            sha = commit(
                tree(rel), f"release: kimi-code {rel.cli} (node-sdk {rel.sdk}): {rel.note}"
            )
            name = TAG.format(rel.cli)
            _git(work, "tag", "-a", "-m", f"Release {rel.cli}", "--", name, sha, when=when)
            tags[name] = sha
        last = releases[-1]
        files = tree(last)
        if unreleased_commit:
            files["README.md"] += "\nUnreleased: work in progress on main.\n"
            commit(files, "docs: note unreleased work")
        if variant:
            broken = tree(last, variant)
            broken["README.md"] = files["README.md"]
            commit(broken, f"sample: break the build ({variant})")
        head = _git(work, "rev-parse", "HEAD", when=when)
        _git(
            work,
            "push",
            "-q",
            str(dest_bare),
            "refs/heads/main:refs/heads/main",
            "refs/tags/*:refs/tags/*",
            when=when,
        )
    return SampleUpstream(
        bare=dest_bare,
        head=head,
        tags=tags,
        releases=tuple(releases),
        variant=variant,
        sdk_dir="packages/sdk" if variant == "layout" else SDK_DIR,
    )
