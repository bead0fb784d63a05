"""`invoke release.tag`: put `publish-sdk/vX.Y.Z` on a mirror tag's commit in the origin."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import nodesemver

from sdkmirror.core import config as config_mod
from sdkmirror.core import versions
from sdkmirror.core.errors import GitError, UsageError
from sdkmirror.infra import console, gitio
from sdkmirror.infra.gitio import origin_url
from sdkmirror.infra.lock import exclusive
from sdkmirror.mirror import releases, source
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.release.publish.plan import resolve_source


class TagState(Enum):
    CREATE = "create"
    PRESENT = "already on the commit: nothing to do"


@dataclass(frozen=True)
class TagPlan:
    name: str
    commit: str
    version: str
    source_tag: str
    origin: str
    state: TagState

    @property
    def push_argv(self) -> list[str]:
        return ["git", "push", self.origin, f"{self.commit}:refs/tags/{self.name}"]

    @property
    def dispatch_argv(self) -> list[str]:
        """Start the publish by hand: GitHub runs a tag-triggered workflow from the tagged
        commit, and this one is an upstream commit without publish-sdk.yml, so the tag push
        alone starts nothing. Naming the publish tag makes the workflow check the version."""
        return [
            "gh",
            "workflow",
            "run",
            "publish-sdk.yml",
            "-f",
            f"source_tag={self.name}",
            "-f",
            "dry_run=false",
        ]


def plan_tag(
    *,
    cfg: config_mod.Config,
    source_tag: str,
    commit: str,
    sdk_version: str,
    version_override: str | None,
    existing: str | None,
    notes_have_entry: bool,
    origin: str,
) -> TagPlan:
    """Pure: which publish tag, and whether it may be created (`existing` = its commit now)."""
    version = version_override or sdk_version
    problem = versions.npm_version_problem(
        version, "--version-override" if version_override else "the SDK version"
    )
    if problem:
        raise UsageError(problem)
    name = cfg.publish_tags.name_for(version)
    if cfg.publish_tags.version_of(name) is None:
        # The publish workflow reads X.Y.Z back from the tag; anything else it would refuse.
        raise UsageError(
            f"publish tags carry X.Y.Z versions only, not {version}; publish a prerelease "
            "with `invoke publish --version-override V --no-dry-run` from a maintainer's machine"
        )
    if not notes_have_entry:
        raise UsageError(
            f"{cfg.release_notes.name} has no entry for {version}; write "
            f"{cfg.notes_dir.name}/{version}.md (draft it with `invoke release.notes`), run "
            "`invoke release.render`, then tag"
        )
    if existing is not None and existing != commit:
        raise UsageError(
            f"{name} already exists on {existing[:12]}, not on {source_tag} ({commit[:12]}); "
            "a publish tag never moves: publish another version with --version-override"
        )
    state = TagState.PRESENT if existing == commit else TagState.CREATE
    return TagPlan(name, commit, version, source_tag, origin, state)


def sdk_version_at(repo: gitio.WorkRepo, origin: str, tag: str, commit: str, sdk_dir: str) -> str:
    """The SDK's package.json version at a mirror tag, read from git without a checkout."""
    ref = "refs/sdkmirror/publish-source"
    repo.fetch(origin, [f"+refs/tags/{tag}:{ref}"], name="origin")
    try:
        text: str | None = repo.git("show", f"{commit}:{sdk_dir}/package.json")
    except GitError:
        text = None
    return source.sdk_version(text, where=tag, sdk_dir=sdk_dir)


def main(
    *,
    source_tag: str,
    push: bool = False,
    origin: str | None = None,
    version_override: str | None = None,
    cfg: config_mod.Config | None = None,
) -> TagPlan:
    cfg = cfg or config_mod.load()
    url = origin_url(cfg, origin)
    record = resolve_source(source_tag, MirrorLedger(cfg.mirror_ledger).tags)
    with exclusive(cfg.work_dir, cfg.lock_timeout, "release.tag"):
        repo = gitio.WorkRepo(cfg.work_repo)
        sdk_version = sdk_version_at(repo, url, record.name, record.commit, cfg.sdk_dir)
        version = version_override or sdk_version
        name = cfg.publish_tags.name_for(version) if nodesemver.valid(version, False) else ""
        existing = gitio.ls_remote(url, [f"refs/tags/{name}"], name="origin").commit_of_tag(name)
        plan = plan_tag(
            cfg=cfg,
            source_tag=record.name,
            commit=record.commit,
            sdk_version=sdk_version,
            version_override=version_override,
            existing=existing,
            notes_have_entry=releases.has_entry(cfg.release_notes, version),
            origin=url,
        )
        rows = [
            ("publish tag", plan.name),
            ("commit", plan.commit),
            ("from", plan.source_tag),
            ("SDK version", sdk_version),
            ("origin", url),
            (
                "action",
                plan.state.value
                if plan.state is TagState.PRESENT
                else ("push" if push else "dry run: print the push"),
            ),
        ]
        console.result(console.table("release tag", ["", ""], rows))
        if plan.state is TagState.CREATE:
            if push:
                repo.push_atomic(url, {f"refs/tags/{plan.name}": plan.commit})
                console.result(f"pushed {plan.name} -> {plan.commit[:12]} to {url}")
                console.manual(plan.dispatch_argv, f"start the publish of {plan.version}")
            else:
                console.manual(
                    ["git", "-C", str(repo.path), *plan.push_argv[1:]],
                    f"push {plan.name} (or rerun with --push)",
                )
                console.manual(plan.dispatch_argv, f"then start the publish of {plan.version}")
        else:
            console.manual(plan.dispatch_argv, f"start the publish of {plan.version}, if not yet")
    return plan
