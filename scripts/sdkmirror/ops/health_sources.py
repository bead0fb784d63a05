"""The inputs of the health page: ledgers, reports by kind, SDK versions, registry versions.

Everything here reads (files, one git process, one HTTP request); `health.collect` decides.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from sdkmirror.core import reports
from sdkmirror.core.config import Config
from sdkmirror.core.errors import GitError, MirrorError
from sdkmirror.infra import console, gitio, registry_url
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.patch_registry import PatchRegistry
from sdkmirror.mirror.releases import ReleaseLedger
from sdkmirror.ops.health import Health, collect


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
