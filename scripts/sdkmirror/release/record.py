"""`invoke release.record`: add one published version to the release ledger on origin's main.

The facts come from another job's outputs, so they are data to check, not to trust: exact
version grammar, a 40-hex commit that is the mirror tag's own, a sha512 SRI integrity, a tag
of the release pattern, a registry URL without credentials. Nothing of the checkout is
committed: the entry is applied to origin's current main (`ledger_push.land`), RELEASES.md is
regenerated there, and only those two files change.
"""

from __future__ import annotations

import shutil
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sdkmirror.core import config as config_mod
from sdkmirror.core import identifiers
from sdkmirror.core.config import Config
from sdkmirror.core.errors import LocalError, UsageError
from sdkmirror.core.versions import npm_version_problem, shown
from sdkmirror.infra import console, gitio, proc, registry_url
from sdkmirror.infra.lock import exclusive
from sdkmirror.mirror import ledger_push
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.releases import Release, ReleaseLedger, render_file, sync_file

MAX_REASON = 200


@dataclass(frozen=True)
class Facts:
    """One release, validated."""

    npm_name: str
    npm_version: str
    sdk_version: str
    upstream_tag: str
    commit: str
    integrity: str
    registry: str | None
    dist_tag: str
    override_reason: str | None

    def rows(self) -> list[list[str]]:
        return [
            ["npm package", f"{self.npm_name}@{self.npm_version}"],
            ["SDK version", self.sdk_version],
            ["upstream tag", self.upstream_tag],
            ["commit", self.commit],
            ["integrity", self.integrity],
            ["dist-tag", self.dist_tag],
            ["registry", self.registry or ""],
            ["override reason", self.override_reason or ""],
        ]


def integrity_problem(text: str) -> str | None:
    if identifiers.is_integrity(text):
        return None
    return (
        f"--integrity {shown(text)} is not a sha512 SRI string; pass the tarball's "
        "`sha512-` + 88 base64 characters (the manifest's integrity)"
    )


def reason_problem(text: str) -> str | None:
    if (
        text.strip() != text
        or not text
        or len(text) > MAX_REASON
        or any(unicodedata.category(c)[0] == "C" for c in text)
    ):
        return (
            f"--override-reason {shown(text)} must be one line of at most {MAX_REASON} "
            "printable characters"
        )
    return None


def check_facts(
    cfg: Config,
    *,
    npm_version: str,
    upstream_tag: str,
    commit: str,
    integrity: str,
    registry: str | None,
    npm_name: str | None = None,
    sdk_version: str | None = None,
    dist_tag: str | None = None,
    override_reason: str | None = None,
) -> Facts:
    """The facts, or `UsageError` naming the first one that is not what it must be."""
    name = npm_name or cfg.npm_name
    sdk = sdk_version or npm_version
    problems = [
        npm_version_problem(npm_version, "--npm-version"),
        npm_version_problem(sdk, "--sdk-version"),
        None
        if cfg.tags.version_of(upstream_tag) is not None
        else f"--upstream-tag {shown(upstream_tag)} is not a release tag like "
        f"{cfg.tags.name_for('1.2.3')}",
        None
        if identifiers.is_hex40(commit)
        else f"--commit {shown(commit)} is not a full commit id; pass 40 lowercase hex digits",
        integrity_problem(integrity),
        None
        if name == cfg.npm_name
        else f"--npm-name {shown(name)} is not the package this mirror publishes ({cfg.npm_name})",
        None
        if dist_tag is None or identifiers.is_dist_tag(dist_tag)
        else f"--dist-tag {shown(dist_tag)} is not a dist-tag; pass a lowercase word like latest",
        None if registry is None else registry_url.refusal(registry),
        None if override_reason is None else reason_problem(override_reason),
    ]
    problem = next((p for p in problems if p), None)
    if problem:
        raise UsageError(problem)
    return Facts(
        npm_name=name,
        npm_version=npm_version,
        sdk_version=sdk,
        upstream_tag=upstream_tag,
        commit=commit,
        integrity=integrity,
        registry=None if registry is None else registry_url.parse(registry),
        dist_tag=dist_tag or "latest",
        override_reason=override_reason or None,
    )


def apply(cfg: Config, facts: Facts, *, when: datetime | None = None) -> list[Path]:
    """Add the entry to `cfg`'s release ledger and regenerate RELEASES.md; the files written.

    The commit must be the one the mirror ledger records for the tag: a release is only ever
    built from a mirror tag, so anything else is a forged or mistaken record.
    """
    tag = MirrorLedger(cfg.mirror_ledger).tags.get(facts.upstream_tag)
    if tag is None:
        raise UsageError(
            f"{facts.upstream_tag} is not in the mirror ledger on this main; "
            "only mirror tags are published"
        )
    if tag.commit != facts.commit:
        raise UsageError(
            f"--commit {facts.commit[:12]} is not the commit of {facts.upstream_tag} "
            f"({tag.commit[:12]}) in the mirror ledger; record the commit that was built"
        )
    ledger = ReleaseLedger(cfg.release_ledger)
    added = ledger.add(
        Release(
            npm_version=facts.npm_version,
            npm_name=facts.npm_name,
            upstream_tag=facts.upstream_tag,
            commit=facts.commit,
            sdk_version=facts.sdk_version,
            integrity=facts.integrity,
            published_at=when or datetime.now(UTC),
            registry=facts.registry or "",
            override_reason=facts.override_reason,
        )
    )
    if not added:
        return []
    ledger.save()
    text = render_file(cfg.release_ledger, cfg.notes_dir, cfg.root)
    sync_file(cfg.release_notes, text, check=False)
    return [cfg.release_ledger, cfg.release_notes]


def default_registry() -> str:
    """The registry the npm user config names (the one the upload used)."""
    npm = shutil.which("npm")
    if npm is None:
        raise UsageError("no npm on PATH to ask for the registry; pass --registry URL")
    return proc.run(
        [npm, "config", "get", "registry"], what="`npm config get registry`"
    ).stdout.strip()


def main(
    *,
    npm_version: str,
    upstream_tag: str,
    commit: str,
    integrity: str,
    npm_name: str | None = None,
    sdk_version: str | None = None,
    dist_tag: str | None = None,
    registry: str | None = None,
    override_reason: str | None = None,
    origin: str | None = None,
    push: bool = False,
    dry_run: bool = False,
) -> None:
    cfg = config_mod.load()
    # An empty value (a job output that was not set) means the flag was not given.
    facts = check_facts(
        cfg,
        npm_version=npm_version,
        upstream_tag=upstream_tag,
        commit=commit,
        integrity=integrity,
        registry=registry or default_registry(),
        npm_name=npm_name or None,
        sdk_version=sdk_version or None,
        dist_tag=dist_tag or None,
        override_reason=override_reason or None,
    )
    title = f"Release record {facts.npm_version}" + (" (dry run)" if dry_run else "")
    console.result(console.table(title, ["fact", "value"], facts.rows()))
    if not push:
        _record_here(cfg, facts, dry_run=dry_run)
        return
    url = gitio.origin_url(cfg, origin)
    message = f"release: record {facts.npm_name}@{facts.npm_version} from {facts.upstream_tag}"
    landed = ledger_push.land(
        cfg,
        lambda scratch: apply(scratch, facts),
        message,
        url=url,
        branch="main",
        push=not dry_run,
    )
    if landed.commit is None:
        console.info(f"{facts.npm_version} is already recorded on origin main: nothing to do")
        return
    if dry_run:
        console.info(f"dry run: would commit on origin main ({landed.base[:12]}):\n{landed.diff}")
        return
    console.info(
        f"recorded {facts.npm_version} on origin main as {landed.commit[:12]} "
        f"(attempt {landed.attempts})"
    )
    if not ledger_push.follow(cfg, landed, "main", [cfg.release_ledger, cfg.release_notes]):
        console.manual(["git", "pull", "--ff-only", "origin", "main"], "see the record here")


def _record_here(cfg: Config, facts: Facts, *, dry_run: bool) -> None:
    """Without `--push`: the entry goes into this checkout's files, for `ledger.commit`."""
    if dry_run:
        existing = ReleaseLedger(cfg.release_ledger).get(facts.npm_version)
        verb = "already recorded" if existing else "would record"
        console.info(f"dry run: {verb} {facts.npm_version} in {cfg.release_ledger.name}")
        return
    # The same lock as every other writer of this checkout's ledgers (sync, publish): two
    # records read-modify-write the same files, and without it one silently drops the other.
    with exclusive(cfg.work_dir, cfg.lock_timeout, "release.record"):
        if not apply(cfg, facts):
            console.info(f"{facts.npm_version} is already recorded: nothing to do")
            return
        written = ReleaseLedger(cfg.release_ledger).get(facts.npm_version)
    if written is None or written.integrity != facts.integrity:
        raise LocalError(
            f"{facts.npm_version} is not in {cfg.release_ledger} after writing it; nothing was "
            "recorded: check the file and run `invoke release.record` again"
        )
    console.info(f"recorded {facts.npm_version} in {cfg.release_ledger.name} and RELEASES.md")
    console.manual(["invoke", "ledger.commit", "--push"], "record it on origin's main")
