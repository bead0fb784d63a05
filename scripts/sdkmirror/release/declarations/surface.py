"""The public surface of a declaration file, as the TypeScript compiler reads it.

`js/api-surface.mjs` runs with the toolchain's Node and a pinned TypeScript (installed once
into the cache) and prints every exported name with its kind, signatures and members as JSON;
`Surface.from_json` turns that into plain data the interface notes diff without Node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import npmtool

if TYPE_CHECKING:
    from sdkmirror.infra.toolchain import Toolchain

SCRIPT = Path(__file__).resolve().parents[1] / "js" / "api-surface.mjs"


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    optional: bool
    rest: bool = False

    def same_contract(self, other: Param) -> bool:
        """Equal for callers: a renamed parameter changes nothing."""
        return (self.type, self.optional, self.rest) == (other.type, other.optional, other.rest)


@dataclass(frozen=True)
class Signature:
    text: str  # the whole declaration on one line, without export/declare modifiers
    params: tuple[Param, ...] | None = None  # None: not callable (a property, a type alias)
    returns: str = ""
    type_params: str = ""


@dataclass(frozen=True)
class Member:
    name: str  # `static x` for static members, `constructor`, `[string]` for index signatures
    kind: str  # method, property, accessor, constructor, index, call
    optional: bool
    signatures: tuple[Signature, ...]


@dataclass(frozen=True)
class Export:
    name: str  # as the consumer imports it; `default` for the default export
    kind: str  # function, class, interface, type, const, let, var, enum, namespace, re-export
    type_only: bool
    signatures: tuple[Signature, ...]  # overloads, or one heading for classes and interfaces
    members: tuple[Member, ...] | None = None  # classes and interfaces

    @property
    def text(self) -> str:
        return " / ".join(s.text for s in self.signatures) or self.kind


@dataclass(frozen=True)
class Surface:
    exports: dict[str, Export]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Surface:
        return cls({e["name"]: _export(e) for e in data.get("exports", [])})


def _signature(data: Mapping[str, Any]) -> Signature:
    params = data.get("params")
    return Signature(
        text=str(data["text"]),
        params=None
        if params is None
        else tuple(
            Param(str(p["name"]), str(p["type"]), bool(p["optional"]), bool(p.get("rest")))
            for p in params
        ),
        returns=str(data.get("returns", "")),
        type_params=str(data.get("type_params", "")),
    )


def _export(data: Mapping[str, Any]) -> Export:
    members = data.get("members")
    return Export(
        name=str(data["name"]),
        kind=str(data["kind"]),
        type_only=bool(data.get("type_only")),
        signatures=tuple(_signature(s) for s in data.get("signatures", [])),
        members=None
        if members is None
        else tuple(
            Member(
                str(m["name"]),
                str(m["kind"]),
                bool(m.get("optional")),
                tuple(_signature(s) for s in m.get("signatures", [])),
            )
            for m in members
        ),
    )


def typescript(tc: Toolchain, cache_dir: Path) -> Path:
    """The pinned TypeScript's `lib/typescript.js`, installed once into the cache."""
    return (
        npmtool.typescript(tc, cache_dir) / "node_modules" / "typescript" / "lib" / "typescript.js"
    )


def read(declarations: Path, tc: Toolchain, cache_dir: Path) -> Surface:
    """Run the compiler over one `.d.mts`/`.d.ts` file and return what it exports."""
    if not declarations.is_file():
        raise MirrorError(f"{declarations} does not exist; build the SDK first")
    compiler = typescript(tc, cache_dir)
    # The path as given, not resolved: resolving would follow a link the reader must refuse.
    result = tc.run(
        [tc.node, SCRIPT, compiler, declarations.absolute()],
        cwd=declarations.parent,
        what=f"reading the declarations in {declarations.name} with TypeScript "
        f"{npmtool.TYPESCRIPT_VERSION}",
    )
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise MirrorError(
            f"the declaration reader printed no JSON for {declarations} ({exc.msg}); "
            "reinstall the cached TypeScript by deleting its directory"
        ) from None
    return Surface.from_json(data)
