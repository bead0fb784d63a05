"""Release tag names: the one place that decides which upstream tags the mirror accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sdkmirror.core.versions import EXACT, Version

__all__ = ["MAX_REF_LENGTH", "TagPattern", "Version", "check_template", "describe_invalid"]

MAX_REF_LENGTH = 200
_SAFE_LITERAL = re.compile(r"^[A-Za-z0-9@/._-]*$")


def check_template(template: str) -> str | None:
    """Why a `...{version}...` template is unusable, or None when it is fine."""
    if template.count("{version}") != 1:
        return "must contain {version} exactly once"
    literal = template.replace("{version}", "")
    if not _SAFE_LITERAL.match(literal):
        return "may only contain letters, digits and @ / . _ - around {version}"
    if ".." in literal or "//" in literal or template.startswith(("-", "/", ".")):
        return "must be a valid git ref name (no '..', '//', or leading '-', '/', '.')"
    return None


@dataclass(frozen=True)
class TagPattern:
    """Maps release versions to tag (or branch) names and back, exactly."""

    template: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _seen: dict[str, Version | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        problem = check_template(self.template)
        if problem:
            raise ValueError(problem)
        before, after = self.template.split("{version}")
        object.__setattr__(
            self,
            "_regex",
            re.compile(re.escape(before) + f"({EXACT})" + re.escape(after), re.ASCII),
        )

    def version_of(self, name: str) -> Version | None:
        """The version a name carries, or None for anything that is not exactly a release name."""
        if len(name) > MAX_REF_LENGTH:
            return None
        # The same names come from upstream, origin and the ledger in one run: parse each once.
        if name in self._seen:
            return self._seen[name]
        m = self._regex.fullmatch(name)
        version = Version.parse(m.group(1)) if m else None
        if len(self._seen) < _SEEN_LIMIT:
            self._seen[name] = version
        return version

    def name_for(self, version: Version | str) -> str:
        return self.template.replace("{version}", str(version))


_SEEN_LIMIT = 200_000  # names remembered per pattern; past it, names are parsed every time


def describe_invalid(name: str) -> str:
    """A printable, bounded rendering of a hostile name for alerts and logs."""
    shown = name if len(name) <= 80 else name[:77] + "..."
    return shown.encode("unicode_escape").decode("ascii")
