"""`invoke publish.reproduce`: rebuild a published version from the mirror tag the release
ledger names and compare it with the registry's tarball, byte for byte.

Identical: the published package is exactly what this mirror builds from that tag. Otherwise
the files that differ are listed, with a short unified diff of the first; either way the
result is recorded in the release ledger (`reproduced`, `reproduced_at`).
"""

from __future__ import annotations

import difflib
import json
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sdkmirror.core import config as config_mod
from sdkmirror.core import versions
from sdkmirror.core.errors import MirrorError, UsageError, VerificationFailed
from sdkmirror.infra import console, npm_registry, registry_url
from sdkmirror.infra.lock import exclusive
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.mirror.releases import ReleaseLedger
from sdkmirror.release.package import tarball
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish.check import scope_route
from sdkmirror.release.publish.plan import Request

DIFF_LINES = 40
MAX_MEMBER = 64 * 1024 * 1024


@dataclass(frozen=True)
class Comparison:
    identical: bool
    differing: list[str] = field(default_factory=list)  # "path (changed|only ours|only theirs)"
    diff: str = ""


def tar_files(path: Path) -> dict[str, bytes]:
    """Regular files of a .tgz by name (the tarball was inspected or fetched by npm)."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not member.isfile() or member.size > MAX_MEMBER:
                    files[member.name] = f"<{member.type!r} entry, {member.size} bytes>".encode()
                    continue
                fh = tar.extractfile(member)
                files[member.name] = fh.read() if fh else b""
    except (OSError, tarfile.TarError) as exc:
        raise VerificationFailed(f"{path.name} is not a readable .tgz ({exc})") from exc
    return files


def compare(ours: Path, theirs: Path) -> Comparison:
    """Byte-identical, or which files differ and a short unified diff of the first."""
    if tarball.integrity(ours) == tarball.integrity(theirs):
        return Comparison(True)
    a, b = tar_files(ours), tar_files(theirs)
    differing: list[str] = []
    first: str | None = None
    for name in sorted(set(a) | set(b)):
        if name not in b:
            differing.append(f"{name} (only in the rebuild)")
        elif name not in a:
            differing.append(f"{name} (only on the registry)")
        elif a[name] != b[name]:
            differing.append(f"{name} (changed)")
            first = first or name
        else:
            continue
    if not differing:  # same files, other archive bytes (order, headers, compression)
        differing.append("(the archive itself: same files, other tar or gzip bytes)")
    diff = ""
    if first is not None:
        lines = difflib.unified_diff(
            b[first].decode("utf-8", "replace").splitlines(),
            a[first].decode("utf-8", "replace").splitlines(),
            fromfile=f"registry/{first}",
            tofile=f"rebuild/{first}",
            lineterm="",
        )
        diff = "\n".join(list(lines)[:DIFF_LINES])
    return Comparison(False, differing, diff)


def fetch(tc: Toolchain, name: str, version: str, registry: str, dest: Path) -> Path:
    """The registry's tarball of name@version, unchanged, via `npm pack` in the sandbox."""
    dest.mkdir(parents=True, exist_ok=True)
    res = tc.run(
        [
            tc.npm,
            "pack",
            f"{name}@{version}",
            "--json",
            "--ignore-scripts",
            "--pack-destination",
            dest,
            *scope_route(name, registry),
        ],
        cwd=dest,
        network=True,
        what=f"fetching {name}@{version} from {registry}",
    )
    try:
        filename = json.loads(res.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise MirrorError(f"npm pack printed no tarball name ({exc}); run it by hand") from exc
    return dest / Path(filename.replace("@", "").replace("/", "-")).name


def reproduce(
    cfg: config_mod.Config,
    version: str,
    *,
    registry: str | None = None,
    origin: str | None = None,
) -> Comparison:
    problem = versions.npm_version_problem(version, "--version")
    if problem:
        raise UsageError(problem)
    if registry is not None:
        registry_url.parse(registry)
    rec = ReleaseLedger(cfg.release_ledger).get(version)
    if rec is None:
        raise UsageError(
            f"{version} is not in the release ledger {cfg.release_ledger.name}; pass a version "
            "`invoke publish` recorded"
        )
    reg = registry_url.parse(registry or rec.registry)
    req = Request(
        source_tag=rec.upstream_tag,
        source_ref=rec.source_ref,
        version_override=None if version == rec.sdk_version else version,
        override_reason=rec.override_reason if version != rec.sdk_version else None,
        expected_version=rec.sdk_version,
        origin=origin,
        registry=reg,
    )
    out = cfg.work_dir / "reproduce" / version
    # Rebuilt, never reused; the rebuilt bytes, when they are the checked ones, need no checks.
    built = publish_build.build(cfg, req, out, use_cache=False)
    tc = built.built.toolchain
    remote = npm_registry.integrity(rec.npm_name, version, reg)
    if remote is None:
        raise VerificationFailed(f"{rec.npm_name}@{version} is not on {reg}; nothing to compare")
    if remote == built.manifest.integrity:
        result = Comparison(True)
    else:
        theirs = fetch(tc, rec.npm_name, version, reg, out / "registry")
        result = compare(built.tarball, theirs)
    with exclusive(cfg.work_dir, cfg.lock_timeout, "publish.reproduce"):
        ledger = ReleaseLedger(cfg.release_ledger)
        ledger.mark_reproduced(version, result.identical, datetime.now(UTC))
        ledger.save()
    return result


def main(
    *, version: str, registry: str | None, origin: str | None, upstream: str | None
) -> Comparison:
    cfg = config_mod.load(upstream=upstream)
    result = reproduce(cfg, version, registry=registry or None, origin=origin or None)
    if result.identical:
        console.result(f"{version}: the rebuild is byte-identical to the registry's tarball")
        return result
    for line in result.differing:
        console.info(f"    differs: {line}")
    if result.diff:
        console.out.print(result.diff, markup=False, highlight=False)
    raise VerificationFailed(
        f"{version} does not reproduce: {len(result.differing)} file(s) differ, first "
        f"{result.differing[0]}; recorded as reproduced = false in the release ledger"
    )
