"""Audit origin against the ledger and the mirror's rules; report every violation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from . import console, taskutil
from .config import Config
from .errors import VerificationFailed
from .gitio import RemoteRefs, WorkRepo, ls_remote
from .ledger import MirrorLedger
from .lock import exclusive


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
) -> list[Violation]:
    """Every rule the mirror promises its consumers, checked against what origin holds now."""
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
    current = origin.head(cfg.mirror_branch)
    recorded = ledger.branch_heads
    if recorded and current is None:
        found.append(Violation("mirror-branch-missing", cfg.mirror_branch, "absent on origin"))
    elif current is not None:
        for sha in recorded:
            if sha != current and not is_ancestor(sha, current):
                found.append(
                    Violation(
                        "mirror-branch-rewritten",
                        cfg.mirror_branch,
                        f"{sha[:12]} (a past head) is not in the history of {current[:12]}",
                    )
                )
    return found


def run(cfg: Config, *, origin: str) -> list[Violation]:
    refs = ls_remote(origin, name="origin")
    ledger = MirrorLedger(cfg.mirror_ledger)
    current = refs.head(cfg.mirror_branch)
    with exclusive(cfg.work_dir, cfg.lock_timeout, "`invoke verify`"):
        repo = WorkRepo(cfg.work_repo)
        if current and ledger.branch_heads and not repo.has(current):
            m = cfg.mirror_branch
            repo.fetch(origin, [f"+refs/heads/{m}:refs/origin/heads/{m}"], name="origin")

        def is_ancestor(a: str, b: str) -> bool:
            return repo.has(a) and repo.is_ancestor(a, b)

        return audit(cfg, refs, ledger, is_ancestor)


def main(*, origin: str | None, json_out: bool = False) -> list[Violation]:
    """`invoke verify`: list violations and fail when there is any."""
    cfg = taskutil.load_config()
    found = run(cfg, origin=taskutil.origin_url(cfg, origin))
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
        f"verify: ok ({len(ledger.tags)} mirror tag(s), {len(ledger.branch_heads)} recorded "
        "mirror-branch head(s))"
    )
    return found
