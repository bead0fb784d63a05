"""The mirror's health: the data model behind `invoke health`, decided by one pure function.

`collect` takes the ledgers, the patch registry, the latest reports (sync, smoke, publish,
bisect), the registry's versions (or None: unknown) and the time, and returns a `Health`.
`health_sources` reads those inputs, `health_html` and `health_markdown` render the result,
`health_site` writes the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sdkmirror.core.config import Config
from sdkmirror.core.mirror_tag import Version
from sdkmirror.mirror.ledger import TagRecord
from sdkmirror.mirror.patch_registry import Patch
from sdkmirror.mirror.releases import Release

SCHEMA = 1
# Grid states, worst first; the page and the summary tell each by a symbol and a word too.
PASS, UPSTREAM_BREAK, OUR_ENV, UNSUPPORTED, NOT_RUN = (
    "pass",
    "upstream-break",
    "our-env",
    "unsupported",
    "not-run",
)
STATES: dict[str, tuple[str, str]] = {
    PASS: ("✔", "builds and imports with this toolchain"),
    UPSTREAM_BREAK: ("✖", "upstream broke the build: consumers stay on the last green tag"),
    OUR_ENV: ("⚠", "our environment failed (lockfile, network, layout, toolchain)"),
    UNSUPPORTED: ("○", "toolchain outside the release's declared engines"),
    NOT_RUN: ("·", "no smoke report for this release and toolchain"),
}


@dataclass(frozen=True)
class Cell:
    toolchain: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class NpmInfo:
    version: str | None  # the npm version published from this release
    status: str  # published | not-published | on-registry | missing-on-registry
    why: str  # why not published, or where it is


@dataclass(frozen=True)
class ReleaseRow:
    tag: str
    version: str
    commit: str
    mirrored_at: str
    release_branch: str
    sdk_version: str | None
    npm: NpmInfo
    cells: list[Cell]


@dataclass(frozen=True)
class Alert:
    source: str  # sync | smoke
    kind: str
    ref: str
    detail: str
    culprit: str = ""


@dataclass(frozen=True)
class PatchRow:
    name: str
    branch: str
    base: str
    drift: int  # mirrored releases newer than the base
    detail: str


@dataclass(frozen=True)
class Health:
    generated_at: str
    npm_name: str
    toolchains: list[str]
    releases: list[ReleaseRow]  # newest first
    alerts: list[Alert]
    last_sync: dict[str, Any] | None
    patches: list[PatchRow]
    registry: dict[str, Any]  # url, status (known | unknown), versions, why
    latest_green: str | None
    missing: list[str] = field(default_factory=list)
    # The newest smoke run, whatever it built (the mirror branch too): ref, commit, cells.
    latest_smoke: dict[str, Any] | None = None

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for row in self.releases:
            for cell in row.cells:
                out[cell.state] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": "health", "schema": SCHEMA, **asdict(self), "counts": self.counts()}


# --- the pure part ------------------------------------------------------------------------------


def toolchain_id(tc: Any) -> str:
    if isinstance(tc, Mapping):
        return f"node {tc.get('node', '?')} + pnpm {tc.get('pnpm', '?')}"
    return str(tc)


def cell_state(result: Mapping[str, Any]) -> str:
    status = result.get("status")
    if status == "pass":
        return PASS
    if status == "unsupported":
        return UNSUPPORTED
    if result.get("classification") == "upstream-breaking":
        return UPSTREAM_BREAK
    return OUR_ENV


def _results_by_release(
    smoke_reports: Sequence[Mapping[str, Any]], commits: Mapping[str, str]
) -> dict[str, dict[str, Mapping[str, Any]]]:
    """tag -> toolchain -> the latest result that built the tag's commit (or named the tag)."""
    by_commit: dict[str, list[str]] = {}
    for tag, commit in commits.items():
        by_commit.setdefault(commit, []).append(tag)
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for report in smoke_reports:  # chronological: a later result replaces an earlier one
        for r in report.get("results", []) or []:
            commit = str(r.get("commit") or report.get("commit") or "")
            tags = set(by_commit.get(commit, []))
            if str(report.get("ref") or "") in commits:
                tags.add(str(report["ref"]))
            for tag in tags:
                out.setdefault(tag, {})[toolchain_id(r.get("toolchain"))] = r
    return out


def _npm_info(
    tag: str,
    sdk: str | None,
    by_tag: Mapping[str, Release],
    by_sdk: Mapping[str, Release],
    dry_runs: set[str],
    registry: set[str] | None,
    broken: bool,
) -> NpmInfo:
    rel = by_tag.get(tag)
    if rel is not None:
        if registry is None:
            return NpmInfo(rel.npm_version, "published", "in the release ledger")
        if rel.npm_version in registry:
            return NpmInfo(rel.npm_version, "on-registry", "in the ledger and on the registry")
        return NpmInfo(rel.npm_version, "missing-on-registry", "in the ledger, not on the registry")
    if sdk and sdk in by_sdk:
        other = by_sdk[sdk]
        return NpmInfo(
            None, "not-published", f"SDK {sdk} already published as {other.npm_version} "
            f"from {other.upstream_tag}",
        )  # fmt: skip
    if broken:
        return NpmInfo(None, "not-published", "smoke broken upstream: not publishable")
    if tag in dry_runs:
        return NpmInfo(None, "not-published", "dry run only")
    return NpmInfo(None, "not-published", "not published yet")


def _alerts(
    sync: Mapping[str, Any] | None,
    smoke_reports: Sequence[Mapping[str, Any]],
    bisects: Sequence[Mapping[str, Any]],
) -> list[Alert]:
    alerts = [
        Alert("sync", str(a.get("kind", "")), str(a.get("ref", "")), str(a.get("detail", "")))
        for a in (sync or {}).get("alerts", []) or []
    ]
    culprits = {}
    for b in bisects:
        c = b.get("culprit")
        if isinstance(c, Mapping):
            text = f"{str(c.get('sha', ''))[:12]} {c.get('subject', '')} ({c.get('date', '')})"
            culprits[str(b.get("bad_commit", ""))] = text
            culprits[str(b.get("bad", ""))] = text
    if smoke_reports:
        latest = smoke_reports[-1]
        commit = str(latest.get("commit") or "")
        ref = str(latest.get("ref") or commit[:12])
        for r in latest.get("results", []) or []:
            if r.get("status") != "fail" or (r.get("toolchain") or {}).get("allow_failure"):
                continue
            state = cell_state(r)
            culprit = culprits.get(commit) or culprits.get(ref) or ""
            alerts.append(
                Alert(
                    "smoke",
                    f"smoke {state}",
                    ref,
                    f"{toolchain_id(r.get('toolchain'))}: {r.get('category')}: {r.get('reason')}",
                    culprit if state == UPSTREAM_BREAK else "",
                )
            )
    return alerts


def _version_key(cfg: Config, name: str) -> Version:
    return cfg.tags.version_of(name) or Version(0, 0, 0)


def collect(
    cfg: Config,
    *,
    tags: Mapping[str, TagRecord],
    releases: Mapping[str, Release],
    patches: Mapping[str, Patch],
    sync: Mapping[str, Any] | None,
    smoke_reports: Sequence[Mapping[str, Any]],
    publish_reports: Sequence[Mapping[str, Any]] = (),
    bisects: Sequence[Mapping[str, Any]] = (),
    sdk_versions: Mapping[str, str] | None = None,
    registry_url: str | None = None,
    registry_versions: Iterable[str] | None = None,
    registry_why: str = "",
    skipped_reports: Sequence[str] = (),
    now: datetime,
) -> Health:
    """Everything the page shows, decided from its inputs. Pure."""
    names = sorted(tags, key=lambda n: _version_key(cfg, n), reverse=True)
    commits = {n: tags[n].commit for n in names}
    results = _results_by_release(smoke_reports, commits)
    toolchains = [toolchain_id(asdict(t)) for t in cfg.toolchains]
    for by_tc in results.values():
        toolchains += [t for t in by_tc if t not in toolchains]
    by_tag = {r.upstream_tag: r for r in releases.values() if not r.source_ref}
    by_sdk: dict[str, Release] = {}
    for r in sorted(releases.values(), key=lambda r: r.published_at):
        by_sdk.setdefault(r.sdk_version, r)
    dry_runs = {str(p.get("upstream_tag")) for p in publish_reports if p.get("dry_run")}
    registry = set(registry_versions) if registry_versions is not None else None
    if registry is None and not registry_why:
        registry_why = "no registry given"
    sdk_of = dict(sdk_versions or {})
    for r in releases.values():
        sdk_of.setdefault(r.commit, r.sdk_version)
    rows = []
    green = None
    for name in names:
        rec = tags[name]
        cells = []
        for tc in toolchains:
            res = results.get(name, {}).get(tc)
            cells.append(
                Cell(tc, cell_state(res), str(res.get("reason", ""))) if res else Cell(tc, NOT_RUN)
            )
        broken = any(c.state == UPSTREAM_BREAK for c in cells)
        if green is None and any(c.state == PASS for c in cells) and not broken:
            green = name
        version = str(cfg.tags.version_of(name))
        sdk = sdk_of.get(rec.commit)
        rows.append(
            ReleaseRow(
                tag=name,
                version=version,
                commit=rec.commit,
                mirrored_at=rec.mirrored_at.isoformat() if rec.mirrored_at else "",
                release_branch=cfg.release_branches.name_for(version),
                sdk_version=sdk,
                npm=_npm_info(name, sdk, by_tag, by_sdk, dry_runs, registry, broken),
                cells=cells,
            )
        )
    patch_rows = []
    for p in sorted(patches.values(), key=lambda p: p.name):
        if not p.active:
            continue
        base_v = _version_key(cfg, p.base)
        drift = sum(1 for n in names if _version_key(cfg, n) > base_v)
        detail = (
            "on the newest release"
            if drift == 0
            else f"{drift} newer release(s), newest {names[0]}: rebase or retire"
        )
        patch_rows.append(PatchRow(p.name, p.branch, p.base, drift, detail))
    missing = []
    if not tags:
        missing.append(f"no mirrored release in {cfg.mirror_ledger.name}: run `invoke sync`")
    if sync is None:
        missing.append("no sync report: run `invoke sync --report PATH` and pass its directory")
    if not smoke_reports:
        missing.append("no smoke report: run `nox -s smoke`; every cell is `not run`")
    if not publish_reports and not releases:
        missing.append("no publish report and no published release: run `invoke publish`")
    if registry is None:
        missing.append(f"registry versions unknown: {registry_why}")
    missing += [f"unreadable report skipped: {why}" for why in skipped_reports]
    last_sync = (
        {k: sync.get(k) for k in ("started_at", "status", "error", "origin")}
        | {"new_tags": [t.get("name") for t in sync.get("new_tags", []) or []]}
        if sync is not None
        else None
    )
    latest_smoke = None
    if smoke_reports:
        last = smoke_reports[-1]
        latest_smoke = {
            "ref": str(last.get("ref") or ""),
            "commit": str(last.get("commit") or ""),
            "cells": [
                asdict(Cell(toolchain_id(r.get("toolchain")), cell_state(r), str(r.get("reason"))))
                for r in last.get("results", []) or []
            ],
        }
    return Health(
        latest_smoke=latest_smoke,
        generated_at=now.astimezone(UTC).replace(microsecond=0).isoformat(),
        npm_name=cfg.npm_name,
        toolchains=toolchains,
        releases=rows,
        alerts=_alerts(sync, smoke_reports, bisects),
        last_sync=last_sync,
        patches=patch_rows,
        registry={
            "url": registry_url,
            "status": "unknown" if registry is None else "known",
            "versions": sorted(registry) if registry is not None else None,
            "why": registry_why,
        },
        latest_green=green,
        missing=missing,
    )
