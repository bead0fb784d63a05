"""`invoke publish.upload`: the stage that holds the registry credentials, and so runs nothing
but `npm view` and `npm publish <that file>`. It never builds, installs or imports; it reads
the tarball's package.json only after the tarball's integrity matched the one it was given.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdkmirror.core import identifiers, versions
from sdkmirror.core.errors import (
    CommandError,
    MirrorError,
    RemoteError,
    UsageError,
    VerificationFailed,
)
from sdkmirror.infra import console, failpoints, npm_registry, npmtool, registry_url
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.release import tarball
from sdkmirror.release.publish_manifest import integrity_problem
from sdkmirror.release.publish_plan import (
    Action,
    choose_dist_tag,
    decide,
    oidc_requested,
    provenance_problem,
    publish_argv,
)

MAX_PACKAGE_JSON = 1 << 20


@dataclass(frozen=True)
class UploadResult:
    npm_name: str
    npm_version: str
    integrity: str
    registry: str
    dist_tag: str
    action: Action
    published: bool
    dry_run: bool
    provenance: bool
    argv: list[str]


def package_json(tgz: Path) -> dict[str, Any]:
    """`package/package.json` of a tarball whose integrity has already been checked."""
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            member = tar.getmember("package/package.json")
            if not member.isfile() or member.size > MAX_PACKAGE_JSON:
                raise UsageError(f"{tgz.name}: package/package.json is not a small plain file")
            fh = tar.extractfile(member)
            data = json.loads(fh.read().decode("utf-8")) if fh else None
    except (OSError, KeyError, tarfile.TarError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{tgz} holds no readable package/package.json ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{tgz}: package/package.json is not a JSON object")
    name, version = data.get("name"), data.get("version")
    if not identifiers.is_npm_name(name):
        raise UsageError(f"{tgz}: package.json names no valid npm package")
    problem = versions.npm_version_problem(str(version), "its package.json version")
    if problem:
        raise UsageError(f"{tgz}: {problem}")
    return data


def check_dist_tag(tag: str) -> str:
    if not identifiers.is_dist_tag(tag):
        raise UsageError(
            f"--dist-tag {versions.shown(tag)} is not a dist-tag name; pass a word such as "
            "latest, previous or patch"
        )
    return tag


def check_provenance_npm(tc: Toolchain) -> None:
    problem = provenance_problem(npmtool.npm_version(tc))
    if problem:
        raise MirrorError(problem)


def check_integrity(integrity: str) -> None:
    """Refuse an `--integrity` that is not a sha512 SRI string, naming what to pass."""
    problem = integrity_problem(integrity, "--integrity")
    if problem:
        raise UsageError(f"{problem}; pass the integrity `publish.build` printed")


def upload(
    tc: Toolchain,
    tgz: Path,
    integrity: str,
    *,
    registry: str,
    dist_tag: str | None = None,
    dry_run: bool = True,
    env: Mapping[str, str] | None = None,
    before_upload: Callable[[], None] | None = None,
    on_plan: Callable[[Action, str], None] | None = None,
) -> UploadResult:
    """Check the tarball against `integrity`, decide against the registry, `npm publish` it.

    Same bytes already there: a no-op. Other bytes under that version: `RegistryConflict`."""
    env = os.environ if env is None else env
    check_integrity(integrity)
    registry = registry_url.parse(registry)
    if dist_tag is not None:
        check_dist_tag(dist_tag)
    if not tgz.is_file() or tgz.is_symlink():
        raise UsageError(f"--tarball {tgz} is not a plain file; pass the .tgz publish.build wrote")
    actual = tarball.integrity(tgz)
    if actual != integrity:
        raise VerificationFailed(
            f"{tgz.name} has integrity {actual[:24]}..., not the expected {integrity[:24]}...; "
            "nothing uploaded: upload the tarball the build made, unchanged"
        )
    pkg = package_json(tgz)
    name, version = str(pkg["name"]), str(pkg["version"])
    provenance = oidc_requested(env)
    if provenance:
        check_provenance_npm(tc)
    remote = npm_registry.integrity(tc, name, version, registry, env=env)
    action = decide(integrity, remote, name=name, version=version)
    if dist_tag is None:
        latest = npm_registry.dist_tags(tc, name, registry, env=env).get("latest")
        dist_tag = choose_dist_tag(version, latest)
    real = publish_argv(tgz, registry, provenance=provenance, dry_run=False, tag=dist_tag)
    result = UploadResult(
        name, version, integrity, registry, dist_tag, action, False, dry_run, provenance, real
    )
    if on_plan:  # the plan is shown before anything irreversible
        on_plan(action, dist_tag)
    if action is Action.ALREADY_PUBLISHED:
        console.info(f"{name}@{version} is already published, identical: nothing to upload")
        return result
    if dry_run:
        trial = publish_argv(tgz, registry, provenance=False, dry_run=True, tag=dist_tag)
        with console.step("npm publish --dry-run"):
            npm_registry.run(tc, trial[1:], env=env, what="npm publish --dry-run")
        console.manual(real, "publish for real (or rerun with --no-dry-run)")
        return result
    if before_upload:
        before_upload()
    with console.step(f"publishing {name}@{version} to {registry}"):
        try:
            npm_registry.run(tc, real[1:], env=env, echo=True, what="npm publish")
        except CommandError as exc:
            raise RemoteError(
                f"upload to {registry} failed ({exc.message}); the release ledger is "
                "unchanged: rerun the same command once the registry is reachable"
            ) from exc
    failpoints.reach("after-upload")
    after = npm_registry.integrity(tc, name, version, registry, env=env)
    if after != integrity:
        raise VerificationFailed(
            f"the registry reports {after!r} for {name}@{version}, not the uploaded "
            f"{integrity}; nothing recorded: inspect the registry"
        )
    return UploadResult(
        name, version, integrity, registry, dist_tag, action, True, False, provenance, real
    )
