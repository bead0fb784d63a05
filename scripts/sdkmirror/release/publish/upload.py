"""`invoke publish.upload`: the stage that holds the registry credentials, and so runs nothing
but `npm view` and `npm publish <that file>`. It never builds, installs or imports.

It trusts only the bytes: the tarball is copied once into a private 0700 directory, that copy
is hashed, every check is derived again from it (the configured name, the version planned from
the tag, the package.json allow-list, no lifecycle scripts or `bin`, files within `files`, no
links or devices, size limits), and that same copy is what `npm publish` reads.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdkmirror.core import config as config_mod
from sdkmirror.core import identifiers, versions
from sdkmirror.core.errors import (
    CommandError,
    MirrorError,
    RemoteError,
    UsageError,
    VerificationFailed,
)
from sdkmirror.infra import console, failpoints, npm_registry, plainfiles, registry_url
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.release.package import repackage, tarball
from sdkmirror.release.publish.manifest import integrity_problem
from sdkmirror.release.publish.plan import (
    Action,
    choose_dist_tag,
    decide,
    oidc_requested,
    provenance_problem,
    publish_argv,
)

MAX_PACKAGE_JSON = 1 << 20
MAX_TARBALL = 64 << 20  # compressed; the unpacked limit is max_package_bytes
MAX_MEMBERS = 20_000
# What a dist-only package.json may hold: what `repackage` writes, nothing else.
ALLOWED_KEYS = frozenset(
    {
        *repackage.COPIED,
        *repackage.COPIED_AFTER,
        *repackage.REBUILT,
        *repackage.RUNTIME_DEPS,
        *repackage.RUNTIME_META,
        "sdkmirror",
    }
)
LIFECYCLE = ("scripts", "gypfile")
EXECUTABLES = ("bin", "directories", "man", "bundleDependencies", "bundledDependencies")
ALWAYS_PACKED = ("package.json",)  # npm adds it whatever `files` says


class UploadRefused(VerificationFailed):
    """One of the checks `publish.upload` derives from the tarball's bytes failed."""


@dataclass(frozen=True)
class Expected:
    """What the upload must find in the bytes, planned without them: the configured package
    name, the version planned from the source tag (or its recorded override), size limits."""

    npm_name: str
    npm_version: str
    max_unpacked: int = 50 * 1024 * 1024
    sdk_version: str = ""  # what it was planned from (for the release record)
    source_tag: str = ""
    commit: str = ""


def refuse(check: str, detail: str) -> UploadRefused:
    return UploadRefused(f"upload check `{check}` failed: {detail}; nothing uploaded")


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
    problem = provenance_problem(npm_registry.npm_version(tc))
    if problem:
        raise MirrorError(problem)


def check_integrity(integrity: str) -> None:
    """Refuse an `--integrity` that is not a sha512 SRI string, naming what to pass."""
    problem = integrity_problem(integrity, "--integrity")
    if problem:
        raise UsageError(f"{problem}; pass the integrity `publish.build` printed")


@contextmanager
def private_copy(tgz: Path) -> Iterator[Path]:
    """One copy of `tgz` in a fresh 0700 directory, read once as a plain file (no link, no
    device, at most `MAX_TARBALL` bytes); removed afterwards. Everything reads this copy."""
    if tgz.is_symlink() or not tgz.is_file():
        raise UsageError(f"--tarball {tgz} is not a plain file; pass the .tgz publish.build wrote")
    try:
        data = plainfiles.read_plain(tgz, max_bytes=MAX_TARBALL)
    except MirrorError as exc:
        raise refuse("plain file", str(exc)) from None
    private = Path(tempfile.mkdtemp(prefix="sdkmirror-upload-"))  # mode 0700
    try:
        copy = private / "package.tgz"
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield copy
    finally:
        shutil.rmtree(private, ignore_errors=True)


def check_bytes(copy: Path, expected: Expected) -> dict[str, Any]:
    """Every check of the private copy; its package.json when all pass."""
    size = copy.stat().st_size
    if size > MAX_TARBALL:
        raise refuse("size", f"the tarball has {size} bytes, more than {MAX_TARBALL}")
    try:
        with tarfile.open(copy, "r:gz") as tar:
            members = []
            for member in tar:  # streamed: a bounded count, never a recursion
                members.append(member)
                if len(members) > MAX_MEMBERS:
                    raise refuse("size", f"the tarball has more than {MAX_MEMBERS} entries")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise refuse("format", f"the tarball is not a readable .tgz ({exc})") from None
    try:
        report = tarball.inspect(copy)
    except VerificationFailed as exc:
        raise refuse("contents", str(exc)) from None
    if report.unpacked_size > expected.max_unpacked:
        raise refuse(
            "size",
            f"it unpacks to {report.unpacked_size} bytes, more than max_package_bytes "
            f"({expected.max_unpacked})",
        )
    try:
        pkg = package_json(copy)
    except UsageError as exc:
        raise refuse("package.json", str(exc)) from None
    name, version = pkg.get("name"), pkg.get("version")
    if name != expected.npm_name:
        raise refuse("name", f"the package is {versions.shown(str(name))}, not {expected.npm_name}")
    if version != expected.npm_version:
        raise refuse(
            "version",
            f"the package is version {versions.shown(str(version))}, not the planned "
            f"{expected.npm_version}",
        )
    scripts = [k for k in LIFECYCLE if k in pkg]
    if scripts:
        raise refuse("lifecycle scripts", f"package.json has {', '.join(scripts)}")
    bins = [k for k in EXECUTABLES if k in pkg]
    if bins:
        raise refuse("bin", f"package.json has {', '.join(bins)}")
    extra = sorted(set(pkg) - ALLOWED_KEYS)
    if extra:
        raise refuse("package.json allow-list", f"unexpected field {extra[0]!r}")
    files = pkg.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise refuse("files", "package.json has no `files` list")
    outside = [f for f in report.files if not within(f, files)]
    if outside:
        raise refuse("files", f"{outside[0]!r} is not within `files` {files}")
    return pkg


def within(path: str, patterns: list[str]) -> bool:
    """Whether `path` (relative to the package) is one `files` entry or lies under one."""
    if path in ALWAYS_PACKED:
        return True
    for raw in patterns:
        pat = raw.strip("/").removeprefix("./")
        if not pat:
            continue
        if path == pat or path.startswith(pat + "/") or fnmatch.fnmatchcase(path, pat):
            return True
    return False


def upload(
    tc: Toolchain,
    tgz: Path,
    integrity: str | None,
    *,
    expected: Expected,
    registry: str,
    dist_tag: str | None = None,
    dry_run: bool = True,
    env: Mapping[str, str] | None = None,
    before_upload: Callable[[], None] | None = None,
    on_plan: Callable[[Action, str], None] | None = None,
) -> UploadResult:
    """Copy the tarball privately, check the copy (against `integrity` when given, and every
    check of `check_bytes`), decide against the registry, `npm publish` that copy.

    Same bytes already there: a no-op. Other bytes under that version: `RegistryConflict`."""
    env = os.environ if env is None else env
    if integrity is not None:
        check_integrity(integrity)
    registry = registry_url.parse(registry)
    if dist_tag is not None:
        check_dist_tag(dist_tag)
    with private_copy(tgz) as copy:
        actual = tarball.integrity(copy)
        if integrity is not None and actual != integrity:
            raise refuse(
                "integrity",
                f"{tgz.name} has integrity {actual[:24]}..., not the expected "
                f"{integrity[:24]}...: upload the tarball the build made, unchanged",
            )
        check_bytes(copy, expected)
        return _upload(
            tc,
            copy,
            actual,
            expected,
            registry=registry,
            dist_tag=dist_tag,
            dry_run=dry_run,
            env=env,
            before_upload=before_upload,
            on_plan=on_plan,
        )


def _upload(
    tc: Toolchain,
    tgz: Path,
    integrity: str,
    expected: Expected,
    *,
    registry: str,
    dist_tag: str | None,
    dry_run: bool,
    env: Mapping[str, str],
    before_upload: Callable[[], None] | None,
    on_plan: Callable[[Action, str], None] | None,
) -> UploadResult:
    name, version = expected.npm_name, expected.npm_version
    provenance = oidc_requested(env)
    if provenance:
        check_provenance_npm(tc)
    remote = npm_registry.integrity(name, version, registry, env=env)
    action = decide(integrity, remote, name=name, version=version)
    if dist_tag is None:
        latest = npm_registry.dist_tags(name, registry, env=env).get("latest")
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
    after = npm_registry.integrity(name, version, registry, env=env)
    if after != integrity:
        raise VerificationFailed(
            f"the registry reports {after!r} for {name}@{version}, not the uploaded "
            f"{integrity}; nothing recorded: inspect the registry"
        )
    return UploadResult(
        name, version, integrity, registry, dist_tag, action, True, False, provenance, real
    )


def plan_expected(
    cfg: config_mod.Config,
    source_tag: str,
    *,
    origin: str | None = None,
    version_override: str | None = None,
) -> Expected:
    """What the upload of `source_tag` must find, planned without the tarball: the configured
    name, and the SDK's version at the tag's mirrored commit (read from git, nothing run) or
    the override recorded for it."""
    from sdkmirror.infra.gitio import origin_url
    from sdkmirror.mirror import source
    from sdkmirror.mirror.ledger import MirrorLedger
    from sdkmirror.release.publish.plan import check_version_flags, choose_version, resolve_source

    check_version_flags(version_override, None, None)
    record = resolve_source(source_tag, MirrorLedger(cfg.mirror_ledger).tags)
    url = origin_url(cfg, origin)
    with tempfile.TemporaryDirectory(prefix="sdkmirror-plan-") as tmp:
        tree = Path(tmp) / "source"
        commit = source.materialize(url, f"refs/tags/{record.name}", tree)
        if commit != record.commit:
            raise VerificationFailed(
                f"{url} gave commit {commit} for {record.name}, the ledger says {record.commit}; "
                "run `invoke verify` before publishing"
            )
        pkg_file = tree / cfg.sdk_dir / "package.json"
        text = pkg_file.read_text(encoding="utf-8") if pkg_file.is_file() else None
    sdk = source.sdk_version(text, where=record.name, sdk_dir=cfg.sdk_dir)
    version = choose_version(sdk, expected=None, override=version_override)
    return Expected(cfg.npm_name, version, cfg.max_package_bytes, sdk, record.name, commit)
