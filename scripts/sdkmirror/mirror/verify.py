"""Audit origin against the ledger and the mirror's rules; report every violation."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass

from sdkmirror.core import config as config_mod
from sdkmirror.core.config import Config
from sdkmirror.core.errors import MirrorError, VerificationFailed
from sdkmirror.infra import console, gitio
from sdkmirror.infra.gitio import RemoteRefs, WorkRepo, ls_remote
from sdkmirror.infra.lock import exclusive
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.patch_registry import PREFIX as PATCH_PREFIX
from sdkmirror.mirror.patch_registry import PatchRegistry


@dataclass(frozen=True)
class Violation:
    rule: str
    ref: str
    detail: str


def audit(
    cfg: Config,
    origin: RemoteRefs,
    ledger: MirrorLedger,
    is_ancestor: Callable[[str, str], bool],
    *,
    active_patches: Collection[str] = (),
) -> list[Violation]:
    """Every rule the mirror promises its consumers, checked against what origin holds now.

    `active_patches` are the branch names (`patch-NAME`) the patch registry holds as active.
    """
    found: list[Violation] = []
    tags = origin.tags()
    heads = origin.branches()
    for name, rec in sorted(ledger.tags.items()):
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
    # A release tag on origin the ledger does not hold was never mirrored from upstream.
    for name in sorted(tags):
        if cfg.tags.version_of(name) is not None and name not in ledger.tags:
            found.append(
                Violation(
                    "tag-not-in-ledger",
                    name,
                    f"origin has {tags[name][:12]}; the ledger never recorded it (not mirrored "
                    "from upstream, or the last sync did not finish: run `invoke sync`)",
                )
            )
    # Every mirror branch the ledger knows, the configured one and any retired by a rewrite.
    for branch, recorded in sorted(ledger.mirror_branches.items()):
        current = origin.head(branch)
        if current is None:
            found.append(Violation("mirror-branch-missing", branch, "absent on origin"))
            continue
        for sha in recorded:
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


def not_mirrored(cfg: Config, upstream: RemoteRefs, origin: RemoteRefs) -> list[str]:
    """Upstream release tags origin does not hold yet, oldest first: the next sync takes them."""
    have = origin.tags()
    pending = {
        v: name
        for name in upstream.tags()
        if (v := cfg.tags.version_of(name)) is not None and name not in have
    }
    return [pending[v] for v in sorted(pending)]


def pending(cfg: Config, *, upstream: str, origin: str) -> list[str]:
    """`not_mirrored` from two `ls-remote` calls: nothing is fetched."""
    tags = ["refs/tags/*"]
    return not_mirrored(
        cfg, ls_remote(upstream, tags, name="upstream"), ls_remote(origin, tags, name="origin")
    )


def run(cfg: Config, *, origin: str) -> list[Violation]:
    refs = ls_remote(origin, name="origin")
    ledger = MirrorLedger(cfg.mirror_ledger)
    with exclusive(cfg.work_dir, cfg.lock_timeout, "`invoke verify`"):
        repo = WorkRepo(cfg.work_repo)
        specs = [
            f"+refs/heads/{b}:refs/origin/heads/{b}"
            for b in ledger.mirror_branches
            if (head := refs.head(b)) and not repo.has(head)
        ]
        repo.fetch(origin, specs, name="origin")

        def is_ancestor(a: str, b: str) -> bool:
            return repo.has(a) and repo.is_ancestor(a, b)

        active = [p.branch for p in PatchRegistry(cfg.patch_registry).active().values()]
        return audit(cfg, refs, ledger, is_ancestor, active_patches=active)


def main(
    *, origin: str | None, upstream: str | None = None, json_out: bool = False
) -> list[Violation]:
    """`invoke verify`: list violations and fail when there is any.

    With `upstream`, also list its release tags not mirrored yet: information, not a violation.
    """
    cfg = config_mod.load()
    origin_url = gitio.origin_url(cfg, origin)
    found = run(cfg, origin=origin_url)
    if upstream:
        _show_pending(cfg, upstream=upstream, origin=origin_url)
    if json_out:
        console.out.print_json(data=[asdict(v) for v in found])
    ledger = MirrorLedger(cfg.mirror_ledger)
    if found:
        console.show(
            console.table(
                f"verify: {len(found)} violation(s)",
                ["rule", "ref", "detail"],
                [[v.rule, v.ref, v.detail] for v in found],
            )
        )
        raise VerificationFailed(
            f"{len(found)} violation(s) of the mirror's rules; never move a mirror tag back by "
            "hand without reading the moved-tag runbook in the README"
        )
    console.info(
        f"verify: ok ({len(ledger.tags)} mirror tag(s), "
        f"{sum(map(len, ledger.mirror_branches.values()))} recorded mirror-branch head(s))"
    )
    return found


def _show_pending(cfg: Config, *, upstream: str, origin: str) -> None:
    try:
        tags = pending(cfg, upstream=upstream, origin=origin)
    except MirrorError as exc:
        console.warn(f"{exc}; upstream release tags not compared")
        return
    if not tags:
        console.info(f"verify: every upstream release tag is mirrored ({upstream})")
        return
    shown = ", ".join(tags[:5]) + (f" and {len(tags) - 5} more" if len(tags) > 5 else "")
    console.info(
        f"verify: {len(tags)} upstream release tag(s) not mirrored yet, the next "
        f"`invoke sync` takes them (not a violation): {shown}"
    )
