"""Passed checks, remembered by the tarball's bytes: the same bytes are not checked twice.

The checks before an upload (install into an empty consumer and import, publint, the strict
consumer type-check, attw) depend on nothing but the tarball and the pinned tools that run
them. A pass is recorded under a key of the tarball's integrity, the toolchain, every tool's
pin, the code of the checks and the sandbox profile; a later build that packs the same bytes
finds it and skips them. A failure is never recorded, so it always runs again and says why.

Two things stay live on purpose: the tarball's own inspection (it is cheap and decides the
key), and `publish.check`, which installs what the registry serves after the upload.

Records are plain JSON files in the build cache's `verdicts/` directory, written by this
process after the checks' sandboxed commands have exited; nothing in them is ever executed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sdkmirror.core.atomic_file import write_atomic
from sdkmirror.infra import sandbox
from sdkmirror.smoke import build_cache, build_key

FORMAT = 1
# Our code that decides a verdict: a change to any of it is a new key.
CHECK_CODE = (
    "release/publish/build.py",
    "release/publish/verdicts.py",
    "release/declarations/consumer.py",
    "release/js/audit-declarations.mjs",
    "release/js/consumer-typecheck.mjs",
    "infra/npmtool.py",
    "infra/toolchain.py",
)


@dataclass(frozen=True)
class Verdict:
    key: str
    integrity: str
    checks: tuple[str, ...]
    exports: tuple[str, ...]
    when: str


@dataclass(frozen=True)
class Verdicts:
    """The verdicts kept beside a build cache's entries."""

    root: Path

    @classmethod
    def of(cls, cache: build_cache.BuildCache | None) -> Verdicts | None:
        return None if cache is None else cls(cache.verdicts_dir)

    @staticmethod
    def key(integrity: str, checks: Sequence[str], tools: Mapping[str, str]) -> str:
        """The address of "these bytes passed `checks` with `tools`" (the toolchain included)."""
        inputs = {
            "format": FORMAT,
            "integrity": integrity,
            "checks": list(checks),
            "tools": dict(sorted(tools.items())),
            "tool": build_key.tool_version(),
            "code": build_key.code_digest(*CHECK_CODE),
            "sandbox_profile": sandbox.PROFILE_VERSION,
        }
        text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def passed(self, key: str, integrity: str) -> Verdict | None:
        """The recorded pass for `key`, or None; an unreadable or foreign record is no pass."""
        try:
            data = json.loads(self._path(key).read_text())
            verdict = Verdict(
                key=key,
                integrity=str(data["integrity"]),
                checks=tuple(str(c) for c in data["checks"]),
                exports=tuple(str(e) for e in data["exports"]),
                when=str(data["when"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if data.get("format") != FORMAT or verdict.integrity != integrity:
            return None
        return verdict

    def record(
        self, key: str, integrity: str, checks: Sequence[str], exports: Sequence[str]
    ) -> Verdict:
        """Remember a pass (atomically: a reader sees the whole record or none)."""
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        verdict = Verdict(key, integrity, tuple(checks), tuple(exports), when)
        self.root.mkdir(parents=True, exist_ok=True)
        body = {
            "format": FORMAT,
            "integrity": integrity,
            "checks": list(checks),
            "exports": list(exports),
            "when": when,
        }
        write_atomic(self._path(key), json.dumps(body, indent=2) + "\n", what="a check verdict")
        return verdict

    def clear(self) -> int:
        """Forget every verdict (`cache.prune --all`); how many there were."""
        gone = 0
        for path in self.root.glob("*.json") if self.root.is_dir() else ():
            path.unlink(missing_ok=True)
            gone += 1
        return gone
