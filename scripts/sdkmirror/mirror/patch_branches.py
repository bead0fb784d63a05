"""Local patch branches: `patch-NAME` on a mirror tag, each one registered, none forgotten.

The mirror never edits upstream code. When a fix cannot wait for upstream, it lives on a
`patch-NAME` branch that starts at a mirror tag's commit and is recorded in the patch registry
(why, on which tag, which upstream PR). Once upstream lands the fix the branch is deleted and
the record stays, marked retired. `invoke publish --source-ref patch-NAME` checks its patch here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

import nodesemver

from sdkmirror.core import config as config_mod
from sdkmirror.core.config import Config
from sdkmirror.core.errors import GitError, MirrorError, UsageError
from sdkmirror.infra import console, gitio
from sdkmirror.infra.gitio import RemoteRefs, WorkRepo, ls_remote, push_refusal
from sdkmirror.infra.lock import exclusive
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.patch_registry import (
    PREFIX,
    Patch,
    PatchRegistry,
    check_name,
    name_of_branch,
    utc_today,
)
from sdkmirror.mirror.patch_table import readme_path, sync_readme

_PR_URL = re.compile(r"https://[A-Za-z0-9.-]+(?::\d+)?/[^\s|<>`]*")


def _one_line(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text or "\n" in text or "\r" in text:
        raise UsageError(f"--{what} must be one non-empty line")
    if len(text) > 300:
        raise UsageError(f"--{what} is longer than 300 characters; link the details instead")
    return text


def check_pr_url(url: str | None) -> str:
    if not url:
        return ""
    if not _PR_URL.fullmatch(url):
        raise UsageError(f"--upstream-pr must be an https:// URL without spaces, got {url!r}")
    return url


# --- new ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewPlan:
    patch: Patch
    # The branch is already on origin at the base commit (an earlier run stopped before it
    # registered the patch): only the record is written.
    branch_exists: bool = False

    def describe(self) -> list[str]:
        p = self.patch
        lines = []
        if self.branch_exists:
            lines.append(f"{p.branch} already on origin at {p.commit[:12]}: register it only")
        else:
            lines.append(f"create {p.branch} on origin at {p.base} ({p.commit[:12]})")
        lines.append(f"register {p.name} in the patch registry: {p.reason}")
        return lines


def plan_new(
    cfg: Config,
    name: str,
    *,
    base: str,
    reason: str,
    upstream_pr: str | None,
    origin: RemoteRefs,
    registry: PatchRegistry,
    ledger: MirrorLedger,
    today: date | None = None,
) -> NewPlan:
    """Decide what `patch.new` does, from the registry, the ledger and origin's refs. Pure."""
    check_name(name)
    reason = _one_line(reason, "reason")
    pr = check_pr_url(upstream_pr)
    if cfg.tags.version_of(base) is None:
        raise UsageError(
            f"--base {base!r} is not a release tag name like {cfg.tags.name_for('1.2.3')}"
        )
    rec = ledger.tags.get(base)
    if rec is None:
        raise UsageError(
            f"--base {base} is not a mirror tag in {cfg.mirror_ledger.name}; "
            "pick one from the ledger (a patch starts on a mirrored release)"
        )
    on_origin = origin.tags().get(base)
    if on_origin != rec.object:
        raise UsageError(
            f"mirror tag {base} on origin is {on_origin[:12] if on_origin else 'missing'}, "
            f"the ledger says {rec.object[:12]}; run `invoke verify` and fix that first"
        )
    branch = PREFIX + name
    known = registry.patches.get(name)
    if known is not None:
        raise UsageError(
            f"patch {name!r} is already registered ({known.status}, on {known.base}); "
            "choose another name"
        )
    existing = origin.branches().get(branch)
    if existing is not None and existing != rec.commit:
        raise UsageError(
            f"origin already has {branch} at {existing[:12]}, not on {base}; "
            "choose another name or delete that branch first"
        )
    patch = Patch(name, base, rec.commit, reason, pr, "active", today or utc_today())
    return NewPlan(patch, branch_exists=existing is not None)


def apply_new(cfg: Config, plan: NewPlan, *, origin: str, registry: PatchRegistry) -> None:
    """Create the branch on origin, then record it; a crash in between converges on re-run."""
    p = plan.patch
    if not plan.branch_exists:
        repo = WorkRepo(cfg.work_repo)
        if not repo.has(p.commit):
            with console.step(f"fetch {p.base} from origin"):
                repo.fetch(
                    origin, [f"+refs/tags/{p.base}:refs/origin/tags/{p.base}"], name="origin"
                )
        with console.step(f"push {p.branch} to origin"):
            repo.push_atomic(origin, {f"refs/heads/{p.branch}": p.commit})
    registry.add(p)
    registry.save()


def base_drift(base: str, mirror_object: str, upstream: RemoteRefs) -> str | None:
    """One warning line when upstream's `base` tag is not the mirror's object, else None."""
    theirs = upstream.tags().get(base)
    if theirs == mirror_object:
        return None
    where = f"points at {theirs[:12]}" if theirs else "no longer exists"
    return (
        f"upstream's {base} {where}; the mirror tag keeps {mirror_object[:12]} and the patch "
        "starts there (see the moved-tag runbook)"
    )


def _upstream_refs(url: str, patterns: list[str]) -> RemoteRefs | None:
    """Upstream's refs for an informative check: unreachable is a warning, not a failure."""
    try:
        return ls_remote(url, patterns, name="upstream")
    except MirrorError as exc:
        console.warn(f"{exc}; skipped the upstream check")
        return None


def new(
    cfg: Config,
    name: str,
    *,
    base: str,
    reason: str,
    upstream_pr: str | None,
    origin: str,
    dry_run: bool,
    upstream: str | None = None,
) -> NewPlan:
    with exclusive(cfg.work_dir, cfg.lock_timeout, "`invoke patch.new`"):
        refs = ls_remote(origin, name="origin")
        registry = PatchRegistry(cfg.patch_registry)
        plan = plan_new(
            cfg,
            name,
            base=base,
            reason=reason,
            upstream_pr=upstream_pr,
            origin=refs,
            registry=registry,
            ledger=MirrorLedger(cfg.mirror_ledger),
        )
        up = _upstream_refs(upstream or cfg.upstream, [f"refs/tags/{base}"])
        mirror_object = refs.tags().get(base, "")
        if up is not None and (warning := base_drift(base, mirror_object, up)):
            console.warn(warning)
        _show_plan("patch.new", plan.describe(), dry_run)
        if not dry_run:
            apply_new(cfg, plan, origin=origin, registry=registry)
            sync_readme(cfg, registry)
    return plan


# --- retire -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetirePlan:
    patch: Patch
    head: str | None  # the branch head on origin now; None when it is already gone

    def describe(self) -> list[str]:
        p = self.patch
        lines = []
        if self.head:
            lines.append(f"delete {p.branch} on origin (head {self.head[:12]})")
        else:
            lines.append(f"{p.branch} is already gone from origin")
        lines.append(f"mark {p.name} retired in the patch registry (record kept)")
        return lines


def plan_retire(
    name: str, *, origin: RemoteRefs, registry: PatchRegistry, today: date | None = None
) -> RetirePlan:
    check_name(name)
    patch = registry.patches.get(name)
    if patch is None:
        raise UsageError(f"no patch {name!r} in the registry; `invoke patch.list` shows them")
    if not patch.active:
        raise UsageError(f"patch {name!r} was already retired on {patch.retired}")
    head = origin.branches().get(patch.branch)
    return RetirePlan(replace(patch, status="retired", retired=today or utc_today()), head)


def apply_retire(cfg: Config, plan: RetirePlan, *, origin: str, registry: PatchRegistry) -> None:
    """Delete the branch only if it is still where we saw it, then mark the record retired."""
    p = plan.patch
    if plan.head:
        repo = WorkRepo(cfg.work_repo)
        ref = f"refs/heads/{p.branch}"
        with console.step(f"delete {p.branch} on origin"):
            try:
                repo.git(
                    "push",
                    "--porcelain",
                    f"--force-with-lease={ref}:{plan.head}",
                    "--",
                    origin,
                    f":{ref}",
                    url=origin,
                    auth=True,
                    timeout=gitio.TRANSFER_TIMEOUT,
                )
            except GitError as exc:
                raise push_refusal(exc, "origin", origin) from exc
    registry.retire(p.name, when=p.retired or utc_today(), head=plan.head or "")
    registry.save()


def newest_release(cfg: Config, refs: RemoteRefs) -> str | None:
    """The release tag with the highest version among `refs`' tags."""
    versions = {v: n for n in refs.tags() if (v := cfg.tags.version_of(n)) is not None}
    return versions[max(versions)] if versions else None


def release_hint(cfg: Config, patch: Patch, newest: str | None) -> str:
    """What upstream's newest release says about retiring `patch`, in one line."""
    pr = f" (upstream PR: {patch.upstream_pr})" if patch.upstream_pr else ""
    if newest is None:
        return f"upstream has no release tag yet; retire {patch.branch} once one carries the fix"
    base_v, newest_v = cfg.tags.version_of(patch.base), cfg.tags.version_of(newest)
    if base_v is not None and newest_v is not None and newest_v <= base_v:
        return (
            f"upstream's newest release is {newest}, not newer than the patch's base "
            f"{patch.base}: the fix has not shipped in a release yet{pr}"
        )
    return f"upstream's newest release is {newest}: confirm it carries the fix{pr}"


def retire(
    cfg: Config, name: str, *, origin: str, dry_run: bool, upstream: str | None = None
) -> RetirePlan:
    with exclusive(cfg.work_dir, cfg.lock_timeout, "`invoke patch.retire`"):
        registry = PatchRegistry(cfg.patch_registry)
        plan = plan_retire(name, origin=ls_remote(origin, name="origin"), registry=registry)
        up = _upstream_refs(upstream or cfg.upstream, ["refs/tags/*"])
        if up is not None:
            console.result(release_hint(cfg, plan.patch, newest_release(cfg, up)))
        _show_plan("patch.retire", plan.describe(), dry_run)
        if not dry_run:
            apply_retire(cfg, plan, origin=origin, registry=registry)
            sync_readme(cfg, registry)
    return plan


# --- publishing from a patch branch -------------------------------------------------------------


def for_source_ref(cfg: Config, ref: str) -> Patch:
    """The active patch a `--source-ref patch-NAME` names, or one clear error."""
    name = name_of_branch(ref)
    if name is None:
        raise UsageError(f"--source-ref {ref!r} is not a patch branch (patch-NAME)")
    check_name(name)
    patch = PatchRegistry(cfg.patch_registry).patches.get(name)
    if patch is None or not patch.active:
        state = "retired" if patch else "not registered"
        raise UsageError(
            f"--source-ref {ref}: that patch is {state}; only active registered patches publish "
            "(`invoke patch.list`)"
        )
    return patch


def publish_source(
    cfg: Config, source_ref: str, *, source_tag: str, version_override: str | None
) -> Patch:
    """Everything `invoke publish --source-ref patch-NAME` must hold before it builds anything:
    an active registered patch, stacked on `source_tag`, published under a prerelease version.
    The build then takes the branch head (`refs/heads/patch-NAME`) instead of the tag."""
    patch = for_source_ref(cfg, source_ref)
    if patch.base != source_tag:
        raise UsageError(
            f"{patch.branch} is based on {patch.base}, not {source_tag}; pass --source-tag "
            f"'{patch.base}'"
        )
    check_patch_version(version_override, patch)
    return patch


def check_patch_version(version: str | None, patch: Patch) -> str:
    """A patch build must not take a plain release version: it needs a prerelease suffix."""
    hint = f"pass --version-override X.Y.Z-patch.N (for example 0.9.3-patch.1) for {patch.branch}"
    if not version:
        raise UsageError(f"publishing from {patch.branch} needs a version override: {hint}")
    parsed = nodesemver.parse(version, False)
    if parsed is None or str(parsed.version) != version or not parsed.prerelease:
        raise UsageError(f"version {version!r} is not X.Y.Z with a prerelease suffix: {hint}")
    return version


# --- task entry points --------------------------------------------------------------------------


def _show_plan(what: str, lines: list[str], dry_run: bool) -> None:
    title = f"{what} plan" + (" (dry run: nothing changed)" if dry_run else "")
    console.result(console.table(title, ["step"], [[ln] for ln in lines]))


def _commit_hint(cfg: Config, message: str) -> None:
    files = [str(cfg.patch_registry.relative_to(cfg.root))]
    if readme_path(cfg).is_file():
        files.append("README.md")
    console.manual(["git", "commit", "-m", message, "--", *files], "commit the registry")


def main_new(
    *,
    name: str,
    base: str,
    reason: str,
    upstream_pr: str | None,
    origin: str | None,
    dry_run: bool,
    upstream: str | None = None,
) -> NewPlan:
    cfg = config_mod.load()
    url = gitio.origin_url(cfg, origin)
    plan = new(
        cfg,
        name,
        base=base,
        reason=reason,
        upstream_pr=upstream_pr,
        origin=url,
        dry_run=dry_run,
        upstream=upstream,
    )
    if not dry_run:
        p = plan.patch
        console.result(f"patch.new: {p.branch} on {p.base} ({p.commit[:12]}) registered")
        _commit_hint(cfg, f"Register patch branch {p.branch}")
        console.manual(checkout_command(cfg, url, p.branch), "check the branch out")
        console.info("then commit the fix on it and push it to the same remote")
    return plan


def checkout_command(cfg: Config, url: str, branch: str) -> list[str]:
    """Check out `branch` from the remote at `url`: by the checkout's name for it, else by URL."""
    try:
        listing = gitio.run("remote", "-v", cwd=cfg.root)
    except GitError:
        listing = ""
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] == url:
            return ["git", "switch", "-c", branch, "--track", f"{fields[0]}/{branch}"]
    return ["git", "fetch", url, f"{branch}:{branch}"]


def main_retire(
    *, name: str, origin: str | None, dry_run: bool, upstream: str | None = None
) -> RetirePlan:
    cfg = config_mod.load()
    plan = retire(
        cfg, name, origin=gitio.origin_url(cfg, origin), dry_run=dry_run, upstream=upstream
    )
    if not dry_run:
        console.result(f"patch.retire: {plan.patch.branch} deleted; record kept as retired")
        _commit_hint(cfg, f"Retire patch branch {plan.patch.branch}")
    return plan
