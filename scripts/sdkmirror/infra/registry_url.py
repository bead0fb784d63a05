"""The one parser for npm registry URLs given on the command line or read from npm's config.

A registry URL is `http(s)://host[:port]/[path]` and nothing else: credentials belong in the
npm user config, never in a URL that ends up on a command line, in a log or in the ledger.
"""

from __future__ import annotations

import re
import urllib.parse

from sdkmirror.core.errors import UsageError

_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+", re.ASCII)  # a name, IPv4 or IPv6
_PATH = re.compile(r"/[A-Za-z0-9._~/-]*", re.ASCII)


def problem(url: str) -> str | None:
    """Why `url` is not a usable registry URL (never quoting a password), or None."""
    if not isinstance(url, str) or not url:
        return "is empty"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url) or not url.isascii():
        return "has whitespace, control or non-ASCII characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        return "is not a URL"
    if port == 0:
        return "names port 0"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return "carries user information (put credentials in the npm user config, not the URL)"
    if not parts.hostname:
        return "names no host"
    if not _HOST.fullmatch(parts.hostname):
        return "names a host that is not a name, IPv4 or IPv6 address"
    if parts.path and not _PATH.fullmatch(parts.path):
        return "has a path with characters other than letters, digits and ._~/-"
    if parts.query or parts.fragment:
        return "has a query or fragment"
    return None


def _safe(url: str) -> str:
    """`url` with any user information replaced, for an error line."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.netloc.rpartition("@")[2]
    shown = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    shown = shown.encode("ascii", "backslashreplace").decode("ascii")
    return repr(shown if len(shown) <= 100 else shown[:97] + "...")


def refusal(url: str, what: str = "--registry") -> str | None:
    """The error line refusing `url` as `what` (never quoting a password), or None."""
    why = problem(url)
    if not why:
        return None
    redacted = "@" in url
    return (
        f"{what} {_safe(url)}{' (user information removed)' if redacted else ''} {why}; "
        "pass http(s)://host[:port]/[path] without credentials"
    )


def parse(url: str, what: str = "--registry") -> str:
    """The registry URL, normalised to end with `/`; one `UsageError` line otherwise."""
    line = refusal(url, what)
    if line:
        raise UsageError(line)
    return url if url.endswith("/") else url + "/"


def is_valid(url: str) -> bool:
    return problem(url) is None
