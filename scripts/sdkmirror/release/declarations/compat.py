"""Is a release breaking? The compiler decides: code that compiled against the old
declarations must fail against the new ones.

`js/api-compat.mjs` puts both bundled declaration files into one program and, for every
export both declare, compiles probes: the new value used where the old one was, the new type
read as the old one, the old type handed to (or implementing) the new one, every property old
code could assign assigned again. A failed probe carries the compiler's own message: it is
the reason the notes give. Private members (`#private`, `private`, `protected`) are not API:
they are dropped from both files first, so that two builds of one class compare structurally.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import npmtool

if TYPE_CHECKING:
    from sdkmirror.infra.toolchain import Toolchain

SCRIPT = Path(__file__).resolve().parents[1] / "js" / "api-compat.mjs"
_PRIVATE_MEMBER = re.compile(r"^[ \t]*(?:#private|(?:private|protected)\b[^;{\n]*);[ \t]*\n", re.M)

# Probe kinds (see the module docstring).
VALUE, READ, WRITE, SETTER, MEMBER = "value", "read", "write", "setter", "member"


@dataclass(frozen=True)
class Failure:
    probe: str  # value | read | write | setter
    member: str | None  # the property a setter probe assigned
    code: int  # the compiler's TS code
    message: str  # the compiler's message, one line

    def why(self, name: str) -> str:
        """What old code can no longer do, and the compiler's reason."""
        what = {
            VALUE: f"code that uses `{name}` as before no longer compiles",
            READ: f"what the SDK hands out as `{name}` no longer fits code written for it",
            WRITE: f"code that builds, passes or implements `{name}` no longer compiles",
            SETTER: f"code that assigns `{name}.{self.member}` no longer compiles",
            MEMBER: f"code that reads `{name}.{self.member}` no longer compiles",
        }[self.probe]
        return f"{what} (TS{self.code}: {self.message})"


@dataclass(frozen=True)
class Compatibility:
    failures: dict[str, tuple[Failure, ...]] = field(default_factory=dict)
    inputs: frozenset[str] = frozenset()  # types callers hand to the SDK (by local name)
    local: dict[str, str] = field(default_factory=dict)  # export name -> declared name
    probes: int = 0

    def breaks(self, name: str) -> tuple[Failure, ...]:
        """The failures that make `name`'s change breaking: any but a `write` probe of a type
        that is only ever handed out (an output type may gain members)."""
        found = self.failures.get(name, ())
        is_input = self.local.get(name, name) in self.inputs
        return tuple(f for f in found if f.probe != WRITE or is_input)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Compatibility:
        return cls(
            failures={
                name: tuple(
                    Failure(str(f["probe"]), f.get("member"), int(f["code"]), str(f["message"]))
                    for f in items
                )
                for name, items in (data.get("failures") or {}).items()
            },
            inputs=frozenset(str(n) for n in data.get("inputs") or ()),
            local={str(k): str(v) for k, v in (data.get("local") or {}).items()},
            probes=int(data.get("probes") or 0),
        )


def without_private_members(text: str) -> str:
    """The declarations without the private members tsc writes as `#private;`, `private x;`."""
    return _PRIVATE_MEMBER.sub("", text)


def compare(old: Path, new: Path, tc: Toolchain, cache_dir: Path) -> Compatibility:
    """Compile the probes of `old` against `new` (both bundled declaration files)."""
    compiler = npmtool.typescript(tc, cache_dir) / "node_modules" / "typescript"
    with tempfile.TemporaryDirectory(prefix="sdkmirror-compat-") as tmp:
        scratch = Path(tmp)
        for name, src in (("old.d.mts", old), ("new.d.mts", new)):
            text = src.read_text(encoding="utf-8")
            (scratch / name).write_text(without_private_members(text), encoding="utf-8")
        job = scratch / "job.json"
        job.write_text(json.dumps({"dir": str(scratch)}), encoding="utf-8")
        res = tc.run(
            [tc.node, SCRIPT, compiler, job],
            cwd=scratch,
            what="comparing the declarations with the compiler's assignability checks",
            timeout=600,
        )
    try:
        return Compatibility.from_json(json.loads(res.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        raise MirrorError(
            f"the compatibility check printed no usable JSON ({exc}); reinstall the cached "
            "TypeScript by deleting its directory"
        ) from None
