"""The sweep: every release of an upstream through the whole publish dry run, one table.

For each release tag (read with `git ls-remote`, so any bare or local repository will do, no
ledger needed), the SDK is built with the primary toolchain, its declarations bundled, the
package repackaged, packed, inspected, installed and imported, linted, type-checked by a
strict consumer and by attw, and its interface compared with the previous release's. Nothing
is uploaded. A release that fails is a red row; the sweep goes on with the next one.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from sdkmirror.core import reports
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.config import Config
from sdkmirror.core.errors import MirrorError, UsageError
from sdkmirror.core.versions import Version
from sdkmirror.infra import console
from sdkmirror.infra.gitio import ls_remote
from sdkmirror.infra.lock import exclusive
from sdkmirror.mirror.ledger import TagRecord
from sdkmirror.release import publish_build, release_notes
from sdkmirror.release.declarations import DeclarationsFailed

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
COLUMNS = ["tag", "SDK version", "build", "package checks", "type-check", "notes", "seconds"]


@dataclass
class Row:
    """One release's outcome: each check is `pass`, `skipped`, or `fail: <one line>`."""

    tag: str
    sdk_version: str = ""
    build: str = SKIPPED
    package_checks: str = SKIPPED
    typecheck: str = SKIPPED
    notes: str = SKIPPED  # the interface class against the previous release, or `first`
    seconds: float = 0.0
    commit: str = ""

    @property
    def ok(self) -> bool:
        checks = (self.build, self.package_checks, self.typecheck)
        return all(c == PASS for c in checks) and not self.notes.startswith(FAIL)

    def cells(self) -> list[str]:
        return [
            self.tag,
            self.sdk_version,
            self.build,
            self.package_checks,
            self.typecheck,
            self.notes,
            f"{self.seconds:.1f}",
        ]


@dataclass
class SweepReport:
    upstream: str
    from_tag: str | None
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "sweep",
            "upstream": self.upstream,
            "from": self.from_tag,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "ok": self.ok,
            "rows": [{**asdict(r), "ok": r.ok} for r in self.rows],
        }


# --- which releases ---------------------------------------------------------------------------


def release_tags(cfg: Config, upstream: str, from_tag: str | None = None) -> list[TagRecord]:
    """The upstream's release tags (oldest first), from `from_tag` on when given."""
    refs = ls_remote(upstream, ["refs/tags/*"], name="upstream")
    found: list[tuple[Version, TagRecord]] = []
    for name, obj in refs.tags().items():
        version = cfg.tags.version_of(name)
        if version is not None:
            commit = refs.commit_of_tag(name) or obj
            found.append((version, TagRecord(name, obj, commit, datetime.now(UTC))))
    found.sort(key=lambda pair: pair[0])
    if from_tag is not None:
        start = cfg.tags.version_of(from_tag)
        if start is None:
            raise UsageError(
                f"--from {from_tag!r} is not a release tag; pass one like "
                f"{cfg.tags.name_for('0.14.2')!r}"
            )
        found = [pair for pair in found if not pair[0] < start]
    if not found:
        raise UsageError(
            f"{upstream} has no release tags named like {cfg.release_tag_pattern}"
            + (f" from {from_tag} on" if from_tag else "")
            + "; check --upstream and --from"
        )
    return [record for _, record in found]


# --- one release ------------------------------------------------------------------------------


def _failed(exc: MirrorError) -> str:
    return f"{FAIL}: {str(exc).splitlines()[0][:300]}"


def _package_checks(cfg: Config, built: publish_build.Built, workdir: Path) -> Path:
    """What the publish dry run proves about the package, short of the registry and the
    type-check (a column of its own): repackage, pack, the tarball policy, install + import
    in an empty consumer, publint. The tarball."""
    version = str(built.sdk_pkg.get("version"))
    pkg = publish_build.package(cfg, built, workdir, npm_name=cfg.npm_name, version=version)
    checks = publish_build.Checks()
    report = publish_build.verify(
        cfg, built.toolchain, pkg, workdir, checks, typecheck_consumer=False
    )
    return report.path


def _interface(cfg: Config, previous: Any, built: publish_build.Built) -> tuple[Any, str]:
    """This release's public surface, and its interface class against the previous one.

    The only place the sweep reads interface notes: it calls the notes module's public entry
    points and nothing of their internals."""
    current = release_notes.surface(built.sdk_dir, built.sdk_pkg, built.toolchain, cfg.cache_dir)
    if previous is None:
        return current, "first"
    return current, release_notes.diff(previous, current).classification


def sweep_release(
    cfg: Config,
    upstream: str,
    record: TagRecord,
    workdir: Path,
    previous: Any,
) -> tuple[Row, Any]:
    """One release through every check; returns its row and its surface (for the next)."""
    row = Row(record.name, commit=record.commit)
    start = time.monotonic()
    surface = None
    try:
        try:
            built = publish_build.build_tag(cfg, record, upstream, workdir)
        except DeclarationsFailed as exc:
            row.build, row.typecheck = PASS, _failed(exc)
            return row, None
        except MirrorError as exc:
            row.build = _failed(exc)
            return row, None
        row.build = PASS
        row.sdk_version = str(built.sdk_pkg.get("version", ""))
        try:
            surface, row.notes = _interface(cfg, previous, built)
        except MirrorError as exc:
            row.notes = _failed(exc)
        try:
            tgz = _package_checks(cfg, built, workdir)
        except MirrorError as exc:
            row.package_checks = _failed(exc)
            return row, surface
        row.package_checks = PASS
        try:
            publish_build.consumer_typecheck(cfg, built.toolchain, tgz, cfg.npm_name, workdir)
        except MirrorError as exc:
            row.typecheck = _failed(exc)
            return row, surface
        row.typecheck = PASS
        return row, surface
    finally:
        row.seconds = round(time.monotonic() - start, 1)


# --- the sweep --------------------------------------------------------------------------------


def run(
    cfg: Config,
    upstream: str,
    *,
    from_tag: str | None = None,
    out_dir: Path | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> SweepReport:
    """Every release from `from_tag` on; writes `sweep.json` and `sweep.md` into `out_dir`."""
    records = release_tags(cfg, upstream, from_tag)
    out_dir = out_dir or cfg.reports_dir
    root = cfg.work_dir / "sweep"
    report = SweepReport(upstream, from_tag)
    previous: Any = None
    with exclusive(root, cfg.lock_timeout, "the sweep"):
        for i, record in enumerate(records, 1):
            console.info(f"[{i}/{len(records)}] {record.name}")
            workdir = root / record.commit[:12]
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            row, surface = sweep_release(cfg, upstream, record, workdir, previous)
            # A release whose surface could not be read compares the next with the last known.
            previous = surface if surface is not None else previous
            report.rows.append(row)
            if on_row:
                on_row(row)
            if row.ok:  # keep a failure's tree for a person to look at
                shutil.rmtree(workdir, ignore_errors=True)
    write(report, out_dir)
    return report


def table(report: SweepReport) -> Table:
    """The sweep's result: one row per release."""
    return console.table(f"sweep of {report.upstream}", COLUMNS, [r.cells() for r in report.rows])


def markdown(report: SweepReport) -> str:
    since = f" from `{report.from_tag}`" if report.from_tag else ""
    lines = [
        f"### Sweep of `{report.upstream}`{since}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in report.rows:
        icon = "✅" if row.ok else "❌"
        cells = [f"{icon} `{row.tag}`", *row.cells()[1:]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    green = sum(r.ok for r in report.rows)
    lines += ["", f"{green} of {len(report.rows)} releases green."]
    return "\n".join(lines) + "\n"


def write(report: SweepReport, out_dir: Path) -> tuple[Path, Path]:
    json_path, md_path = out_dir / "sweep.json", out_dir / "sweep.md"
    reports.write_json(json_path, report.as_json(), what="the sweep report")
    write_atomic(md_path, markdown(report), what="the sweep summary")
    console.info(f"sweep report: {json_path} and {md_path}")
    return json_path, md_path
