"""A GitHub Release per published npm version, named after the upstream tag it was built from.

RELEASES.md is the bridge between the two version lines; the Release carries the same facts
(npm version, SDK version, commit, integrity) and the interface notes of that release.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdkmirror.core import config as config_mod
from sdkmirror.core import reports
from sdkmirror.core.config import Config
from sdkmirror.core.errors import UsageError
from sdkmirror.infra import console
from sdkmirror.infra.github_api import Client, GitHubUnavailable
from sdkmirror.mirror.releases import Release, ReleaseLedger, read_notes, sort_versions

MARKER = "<!-- sdkmirror-release -->"


@dataclass(frozen=True)
class ReleasePlan:
    verb: str  # "create" | "update" | "none"
    tag: str
    name: str
    body: str

    def describe(self) -> str:
        return {"none": "up to date", "create": "create", "update": "update"}[self.verb] + (
            f" GitHub Release {self.name}"
        )


def pick(ledger: ReleaseLedger, upstream_tag: str | None, npm_version: str | None) -> Release:
    """The ledger record for the given npm version or, for an upstream tag, its newest one."""
    releases = ledger.releases
    if npm_version:
        found = releases.get(npm_version)
        if found is None or (upstream_tag and found.upstream_tag != upstream_tag):
            raise UsageError(
                f"the release ledger has no npm version {npm_version}"
                + (f" built from {upstream_tag}" if upstream_tag else "")
                + "; publish it first (`invoke publish --no-dry-run`)"
            )
        return found
    if not upstream_tag:
        raise UsageError("pass --upstream-tag TAG or --npm-version V")
    matching = [v for v, r in releases.items() if r.upstream_tag == upstream_tag]
    if not matching:
        raise UsageError(
            f"the release ledger records no publish from {upstream_tag}; "
            "publish it first (`invoke publish --no-dry-run`)"
        )
    return releases[sort_versions(matching)[0]]


def release_body(r: Release, notes: str | None) -> str:
    lines = [
        f"npm: [`{r.npm_name}@{r.npm_version}`] (`npm install {r.npm_name}@{r.npm_version}`)",
        "",
        f"- Upstream tag: `{r.upstream_tag}` (immutable mirror tag)",
        f"- Upstream commit: `{r.commit}`",
        f"- SDK version in the source: {r.sdk_version}"
        + (f" (npm version overridden: {r.override_reason})" if r.override_reason else ""),
        f"- Tarball integrity: `{r.integrity}`",
        "",
        "## Interface notes",
        "",
        notes.strip() if notes and notes.strip() else "_No interface notes were written._",
        "",
        MARKER,
    ]
    return "\n".join(lines) + "\n"


def plan(r: Release, notes: str | None, existing: Any | None) -> ReleasePlan:
    name, body = r.upstream_tag, release_body(r, notes)
    if existing is None:
        return ReleasePlan("create", r.upstream_tag, name, body)
    same = (existing.title or "") == name and (existing.body or "") == body
    return ReleasePlan("none" if same else "update", r.upstream_tag, name, body)


def publish_github_release(
    cfg: Config,
    client: Client | None,
    *,
    upstream_tag: str | None = None,
    npm_version: str | None = None,
    dry_run: bool = False,
) -> ReleasePlan:
    """Create or update the Release for a published version; `client=None` only plans."""
    r = pick(ReleaseLedger(cfg.release_ledger), upstream_tag or None, npm_version or None)
    notes = read_notes(cfg.notes_dir).get(r.npm_version)
    existing = client.release(r.upstream_tag) if client else None
    p = plan(r, notes, existing)
    if dry_run or client is None or p.verb == "none":
        return p
    if existing is None:
        client.call(
            f"creating the release {p.tag}",
            lambda: client.repo.create_git_release(p.tag, name=p.name, message=p.body),
        )
    else:
        client.call(
            f"updating the release {p.tag}",
            lambda: existing.update_release(name=p.name, message=p.body),
        )
    return p


def from_report(path: Path) -> tuple[str, str] | None:
    """(upstream tag, npm version) of the publish a report describes; None when it uploaded
    nothing (a dry run). A missing or malformed report is an error, never a silent no-op."""
    data = reports.read(path, "publish")  # a missing report is an error: name the right one
    if data["dry_run"] or not (data["published"] or data["already_published"]):
        console.result(f"no published version in {path}: no GitHub Release to make")
        return None
    return str(data["upstream_tag"]), str(data["npm_version"])


def main(
    *,
    upstream_tag: str | None,
    npm_version: str | None,
    dry_run: bool,
    report: Path | None = None,
) -> None:
    if report is not None:
        picked = from_report(report)
        if picked is None:
            return
        upstream_tag, npm_version = picked
    cfg = config_mod.load()
    client, why_not = Client.from_env()
    if client is None:
        console.warn(f"{why_not}; printing the plan instead")
    try:
        p = publish_github_release(
            cfg, client, upstream_tag=upstream_tag, npm_version=npm_version, dry_run=dry_run
        )
    except GitHubUnavailable as exc:
        # The npm publish already happened; the Release can be made again later.
        console.warn(str(exc))
        flags = (["--upstream-tag", upstream_tag] if upstream_tag else []) + (
            ["--npm-version", npm_version] if npm_version else []
        )
        console.manual(
            ["invoke", "github.release", *flags], "create the GitHub Release once GitHub answers"
        )
        return
    applied = client is not None and not dry_run
    console.result(
        console.table(
            "GitHub Release" + ("" if applied else " (plan)"),
            ["action", "tag"],
            [[p.describe(), p.tag]],
        )
    )
