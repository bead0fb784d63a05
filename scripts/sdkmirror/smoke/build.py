"""The smoke build: install and build the SDK with one toolchain, check what it produced, and
report the outcome with the runbook's verdict (upstream-breaking or our environment)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdkmirror.core import reports
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.config import Config, ToolchainSpec
from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import console, node_exports
from sdkmirror.infra.gitio import ls_remote
from sdkmirror.infra.toolchain import Toolchain, provision, read_declarations, support
from sdkmirror.mirror.source import materialize
from sdkmirror.smoke import build_cache, build_key

PASS, FAIL, UNSUPPORTED = "pass", "fail", "unsupported"
UPSTREAM, OUR_ENV = "upstream-breaking", "our-env"
_NEVER_EDIT = "Never edit the mirror to make smoke pass."

# category -> (classification, next step), after the triage runbook.
RUNBOOK: dict[str, tuple[str, str]] = {
    "unsupported-toolchain": (
        OUR_ENV,
        "The toolchain is outside the upstream's engines/packageManager: run "
        "`invoke toolchains.update --write` to follow its declarations; the mirror tag is "
        "unaffected.",
    ),
    "lockfile": (
        OUR_ENV,
        "The frozen install rejects the lockfile: check that the pnpm major matches "
        "packageManager and the install flags match the upstream's; the mirror tag is "
        f"unaffected. {_NEVER_EDIT}",
    ),
    "layout": (
        OUR_ENV,
        "The upstream moved or renamed the SDK: update sdk_dir/sdk_package in "
        f"[tool.sdkmirror] to follow it; the mirror tag is unaffected. {_NEVER_EDIT}",
    ),
    "network": (
        OUR_ENV,
        "The registry could not be reached: re-run the smoke build; if it persists, check the "
        "registry settings (`npm config get registry`).",
    ),
    "toolchain": (
        OUR_ENV,
        "The toolchain could not be installed: check the version exists and the registry is "
        "reachable, then re-run.",
    ),
    "upstream-build": (
        UPSTREAM,
        "Upstream breaking change: consumers stay pinned to the last green mirror tag; track it "
        f"upstream and bump consumer pins only after a green release tag lands. {_NEVER_EDIT}",
    ),
    "artifacts": (
        UPSTREAM,
        "The build no longer produces what publishConfig.exports names: treat as an upstream "
        f"break; do not publish this ref. {_NEVER_EDIT}",
    ),
}

# Ordered: the first category whose pattern matches the log wins.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "unsupported-toolchain",
        re.compile(
            r"ERR_PNPM_UNSUPPORTED_ENGINE|ERR_PNPM_BAD_PM_VERSION|EBADENGINE|Unsupported engine"
            r"|ERR_PNPM_UNSUPPORTED_PACKAGE_MANAGER|This project is configured to use \w+"
        ),
    ),
    (
        "lockfile",
        re.compile(
            r"ERR_PNPM_OUTDATED_LOCKFILE|ERR_PNPM_LOCKFILE_\w+|ERR_PNPM_BROKEN_LOCKFILE"
            r"|frozen-lockfile|lockfile needs to be updated|not up to date with \S*package\.json"
        ),
    ),
    (
        "network",
        re.compile(
            r"ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|ENETUNREACH|EHOSTUNREACH"
            r"|ERR_SOCKET_TIMEOUT|ERR_PNPM_META_FETCH_FAIL|ERR_PNPM_FETCH_5\d\d|socket hang up"
            r"|^network: "
            r"|\b5\d\d (?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)"
        ),
    ),
    (
        "layout",
        re.compile(
            r"No projects matched the filters|ERR_PNPM_NO_SCRIPT|Missing script:? \"?build"
            r"|ERR_PNPM_WORKSPACE_PKG_NOT_FOUND|ERR_PNPM_NO_IMPORTER_MANIFEST_FOUND"
            r"|sdk package not found"
        ),
    ),
    (
        "upstream-build",
        re.compile(
            r"error TS\d+|ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL|Build failed|SyntaxError|\[ERROR\]"
            r"|Cannot find module|Could not resolve"
        ),
    ),
)


def classify(log: str, *, phase: str = "build") -> str:
    """The failure category a log shows; `phase` breaks the tie when nothing is recognised."""
    for category, pattern in _PATTERNS:
        if pattern.search(log):
            return category
    if phase == "artifacts":
        return "artifacts"
    if phase == "toolchain":
        return "toolchain"
    return "lockfile" if phase == "install" else "upstream-build"


def verdict(category: str | None) -> tuple[str | None, str]:
    """(classification, next step) for a category; a pass needs neither."""
    if category is None:
        return None, ""
    return RUNBOOK.get(category, (OUR_ENV, "Read the log tail and the triage runbook."))


# --- the build ----------------------------------------------------------------------------------


@dataclass
class BuildOutcome:
    status: str  # pass | fail
    category: str | None
    reason: str
    sdk_dir: Path
    dist_dir: Path
    package_json: dict[str, Any]
    durations: dict[str, float] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    log: str = ""
    cache: str = ""  # "hit" (restored from the build cache), "miss" (built, stored), "" (off)

    @property
    def ok(self) -> bool:
        return self.status == PASS


def export_files(package_json: Mapping[str, Any]) -> list[str]:
    """Every file path `publishConfig.exports` names (conditions and subpaths included)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            if node.startswith("./") and "*" not in node and node not in found:
                found.append(node)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    publish = package_json.get("publishConfig")
    walk(publish.get("exports") if isinstance(publish, dict) else None)
    return found


def entry_point(package_json: Mapping[str, Any]) -> str | None:
    """The file `import` of the package's root resolves to after publishing, as Node does."""
    publish = package_json.get("publishConfig")
    try:
        return node_exports.resolve(publish.get("exports") if isinstance(publish, dict) else None)
    except node_exports.InvalidExports:
        return None


_IMPORT_CHECK = """\
const mod = await import(process.argv[2]);
const names = Object.keys(mod).sort();
console.log(JSON.stringify(names));
if (names.length === 0) { console.error("the entry point exposes no export"); process.exit(3); }
"""


def build(
    source_dir: Path,
    toolchain: Toolchain,
    cfg: Config,
    *,
    phases: tuple[str, ...] = ("install", "build"),
) -> BuildOutcome:
    """Scoped frozen install, the SDK's own build, then the artifact check.

    `phases=("install",)` only installs: for a `dist/` restored from the build cache that a
    later step (the declaration bundling) reads beside the workspace's `node_modules`."""
    sdk_dir = source_dir / cfg.sdk_dir
    dist_dir = sdk_dir / "dist"
    tc = toolchain.with_store(cfg.pnpm_store)
    pkg_file = sdk_dir / "package.json"
    pkg = _read_json(pkg_file)
    if pkg is None or pkg.get("name") != cfg.sdk_package:
        where = _find_package(source_dir, cfg.sdk_package)
        hint = f"; it is now at {where}" if where else "; no workspace package has that name"
        found = (
            f"{pkg_file.relative_to(source_dir)} names {pkg.get('name')!r}"
            if pkg
            else (f"{cfg.sdk_dir}/package.json is missing")
        )
        reason = f"sdk package not found: {found}, expected {cfg.sdk_package!r}{hint}"
        return BuildOutcome(FAIL, "layout", reason, sdk_dir, dist_dir, pkg or {}, log=reason)

    outcome = BuildOutcome(PASS, None, "", sdk_dir, dist_dir, pkg)
    steps: tuple[tuple[str, list[str | Path]], ...] = (
        (
            "install",
            [
                tc.pnpm,
                "install",
                "--frozen-lockfile",
                "--filter",
                f"{cfg.sdk_package}...",
                "--fail-if-no-match",
                "--store-dir",
                cfg.pnpm_store,
            ],
        ),
        ("build", [tc.pnpm, "--filter", cfg.sdk_package, "--fail-if-no-match", "build"]),
    )
    for phase, argv in (step for step in steps if step[0] in phases):
        with console.step(f"pnpm {phase} ({toolchain.spec.id})"):
            start = time.monotonic()
            # Only the install reaches the network and writes the store (pnpm checks the
            # content hashes of what it takes from there); the build gets neither.
            install = phase == "install"
            if install:
                cfg.pnpm_store.mkdir(parents=True, exist_ok=True)
            res = tc.run(
                argv,
                cwd=source_dir,
                network=install,
                writable=[cfg.pnpm_store] if install else [],
                check=False,
                timeout=1800,
            )
            outcome.durations[phase] = round(time.monotonic() - start, 2)
        outcome.log += f"$ {' '.join(str(a) for a in argv[1:])}\n{res.output}\n"
        if res.returncode != 0:
            outcome.status, outcome.category = FAIL, classify(res.output, phase=phase)
            outcome.reason = f"pnpm {phase} exited {res.returncode}: {_headline(res.output)}"
            return outcome
    _check_artifacts(outcome, tc, source_dir)
    return outcome


# --- through the build cache -------------------------------------------------------------------

# The modules whose code decides what a build stage produces: an edit to them is a new key.
BUILD_CODE = ("smoke/build.py", "infra/toolchain.py", "infra/sandbox.py")


def cache_key(
    source_dir: Path,
    tc: Toolchain,
    cfg: Config,
    *,
    stage: str = "build",
    extra: Mapping[str, str] | None = None,
    code: tuple[str, ...] = (),
) -> build_key.BuildKey:
    """The key of building the SDK in `source_dir` with `tc` up to `stage`."""
    return build_key.compute(
        source_dir,
        sdk_dir=cfg.sdk_dir,
        sdk_package=cfg.sdk_package,
        toolchain={"node": tc.node_version, "pnpm": tc.pnpm_version},
        stage=stage,
        extra={**(extra or {}), "code": build_key.code_digest(*BUILD_CODE, *code)},
    )


def restore(
    cache: build_cache.BuildCache,
    key: build_key.BuildKey,
    source_dir: Path,
    tc: Toolchain,
    cfg: Config,
) -> BuildOutcome | None:
    """The cached outputs for `key` copied into `source_dir` and checked like a fresh build's
    (the files `publishConfig.exports` names, the import); None when there are none. The
    caller holds the key (`cache.hold`)."""
    entry = cache.lookup(key)
    if entry is None:
        return None
    sdk_dir = source_dir / cfg.sdk_dir
    dist_dir = sdk_dir / "dist"
    start = time.monotonic()
    shutil.rmtree(dist_dir, ignore_errors=True)
    try:
        cache.restore(entry, "dist", dist_dir)
        with tempfile.TemporaryDirectory(prefix="sdkmirror-cached-") as scratch:
            used = Path(scratch) / "package.json"
            cache.restore(entry, "package.json", used)
            same = used.read_bytes() == (sdk_dir / "package.json").read_bytes()
    except (build_cache.CacheMiss, FileNotFoundError):
        shutil.rmtree(dist_dir, ignore_errors=True)
        return None
    if not same:  # the key covers the SDK's directory: only a damaged entry gets here
        console.warn(f"build cache entry {key.short} was built from another package.json")
        shutil.rmtree(dist_dir, ignore_errors=True)
        return None
    pkg = _read_json(sdk_dir / "package.json") or {}
    outcome = BuildOutcome(PASS, None, "", sdk_dir, dist_dir, pkg, cache="hit")
    console.info(f"build cache hit {key.short}: {entry.manifest.get('label', '')}")
    # The files are checked again; the import ran when the entry was stored (it needs the
    # workspace installed, which a hit skips) and its exports are recorded with the entry.
    _check_files(outcome)
    outcome.exports = [str(name) for name in entry.meta.get("exports") or []]
    outcome.durations["restore"] = round(time.monotonic() - start, 2)
    return outcome


def store(
    cache: build_cache.BuildCache, key: build_key.BuildKey, outcome: BuildOutcome, cfg: Config
) -> None:
    """Keep a passing build's outputs (its `dist/` and `package.json`) under `key`."""
    if not outcome.ok:
        return
    version = outcome.package_json.get("version")
    label = f"{cfg.sdk_package}@{version} ({key.inputs.get('stage')})"
    cache.store(
        key,
        {"dist": outcome.dist_dir, "package.json": outcome.sdk_dir / "package.json"},
        label=label,
        meta={"durations": outcome.durations, "exports": outcome.exports},
    )


def build_cached(
    source_dir: Path,
    tc: Toolchain,
    cfg: Config,
    cache: build_cache.BuildCache | None,
    *,
    install_on_hit: bool = False,
) -> BuildOutcome:
    """`build`, unless the cache holds this tree's build with this toolchain: then its outputs,
    checked. `install_on_hit` still installs the workspace for a step that needs it."""
    if cache is None:
        return build(source_dir, tc, cfg)
    key = cache_key(source_dir, tc, cfg)
    with cache.hold(key):
        hit = restore(cache, key, source_dir, tc, cfg)
        if hit is not None:
            if not (install_on_hit and hit.ok):
                return hit
            installed = build(source_dir, tc, cfg, phases=("install",))
            installed.cache = "hit"
            return installed
        outcome = build(source_dir, tc, cfg)
        outcome.cache = "miss"
        store(cache, key, outcome, cfg)
        return outcome


def _check_artifacts(outcome: BuildOutcome, tc: Toolchain, source_dir: Path) -> None:
    entry = _check_files(outcome)
    if entry is not None:
        _check_import(outcome, tc, entry, source_dir)


def _check_files(outcome: BuildOutcome) -> str | None:
    """The files `publishConfig.exports` names exist; returns the entry point to import."""
    files = export_files(outcome.package_json)
    if not files:
        outcome.status, outcome.category = FAIL, "artifacts"
        outcome.reason = "publishConfig.exports names no file"
        return None
    missing = [f for f in files if not (outcome.sdk_dir / f).is_file()]
    if missing:
        outcome.status, outcome.category = FAIL, "artifacts"
        outcome.reason = f"publishConfig.exports names missing files: {', '.join(missing)}"
        outcome.log += outcome.reason + "\n"
        return None
    entry = entry_point(outcome.package_json)
    if entry is None:
        outcome.status, outcome.category = FAIL, "artifacts"
        outcome.reason = "publishConfig.exports has no import/default entry point"
        return None
    return entry


def _check_import(outcome: BuildOutcome, tc: Toolchain, entry: str, source_dir: Path) -> None:
    """The entry point imports in this Node (beside the workspace's `node_modules`)."""
    with tempfile.TemporaryDirectory(prefix="sdkmirror-import-") as scratch:
        script = Path(scratch) / "check.mjs"
        script.write_text(_IMPORT_CHECK, encoding="utf-8")
        url = (outcome.sdk_dir / entry).resolve().as_uri()
        res = tc.run(
            [tc.node, script, url],
            cwd=Path(scratch),
            readable=[source_dir],  # the entry and the dependencies it imports
            check=False,
            timeout=120,
        )
    outcome.log += f"$ node check.mjs {entry}\n{res.output}\n"
    if res.returncode != 0:
        outcome.status, outcome.category = FAIL, "artifacts"
        outcome.reason = f"importing {entry} failed: {_headline(res.output)}"
        return
    outcome.exports = json.loads(res.stdout.strip().splitlines()[-1])


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _find_package(source_dir: Path, name: str) -> str | None:
    for pkg_file in sorted(source_dir.glob("*/*/package.json")):
        data = _read_json(pkg_file)
        if data and data.get("name") == name:
            return str(pkg_file.parent.relative_to(source_dir))
    return None


_HEADLINE = re.compile(r"ERR_PNPM_\w+.*|error TS\d+.*|\bE[A-Z]{4,}\b.*|No projects matched.*")


def _headline(output: str) -> str:
    """The line of a log that says what went wrong, for a one-line reason."""
    for line in output.splitlines():
        m = _HEADLINE.search(line)
        if m:
            return m.group(0).strip()[:300]
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


# --- one smoke run ------------------------------------------------------------------------------


@dataclass
class SmokeResult:
    report: dict[str, Any]
    json_path: Path
    markdown_path: Path
    outcome: BuildOutcome | None = None

    @property
    def entry(self) -> dict[str, Any]:
        first: dict[str, Any] = self.report["results"][0]
        return first

    @property
    def failed(self) -> bool:
        """A failure that should fail the run: not unsupported, not an allowed canary."""
        e = self.entry
        return e["status"] == FAIL and not e["toolchain"]["allow_failure"]


def report_name(spec: ToolchainSpec) -> str:
    return f"smoke-{spec.node}-{spec.pnpm}"


def default_ref(cfg: Config, url: str) -> str:
    """The mirror branch, or the upstream branch it mirrors when `url` has no mirror branch
    (the upstream itself, rather than the mirror)."""
    if ls_remote(url, [f"refs/heads/{cfg.mirror_branch}"], name="upstream").head(cfg.mirror_branch):
        return cfg.mirror_branch
    console.info(
        f"{url} has no branch {cfg.mirror_branch}; building {cfg.upstream_branch}, "
        f"which {cfg.mirror_branch} mirrors"
    )
    return cfg.upstream_branch


def run_smoke(
    cfg: Config,
    spec: ToolchainSpec,
    *,
    upstream_url: str | None = None,
    ref: str | None = None,
    report_dir: Path | None = None,
    node_bin_dir: Path | None = None,
    keep: bool = True,
    as_result: bool = True,
) -> SmokeResult:
    """Export `ref`, check the toolchain against its declarations, build, and write the report.

    The source tree is kept under the work dir (and replaced on the next run) so a person can
    look at a failure; `keep=False` removes it. The summary table is the result on stdout, or
    progress on stderr when a caller (the bisect) has a result of its own (`as_result=False`).
    """
    url = upstream_url or cfg.upstream
    ref = ref or default_ref(cfg, url)
    report_dir = report_dir or cfg.reports_dir
    tree = cfg.work_dir / "smoke" / report_name(spec)
    shutil.rmtree(tree, ignore_errors=True)
    with console.step(f"exporting {ref} from {url}"):
        sha = materialize(url, ref, tree)
    console.info(f"building commit {sha} ({ref})")
    entry: dict[str, Any] = {
        "id": spec.id,
        "toolchain": {"node": spec.node, "pnpm": spec.pnpm, "allow_failure": spec.allow_failure},
        "status": None,
        "category": None,
        "classification": None,
        "reason": "",
        "next_step": "",
        "durations": {"install": None, "build": None},
        "versions": {"node": None, "pnpm": None},
        "commit": sha,
        "log_tail": "",
    }
    outcome: BuildOutcome | None = None
    ok, why = support(spec, read_declarations(tree))
    if not ok:
        entry.update(
            status=UNSUPPORTED,
            reason=why,
            next_step="Not a failure: the upstream does not support this toolchain.",
        )
    else:
        try:
            tc = provision(spec, cfg.cache_dir, node_bin_dir=node_bin_dir)
        except MirrorError as exc:
            category = classify(str(exc), phase="toolchain")
            entry.update(status=FAIL, category=category, reason=str(exc), log_tail=str(exc))
        else:
            console.info(f"node {tc.node_version}, pnpm {tc.pnpm_version} ({tc.bin_dir})")
            entry["versions"] = {"node": tc.node_version, "pnpm": tc.pnpm_version}
            outcome = build_cached(tree, tc, cfg, build_cache.for_config(cfg))
            entry["cache"] = outcome.cache or "off"
            entry.update(
                status=outcome.status,
                category=outcome.category,
                reason=outcome.reason
                or ("cached build" if outcome.cache == "hit" else "built")
                + f"; exports: {', '.join(outcome.exports)}",
                log_tail=_tail(outcome.log),
            )
            entry["durations"].update(outcome.durations)
        entry["classification"], step = verdict(entry["category"])
        entry["next_step"] = entry["next_step"] or step
    if not keep:
        shutil.rmtree(tree, ignore_errors=True)
    report = {"kind": "smoke", "upstream": url, "ref": ref, "commit": sha, "results": [entry]}
    json_path, md_path = write_report(report, report_dir, report_name(spec))
    (console.result if as_result else console.show)(summary_table(report))
    console.info(f"{entry['status']}: {entry['reason']}")
    return SmokeResult(report, json_path, md_path, outcome)


def _tail(log: str, lines: int = 40) -> str:
    return "\n".join(log.rstrip().splitlines()[-lines:])


# --- reports ------------------------------------------------------------------------------------


def write_report(report: Mapping[str, Any], report_dir: Path, name: str) -> tuple[Path, Path]:
    """`<name>.json` and `<name>.md`; the table also goes to `$GITHUB_STEP_SUMMARY` if set."""
    json_path, md_path = report_dir / f"{name}.json", report_dir / f"{name}.md"
    reports.write_json(json_path, report, what="the smoke report")
    md = markdown(report)
    write_atomic(md_path, md, what="the smoke summary")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(md + "\n")
    return json_path, md_path


_ICON = {PASS: "✅ pass", FAIL: "❌ fail", UNSUPPORTED: "⚪ unsupported"}


def _secs(v: Any) -> str:
    return f"{v:.1f}s" if isinstance(v, int | float) else "-"


def _rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for r in report["results"]:
        status = _ICON.get(r["status"], r["status"])
        if r["status"] == FAIL and r["toolchain"].get("allow_failure"):
            status += " (allowed)"
        versions = r.get("versions") or {}
        rows.append(
            [
                r["id"],
                status,
                r.get("category") or "",
                r.get("classification") or "",
                _secs(r["durations"].get("install")),
                _secs(r["durations"].get("build")),
                f"{versions.get('node') or '-'} / {versions.get('pnpm') or '-'}",
                (r.get("commit") or "")[:12],
                r.get("reason", ""),
            ]
        )
    return rows


_COLUMNS = [
    "toolchain",
    "status",
    "category",
    "classification",
    "install",
    "build",
    "node / pnpm",
    "commit",
    "reason",
]


def markdown(report: Mapping[str, Any]) -> str:
    """A Markdown table for a step summary or an issue body."""
    commit = str(report["commit"])[:12] if report.get("commit") else "several commits"
    head = f"### Smoke build of `{report.get('ref')}` ({commit})"
    lines = [head, "", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for row in _rows(report):
        lines.append(
            "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |"
        )
    steps = [
        f"- **{r['id']}**: {r['next_step']}"
        for r in report["results"]
        if r["status"] == FAIL and r.get("next_step")
    ]
    if steps:
        lines += ["", "Next steps:", *steps]
    return "\n".join(lines) + "\n"


def summary_table(report: Mapping[str, Any]) -> console.Grid:
    """The terminal's narrower table: reasons and next steps are printed on their own lines."""
    keep = [0, 1, 2, 4, 5, 6]
    rows = [[row[i] for i in keep] for row in _rows(report)]
    return console.table(
        f"smoke build of {report.get('ref')} at {str(report.get('commit'))[:12]}",
        [_COLUMNS[i] for i in keep],
        rows,
    )


def load_reports(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Merge smoke reports (files, or directories of `smoke-*.json`) into one report."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("smoke-*.json")) if p.is_dir() else [p]
    if not files:
        raise MirrorError("no smoke reports found; run `nox -s smoke` first")
    merged: dict[str, Any] = {
        "kind": "smoke",
        "upstream": None,
        "ref": None,
        "commit": None,
        "results": [],
    }
    seen: dict[str, int] = {}
    for f in files:
        data = reports.read(f, "smoke")
        for key in ("upstream", "ref", "commit"):
            if merged[key] is None:
                merged[key] = data.get(key)
            elif data.get(key) != merged[key]:
                merged[key] = "several" if key != "commit" else None
        for r in data.get("results", []):
            if r["id"] in seen:  # a re-run of the same toolchain replaces the older entry
                merged["results"][seen[r["id"]]] = r
            else:
                seen[r["id"]] = len(merged["results"])
                merged["results"].append(r)
    return merged


def any_failed(report: Mapping[str, Any]) -> bool:
    return any(
        r["status"] == FAIL and not r["toolchain"].get("allow_failure") for r in report["results"]
    )
