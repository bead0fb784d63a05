"""`invoke status`: the whole mirror on one screen, and a non-zero exit when it needs a person.

`collect` is pure: it takes both remotes' ref listings (or why one could not be read), the
ledgers, the patch registry and the last reports, and returns a `Status`. Only `gather` does
I/O: two `ls-remote` calls (never a fetch), local files, and an ancestry question answered by
the work repository when it already holds both commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdkmirror.core import config as config_mod
from sdkmirror.core import reports
from sdkmirror.core.config import Config
from sdkmirror.core.errors import ExitCode, GitError, MirrorError
from sdkmirror.core.mirror_tag import Version
from sdkmirror.core.reports import last_sync_path
from sdkmirror.infra import console, gitio
from sdkmirror.infra.gitio import RemoteRefs, ls_remote
from sdkmirror.mirror import verdicts
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.patch_registry import PREFIX as PATCH_PREFIX
from sdkmirror.mirror.patch_registry import Patch, PatchRegistry
from sdkmirror.mirror.releases import Release, ReleaseLedger, sort_versions

EXIT_ATTENTION = ExitCode.ATTENTION


class NeedsAttention(MirrorError):
    """Something on the mirror needs the maintainer (exit code 8)."""

    exit_code = EXIT_ATTENTION


@dataclass(frozen=True)
class BranchState:
    upstream_branch: str
    upstream_head: str | None
    mirror_branch: str
    mirror_head: str | None
    # in-sync | behind (the next sync fast-forwards) | diverged | not-mirrored | unknown
    state: str


@dataclass(frozen=True)
class TagState:
    upstream: int
    mirrored: int
    missing: list[str]  # upstream release tags origin lacks: the next sync adds them
    moved: list[str]  # upstream moved a tag away from the ledger's object: an alert
    deleted_upstream: list[str]
    latest: str | None
    # origin moved a mirror tag away from the ledger's object: a violation (`invoke verify`)
    moved_on_origin: list[str] = field(default_factory=list)
    # release tags on origin the ledger does not hold, on an object upstream never had
    foreign: list[str] = field(default_factory=list)
    # release branches not on their mirror tag's commit
    branch_conflicts: list[str] = field(default_factory=list)
    # upstream release tags sync refused (on a blob or tree): name, object, reason
    rejected: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SmokeState:
    latest_green_tag: str | None
    latest_run: dict[str, Any] | None  # ref, commit, status (pass | fail), failing toolchains


@dataclass(frozen=True)
class NpmState:
    latest_version: str | None
    latest_tag: str | None
    unpublished_tags: list[str]  # mirror tags newer than the newest published one


@dataclass(frozen=True)
class PatchState:
    name: str
    branch: str
    base: str
    on_origin: bool
    base_is_newest: bool


@dataclass(frozen=True)
class Status:
    upstream: str
    origin: str
    branch: BranchState
    tags: TagState
    smoke: SmokeState
    npm: NpmState
    patches: list[PatchState]
    unregistered_patch_branches: list[str]
    alerts: list[dict[str, str]]
    attention: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    # The last sync against this origin: started_at, status, error.
    last_sync: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.attention

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "kind": "status", "ok": self.ok, **asdict(self)}


# --- smoke reports ------------------------------------------------------------------------------


def _toolchain_key(result: Mapping[str, Any]) -> str:
    tc = result.get("toolchain")
    if isinstance(tc, Mapping):
        return f"node@{tc.get('node', '?')}+pnpm@{tc.get('pnpm', '?')}"
    if isinstance(tc, str):
        return tc
    return f"node@{result.get('node', '?')}+pnpm@{result.get('pnpm', '?')}"


def _allowed_to_fail(result: Mapping[str, Any]) -> bool:
    tc = result.get("toolchain")
    return bool(
        result.get("allow_failure") or (isinstance(tc, Mapping) and tc.get("allow_failure"))
    )


def smoke_verdicts(reports: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """commit -> {ref, passed: bool, failing: [...]}: per toolchain, the latest result wins.

    `reports` are in chronological order; several reports may cover one commit (one per
    toolchain job). A commit is green when no required toolchain's latest result failed and at
    least one passed; `unsupported` is not a failure (the upstream does not support it).
    """
    latest: dict[str, dict[str, Mapping[str, Any]]] = {}
    refs: dict[str, str] = {}
    for report in reports:
        for r in report.get("results", []) or []:
            commit = str(r.get("commit") or report.get("commit") or "")
            if not commit:
                continue
            latest.setdefault(commit, {})[_toolchain_key(r)] = r
            refs[commit] = str(report.get("ref") or r.get("ref") or "")
    out: dict[str, dict[str, Any]] = {}
    for commit, by_tc in latest.items():
        failing = sorted(
            f"{k}: {r.get('status')}" + (f" ({r['category']})" if r.get("category") else "")
            for k, r in by_tc.items()
            if r.get("status") == "fail" and not _allowed_to_fail(r)
        )
        passed = not failing and any(r.get("status") == "pass" for r in by_tc.values())
        out[commit] = {"ref": refs.get(commit, ""), "passed": passed, "failing": failing}
    return out


def _last_commit(reports: Sequence[Mapping[str, Any]]) -> str | None:
    for report in reversed(reports):
        for r in reversed(report.get("results", []) or []):
            commit = r.get("commit") or report.get("commit")
            if commit:
                return str(commit)
    return None


# --- the pure part ------------------------------------------------------------------------------


def _newest(names: Sequence[str], cfg: Config) -> str | None:
    versioned = [(v, n) for n in names if (v := cfg.tags.version_of(n)) is not None]
    return max(versioned)[1] if versioned else None


def _by_version(cfg: Config, names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: cfg.tags.version_of(n) or Version(0, 0, 0))


def _release_tags(cfg: Config, refs: RemoteRefs) -> dict[str, str]:
    return {n: o for n, o in refs.tags().items() if cfg.tags.version_of(n) is not None}


def branch_section(
    cfg: Config,
    up: RemoteRefs | None,
    org: RemoteRefs | None,
    sync_report: Mapping[str, Any],
    is_ancestor: Callable[[str, str], bool | None],
) -> tuple[BranchState, list[str]]:
    """The mirror branch against upstream's, by ls-remote alone; ancestry only when answerable
    locally. A branch the last sync held back as diverged stays diverged."""
    up_head = up.head(cfg.upstream_branch) if up else None
    mirror_head = org.head(cfg.mirror_branch) if org else None
    held = sync_report.get("status") == "diverged" and (
        (sync_report.get("mirror_branch") or {}).get("after") == mirror_head
    )
    if up is None or org is None:
        state = "unknown"
    elif mirror_head is None:
        state = "not-mirrored"
    elif up_head == mirror_head:
        state = "in-sync"
    else:
        ff = is_ancestor(mirror_head, up_head) if up_head else None
        state = "diverged" if ff is False or (ff is None and held) else "behind"
    attention = []
    if state == "diverged":
        attention.append(
            f"{cfg.mirror_branch} diverged from upstream {cfg.upstream_branch}: "
            "follow the divergence runbook"
        )
    branch = BranchState(cfg.upstream_branch, up_head, cfg.mirror_branch, mirror_head, state)
    return branch, attention


def mirror_tags(
    cfg: Config, up: RemoteRefs | None, org: RemoteRefs | None, recorded: Mapping[str, str]
) -> dict[str, str]:
    """Origin's release tags that are the mirror's: on the ledger's object, or (not recorded
    yet) on upstream's. Anything else release-named on origin is moved or foreign."""
    up_tags = _release_tags(cfg, up) if up else {}
    return {
        n: o
        for n, o in _release_tags(cfg, org or RemoteRefs({})).items()
        if (recorded[n] if n in recorded else up_tags.get(n)) == o
    }


def tags_section(
    cfg: Config,
    up: RemoteRefs | None,
    org: RemoteRefs | None,
    ledger: MirrorLedger,
    rejected: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[TagState, list[str]]:
    """Release tags and release branches: each side judged against the ledger, never against
    the other side. Linear: every listing is a dict built once."""
    up_tags = _release_tags(cfg, up or RemoteRefs({}))
    org_tags = _release_tags(cfg, org or RemoteRefs({}))
    all_org = org.tags() if org else {}
    recorded = {n: rec.object for n, rec in ledger.tags.items()}
    ours = mirror_tags(cfg, up, org, recorded)
    refused = {n: v for n, v in (rejected or {}).items() if up_tags.get(n) == v["object"]}
    attention = []
    moved = _by_version(cfg, (n for n, o in up_tags.items() if n in recorded and o != recorded[n]))
    if moved:
        attention.append(f"upstream moved {len(moved)} mirrored tag(s): {_list(moved, 3)}")
    # A mirror tag that differs from the ledger was moved on origin itself.
    tampered = _by_version(cfg, (n for n, o in recorded.items() if org and all_org.get(n) != o))
    if tampered:
        attention.append(
            f"mirror tag(s) moved or missing on origin against the ledger: {_list(tampered, 3)}; "
            "see `invoke verify --repair`"
        )
    foreign = _by_version(
        cfg, (n for n in org_tags if n not in recorded and n not in ours and up is not None)
    )
    if foreign:
        attention.append(
            f"foreign release tag(s) on origin, neither upstream's nor mirrored: "
            f"{_list(foreign, 3)}; run `invoke verify` for the commands"
        )
    heads = org.branches() if org else {}
    conflicts = sorted(
        (
            b
            for n, rec in ledger.tags.items()
            if (ver := cfg.tags.version_of(n)) is not None
            and (b := cfg.release_branches.name_for(ver)) in heads
            and heads[b] != rec.commit
        ),
        key=lambda b: cfg.release_branches.version_of(b) or Version(0, 0, 0),
    )
    if conflicts:
        attention.append(
            f"release branch(es) not on their mirror tag's commit: {_list(conflicts, 3)}; "
            "run `invoke verify`"
        )
    tags = TagState(
        upstream=len(up_tags),
        mirrored=len(ours),
        missing=_by_version(
            cfg, (n for n in up_tags if n not in all_org and n not in refused and n not in recorded)
        )
        if org
        else [],
        moved=moved,
        deleted_upstream=_by_version(cfg, (n for n in ours if n not in up_tags)) if up else [],
        latest=_newest(list(ours), cfg),
        moved_on_origin=tampered,
        foreign=foreign,
        branch_conflicts=conflicts,
        rejected=[{"name": n, **refused[n]} for n in _by_version(cfg, refused)],
    )
    return tags, attention


def smoke_section(
    cfg: Config, org: RemoteRefs | None, smoke_reports: Sequence[Mapping[str, Any]]
) -> tuple[SmokeState, list[str]]:
    """The newest mirror tag whose commit built green, and the latest run's outcome."""
    refs = org or RemoteRefs({})
    verdicts = smoke_verdicts(smoke_reports)
    green = [
        n
        for n in _release_tags(cfg, refs)
        if (verdicts.get(refs.commit_of_tag(n) or "") or {}).get("passed")
        or any(v["passed"] and v["ref"] == n for v in verdicts.values())
    ]
    last = _last_commit(smoke_reports)
    latest_run = None
    attention = []
    if last:
        v = verdicts[last]
        latest_run = {
            "ref": v["ref"],
            "commit": last,
            "status": "pass" if v["passed"] else "fail",
            "failing": v["failing"],
        }
        if not v["passed"]:
            attention.append(
                f"smoke failing at {v['ref'] or last[:12]}: {'; '.join(v['failing']) or 'no pass'}"
            )
    return SmokeState(_newest(green, cfg), latest_run), attention


def npm_section(cfg: Config, mirrored: Iterable[str], releases: Mapping[str, Release]) -> NpmState:
    """The newest published version and the mirror tags after its upstream tag."""
    newest_npm = sort_versions(list(releases))[0] if releases else None
    newest_tag = releases[newest_npm].upstream_tag if newest_npm else None
    published_v = max(
        (ver for r in releases.values() if (ver := cfg.tags.version_of(r.upstream_tag))),
        default=None,
    )
    unpublished = _by_version(
        cfg,
        (
            n
            for n in mirrored
            if published_v is None or (cfg.tags.version_of(n) or Version(0, 0, 0)) > published_v
        ),
    )
    return NpmState(newest_npm, newest_tag, unpublished)


def patches_section(
    org: RemoteRefs | None, patches: Mapping[str, Patch], latest_tag: str | None
) -> tuple[list[PatchState], list[str], list[str]]:
    """Registered patch branches, and any `patch-*` on origin nobody registered."""
    branches = org.branches() if org else {}
    active = {p.branch: p for p in patches.values() if p.active}
    states = [
        PatchState(p.name, p.branch, p.base, p.branch in branches, p.base == latest_tag)
        for p in sorted(active.values(), key=lambda p: p.name)
    ]
    unregistered = (
        sorted(b for b in branches if b.startswith(PATCH_PREFIX) and b not in active) if org else []
    )
    attention = []
    if unregistered:
        attention.append(
            f"unregistered patch branch(es) on origin: {', '.join(unregistered)}; register "
            "with `invoke patch.new` or delete"
        )
    missing = [s.branch for s in states if org and not s.on_origin]
    if missing:
        attention.append(f"registered patch branch(es) missing on origin: {missing}")
    return states, unregistered, attention


def alerts_section(
    sync_report: Mapping[str, Any], latest_run: Mapping[str, Any] | None
) -> list[dict[str, str]]:
    """Open alerts: what the last sync and the latest smoke run raised."""
    alerts = [
        {
            "source": "sync",
            "kind": str(a.get("kind", "")),
            "ref": str(a.get("ref", "")),
            "detail": str(a.get("detail", "")),
        }
        for a in sync_report.get("alerts", []) or []
    ]
    if latest_run and latest_run["status"] == "fail":
        alerts += [
            {"source": "smoke", "kind": "smoke-failure", "ref": latest_run["ref"], "detail": f}
            for f in latest_run["failing"]
        ]
    return alerts


def last_sync_section(sync_report: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The last sync against this origin: when, how it ended, and why it failed."""
    if not sync_report:
        return None, []
    attention = []
    if sync_report.get("status") == "failed":
        attention.append(f"the last sync failed: {sync_report.get('error') or 'see its report'}")
    return {k: sync_report.get(k) for k in ("started_at", "status", "error")}, attention


def collect(
    cfg: Config,
    *,
    upstream_url: str,
    origin_url: str,
    upstream: RemoteRefs | None,
    origin: RemoteRefs | None,
    unreachable: Mapping[str, str] | None = None,
    ledger: MirrorLedger,
    releases: Mapping[str, Release],
    patches: Mapping[str, Patch],
    last_sync: Mapping[str, Any] | None,
    smoke_reports: Sequence[Mapping[str, Any]],
    is_ancestor: Callable[[str, str], bool | None] = lambda a, b: None,
    rejected: Mapping[str, Mapping[str, str]] | None = None,
) -> Status:
    """Everything `invoke status` shows, decided from its inputs, one section at a time. Pure."""
    down = dict(unreachable or {})
    sync_report = last_sync or {}
    branch, branch_attn = branch_section(cfg, upstream, origin, sync_report, is_ancestor)
    tags, tags_attn = tags_section(cfg, upstream, origin, ledger, rejected)
    recorded = {n: rec.object for n, rec in ledger.tags.items()}
    mirrored = mirror_tags(cfg, upstream, origin, recorded)
    smoke, smoke_attn = smoke_section(cfg, origin, smoke_reports)
    patch_states, unregistered, patch_attn = patches_section(origin, patches, tags.latest)
    sync_summary, sync_attn = last_sync_section(sync_report)
    attention = [f"{name} unreachable: {why}" for name, why in down.items()]
    attention += branch_attn + tags_attn + smoke_attn + patch_attn + sync_attn
    return Status(
        upstream=upstream_url,
        origin=origin_url,
        branch=branch,
        tags=tags,
        smoke=smoke,
        npm=npm_section(cfg, mirrored, releases),
        patches=patch_states,
        unregistered_patch_branches=unregistered,
        alerts=alerts_section(sync_report, smoke.latest_run),
        attention=attention,
        unreachable=down,
        last_sync=sync_summary,
    )


# --- rendering ----------------------------------------------------------------------------------


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _list(names: Sequence[str], limit: int = 4) -> str:
    if not names:
        return "none"
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def rows(s: Status) -> list[list[str]]:
    b, t = s.branch, s.tags
    out = [
        [
            "branch",
            b.state,
            f"upstream {b.upstream_branch} {_short(b.upstream_head)}, "
            f"mirror {b.mirror_branch} {_short(b.mirror_head)}",
        ],
        [
            "release tags",
            "moved on origin"
            if t.moved_on_origin or t.foreign or t.branch_conflicts
            else "moved upstream"
            if t.moved
            else ("pending" if t.missing else "complete"),
            f"{t.mirrored} mirrored / {t.upstream} upstream; missing: {_list(t.missing)}"
            + (f"; moved upstream: {_list(t.moved)}" if t.moved else "")
            + (f"; moved on origin: {_list(t.moved_on_origin)}" if t.moved_on_origin else "")
            + (f"; foreign: {_list(t.foreign)}" if t.foreign else "")
            + (f"; rejected: {_list([r['name'] for r in t.rejected])}" if t.rejected else "")
            + (f"; release branch moved: {_list(t.branch_conflicts)}" if t.branch_conflicts else "")
            + (f"; deleted upstream: {_list(t.deleted_upstream)}" if t.deleted_upstream else ""),
        ],
    ]
    ls = s.last_sync
    out.append(
        [
            "last sync",
            str(ls.get("status", "?")) if ls else "none",
            (
                f"{ls.get('started_at', '?')} against this origin"
                + (f": {ls['error']}" if ls.get("error") else "")
            )
            if ls
            else "no sync against this origin recorded here",
        ]
    )
    run = s.smoke.latest_run
    out.append(
        [
            "smoke",
            run["status"] if run else "no reports",
            f"latest green tag: {s.smoke.latest_green_tag or 'none'}"
            + (f"; last run {run['ref'] or _short(run['commit'])}" if run else "")
            + (f": {'; '.join(run['failing'])}" if run and run["failing"] else ""),
        ]
    )
    out.append(
        [
            "npm",
            s.npm.latest_version or "unpublished",
            (f"from {s.npm.latest_tag}; " if s.npm.latest_tag else "")
            + f"not yet published: {_list(s.npm.unpublished_tags)}",
        ]
    )
    for p in s.patches:
        out.append(
            [
                f"patch {p.name}",
                "on origin" if p.on_origin else "MISSING",
                f"{p.branch} on {p.base}"
                + ("" if p.base_is_newest else " (a newer release exists: rebase or retire)"),
            ]
        )
    for br in s.unregistered_patch_branches:
        out.append(["patch branch", "UNREGISTERED", br])
    for a in s.alerts:
        out.append([f"alert ({a['source']})", a["kind"], f"{a['ref']}: {a['detail']}"])
    for name, why in s.unreachable.items():
        out.append([name, "unreachable", why])
    return out


def render(s: Status) -> object:
    verdict = "ok" if s.ok else f"{len(s.attention)} item(s) need the maintainer"
    return console.table(f"mirror status: {verdict}", ["area", "state", "detail"], rows(s))


# --- the edges ----------------------------------------------------------------------------------


def load_reports(
    reports_dir: Path, origin: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The last sync against `origin` and every smoke report under `reports_dir`, oldest first."""
    last_sync = None
    record = last_sync_path(reports_dir, origin)
    if record.is_file():
        try:
            data = reports.read(record, "sync")
            last_sync = data if data.get("origin") == origin else None
        except MirrorError as exc:
            console.warn(f"skipping report: {exc}")
    smoke: list[tuple[float, str, dict[str, Any]]] = []
    if not reports_dir.is_dir():
        return last_sync, []
    for path in reports_dir.rglob("*.json"):
        if reports.kind_of(path) != "smoke":
            continue
        try:
            data = reports.read(path, "smoke")
        except MirrorError as exc:
            console.warn(f"skipping report: {exc}")
            continue
        smoke.append((path.stat().st_mtime, str(path), data))
    return last_sync, [d for _, _, d in sorted(smoke, key=lambda x: (x[0], x[1]))]


def _listing(
    url: str, name: str, patterns: Sequence[str], down: dict[str, str]
) -> RemoteRefs | None:
    try:
        return ls_remote(url, patterns, name=name)
    except MirrorError as exc:
        down[name] = str(exc)
        return None


def gather(cfg: Config, *, upstream: str, origin: str) -> Status:
    down: dict[str, str] = {}
    with console.step("ask upstream and origin for their refs"):
        up = _listing(
            upstream, "upstream", [f"refs/heads/{cfg.upstream_branch}", "refs/tags/*"], down
        )
        org = _listing(origin, "origin", [], down)
    last_sync, smoke = load_reports(cfg.reports_dir, origin)

    def is_ancestor(a: str, b: str) -> bool | None:
        # Only what the work repository already knows: status never fetches or repairs it.
        if not cfg.work_repo.is_dir():
            return None
        try:
            gitio.run(f"--git-dir={cfg.work_repo}", "merge-base", "--is-ancestor", a, b)
        except GitError as exc:
            return False if exc.returncode == 1 else None
        return True

    return collect(
        cfg,
        upstream_url=upstream,
        origin_url=origin,
        upstream=up,
        origin=org,
        unreachable=down,
        ledger=MirrorLedger(cfg.mirror_ledger, cache_dir=cfg.work_dir),
        releases=ReleaseLedger(cfg.release_ledger).releases,
        patches=PatchRegistry(cfg.patch_registry).patches,
        last_sync=last_sync,
        smoke_reports=smoke,
        is_ancestor=is_ancestor,
        rejected=verdicts.load(cfg.work_dir),
    )


def main(*, upstream: str | None, origin: str | None, json_out: bool = False) -> Status:
    """`invoke status`: the table (or JSON) on stdout; exit 8 when action is needed."""
    cfg = config_mod.load()
    s = gather(cfg, upstream=upstream or cfg.upstream, origin=gitio.origin_url(cfg, origin))
    if json_out:  # the JSON is the result; the table stays for the person, on stderr
        console.result_json(s.to_json())
        console.show(render(s))
    else:
        console.result(render(s))
    if s.attention:
        for item in s.attention:
            console.err.print(f"  needs attention: {item}", markup=False)
        raise NeedsAttention(
            f"{len(s.attention)} item(s) need the maintainer (exit {EXIT_ATTENTION}); "
            "see the runbooks in docs/operations.md"
        )
    return s
