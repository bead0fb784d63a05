"""`invoke publish`: the maintainer's composition of the three stages, plus the ledger record.

`publish_build` (runs upstream code, holds nothing), `publish_upload` (holds the registry
credentials, runs only `npm publish FILE`), `publish_check` (installs from the registry,
sandboxed): in a row, a dry run by default. Each step either proves something about the
package or refuses with one line; the upload comes after every check.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sdkmirror.core import config as config_mod
from sdkmirror.core import reports
from sdkmirror.core.errors import MirrorError, UsageError
from sdkmirror.infra import console, failpoints, npm_registry
from sdkmirror.infra.lock import exclusive
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.mirror import releases
from sdkmirror.mirror.releases import Release, ReleaseLedger
from sdkmirror.release.package import tarball
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish import check as publish_check
from sdkmirror.release.publish import upload as publish_upload
from sdkmirror.release.publish.plan import (
    Action,
    PublishPlan,
    Request,
    check_registry,
    oidc_requested,
)


@dataclass
class Hooks:
    """Points where tests interfere with a run (e.g. stop the registry before the upload)."""

    before_upload: Callable[[], None] | None = None


@dataclass
class Outcome:
    plan: PublishPlan
    package_dir: Path | None = None
    report: tarball.TarballReport | None = None
    exports: list[str] = field(default_factory=list)
    published: bool = False
    recorded: bool = False


def default_registry(tc: Toolchain) -> str:
    """The registry the user's npm config names (no host written in this project)."""
    return npm_registry.default_registry(tc)


def registry_integrity(name: str, version: str, registry: str) -> str | None:
    """`dist.integrity` of name@version on the registry, or None when it is not there."""
    return npm_registry.integrity(name, version, registry)


def registry_dist_tags(name: str, registry: str) -> dict[str, str]:
    """The package's dist-tags on the registry (`{}` when the package is not there yet)."""
    return npm_registry.dist_tags(name, registry)


# --- the run ----------------------------------------------------------------------------------


def run(
    req: Request,
    cfg: config_mod.Config | None = None,
    *,
    hooks: Hooks | None = None,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """build -> upload -> check, then the ledger; a dry run stops before the upload."""
    cfg = cfg or config_mod.load(upstream=req.upstream)
    hooks = hooks or Hooks()
    env = os.environ if env is None else env
    check_registry(req.registry)
    built = publish_build.build(cfg, req, cfg.work_dir / "publish" / "out")
    tc = built.built.toolchain
    workdir = built.built.source_dir.parent
    plan = replace(built.plan, dry_run=req.dry_run, provenance=oidc_requested(env))
    outcome = Outcome(plan, built.package.dir, built.report, list(built.exports))
    failpoints.reach("after-pack")  # fault-injection tests stop a run here

    def show(action: Action, dist_tag: str) -> None:
        outcome.plan = replace(outcome.plan, action=action, dist_tag=dist_tag)
        outcome.plan.show()

    up = publish_upload.upload(
        tc,
        built.tarball,
        built.manifest.integrity,
        expected=publish_upload.Expected(plan.npm_name, plan.npm_version, cfg.max_package_bytes),
        registry=plan.registry,
        dist_tag=built.manifest.dist_tag,
        dry_run=req.dry_run,
        env=env,
        before_upload=hooks.before_upload,
        on_plan=show,
    )
    outcome.published = up.published
    if not req.dry_run:
        publish_check.check(
            tc,
            plan.npm_version,
            npm_name=plan.npm_name,
            registry=plan.registry,
            workdir=workdir,
            manifest=built.manifest,
        )
        outcome.recorded = record(cfg, built, outcome.plan)
    summary(outcome, workdir)
    if req.report:
        write_report(outcome, Path(req.report))
    return outcome


def record(cfg: config_mod.Config, built: publish_build.BuildResult, plan: PublishPlan) -> bool:
    """Add the release to the ledger and regenerate RELEASES.md; False when already there."""
    with exclusive(cfg.work_dir, cfg.lock_timeout, "publish"):
        ledger = ReleaseLedger(cfg.release_ledger)
        added = ledger.add(
            Release(
                npm_version=plan.npm_version,
                npm_name=plan.npm_name,
                upstream_tag=built.built.tag,
                commit=built.built.commit,
                sdk_version=plan.sdk_version,
                integrity=built.manifest.integrity,
                published_at=datetime.now(UTC),
                registry=plan.registry,
                override_reason=plan.override_reason,
                source_ref=plan.source_ref,
            )
        )
        if added:
            ledger.save()
            render_release_notes(cfg)
    return added


def outcome_report(outcome: Outcome) -> dict[str, Any]:
    """What a run did, for the steps after it (the GitHub Release names this version)."""
    p = outcome.plan
    return {
        "kind": "publish",
        "npm_name": p.npm_name,
        "npm_version": p.npm_version,
        "dist_tag": p.dist_tag,
        "upstream_tag": p.source_tag,
        "commit": p.commit,
        "source_ref": p.source_ref,
        "dry_run": p.dry_run,
        "published": outcome.published,
        "already_published": p.action is Action.ALREADY_PUBLISHED,
        "recorded": outcome.recorded,
        "integrity": outcome.report.integrity if outcome.report else None,
    }


def write_report(outcome: Outcome, path: Path) -> None:
    reports.write_json(path, outcome_report(outcome), what="the publish report")
    console.info(f"publish report written to {path}")


def read_report(path: Path) -> dict[str, Any] | None:
    """A publish report, or None when there is none (a dry run uploads no report)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(
            f"{path} is not a publish report ({exc}); pass the file `invoke publish --report` wrote"
        ) from exc
    if not isinstance(data, dict) or data.get("kind") != "publish":
        raise UsageError(
            f"{path} is not a publish report; pass the file `invoke publish --report` wrote"
        )
    return data


def render_release_notes(cfg: config_mod.Config) -> None:
    """Regenerate RELEASES.md right after the ledger changed, so the two never drift.

    The upload already happened: a problem here (a badly named notes file) is a warning with
    the command that finishes the job, never a failed publish."""
    try:
        text = releases.render_file(cfg.release_ledger, cfg.notes_dir, cfg.root)
        changed = releases.sync_file(cfg.release_notes, text, check=False)
    except MirrorError as exc:
        console.warn(f"{cfg.release_notes.name} not regenerated: {exc.message}")
        console.manual(["invoke", "release.render"], "regenerate it once that is fixed")
        return
    state = "written" if changed else "already up to date"
    console.info(f"{cfg.release_notes.name} {state} from {cfg.release_ledger.name}")


def summary(outcome: Outcome, workdir: Path) -> None:
    p = outcome.plan
    r = outcome.report
    if p.action is Action.ALREADY_PUBLISHED:
        result = "already published (no-op)"
    elif outcome.published:
        result = "published"
    else:
        result = "dry run: nothing uploaded"
    rows = [
        ("package", f"{p.npm_name}@{p.npm_version}"),
        (
            "from",
            f"{p.source_ref + ' on ' if p.source_ref else ''}{p.source_tag} ({p.commit[:12]})",
        ),
        ("tarball", f"{r.size} bytes, {r.file_count} files" if r else ""),
        ("integrity", r.integrity if r else ""),
        ("exports", ", ".join(outcome.exports)),
        ("result", result),
        ("release ledger", "recorded" if outcome.recorded else "unchanged"),
        ("work dir", str(workdir)),
    ]
    console.result(console.table("publish summary", ["", ""], rows))
