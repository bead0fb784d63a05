"""`invoke health`: the mirror at a glance, as a static page, JSON and a step summary.

`collect` is pure: ledgers, patch registry, the latest reports (sync, smoke, publish, bisect),
the registry's versions (or None: unknown) and the time go in, a `Health` comes out. Only
`gather` reads files and asks the registry; `health_html` and `health_markdown` render.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from sdkmirror.core import config as config_mod
from sdkmirror.core import reports
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.config import Config
from sdkmirror.core.errors import GitError, MirrorError, UsageError
from sdkmirror.core.mirror_tag import Version
from sdkmirror.infra import console, gitio, registry_url
from sdkmirror.mirror.ledger import MirrorLedger, TagRecord
from sdkmirror.mirror.patch_registry import Patch, PatchRegistry
from sdkmirror.mirror.releases import Release, ReleaseLedger

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


# --- the edges ----------------------------------------------------------------------------------


@dataclass
class Reports:
    sync: dict[str, Any] | None = None
    smoke: list[dict[str, Any]] = field(default_factory=list)
    publish: list[dict[str, Any]] = field(default_factory=list)
    bisect: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable reports, and why


def load_reports(paths: Sequence[Path]) -> Reports:
    """Every report under `paths` (files or directories), by kind, oldest first; the newest
    sync report wins. An unreadable report is skipped with a warning: the page says so."""
    found: list[tuple[float, str, str, dict[str, Any]]] = []
    skipped: list[str] = []
    for p in paths:
        files = sorted(p.rglob("*.json")) if p.is_dir() else [p] if p.is_file() else []
        for f in files:
            kind = reports.kind_of(f)
            if kind not in ("sync", "smoke", "publish", "bisect"):
                continue
            try:
                data = reports.read(f, str(kind))
            except MirrorError as exc:
                console.warn(f"skipping report: {exc}")
                skipped.append(str(exc))
                continue
            stamp = str(data.get("started_at") or "")
            found.append((f.stat().st_mtime, stamp, str(f), data))
    out = Reports(skipped=skipped)
    for _, _, _, data in sorted(found, key=lambda x: (x[1] or "", x[0], x[2])):
        kind = data["kind"]
        if kind == "sync":
            out.sync = data
        else:
            getattr(out, kind).append(data)
    return out


def sdk_versions(cfg: Config, commits: Iterable[str]) -> dict[str, str]:
    """The SDK's version at each commit the work repository already holds (one git process)."""
    wanted = sorted(set(commits))
    if not wanted or not cfg.work_repo.is_dir():
        return {}
    spec = "".join(f"{c}:{cfg.sdk_dir}/package.json\n" for c in wanted)
    try:
        out = gitio.run(f"--git-dir={cfg.work_repo}", "cat-file", "--batch", input=spec)
    except GitError:
        return {}
    versions: dict[str, str] = {}
    raw, pos = out.encode("utf-8"), 0  # object sizes count bytes
    for commit in wanted:
        header_end = raw.find(b"\n", pos)
        header = raw[pos:header_end].split()
        if len(header) != 3:  # "<spec> missing"
            pos = header_end + 1
            continue
        size = int(header[2])
        body = raw[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        try:
            version = json.loads(body).get("version")
        except (ValueError, AttributeError):
            continue
        if isinstance(version, str):
            versions[commit] = version
    return versions


def registry_versions(url: str | None, name: str) -> tuple[list[str] | None, str]:
    """The versions the registry serves for `name`, or None and why they are unknown."""
    if not url:
        return None, "no --registry given"
    target = registry_url.parse(url) + name.replace("/", "%2f")
    try:
        resp = requests.get(target, timeout=10, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        return None, f"{url} unreachable ({type(exc).__name__})"
    if resp.status_code == 404:
        return [], ""
    if resp.status_code != 200:
        return None, f"{url} answered HTTP {resp.status_code}"
    try:
        versions = resp.json().get("versions") or {}
    except ValueError:
        return None, f"{url} did not answer JSON"
    return sorted(versions), ""


def gather(cfg: Config, *, report_paths: Sequence[Path], registry: str | None) -> Health:
    ledger = MirrorLedger(cfg.mirror_ledger)
    rel = ReleaseLedger(cfg.release_ledger)
    found = load_reports(report_paths)
    if registry:
        with console.step(f"reading the versions {registry} serves"):
            versions, why = registry_versions(registry, cfg.npm_name)
    else:
        versions, why = registry_versions(None, cfg.npm_name)
    tags = ledger.tags
    return collect(
        cfg,
        tags=tags,
        releases=rel.releases,
        patches=PatchRegistry(cfg.patch_registry).patches,
        sync=found.sync,
        smoke_reports=found.smoke,
        publish_reports=found.publish,
        bisects=found.bisect,
        sdk_versions=sdk_versions(cfg, (t.commit for t in tags.values())),
        registry_url=registry,
        registry_versions=versions,
        registry_why=why,
        skipped_reports=found.skipped,
        now=datetime.now(UTC),
    )


def write(health: Health, out: Path) -> Path:
    """`index.html`, `health.json` and `health.md` in `out`; the page is returned."""
    from sdkmirror.ops import health_html, health_markdown

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory for index.html")
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    write_atomic(out / "health.json", json.dumps(health.to_json(), indent=2) + "\n", what="JSON")
    write_atomic(out / "health.md", health_markdown.render(health), what="the health summary")
    write_atomic(page, health_html.render(health), what="the health page")
    return page


def page(cfg: Config, out: Path) -> Path:
    """The page from `cfg`'s own reports directory (what `nox -s demo` shows)."""
    return write(gather(cfg, report_paths=[cfg.reports_dir], registry=None), out)


def main(*, out: str, reports_dirs: Sequence[str] = (), registry: str | None = None) -> Path:
    """`invoke health`: write the page and print its path; the summary goes to the step's."""
    from sdkmirror.ops import health_markdown
    from sdkmirror.ops.report import write_step_summary

    cfg = config_mod.load()
    if registry:
        registry_url.parse(registry)  # refused before anything is read or written
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory for index.html")
    paths = [Path(p) for p in reports_dirs] or [cfg.reports_dir]
    health = gather(cfg, report_paths=paths, registry=registry)
    page = write(health, Path(out))
    write_step_summary(health_markdown.render(health))
    print(page.resolve())
    return page
