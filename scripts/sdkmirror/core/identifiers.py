"""The shapes of the identifiers that cross from one job or record to the next.

Commit ids, sha1 sums, npm package names, dist-tags, tarball file names and sha512 integrities
arrive as data (job outputs, manifests, ledgers, flags); each has one check here, so a value
one reader accepts is never refused by the next. Versions have their own grammar
(`versions`), registry URLs theirs (`registry_url`).
"""

from __future__ import annotations

import re

_HEX40 = re.compile(r"[0-9a-f]{40}", re.ASCII)
_NPM_NAME = re.compile(r"(?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*", re.ASCII)
_DIST_TAG = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}", re.ASCII)
_TARBALL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.tgz", re.ASCII)
_INTEGRITY = re.compile(r"sha512-[A-Za-z0-9+/]{86}==", re.ASCII)


def is_hex40(value: object) -> bool:
    """A full git object id, or an npm shasum: 40 lowercase hex digits."""
    return isinstance(value, str) and _HEX40.fullmatch(value) is not None


def is_npm_name(value: object) -> bool:
    """An npm package name, scoped or not, lowercase, at most npm's 214 characters."""
    return isinstance(value, str) and len(value) <= 214 and _NPM_NAME.fullmatch(value) is not None


def is_dist_tag(value: object) -> bool:
    """A dist-tag npm accepts: a word that is not also a version range."""
    # Imported here: nodesemver logs its grammar when imported, which tools that show
    # debug logging (nox) would print for every module that only needs a commit id.
    import nodesemver

    return (
        isinstance(value, str)
        and _DIST_TAG.fullmatch(value) is not None
        and nodesemver.valid_range(value, loose=False) is None
    )


def is_tarball_name(value: object) -> bool:
    """A plain `.tgz` file name: no directory, no leading dot or dash."""
    return isinstance(value, str) and _TARBALL.fullmatch(value) is not None


def is_integrity(value: object) -> bool:
    """npm's sha512 SRI string: `sha512-` and the 88 base64 characters of 64 bytes."""
    return isinstance(value, str) and _INTEGRITY.fullmatch(value) is not None
