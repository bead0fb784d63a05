"""Keep the mirror in step with upstream: observe, plan, fetch what is missing, push atomically.

A run is three phases. `observe` asks both remotes for their refs (no objects move). `plan_refs`
is pure: from the two listings and the ledger it decides which refs to create or advance and
which alerts to raise. Only when the plan changes something does `apply` fetch objects into the
work repository, settle the fast-forward question, and push every update in one atomic push.
Origin is the source of truth on every run, so a crash anywhere leaves a state the next run
converges from.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sdkmirror.core import config as config_mod
from sdkmirror.core import reports
from sdkmirror.core.config import Config
from sdkmirror.core.errors import ExitCode, MirrorError, PushRefused
from sdkmirror.core.mirror_tag import Version, describe_invalid
from sdkmirror.core.reports import last_sync_path
from sdkmirror.infra import console, failpoints, gitio
from sdkmirror.infra.gitio import RemoteRefs, WorkRepo, WorkRepoDamaged, ls_remote
from sdkmirror.mirror import verdicts
from sdkmirror.mirror.ledger import MirrorLedger

EXIT_DIVERGED = ExitCode.DIVERGED
SHELL_HOSTILE = set(";|&$`'\"<>()\\!{}*?[] \t\n")


class Diverged(MirrorError):
    """Upstream rewrote its branch; the mirror branch is held where it was."""

    exit_code = EXIT_DIVERGED


@dataclass(frozen=True)
class Alert:
    kind: str
    ref: str
    detail: str


@dataclass(frozen=True)
class NewTag:
    name: str
    version: str
    object: str
    commit: str


@dataclass(frozen=True)
class NewBranch:
    name: str
    commit: str


@dataclass(frozen=True)
class SyncPlan:
    """Everything a run will change, decided before anything changes."""

    mirror_branch: str
    upstream_head: str
    mirror_before: str | None
    # None: unchanged. Set once the fast-forward question is settled (or trivially true).
    mirror_after: str | None
    ancestry_unknown: bool
    new_tags: tuple[NewTag, ...] = ()
    new_release_branches: tuple[NewBranch, ...] = ()
    adopt: tuple[NewTag, ...] = ()
    alerts: tuple[Alert, ...] = ()
    notices: tuple[Alert, ...] = ()
    # Tags refused in this run (name -> {object, reason}): recorded so they are reported once.
    refused: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def origin_changed(self) -> list[Alert]:
        return [a for a in self.alerts if a.kind in ORIGIN_CHANGED]

    @property
    def diverged(self) -> bool:
        return any(a.kind == "diverged" for a in self.alerts)

    @property
    def changes_origin(self) -> bool:
        return bool(self.branch_update or self.new_tags or self.new_release_branches)

    @property
    def branch_update(self) -> str | None:
        if self.mirror_after and self.mirror_after != self.mirror_before:
            return self.mirror_after
        return None

    def updates(self) -> dict[str, str]:
        """`ref -> object` for the one atomic push."""
        out: dict[str, str] = {}
        if self.branch_update:
            out[f"refs/heads/{self.mirror_branch}"] = self.branch_update
        for t in self.new_tags:
            out[f"refs/tags/{t.name}"] = t.object
        for b in self.new_release_branches:
            out[f"refs/heads/{b.name}"] = b.commit
        return out

    def describe(self) -> list[str]:
        lines: list[str] = []
        if self.ancestry_unknown:
            before, head = _short(self.mirror_before), _short(self.upstream_head)
            lines.append(f"{self.mirror_branch}: {before} -> {head} if it fast-forwards")
        elif self.branch_update:
            before, after = _short(self.mirror_before), _short(self.branch_update)
            lines.append(f"{self.mirror_branch}: {before} -> {after}")
        lines += [f"new tag {t.name} -> {_short(t.commit)}" for t in self.new_tags]
        lines += [f"new branch {b.name} -> {_short(b.commit)}" for b in self.new_release_branches]
        lines += [f"record in ledger: {t.name}" for t in self.adopt]
        lines += [f"alert {a.kind}: {a.ref}: {a.detail}" for a in self.alerts]
        return lines or ["nothing to do"]


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


def _hostile(name: str) -> bool:
    return any(c in SHELL_HOSTILE or ord(c) < 32 for c in name)


ORIGIN_CHANGED = ("tag-moved-on-origin", "tag-deleted-on-origin")
_PRERELEASE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+-\S+", re.ASCII)


def rejection(cfg: Config, name: str) -> str:
    """Why a release-prefixed tag name is not a release."""
    prefix, _, suffix = cfg.release_tag_pattern.partition("{version}")
    rest = name[len(prefix) :]
    if suffix and rest.endswith(suffix):
        rest = rest[: -len(suffix)]
    if _PRERELEASE.fullmatch(rest):
        return "a prerelease: only X.Y.Z releases are mirrored"
    return f"malformed: not exactly {cfg.release_tag_pattern} with an X.Y.Z version"


def version_key(cfg: Config, ref: str) -> tuple[int, Version, str]:
    """Sort key for anything named after a release (tag or branch): by version, then name."""
    v = cfg.tags.version_of(ref) or cfg.release_branches.version_of(ref)
    return (0, v, ref) if v is not None else (1, Version(0, 0, 0), ref)


def plan_refs(
    cfg: Config,
    upstream: RemoteRefs,
    origin: RemoteRefs,
    ledger_tags: Mapping[str, str],
    rejected: Mapping[str, Mapping[str, str]] | None = None,
) -> SyncPlan:
    """Decide the run from two ref listings, the ledger (tag -> object) and the tags refused
    before (name -> {object, reason}). Pure: no I/O. Linear in the number of refs.

    Origin is trusted only where upstream or the ledger vouches for it: a release tag on origin
    is adopted into the ledger only when it is on upstream's object, and a tag the ledger does
    not hold on an object upstream never had is a `foreign-tag` alert, never recorded. A mirror
    tag origin holds on another object than the ledger's, or lacks, was changed on origin: an
    alert naming origin, never rewritten here (`invoke verify --repair` restores it).
    """
    head = upstream.head(cfg.upstream_branch)
    if head is None:
        raise MirrorError(
            f"upstream has no branch {cfg.upstream_branch!r}; check [tool.sdkmirror] "
            "upstream_branch or the --upstream URL"
        )
    before = origin.head(cfg.mirror_branch)
    alerts: list[Alert] = []
    notices: list[Alert] = []
    refused: dict[str, dict[str, str]] = {}
    known = rejected or {}
    pattern, branches = cfg.tags, cfg.release_branches
    prefix = cfg.release_tag_pattern.split("{version}")[0]

    up_tags, org_tags, org_branches = upstream.tags(), origin.tags(), origin.branches()
    new_tags: list[NewTag] = []
    for name, obj in up_tags.items():
        version = pattern.version_of(name)
        if version is None:
            if name.startswith(prefix) or _hostile(name):
                if (known.get(name) or {}).get("object") == obj:
                    continue  # reported when it was refused; unchanged since
                reason = rejection(cfg, name) if name.startswith(prefix) else "hostile name"
                refused[name] = {"object": obj, "reason": reason}
                alerts.append(Alert("invalid-tag", describe_invalid(name), f"rejected: {reason}"))
            continue
        if (known.get(name) or {}).get("object") == obj:
            continue  # refused on this object before (not on a commit): reported then
        ours, recorded = org_tags.get(name), ledger_tags.get(name)
        if recorded is not None and ours != recorded:
            continue  # changed on origin: alerted below, once
        if ours is None:
            commit = upstream.commit_of_tag(name) or obj
            new_tags.append(NewTag(name, str(version), obj, commit))
            if not upstream.is_annotated(name):
                notices.append(
                    Alert(
                        "lightweight-tag",
                        name,
                        "not an annotated tag: mirrored as it is (policy: see docs/mirror.md)",
                    )
                )
        elif ours == obj:
            continue
        elif recorded is None:
            alerts.append(
                Alert(
                    "foreign-tag",
                    name,
                    f"origin has {_short(ours)}, upstream {_short(obj)}: pushed to origin, not "
                    "mirrored; not recorded, no release branch",
                )
            )
        else:
            alerts.append(
                Alert(
                    "tag-moved",
                    name,
                    f"upstream now points at {_short(obj)}; mirror keeps {_short(ours)}",
                )
            )

    for name, recorded in ledger_tags.items():
        ours = org_tags.get(name)
        if ours is None:
            alerts.append(
                Alert(
                    "tag-deleted-on-origin",
                    name,
                    f"origin lost it (the ledger has {_short(recorded)}): changed on origin, not "
                    "upstream; left as it is, restore with `invoke verify --repair`",
                )
            )
        elif ours != recorded:
            alerts.append(
                Alert(
                    "tag-moved-on-origin",
                    name,
                    f"origin has {_short(ours)}, the ledger {_short(recorded)}: changed on origin, "
                    "not upstream; left as it is, restore with `invoke verify --repair`",
                )
            )

    for name, ours in org_tags.items():
        if name in up_tags or pattern.version_of(name) is None:
            continue
        recorded = ledger_tags.get(name)
        if recorded is None:
            alerts.append(
                Alert(
                    "foreign-tag",
                    name,
                    "upstream never had it: pushed to origin, not mirrored; not recorded, "
                    "no release branch",
                )
            )
        elif recorded == ours:
            alerts.append(Alert("tag-deleted", name, "deleted upstream; mirror keeps its tag"))

    # Every mirror tag, old or new, gets its release branch on the tag's commit.
    wanted: dict[str, tuple[str, str]] = {}
    for name, ours in org_tags.items():
        version = pattern.version_of(name)
        if version is None:
            continue
        recorded = ledger_tags.get(name)
        if (recorded if recorded is not None else up_tags.get(name)) == ours:
            commit = origin.commit_of_tag(name) or ours
            wanted[branches.name_for(version)] = (commit, name)
    for t in new_tags:
        wanted[branches.name_for(t.version)] = (t.commit, t.name)
    new_branches: list[NewBranch] = []
    for bname, (commit, tag) in wanted.items():
        have = org_branches.get(bname)
        if have is None:
            new_branches.append(NewBranch(bname, commit))
        elif have != commit:
            alerts.append(
                Alert(
                    "release-branch-conflict",
                    bname,
                    f"points at {_short(have)}, but {tag} is {_short(commit)}; left as it is",
                )
            )

    adopt = tuple(
        NewTag(n, str(v), o, origin.commit_of_tag(n) or o)
        for n, o in org_tags.items()
        if n not in ledger_tags and up_tags.get(n) == o and (v := pattern.version_of(n)) is not None
    )

    if before is None:
        after, unknown = head, False
    elif before == head:
        after, unknown = None, False
    else:
        after, unknown = None, True

    def by_version(items: Iterable[Any]) -> tuple[Any, ...]:
        return tuple(
            sorted(items, key=lambda x: version_key(cfg, getattr(x, "ref", None) or x.name))
        )

    return SyncPlan(
        mirror_branch=cfg.mirror_branch,
        upstream_head=head,
        mirror_before=before,
        mirror_after=after,
        ancestry_unknown=unknown,
        new_tags=by_version(new_tags),
        new_release_branches=by_version(new_branches),
        adopt=by_version(adopt),
        alerts=by_version(dict.fromkeys(alerts)),
        notices=by_version(notices),
        refused=refused,
    )


def settle_ancestry(plan: SyncPlan, fast_forward: bool) -> SyncPlan:
    """Fill in the branch decision once the work repository can answer it."""
    if not plan.ancestry_unknown:
        return plan
    if fast_forward:
        return replace(plan, mirror_after=plan.upstream_head, ancestry_unknown=False)
    alert = Alert(
        "diverged",
        plan.mirror_branch,
        f"upstream {_short(plan.upstream_head)} does not descend from mirror "
        f"{_short(plan.mirror_before)}; branch held (history rewrite upstream)",
    )
    return replace(plan, ancestry_unknown=False, alerts=(alert, *plan.alerts))


SCHEMA = 1


@dataclass
class SyncReport:
    upstream: str
    origin: str
    dry_run: bool
    status: str = "failed"
    mirror_branch: dict[str, Any] = field(default_factory=dict)
    new_tags: list[dict[str, str]] = field(default_factory=list)
    new_release_branches: list[dict[str, str]] = field(default_factory=list)
    alerts: list[dict[str, str]] = field(default_factory=list)
    notices: list[dict[str, str]] = field(default_factory=list)
    # Every release-named tag sync will not take: name, object, reason (this run's and before).
    rejected: list[dict[str, str]] = field(default_factory=list)
    changed: bool = False
    ledger_changed: bool = False
    error: str | None = None
    plan: list[str] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "kind": "sync", **asdict(self)}

    def fill(self, plan: SyncPlan) -> None:
        self.mirror_branch = {
            "name": plan.mirror_branch,
            "before": plan.mirror_before,
            "after": plan.mirror_after or plan.mirror_before,
            "upstream": plan.upstream_head,
        }
        self.new_tags = [asdict(t) for t in plan.new_tags]
        self.new_release_branches = [asdict(b) for b in plan.new_release_branches]
        self.alerts = [asdict(a) for a in plan.alerts]
        self.notices = [asdict(a) for a in plan.notices]
        self.plan = plan.describe()


def run(cfg: Config, *, upstream: str, origin: str, dry_run: bool = False) -> SyncReport:
    """One sync run under the work-directory lock. Raises only for errors, not divergence."""
    report = SyncReport(upstream=upstream, origin=origin, dry_run=dry_run)
    start = time.monotonic()
    try:
        # A run with nothing to write (the daily no-op) needs no lock: what it read was the
        # converged state at that moment. Anything else takes the lock and reads again.
        seen = _observe(cfg, upstream, origin)
        if _settled(cfg, seen):
            _conclude(cfg, report, seen, origin=origin, dry_run=dry_run)
        else:
            from sdkmirror.infra.lock import exclusive  # filelock: only a run with work needs it

            with exclusive(cfg.work_dir, cfg.lock_timeout, "`invoke sync`"):
                _run_locked(cfg, report, upstream=upstream, origin=origin, dry_run=dry_run)
    except PushRefused as exc:
        kind = "push-auth-workflows" if exc.workflow_scope else "push-refused"
        detail = exc.reason
        if exc.workflow_scope:
            detail += (
                "; the push token lacks the `workflow` scope: set the SYNC_PAT secret to a token "
                "with `repo` + `workflow` scope"
            )
            exc = PushRefused(f"origin refused the push: {detail}", reason=detail)
        report.alerts.append({"kind": kind, "ref": origin, "detail": detail})
        report.error = str(exc)
        report.status = "failed"
        exc.report = report
        raise exc from None
    except MirrorError as exc:
        report.error = str(exc)
        report.status = "failed"
        exc.report = report
        raise
    finally:
        report.duration_s = round(time.monotonic() - start, 3)
    return report


@dataclass
class _Observed:
    """Both listings, the ledger and the rejections as one run read them, and their plan."""

    up_refs: RemoteRefs
    org_refs: RemoteRefs
    ledger: MirrorLedger
    known: dict[str, Any]
    plan: SyncPlan


def _observe(cfg: Config, upstream: str, origin: str) -> _Observed:
    # The two listings are independent round trips: taken at once, a no-op waits for one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        up_job = pool.submit(
            ls_remote,
            upstream,
            [f"refs/heads/{cfg.upstream_branch}", "refs/tags/*"],
            name="upstream",
        )
        org_job = pool.submit(ls_remote, origin, name="origin")
        up_refs, org_refs = up_job.result(), org_job.result()
    ledger = MirrorLedger(cfg.mirror_ledger, cache_dir=cfg.work_dir)
    known = verdicts.still_rejected(verdicts.load(cfg.work_dir), up_refs.tags())
    plan = plan_refs(cfg, up_refs, org_refs, {n: r.object for n, r in ledger.tags.items()}, known)
    return _Observed(up_refs, org_refs, ledger, known, plan)


def _settled(cfg: Config, seen: _Observed) -> bool:
    """Nothing to write: not origin, not the work repository, not the ledger, not the
    rejections. (The ledger is checked on the copy just read, which is then dropped.)"""
    plan = seen.plan
    if plan.changes_origin or plan.ancestry_unknown:
        return False
    if {**seen.known, **plan.refused} != verdicts.load(cfg.work_dir):
        return False
    return not _record(seen.ledger, plan, save=False)


def _run_locked(
    cfg: Config, report: SyncReport, *, upstream: str, origin: str, dry_run: bool
) -> None:
    seen = _observe(cfg, upstream, origin)
    plan = seen.plan
    if plan.changes_origin or plan.ancestry_unknown:
        repo = WorkRepo(cfg.work_repo)
        args = (cfg, plan, report, upstream, origin, seen.org_refs, dry_run)
        try:
            seen.plan = _fetch_and_push(repo, *args)
        except WorkRepoDamaged as exc:
            # Objects a killed run fetched can rot on disk; `has()` still finds them, so only
            # reading them tells. The work repository is a cache: rebuild it and go again.
            console.warn(f"{exc}; rebuilding it and fetching again")
            repo.rebuild()
            seen.plan = _fetch_and_push(repo, *args)
        _conclude(cfg, report, seen, origin=origin, dry_run=dry_run, filled=True)
    else:
        _conclude(cfg, report, seen, origin=origin, dry_run=dry_run)


def _conclude(
    cfg: Config,
    report: SyncReport,
    seen: _Observed,
    *,
    origin: str,
    dry_run: bool,
    filled: bool = False,
) -> None:
    """The report of a run whose refs are settled, and the ledger and rejections it leaves."""
    plan = seen.plan
    if not filled:
        report.fill(plan)
        if dry_run:
            _print_plan(plan, dry_run=True, origin=origin)
    rejected = {**seen.known, **plan.refused}
    report.rejected = [
        {"name": n, **rejected[n]} for n in sorted(rejected, key=lambda n: version_key(cfg, n))
    ]
    report.changed = plan.changes_origin and not dry_run
    if not dry_run:
        report.ledger_changed = _record(seen.ledger, plan)
        if rejected != verdicts.load(cfg.work_dir):
            verdicts.save(cfg.work_dir, rejected)
    report.status = "diverged" if plan.diverged else ("updated" if plan.changes_origin else "noop")


def _fetch_and_push(
    repo: WorkRepo,
    cfg: Config,
    plan: SyncPlan,
    report: SyncReport,
    upstream: str,
    origin: str,
    org_refs: RemoteRefs,
    dry_run: bool,
) -> SyncPlan:
    with console.step("fetch from upstream and origin"):
        _fetch(repo, cfg, plan, upstream=upstream, origin=origin, origin_refs=org_refs)
    failpoints.reach("after-fetch")
    if plan.ancestry_unknown:
        ff = repo.is_ancestor(plan.mirror_before or "", plan.upstream_head)
        plan = settle_ancestry(plan, ff)
    plan = _drop_non_commits(repo, cfg, plan)
    report.fill(plan)
    if dry_run:
        _print_plan(plan, dry_run=True, origin=origin)
    elif plan.changes_origin:
        updates = plan.updates()
        failpoints.reach("after-local-refs")
        with console.step(f"push {len(updates)} ref(s) to origin in one atomic push"):
            repo.push_staged(origin, updates)
        failpoints.reach("after-push")
    return plan


def _glob(prefix: str, into: str) -> str:
    """One refspec for every release tag: git matches one glob in linear time, where one
    explicit refspec per tag is quadratic."""
    return f"+refs/tags/{prefix}*:refs/{into}/tags/{prefix}*"


def _fetch(
    repo: WorkRepo,
    cfg: Config,
    plan: SyncPlan,
    *,
    upstream: str,
    origin: str,
    origin_refs: RemoteRefs,
) -> None:
    prefix = cfg.release_tag_pattern.split("{version}")[0]
    wanted = [plan.upstream_head, *(t.object for t in plan.new_tags)]
    wanted += [plan.mirror_before] if plan.mirror_before else []
    absent = repo.missing(wanted)
    up_specs: list[str] = []
    if plan.upstream_head in absent:
        u = cfg.upstream_branch
        up_specs.append(f"+refs/heads/{u}:refs/upstream/heads/{u}")
    if any(t.object in absent for t in plan.new_tags):
        up_specs.append(_glob(prefix, "upstream"))
    repo.fetch(upstream, up_specs, name="upstream")

    org_specs: list[str] = []
    if plan.mirror_before in absent:
        m = cfg.mirror_branch
        org_specs.append(f"+refs/heads/{m}:refs/origin/heads/{m}")
    # Release branches for mirror tags this work repository never fetched (a new cache).
    if repo.missing(b.commit for b in plan.new_release_branches):
        org_specs.append(_glob(prefix, "origin"))
    repo.fetch(origin, org_specs, name="origin")


def _drop_non_commits(repo: WorkRepo, cfg: Config, plan: SyncPlan) -> SyncPlan:
    """A release tag must name a commit; one on a tree or blob is rejected, not mirrored."""
    types = repo.object_types(t.commit for t in plan.new_tags)
    bad = {t.name: types.get(t.commit, "missing") for t in plan.new_tags}
    bad = {n: kind for n, kind in bad.items() if kind != "commit"}
    if not bad:
        return plan
    bad_commits = {t.commit for t in plan.new_tags if t.name in bad}
    refused = dict(plan.refused)
    alerts = list(plan.alerts)
    for t in plan.new_tags:
        if t.name in bad:
            reason = f"points at a {bad[t.name]}, not a commit"
            refused[t.name] = {"object": t.object, "reason": reason}
            alerts.append(Alert("invalid-tag", t.name, f"rejected: {reason}"))
    return replace(
        plan,
        new_tags=tuple(t for t in plan.new_tags if t.name not in bad),
        new_release_branches=tuple(
            b for b in plan.new_release_branches if b.commit not in bad_commits
        ),
        notices=tuple(n for n in plan.notices if n.ref not in bad),
        alerts=tuple(sorted(alerts, key=lambda a: version_key(cfg, a.ref))),
        refused=refused,
    )


def _record(ledger: MirrorLedger, plan: SyncPlan, *, save: bool = True) -> bool:
    """Write what origin now holds into the ledger; only ever adds. Whether it changed."""
    changed = False
    for t in (*plan.adopt, *plan.new_tags):
        changed |= ledger.add_tag(t.name, t.object, t.commit)
    head = plan.branch_update or plan.mirror_before
    if head:
        changed |= ledger.add_branch_head(plan.mirror_branch, head)
    if changed and save:
        ledger.save()
    return changed


def _print_plan(plan: SyncPlan, *, dry_run: bool, origin: str) -> None:
    title = "sync plan (dry run: nothing pushed, ledger untouched)" if dry_run else "sync plan"
    console.result(console.table(title, ["step"], summarized([[ln] for ln in plan.describe()])))
    updates = plan.updates()
    if dry_run and updates:
        spaces = sorted({ref.split("/")[1] for ref in updates})
        console.info(
            f"would run: git push --atomic --porcelain -- {origin} "
            + " ".join(f"refs/push/{s}/*:refs/{s}/*" for s in spaces)
            + f"  ({len(updates)} ref(s) staged under refs/push/)"
        )


HEAD_ROWS, TAIL_ROWS = 10, 5


def summarized(rows: list[list[str]]) -> list[list[str]]:
    """A long table as its first and last rows and a count: the whole list is in `--json`."""
    if len(rows) <= HEAD_ROWS + TAIL_ROWS + 1:
        return rows
    hidden = len(rows) - HEAD_ROWS - TAIL_ROWS
    gap = [f"... {hidden} more row(s): the full list is in --json and the report"]
    gap += [""] * (len(rows[0]) - 1)
    return [*rows[:HEAD_ROWS], gap, *rows[-TAIL_ROWS:]]


def summarize(report: SyncReport, *, to_stderr: bool = False) -> None:
    """The run as a table on stdout (on stderr when `--json` holds stdout)."""
    rows: list[list[str]] = []
    mb = report.mirror_branch
    if mb:
        moved = mb.get("before") != mb.get("after")
        rows.append(
            [
                f"branch {mb['name']}",
                f"{_short(mb.get('before'))} -> {_short(mb.get('after'))}"
                if moved
                else "unchanged",
            ]
        )
    rows += [[f"tag {t['name']}", f"new at {_short(t['commit'])}"] for t in report.new_tags]
    rows += [
        [f"branch {b['name']}", f"new at {_short(b['commit'])}"]
        for b in report.new_release_branches
    ]
    rows += [[f"alert {a['kind']}", f"{a['ref']}: {a['detail']}"] for a in report.alerts]
    verb = "would be " if report.dry_run else ""
    (console.show if to_stderr else console.result)(
        console.table(
            f"sync: {report.status}{' (dry run)' if report.dry_run else ''}",
            ["ref", f"{verb}change"],
            summarized(rows),
        )
    )
    for n in report.notices:
        console.info(f"notice: {n['ref']}: {n['detail']}")
    if report.ledger_changed:
        console.manual(["invoke", "ledger.commit", "--push"], "commit the updated ledger to main")


class OriginChanged(MirrorError):
    """A mirror tag was moved or deleted on origin itself (exit 8): a person must look."""

    exit_code = ExitCode.ATTENTION


def main(
    *,
    upstream: str | None,
    origin: str | None,
    dry_run: bool,
    report: str | None,
    json_out: bool = False,
) -> None:
    """`invoke sync`: run, summarise, write the JSON report; exit 3 when held on divergence,
    8 when origin changed a mirror tag."""
    cfg = config_mod.load()
    upstream_url = upstream or cfg.upstream
    origin_url = gitio.origin_url(cfg, origin)
    reports.check_writable(report)  # before anything is pushed, not after
    result: SyncReport | None = None
    try:
        result = run(cfg, upstream=upstream_url, origin=origin_url, dry_run=dry_run)
    except MirrorError as exc:
        failed = getattr(exc, "report", None) or SyncReport(
            upstream=upstream_url, origin=origin_url, dry_run=dry_run, error=str(exc)
        )
        _persist(cfg, report, failed)
        if json_out:
            console.result_json(failed.to_json())
        if failed.alerts:
            summarize(failed, to_stderr=json_out)
        raise
    _persist(cfg, report, result)
    if json_out:
        console.result_json(result.to_json())
    summarize(result, to_stderr=json_out)
    changed = [a for a in result.alerts if a["kind"] in ORIGIN_CHANGED]
    if changed:
        names = ", ".join(a["ref"] for a in changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        raise OriginChanged(
            f"{len(changed)} mirror tag(s) moved or deleted on origin itself, not upstream: "
            f"{names}; left as they are. See the plan with `invoke verify --repair`"
        )
    if result.status == "diverged":
        raise Diverged(
            f"upstream rewrote {cfg.upstream_branch}; {cfg.mirror_branch} held at "
            f"{_short(result.mirror_branch.get('before'))}. Follow the divergence runbook in the "
            "README before anything moves"
        )


def _persist(cfg: Config, path: str | None, report: SyncReport) -> None:
    data = report.to_json()
    if not report.dry_run:
        try:
            reports.write_json(
                last_sync_path(cfg.reports_dir, report.origin), data, what="the last-sync record"
            )
        except MirrorError as exc:
            console.warn(f"could not keep the report in {cfg.reports_dir}: {exc}")
    reports.write_json(path, data, what="the sync report")
