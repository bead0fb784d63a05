"""The one version grammar: release tags, npm versions, overrides and toolchain pins.

ASCII digits only, no leading zeros, no whitespace or control characters anywhere: a version
is data that ends up in ref names, ledger keys, file names and npm's command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_NUM = r"(?:0|[1-9][0-9]{0,8})"
# X.Y.Z: the upstream's release tags and toolchain pins carry nothing else.
EXACT = rf"{_NUM}\.{_NUM}\.{_NUM}"
# npm's prerelease identifiers: numeric ones without leading zeros, or alphanumerics with `-`.
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
NPM = rf"{EXACT}(?:-{_IDENT}(?:\.{_IDENT})*)?"
_EXACT_RE = re.compile(EXACT, re.ASCII)
_NPM_RE = re.compile(NPM, re.ASCII)
MAX_LENGTH = 64


@total_ordering
@dataclass(frozen=True)
class Version:
    """An exact X.Y.Z release version."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        if not is_exact(text):
            raise ValueError(f"not an X.Y.Z version: {text!r}")
        a, b, c = (int(p) for p in text.split("."))
        return cls(a, b, c)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor, self.patch) < (other.major, other.minor, other.patch)


def is_exact(text: object) -> bool:
    """True for `X.Y.Z` in ASCII digits without leading zeros, and nothing else."""
    return isinstance(text, str) and len(text) <= MAX_LENGTH and bool(_EXACT_RE.fullmatch(text))


def is_npm_version(text: object) -> bool:
    """True for an exact npm version: `X.Y.Z` or `X.Y.Z-pre.1` (no build metadata, no `v`)."""
    return isinstance(text, str) and len(text) <= MAX_LENGTH and bool(_NPM_RE.fullmatch(text))


def shown(text: str) -> str:
    """A hostile value rendered safely for a one-line error (newlines and non-ASCII escaped)."""
    short = text if len(text) <= 80 else text[:77] + "..."
    return repr(short.encode("unicode_escape").decode("ascii"))


def exact_problem(text: str, what: str) -> str | None:
    """Why `text` is not an exact X.Y.Z for `what` (a flag or key name), or None."""
    if is_exact(text):
        return None
    return f"{what} {shown(text)} is not an exact version; pass X.Y.Z in ASCII digits"


def npm_version_problem(text: str, what: str) -> str | None:
    """Why `text` is not an exact npm version for `what`, or None."""
    if is_npm_version(text):
        return None
    return (
        f"{what} {shown(text)} is not an exact npm version; pass X.Y.Z or X.Y.Z-pre.N "
        "in ASCII, without spaces"
    )


def sort_key(text: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Order npm versions as semver does: a prerelease sorts before its release."""
    if not is_npm_version(text):
        raise ValueError(f"not an npm version: {text!r}")
    core, _, pre = text.partition("-")
    a, b, c = (int(p) for p in core.split("."))
    if not pre:
        return (a, b, c, 1, ())
    idents = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (a, b, c, 0, idents)
