"""`manifest.json` next to a built tarball: what `publish.build` made, for the stages after it.

The manifest crosses from the stage that ran upstream code to the ones that hold credentials,
so its reader trusts nothing: every key is checked (exact versions, a 40-hex commit, an
integrity of the right form, a plain tarball file name) and a problem names the key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sdkmirror.core import identifiers, versions
from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.core.errors import UsageError

KIND = "publish-build"
SCHEMA = 1
NAME = "manifest.json"
MAX_BYTES = 64 * 1024
_TEXT_MAX = 500


@dataclass(frozen=True)
class Manifest:
    npm_name: str
    npm_version: str
    sdk_version: str
    upstream_tag: str
    commit: str
    source_ref: str | None
    override_reason: str | None
    tarball: str  # file name, beside the manifest
    integrity: str
    shasum: str
    dist_tag: str
    toolchain: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {"kind": KIND, "schema": SCHEMA, **asdict(self)}


def integrity_problem(value: object, what: str = "integrity") -> str | None:
    if identifiers.is_integrity(value):
        return None
    return f"{what} is not a sha512 integrity (sha512-<88 base64 characters>)"


def _text(data: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > _TEXT_MAX:
        raise _bad(key, "must be a non-empty string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _bad(key, "has control characters")
    return value


def _bad(key: str, why: str) -> UsageError:
    return UsageError(
        f"manifest key {key!r} {why}; use the manifest.json `invoke publish.build` wrote"
    )


def validate(data: object) -> Manifest:
    """The manifest in `data`, every key checked; one `UsageError` naming the first bad key."""
    if not isinstance(data, dict):
        raise _bad("(top level)", "is not a JSON object")
    if data.get("kind") != KIND:
        raise _bad("kind", f"is not {KIND!r}")
    if data.get("schema") != SCHEMA:
        raise _bad("schema", f"is not {SCHEMA}")
    known = {"kind", "schema", *Manifest.__dataclass_fields__}
    extra = sorted(set(data) - known)
    if extra:
        raise _bad(extra[0], "is unknown")
    name = _text(data, "npm_name")
    if not identifiers.is_npm_name(name):
        raise _bad("npm_name", "is not an npm package name")
    for key in ("npm_version", "sdk_version"):
        if not versions.is_npm_version(data.get(key)):
            raise _bad(key, "is not an exact npm version (X.Y.Z or X.Y.Z-pre.N)")
    tag = _text(data, "upstream_tag")
    if not identifiers.is_hex40(data.get("commit")):
        raise _bad("commit", "is not a 40-hex commit")
    source_ref = _text(data, "source_ref", optional=True)
    reason = _text(data, "override_reason", optional=True)
    tarball = _text(data, "tarball")
    if not identifiers.is_tarball_name(tarball):
        raise _bad("tarball", "is not a plain .tgz file name")
    problem = integrity_problem(data.get("integrity"))
    if problem:
        raise _bad("integrity", problem.removeprefix("integrity "))
    if not identifiers.is_hex40(data.get("shasum")):
        raise _bad("shasum", "is not a 40-hex sha1")
    dist_tag = _text(data, "dist_tag")
    if not identifiers.is_dist_tag(dist_tag):
        raise _bad("dist_tag", "is not a dist-tag name")
    tc = data.get("toolchain")
    if not isinstance(tc, dict) or set(tc) != {"node", "pnpm"}:
        raise _bad("toolchain", "must be {'node': X.Y.Z, 'pnpm': X.Y.Z}")
    for key in ("node", "pnpm"):
        if not versions.is_exact(tc[key]):
            raise _bad(f"toolchain.{key}", "is not an exact X.Y.Z version")
    return Manifest(
        npm_name=str(name),
        npm_version=str(data["npm_version"]),
        sdk_version=str(data["sdk_version"]),
        upstream_tag=str(tag),
        commit=str(data["commit"]),
        source_ref=source_ref,
        override_reason=reason,
        tarball=str(tarball),
        integrity=str(data["integrity"]),
        shasum=str(data["shasum"]),
        dist_tag=str(dist_tag),
        toolchain={"node": str(tc["node"]), "pnpm": str(tc["pnpm"])},
    )


def read(path: Path) -> Manifest:
    """The manifest at `path` (a file, or a directory holding manifest.json), validated."""
    if path.is_dir():
        path = path / NAME
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the manifest {path} ({exc.strerror}); pass the file "
            "`invoke publish.build` wrote"
        ) from exc
    if len(raw) > MAX_BYTES:
        raise _bad("(top level)", f"is larger than {MAX_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad("(top level)", f"is not JSON ({exc})") from exc
    return validate(data)


def write(path: Path, manifest: Manifest) -> Path:
    """Write atomically (temporary file, then rename): a reader never sees half a manifest."""
    validate(manifest.as_json())  # never write what the reader would refuse
    return write_atomic(
        path, json.dumps(manifest.as_json(), indent=2) + "\n", what="the publish manifest"
    )
