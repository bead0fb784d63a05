"""The sweep: every release of an upstream through the whole publish dry run, one table.

For each release tag (read with `git ls-remote`, so any bare or local repository will do, no
ledger needed), the SDK is built with the primary toolchain, its declarations bundled, the
package repackaged, packed, inspected, installed and imported, linted, type-checked by a
strict consumer and by attw, and its interface compared with the previous release's. Nothing
is uploaded. A release that fails is a red row; the sweep goes on with the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sdkmirror.core import reports
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.config import Config
from sdkmirror.core.errors import MirrorError, UsageError
from sdkmirror.core.versions import Version
from sdkmirror.infra import console
from sdkmirror.infra.gitio import ls_remote
from sdkmirror.infra.lock import exclusive
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.mirror.ledger import TagRecord
from sdkmirror.release import notes as release_notes
from sdkmirror.release.declarations import consumer as typecheck
from sdkmirror.release.declarations.bundle import DeclarationsFailed
from sdkmirror.release.package.tarball import TarballReport
from sdkmirror.release.publish import build as publish_build
from sdkmirror.smoke import build_key

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
COLUMNS = [
    "tag",
    "SDK version",
    "build",
    "package checks",
    "tsc nodenext",
    "tsc bundler",
    "attw",
    "seconds",
    "first error",
]
CONSUMER_CHECKS = ("tsc_nodenext", "tsc_bundler", "attw")  # Row fields, typecheck.steps' order


@dataclass
class Row:
    """One release's outcome: each check is `pass`, `skipped`, or `fail: <one line>`."""

    tag: str
    sdk_version: str = ""
    build: str = SKIPPED
    package_checks: str = SKIPPED
    tsc_nodenext: str = SKIPPED
    tsc_bundler: str = SKIPPED
    attw: str = SKIPPED
    notes: str = SKIPPED  # the interface class against the previous release, or `first`
    seconds: float = 0.0
    commit: str = ""
    key: str = ""  # the release build's cache key with the previous one's: what a result is of
    recorded: bool = False  # taken from an earlier sweep's result for the same key

    @property
    def checks(self) -> tuple[str, ...]:
        return (self.build, self.package_checks, self.tsc_nodenext, self.tsc_bundler, self.attw)

    @property
    def ok(self) -> bool:
        return all(c == PASS for c in self.checks) and not self.notes.startswith(FAIL)

    @property
    def first_error(self) -> str:
        """The first failure in pipeline order (the interface notes last), without `fail: `."""
        for cell in (*self.checks, self.notes):
            if cell.startswith(FAIL):
                return cell.removeprefix(f"{FAIL}: ")
        return ""

    def cells(self) -> list[str]:
        return [
            self.tag,
            self.sdk_version,
            *(c if not c.startswith(FAIL) else FAIL for c in self.checks),
            f"{self.seconds:.1f}",
            self.first_error,
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
            "columns": COLUMNS,
            "rows": [{**asdict(r), "ok": r.ok, "first_error": r.first_error} for r in self.rows],
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


def _package_checks(
    cfg: Config, built: publish_build.Built, workdir: Path
) -> tuple[TarballReport, list[str]]:
    """What the publish dry run proves about the package, short of the registry and the
    type-check (a column of its own): repackage, pack, the tarball policy, install + import
    in an empty consumer, publint. The tarball's report and exports."""
    version = str(built.sdk_pkg.get("version"))
    pkg = publish_build.package(cfg, built, workdir, npm_name=cfg.npm_name, version=version)
    checks = publish_build.Checks()
    report = publish_build.verify(
        cfg, built.toolchain, pkg, workdir, checks, typecheck_consumer=False
    )
    return report, checks.exports


def _consumer_checks(
    cfg: Config, tc: Toolchain, report: TarballReport, exports: list[str], workdir: Path
) -> dict[str, str]:
    """The type-check columns: `tsc nodenext`, `tsc bundler`, `attw` -> "" or the failure.
    Bytes that passed every check before (a publish, an earlier sweep) are not checked again;
    a release that passes them all is recorded so."""
    integrity = report.integrity
    every = publish_build.ALL_CHECKS
    passed = publish_build.passed_before(cfg, tc, integrity, every)
    if passed is not None:
        console.info(f"    {', '.join(every)}: passed for these bytes at {passed.when}")
        return dict.fromkeys(CONSUMER_CHECKS, "")
    with console.step("strict consumer type-check (nodenext, bundler) and attw"):
        found = typecheck.steps(
            tc, cfg.cache_dir, report.path, cfg.npm_name, workdir / "consumer-types"
        )
    if not any(found.values()):
        publish_build.record_pass(cfg, tc, integrity, every, exports)
    return dict(zip(CONSUMER_CHECKS, found.values(), strict=True))


def _interface(cfg: Config, previous: Any, built: publish_build.Built) -> tuple[Any, str]:
    """This release's public surface (its snapshot, with the toolchain that read it), and its
    interface class against the previous one.

    The only place the sweep reads interface notes: it calls the notes module's public entry
    points and nothing of their internals."""
    tc = built.toolchain
    keep = cfg.work_dir / "sweep" / "declarations" / f"{built.commit[:12]}.d.mts"
    current = release_notes.snapshot(built.sdk_dir, built.sdk_pkg, tc, cfg.cache_dir, keep)
    if previous is None:
        return (current, tc), "first"
    verdict = release_notes.compare(previous[0], current, tc, cfg.cache_dir).classification
    return (current, tc), verdict


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
        except DeclarationsFailed as exc:  # built, but its types cannot be published
            row.build = PASS
            row.tsc_nodenext = row.tsc_bundler = _failed(exc)
            return row, None
        except MirrorError as exc:
            row.build = _failed(exc)
            return row, None
        row.build = PASS
        row.sdk_version = str(built.sdk_pkg.get("version", ""))
        try:
            surface, notes = _interface(cfg, previous, built)
            # Without a previous surface the sweep classifies the notes once all have run.
            row.notes = notes if previous is not None else SKIPPED
        except MirrorError as exc:
            row.notes = _failed(exc)
        try:
            report, exports = _package_checks(cfg, built, workdir)
        except MirrorError as exc:
            row.package_checks = _failed(exc)
            return row, surface
        row.package_checks = PASS
        found = _consumer_checks(cfg, built.toolchain, report, exports, workdir)
        for column, problem in found.items():
            setattr(row, column, f"{FAIL}: {problem.splitlines()[0][:300]}" if problem else PASS)
        return row, surface
    finally:
        row.seconds = round(time.monotonic() - start, 1)


# --- the sweep --------------------------------------------------------------------------------


def default_jobs() -> int:
    """Releases built at once: one per core, at most four (a real build takes a core and
    about a gigabyte)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _result_key(key: str | None, previous: str | None) -> str | None:
    """What a row is the result of: this release's build and the previous one's (the notes)."""
    if key is None:
        return None
    return hashlib.sha256(f"{key}:{previous or 'first'}:{_SWEEP_CODE}".encode()).hexdigest()


# The sweep's own checks decide a row too: a change to them is a new result.
_SWEEP_CODE = build_key.code_digest(
    "ops/sweep.py",
    "release/publish/build.py",
    "release/package/repackage.py",
    "release/package/tarball.py",
    "release/declarations/consumer.py",
    "release/declarations/bundle.py",
    "release/declarations/surface.py",
    "release/notes.py",
)


def _recorded(results: Path, key: str | None) -> Row | None:
    if key is None:
        return None
    try:
        data = json.loads((results / f"{key}.json").read_text(encoding="utf-8"))
        data.pop("ok", None)
        return Row(**{**data, "recorded": True})
    except (OSError, ValueError, TypeError):
        return None  # none, or unreadable: run the release again


def _record(results: Path, row: Row) -> None:
    if row.key:
        write_atomic(
            results / f"{row.key}.json",
            json.dumps({**asdict(row), "recorded": False}, indent=1),
            what="the sweep's result",
        )


def _keys(cfg: Config, upstream: str, records: list[TagRecord], root: Path) -> list[str | None]:
    """Each release's build cache key (exported, nothing built); None where it cannot be had
    (the release then runs, and fails where it failed)."""
    keys: list[str | None] = []
    for i, record in enumerate(records):
        workdir = root / f"key-{i}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            keys.append(publish_build.tag_key(cfg, record, upstream, workdir).digest)
        except MirrorError:
            keys.append(None)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return keys


def _eta(seconds: list[float], remaining: int, jobs: int) -> str:
    if not seconds or not remaining:
        return "0s"
    left = statistics.median(seconds) * remaining / jobs
    minutes, secs = divmod(int(left), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run(
    cfg: Config,
    upstream: str,
    *,
    from_tag: str | None = None,
    out_dir: Path | None = None,
    on_row: Callable[[Row], None] | None = None,
    jobs: int | None = None,
    force: bool = False,
) -> SweepReport:
    """Every release from `from_tag` on; writes `sweep.json` and `sweep.md` into `out_dir`.

    Releases run `jobs` at a time (default: `default_jobs()`), each built through the build
    cache. A release whose result for the same key (its build and the previous release's) an
    earlier sweep recorded is not run again unless `force`. Progress and an ETA go to stderr.
    """
    records = release_tags(cfg, upstream, from_tag)
    out_dir = out_dir or cfg.reports_dir
    jobs = max(1, jobs or default_jobs())
    root = cfg.work_dir / "sweep"
    results = root / "results"
    report = SweepReport(upstream, from_tag)
    with exclusive(root, cfg.lock_timeout, "the sweep"):
        with console.step(f"computing the build keys of {len(records)} releases"):
            keys = _keys(cfg, upstream, records, root)
        result_keys = [_result_key(key, keys[i - 1] if i else None) for i, key in enumerate(keys)]
        rows: list[Row | None] = [None if force else _recorded(results, k) for k in result_keys]
        todo = [i for i, row in enumerate(rows) if row is None]
        # A release that runs compares its surface with the previous release's.
        need_surface = sorted({*todo, *(i - 1 for i in todo if i > 0)})
        console.info(
            f"{len(records)} releases: {len(records) - len(todo)} recorded for the same key "
            f"(skipped; --force runs them), {len(todo)} to run, {jobs} at a time"
        )
        if jobs > 1:
            console.plain_lines()  # one spinner per run cannot share a terminal
        surfaces: dict[int, Any] = {}
        took: list[float] = []
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(
                    _one,
                    cfg,
                    upstream,
                    records[i],
                    root / f"{records[i].commit[:12]}-{i}",
                    surface_only=i not in todo,
                ): i
                for i in need_surface
            }
            for future in as_completed(futures):
                i = futures[future]
                row, surfaces[i] = future.result()
                if i in todo:
                    row.key = result_keys[i] or ""
                    rows[i] = row
                    took.append(row.seconds)
                    left = len(todo) - len(took)
                    console.info(
                        f"[{len(took)}/{len(todo)}] {row.tag}: "
                        f"{'green' if row.ok else 'red'} in {row.seconds:.1f}s; "
                        f"ETA {_eta(took, left, min(jobs, max(left, 1)))}"
                    )
        for i in todo:
            ran = rows[i]
            if ran is None:  # not reached: every future's row was stored above
                continue
            if ran.notes == SKIPPED and surfaces.get(i) is not None:
                ran.notes = _notes(cfg, surfaces, i)
            _record(results, ran)
        report.rows = [row for row in rows if row is not None]
        for row in report.rows:
            if on_row:
                on_row(row)
    write(report, out_dir)
    return report


def _notes(cfg: Config, surfaces: dict[int, Any], i: int) -> str:
    """The interface class against the last earlier release whose surface is known."""
    previous = next(
        (surfaces[j] for j in range(i - 1, -1, -1) if surfaces.get(j) is not None), None
    )
    if previous is None:
        return "first"
    (old, _), (new, tc) = previous, surfaces[i]
    try:
        return str(release_notes.compare(old, new, tc, cfg.cache_dir).classification)
    except MirrorError as exc:
        return _failed(exc)


def _one(
    cfg: Config, upstream: str, record: TagRecord, workdir: Path, *, surface_only: bool
) -> tuple[Row, Any]:
    """One release in its own directory (kept when it failed, for a person to look at)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    if surface_only:  # a recorded release whose successor runs: its surface, from the cache
        row = Row(record.name, commit=record.commit)
        try:
            built = publish_build.build_tag(cfg, record, upstream, workdir)
            surface, _ = _interface(cfg, None, built)
        except MirrorError:
            surface = None
        shutil.rmtree(workdir, ignore_errors=True)
        return row, surface
    row, surface = sweep_release(cfg, upstream, record, workdir, None)
    if row.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return row, surface


def table(report: SweepReport) -> console.Grid:
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
