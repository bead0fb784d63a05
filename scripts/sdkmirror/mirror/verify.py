"""Audit origin against the ledger and the mirror's rules; report every violation.

Read-only: the run lock is held only while the work repository fetches the mirror branches
(for the ancestry questions), never for the audit itself, so a sync is not refused while a
large mirror is audited. `--repair` is the one writer here: it restores mirror tags moved or
deleted on origin from the ledger's objects, as a plan first (dry run by default).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sdkmirror.core import config as config_mod
from sdkmirror.core.config import Config
from sdkmirror.core.errors import GitError, MirrorError, VerificationFailed
from sdkmirror.core.mirror_tag import Version
from sdkmirror.infra import console, gitio
from sdkmirror.infra.gitio import TRANSFER_TIMEOUT, RemoteRefs, WorkRepo, ls_remote, stalled
from sdkmirror.infra.lock import exclusive
from sdkmirror.mirror import verdicts
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.patch_registry import PREFIX as PATCH_PREFIX
from sdkmirror.mirror.patch_registry import PatchRegistry

SCHEMA = 1


@dataclass(frozen=True)
class Violation:
    rule: str
    ref: str
    detail: str


@dataclass(frozen=True)
class Foreign:
    """A release-named tag on origin that is neither upstream's nor in the ledger."""

    name: str
    object: str
    inspect: list[list[str]]  # the commands that show it (run by a person, never by us)
    delete: list[str]  # the command that deletes it on origin (never run by us)


@dataclass(frozen=True)
class Restore:
    """One mirror tag `--repair` puts back on the ledger's object."""

    name: str
    origin_has: str | None  # None: deleted on origin
    ledger_object: str


@dataclass
class Audit:
    violations: list[Violation] = field(default_factory=list)
    foreign: list[Foreign] = field(default_factory=list)
    repair: list[Restore] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "kind": "verify",
            "ok": not self.violations,
            "violations": [asdict(v) for v in self.violations],
            "foreign": [asdict(f) for f in self.foreign],
            "repair": [asdict(r) for r in self.repair],
            "pending": self.pending,
            "rejected": self.rejected,
        }


def _by_version(cfg: Config, names: Collection[str]) -> list[str]:
    return sorted(names, key=lambda n: (cfg.tags.version_of(n) or Version(0, 0, 0), n))


def foreign_tags(
    cfg: Config, origin: RemoteRefs, upstream: RemoteRefs | None, ledger: MirrorLedger, url: str
) -> list[Foreign]:
    """Release tags on origin the ledger does not hold, on an object upstream does not have
    under that name. Without an upstream listing nothing can be called foreign."""
    if upstream is None:
        return []
    theirs = upstream.tags()
    names = [
        n
        for n, o in origin.tags().items()
        if cfg.tags.version_of(n) is not None and n not in ledger.tags and theirs.get(n) != o
    ]
    out = []
    for n in _by_version(cfg, names):
        local = f"refs/foreign/{n}"
        out.append(
            Foreign(
                n,
                origin.tags()[n],
                inspect=[
                    ["git", "fetch", "--no-tags", "--", url, f"+refs/tags/{n}:{local}"],
                    ["git", "show", "--stat", local],
                ],
                delete=["git", "push", "--", url, f":refs/tags/{n}"],
            )
        )
    return out


def audit(
    cfg: Config,
    origin: RemoteRefs,
    ledger: MirrorLedger,
    is_ancestor: Callable[[str, str], bool],
    *,
    active_patches: Collection[str] = (),
    upstream: RemoteRefs | None = None,
) -> list[Violation]:
    """Every rule the mirror promises its consumers, checked against what origin holds now.

    `active_patches` are the branch names (`patch-NAME`) the patch registry holds as active.
    With `upstream`, an unrecorded release tag on upstream's object is one the last sync did
    not finish recording, and any other is foreign. Linear in the number of refs.
    """
    found: list[Violation] = []
    tags = origin.tags()
    heads = origin.branches()
    recorded = ledger.tags
    for name in _by_version(cfg, recorded):
        rec = recorded[name]
        have = tags.get(name)
        recorded_obj = rec.object[:12]
        if have is None:
            found.append(Violation("tag-missing", name, f"ledger has {recorded_obj}; origin none"))
        elif have != rec.object:
            found.append(
                Violation("tag-moved", name, f"ledger has {recorded_obj}, origin has {have[:12]}")
            )
        version = cfg.tags.version_of(name)
        if version is None:
            continue
        branch = cfg.release_branches.name_for(version)
        at = heads.get(branch)
        expected = rec.commit[:12]
        if at is None:
            found.append(Violation("release-branch-missing", branch, f"{name} is {expected}"))
        elif at != rec.commit:
            found.append(
                Violation("release-branch-moved", branch, f"at {at[:12]}, {name} is {expected}")
            )
    theirs = upstream.tags() if upstream else {}
    unrecorded = [n for n in tags if cfg.tags.version_of(n) is not None and n not in recorded]
    for name in _by_version(cfg, unrecorded):
        if upstream is not None and theirs.get(name) != tags[name]:
            found.append(
                Violation(
                    "foreign-tag",
                    name,
                    f"origin has {tags[name][:12]}: neither upstream's nor in the ledger; never "
                    "mirrored, not a release (see `foreign` for the commands)",
                )
            )
        else:
            found.append(
                Violation(
                    "tag-not-in-ledger",
                    name,
                    f"origin has {tags[name][:12]}; the ledger never recorded it (not mirrored "
                    "from upstream, or the last sync did not finish: run `invoke sync`)",
                )
            )
    # Every mirror branch the ledger knows, the configured one and any retired by a rewrite.
    for branch, past in sorted(ledger.mirror_branches.items()):
        current = origin.head(branch)
        if current is None:
            found.append(Violation("mirror-branch-missing", branch, "absent on origin"))
            continue
        for sha in past:
            if sha != current and not is_ancestor(sha, current):
                found.append(
                    Violation(
                        "mirror-branch-rewritten",
                        branch,
                        f"{sha[:12]} (a past head) is not in the history of {current[:12]}",
                    )
                )
    found += patch_violations(heads, active_patches)
    return found


def patch_violations(heads: Mapping[str, str], active: Collection[str]) -> list[Violation]:
    """A `patch-*` branch must be registered as active; an active one must exist."""
    found = [
        Violation(
            "unregistered-patch-branch",
            b,
            "not an active patch in the registry: register it with `invoke patch.new` or "
            "delete it on origin",
        )
        for b in sorted(heads)
        if b.startswith(PATCH_PREFIX) and b not in active
    ]
    found += [
        Violation("patch-branch-missing", b, "registered as active but absent on origin")
        for b in sorted(active)
        if b not in heads
    ]
    return found


def not_mirrored(
    cfg: Config,
    upstream: RemoteRefs,
    origin: RemoteRefs,
    rejected: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Upstream release tags origin does not hold yet, oldest first: the next sync takes them.
    A tag sync refused on the object upstream still has (not a commit) is not pending."""
    have = origin.tags()
    refused = rejected or {}
    pending = {
        v: name
        for name, obj in upstream.tags().items()
        if (v := cfg.tags.version_of(name)) is not None
        and name not in have
        and (refused.get(name) or {}).get("object") != obj
    }
    return [pending[v] for v in sorted(pending)]


def pending(cfg: Config, *, upstream: str, origin: str) -> list[str]:
    """`not_mirrored` from two `ls-remote` calls: nothing is fetched."""
    tags = ["refs/tags/*"]
    return not_mirrored(
        cfg,
        ls_remote(upstream, tags, name="upstream"),
        ls_remote(origin, tags, name="origin"),
        verdicts.load(cfg.work_dir),
    )


def _ancestry(
    cfg: Config, refs: RemoteRefs, ledger: MirrorLedger, origin: str
) -> Callable[[str, str], bool]:
    """`is_ancestor` for the mirror branches, from one `rev-list` per branch head. The lock is
    held only while the work repository fetches those heads."""
    with exclusive(cfg.work_dir, cfg.lock_timeout, "`invoke verify`"):
        repo = WorkRepo(cfg.work_repo)
        heads = [h for b in ledger.mirror_branches if (h := refs.head(b))]
        absent = repo.missing(heads)
        specs = [
            f"+refs/heads/{b}:refs/origin/heads/{b}"
            for b in ledger.mirror_branches
            if refs.head(b) in absent
        ]
        repo.fetch(origin, specs, name="origin")
    history: dict[str, set[str]] = {}

    def is_ancestor(a: str, b: str) -> bool:
        if b not in history:
            try:
                history[b] = repo.all_commits(b)
            except GitError:
                history[b] = set()
        return a in history[b]

    return is_ancestor


def _upstream_listing(url: str | None) -> RemoteRefs | None:
    if not url:
        return None
    try:
        return ls_remote(url, ["refs/tags/*"], name="upstream")
    except MirrorError as exc:
        console.warn(f"{exc}; upstream release tags not compared (foreign or pending unknown)")
        return None


def examine(cfg: Config, *, origin: str, upstream: str | None) -> Audit:
    """The whole audit: violations, foreign tags, the repair plan, pending and rejected tags."""
    refs = ls_remote(origin, name="origin")
    up = _upstream_listing(upstream)
    ledger = MirrorLedger(cfg.mirror_ledger, cache_dir=cfg.work_dir)
    is_ancestor = _ancestry(cfg, refs, ledger, origin)
    active = [p.branch for p in PatchRegistry(cfg.patch_registry).active().values()]
    found = audit(cfg, refs, ledger, is_ancestor, active_patches=active, upstream=up)
    tags = refs.tags()
    rejected = verdicts.load(cfg.work_dir)
    if up is not None:
        rejected = verdicts.still_rejected(rejected, up.tags())
    return Audit(
        violations=found,
        foreign=foreign_tags(cfg, refs, up, ledger, origin),
        repair=[
            Restore(n, tags.get(n), ledger.tags[n].object)
            for n in _by_version(cfg, ledger.tags)
            if tags.get(n) != ledger.tags[n].object
        ],
        pending=not_mirrored(cfg, up, refs, rejected) if up is not None else [],
        rejected=[{"name": n, **rejected[n]} for n in _by_version(cfg, rejected)],
    )


def run(cfg: Config, *, origin: str, upstream: str | None = None) -> list[Violation]:
    """The violations alone (upstream: `cfg.upstream` unless given)."""
    return examine(cfg, origin=origin, upstream=upstream or cfg.upstream).violations


# --- repair ---------------------------------------------------------------------------------


def repair_argv(origin: str, plan: list[Restore]) -> list[str]:
    """One atomic push; each lease is what origin held when the plan was made (none for a
    deleted tag), so a tag that changed again meanwhile is refused, never overwritten blind."""
    leases = [f"--force-with-lease=refs/tags/{r.name}:{r.origin_has or ''}" for r in plan]
    specs = [f"+{r.ledger_object}:refs/tags/{r.name}" for r in plan]
    return ["git", "push", "--atomic", "--porcelain", *leases, "--", origin, *specs]


def apply_repair(cfg: Config, origin: str, upstream: str, plan: list[Restore]) -> None:
    """Push the ledger's objects back; they come from the work repository, or from upstream
    when it still has them. An object neither holds is an error before anything is pushed."""
    with exclusive(cfg.work_dir, cfg.lock_timeout, "`invoke verify --repair`"):
        repo = WorkRepo(cfg.work_repo)
        absent = repo.missing(r.ledger_object for r in plan)
        if absent:
            prefix = cfg.release_tag_pattern.split("{version}")[0]
            repo.fetch(
                upstream, [f"+refs/tags/{prefix}*:refs/upstream/tags/{prefix}*"], name="upstream"
            )
            absent = repo.missing(absent)
        if absent:
            lost = [r.name for r in plan if r.ledger_object in absent]
            raise VerificationFailed(
                f"cannot repair {', '.join(lost)}: the ledger's object is neither in the work "
                f"repository ({cfg.work_repo}) nor on upstream; restore it from a clone that has it"
            )
        argv = repair_argv(origin, plan)[1:]
        try:
            repo.git(*argv, url=origin, auth=True, timeout=TRANSFER_TIMEOUT)
        except GitError as exc:
            if exc.timed_out:
                raise stalled("origin", origin, TRANSFER_TIMEOUT) from exc
            raise gitio.push_refusal(exc, "origin", origin) from exc


# --- the task -------------------------------------------------------------------------------


def render(result: Audit, origin: str) -> list[object]:
    """The tables and lines a person reads, in the order they matter."""
    out: list[object] = []
    if result.violations:
        out.append(
            console.table(
                f"verify: {len(result.violations)} violation(s)",
                ["rule", "ref", "detail"],
                [[v.rule, v.ref, v.detail] for v in result.violations],
            )
        )
    if result.foreign:
        out.append(
            console.table(
                f"foreign: {len(result.foreign)} release tag(s) on origin, neither upstream's nor "
                "in the ledger (nothing was run)",
                ["tag", "object", "inspect with", "delete with"],
                [
                    [
                        f.name,
                        f.object[:12],
                        " ; ".join(shlex.join(a) for a in f.inspect),
                        shlex.join(f.delete),
                    ]
                    for f in result.foreign
                ],
            )
        )
    if result.rejected:
        out.append(
            console.table(
                f"rejected: {len(result.rejected)} upstream tag(s) sync will not take",
                ["tag", "reason"],
                [[r["name"], r["reason"]] for r in result.rejected],
            )
        )
    return out


def main(
    *,
    origin: str | None,
    upstream: str | None = None,
    json_out: bool = False,
    repair: bool = False,
    dry_run: bool = True,
) -> list[Violation]:
    """`invoke verify`: list violations and fail when there is any (exit 7).

    Upstream (`--upstream`, else the configured one) tells foreign tags from unrecorded ones;
    with `--upstream` its release tags not mirrored yet are listed too (information).
    """
    cfg = config_mod.load()
    origin_url = gitio.origin_url(cfg, origin)
    upstream_url = upstream or cfg.upstream
    result = examine(cfg, origin=origin_url, upstream=upstream_url)
    if not upstream:
        result.pending = []
    if repair:
        _repair(cfg, result, origin_url, upstream_url, dry_run=dry_run, json_out=json_out)
        if not dry_run and result.repair:
            result = examine(cfg, origin=origin_url, upstream=upstream_url)
            if not upstream:
                result.pending = []
    shown = console.show if json_out else console.result  # with --json, tables on stderr
    if json_out:
        console.result_json(result.to_json())
    for item in render(result, origin_url):
        shown(item)
    if upstream:
        _show_pending(result.pending, upstream)
    if result.violations:
        raise VerificationFailed(
            f"{len(result.violations)} violation(s) of the mirror's rules; never move a mirror "
            "tag back by hand: `invoke verify --repair` shows the plan"
        )
    ledger = MirrorLedger(cfg.mirror_ledger)
    shown(
        f"verify: ok ({len(ledger.tags)} mirror tag(s), "
        f"{sum(map(len, ledger.mirror_branches.values()))} recorded mirror-branch head(s))"
    )
    return result.violations


def _repair(
    cfg: Config, result: Audit, origin: str, upstream: str, *, dry_run: bool, json_out: bool
) -> None:
    plan = result.repair
    if not plan:
        console.info("repair: every mirror tag is on the ledger's object; nothing to restore")
        return
    rows = [
        [r.name, r.origin_has[:12] if r.origin_has else "(deleted)", r.ledger_object[:12]]
        for r in plan
    ]
    title = "repair plan" + (" (dry run: nothing pushed)" if dry_run else "")
    table = console.table(title, ["mirror tag", "origin has", "restore to (ledger)"], rows)
    (console.show if json_out else console.result)(table)
    if dry_run:
        console.info(f"would run: {shlex.join(repair_argv(origin, plan))}")
        console.manual(["invoke", "verify", "--repair", "--no-dry-run"], "apply the plan")
        return
    with console.step(f"restore {len(plan)} mirror tag(s) on origin in one atomic push"):
        apply_repair(cfg, origin, upstream, plan)
    console.info(f"repair: restored {len(plan)} mirror tag(s) from the ledger's objects")


def _show_pending(tags: list[str], upstream: str) -> None:
    if not tags:
        console.info(f"verify: every upstream release tag is mirrored ({upstream})")
        return
    shown = ", ".join(tags[:5]) + (f" and {len(tags) - 5} more" if len(tags) > 5 else "")
    console.info(
        f"verify: {len(tags)} upstream release tag(s) not mirrored yet, the next "
        f"`invoke sync` takes them (not a violation): {shown}"
    )
