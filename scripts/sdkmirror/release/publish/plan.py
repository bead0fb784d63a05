"""The publish's pure decisions: flags, versions, dist-tags, the upload decision, the plan.

No I/O here: every stage (`publish_build`, `publish_upload`, `publish_check`) and the
maintainer's composition (`publish`) decides through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import nodesemver

from sdkmirror.core import config as config_mod
from sdkmirror.core import versions
from sdkmirror.core.errors import MirrorError, UsageError
from sdkmirror.infra import console, registry_url
from sdkmirror.mirror import patch_branches
from sdkmirror.mirror.ledger import TagRecord
from sdkmirror.mirror.patch_registry import Patch

PROVENANCE_NPM = "11.5.1"  # the first npm that publishes with an OIDC token (trusted publishing)
PRERELEASE_TAG = "prerelease"  # for prereleases whose first identifier cannot name a dist-tag


class RegistryConflict(MirrorError):
    """The registry already holds this version with other content: npm versions are immutable."""

    exit_code = 10  # errors.ExitCode.REGISTRY_CONFLICT


class Action(Enum):
    PUBLISH = "publish"
    ALREADY_PUBLISHED = "already published (identical tarball): nothing to upload"


@dataclass(frozen=True)
class Request:
    source_tag: str | None = None  # optional with `source_ref`: the patch's base tag
    dry_run: bool = True
    registry: str | None = None
    version_override: str | None = None
    override_reason: str | None = None
    expected_version: str | None = None
    origin: str | None = None
    upstream: str | None = None
    source_ref: str | None = None  # a registered `patch-NAME` branch instead of the tag's commit
    report: str | None = None  # where to write the run's outcome as JSON

    def __post_init__(self) -> None:
        # A workflow passes every flag, empty when unset (`--expected-version ""` on a manual
        # dispatch): an empty value means "not given", never "must equal the empty string".
        for name in (
            "source_tag",
            "registry",
            "version_override",
            "override_reason",
            "expected_version",
            "origin",
            "upstream",
            "source_ref",
            "report",
        ):
            value = getattr(self, name)
            if isinstance(value, str) and not value.strip():
                object.__setattr__(self, name, None)


# --- pure decisions ---------------------------------------------------------------------------


def resolve_source(tag: str, ledger_tags: Mapping[str, TagRecord]) -> TagRecord:
    """The mirror ledger's record of `tag`; only a mirrored release can be published."""
    record = ledger_tags.get(tag)
    if record is None:
        known = sorted(ledger_tags)[-3:]
        hint = (
            f" (latest: {', '.join(known)})"
            if known
            else " (the ledger is empty: run `invoke sync`)"
        )
        raise UsageError(
            f"source tag {tag!r} is not a mirror tag in the ledger{hint}; "
            "pass a tag `invoke sync` has mirrored"
        )
    return record


def resolve_patch(cfg: config_mod.Config, req: Request) -> tuple[Request, Patch | None]:
    """With `--source-ref patch-NAME`: the active registered patch, and the request completed
    from it (source tag = the patch's base, override reason = the registered reason)."""
    if req.source_ref is None:
        if req.source_tag is None:
            raise UsageError("pass --source-tag TAG (a mirror tag) or --source-ref patch-NAME")
        return req, None
    base = patch_branches.for_source_ref(cfg, req.source_ref).base
    patch = patch_branches.publish_source(
        cfg,
        req.source_ref,
        source_tag=req.source_tag or base,
        version_override=req.version_override,
    )
    reason = req.override_reason or f"local patch {patch.branch}: {patch.reason}"
    return replace(req, source_tag=patch.base, override_reason=reason), patch


def check_version_flags(
    version_override: str | None, override_reason: str | None, expected_version: str | None
) -> None:
    """Flag combinations that can be refused before anything is fetched or built."""
    for flag, value in (
        ("--version-override", version_override),
        ("--expected-version", expected_version),
    ):
        if value is not None:
            problem = versions.npm_version_problem(value, flag)
            if problem:
                raise UsageError(problem)
    if override_reason and not version_override:
        raise UsageError("--override-reason only goes with --version-override V")
    if override_reason and any(ord(c) < 0x20 or ord(c) == 0x7F for c in override_reason):
        raise UsageError("--override-reason has control characters; pass one line of text")


def check_registry(registry: str | None) -> str | None:
    """`--registry`, parsed by the one registry URL grammar (None: not given)."""
    return None if registry is None else registry_url.parse(registry)


def choose_version(sdk_version: str, *, expected: str | None, override: str | None) -> str:
    """The npm version: the SDK's own unless overridden; fails closed on a mismatch."""
    if expected is not None and sdk_version != expected:
        raise UsageError(
            f"the SDK's package.json says {sdk_version}, but {expected} was expected; "
            "nothing was packed: tag the commit whose SDK version matches, or fix the expectation"
        )
    return override or sdk_version


def decide(
    local_integrity: str, remote_integrity: str | None, *, name: str, version: str
) -> Action:
    if remote_integrity is None:
        return Action.PUBLISH
    if remote_integrity == local_integrity:
        return Action.ALREADY_PUBLISHED
    raise RegistryConflict(
        f"{name}@{version} is already on the registry with other content "
        f"({remote_integrity[:24]}... != {local_integrity[:24]}...); npm versions are "
        "immutable: publish a new version with --version-override V [--override-reason TEXT]"
    )


def oidc_requested(env: Mapping[str, str]) -> bool:
    """In GitHub Actions with an id-token permission, publish with provenance."""
    return env.get("GITHUB_ACTIONS") == "true" and bool(env.get("ACTIONS_ID_TOKEN_REQUEST_URL"))


def choose_dist_tag(version: str, latest: str | None) -> str:
    """The dist-tag a version is published under, so `npm install NAME` keeps resolving to the
    newest release: a prerelease is tagged after its first identifier (`0.9.3-patch.1` ->
    `patch`), a release older than the registry's `latest` gets `previous`, else `latest`."""
    problem = versions.npm_version_problem(version, "the version")
    parsed = None if problem else nodesemver.parse(version, loose=False)
    if parsed is None:
        raise UsageError(problem or f"{version!r} is not an npm version; pass X.Y.Z")
    if parsed.prerelease:
        first = str(parsed.prerelease[0])
        # npm refuses a dist-tag that reads as a version range (`1`, `v2`, `x`).
        usable = nodesemver.valid_range(first, loose=False) is None
        return first if usable and first not in ("latest", "previous") else PRERELEASE_TAG
    if latest is not None and nodesemver.lt(version, latest, loose=False):
        return "previous"
    return "latest"


def publish_argv(
    tgz: Path, registry: str, *, provenance: bool, dry_run: bool, tag: str = "latest"
) -> list[str]:
    argv = ["npm", "publish", str(tgz), "--registry", registry, "--tag", tag]
    if provenance:
        argv.append("--provenance")
    if dry_run:
        argv.append("--dry-run")
    return argv


@dataclass(frozen=True)
class PublishPlan:
    """What a run does, computed from gathered facts; printed before anything irreversible."""

    source_tag: str
    commit: str
    origin: str
    registry: str
    npm_name: str
    sdk_version: str
    npm_version: str
    override_reason: str | None = None
    dry_run: bool = True
    provenance: bool = False
    action: Action | None = None
    source_ref: str | None = None
    dist_tag: str | None = None  # decided with the registry's dist-tags, next to `action`
    dropped: tuple[str, ...] = ()  # upstream package.json fields the published one leaves out

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("source tag", self.source_tag),
            ("local patch", self.source_ref or ""),
            ("commit", self.commit),
            ("origin", self.origin),
            ("registry", self.registry),
            ("package", f"{self.npm_name}@{self.npm_version}"),
            ("dist-tag", self.dist_tag or ""),
            ("SDK version", self.sdk_version),
            ("dropped fields", ", ".join(self.dropped)),
            ("override reason", self.override_reason or ""),
            ("provenance", "yes (OIDC)" if self.provenance else "no (user's npm credentials)"),
            (
                "upload",
                ("dry run: printed, not run" if self.dry_run else "yes")
                if self.action is not Action.ALREADY_PUBLISHED
                else self.action.value,
            ),
        ]

    def show(self, title: str = "publish plan") -> None:
        console.result(console.table(title, ["", ""], self.rows()))


def make_plan(
    req: Request,
    *,
    record: TagRecord,
    origin: str,
    registry: str,
    npm_name: str,
    sdk_version: str,
    env: Mapping[str, str],
    commit: str | None = None,
) -> PublishPlan:
    """Pure: the plan from the request and the gathered facts (the upload is decided later).

    `commit` is what was built: the tag's commit, or a patch branch's head."""
    check_version_flags(req.version_override, req.override_reason, req.expected_version)
    npm_version = choose_version(
        sdk_version, expected=req.expected_version, override=req.version_override
    )
    return PublishPlan(
        source_tag=record.name,
        commit=commit or record.commit,
        origin=origin,
        registry=registry_url.parse(registry),
        npm_name=npm_name,
        sdk_version=sdk_version,
        npm_version=npm_version,
        override_reason=req.override_reason,
        dry_run=req.dry_run,
        provenance=oidc_requested(env),
        source_ref=req.source_ref,
    )


def provenance_problem(npm_version: str) -> str | None:
    """Why this npm cannot publish with provenance, or None when it can."""
    if nodesemver.gte(npm_version, PROVENANCE_NPM, loose=False):
        return None
    return (
        f"publishing with provenance (OIDC) needs npm >= {PROVENANCE_NPM}, the primary "
        f"toolchain has npm {npm_version}; put a newer Node first in [tool.sdkmirror] toolchains"
    )
