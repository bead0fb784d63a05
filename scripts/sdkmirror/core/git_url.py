"""Git remote URLs as the user types them: refused up front when git could never read them.

Accepted: `scheme://host[:port]/path` for the schemes git speaks, scp-like `user@host:path`,
and local paths. Refused: whitespace or control characters, a leading `-` (git would read an
option), an unknown scheme, a host or port that does not parse.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SCHEMES = ("https", "http", "ssh", "git", "file")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def problem(url: str) -> str | None:
    """Why git could not use `url` as a remote, or None when it could."""
    if not url:
        return "it is empty"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it contains whitespace or control characters"
    if url.startswith("-"):
        return "it starts with '-'"
    m = _SCHEME.match(url)
    if m is None:
        return "it has an unknown scheme" if "://" in url else None  # a path or user@host:path
    if m.group(1).lower() not in SCHEMES:
        return f"git does not speak {m.group(1)}://"
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port out of range or not a number raises
    except ValueError as exc:
        return f"it does not parse ({exc})"
    if parts.scheme.lower() != "file" and not parts.hostname:
        return "it names no host"
    return None


def refusal(url: str, flag: str) -> str | None:
    """The one-line error for an unusable URL given as `flag`, or None."""
    why = problem(url)
    if why is None:
        return None
    shown = url if len(url) <= 200 else url[:200] + "..."
    return (
        f"{flag} {shown!r} is not a git URL ({why}); pass https://host/owner/repo.git, "
        "user@host:path or a local path"
    )
