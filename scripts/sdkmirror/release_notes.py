"""The SDK's public surface from a built package, its delta between two releases, as notes."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MirrorError
from .repackage import entry_points
from .toolchain import Toolchain

# Lists every runtime export of a module: name, typeof, and a function's declared arity.
_LIST_EXPORTS = """
const m = await import(process.argv[1]);
const out = {};
for (const k of Object.keys(m).sort()) {
  const v = m[k];
  out[k] = { kind: typeof v, arity: typeof v === "function" ? v.length : null };
}
process.stdout.write(JSON.stringify(out));
"""


@dataclass(frozen=True)
class Export:
    kind: str  # runtime: typeof; types: function/const/class/interface/type/enum/...
    detail: str = ""  # runtime: arity; types: the normalised declaration

    def describe(self) -> str:
        return f"{self.kind}{f', {self.detail}' if self.detail else ''}"


@dataclass(frozen=True)
class Surface:
    runtime: dict[str, Export]
    types: dict[str, Export]


@dataclass
class Delta:
    added: list[tuple[str, str, Export]] = field(default_factory=list)  # (where, name, export)
    removed: list[tuple[str, str, Export]] = field(default_factory=list)
    changed: list[tuple[str, str, Export, Export, bool]] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return bool(self.removed) or any(b for *_, b in self.changed)

    @property
    def classification(self) -> str:
        if self.breaking:
            return "breaking"
        if self.added or self.changed:
            return "additive"
        return "unchanged"


# --- runtime exports --------------------------------------------------------------------------


def runtime_exports(entry: Path, tc: Toolchain) -> dict[str, Export]:
    """`import()` the entry in Node and list what it exports."""
    result = tc.run(
        [tc.node, "--input-type=module", "-e", _LIST_EXPORTS, entry.resolve().as_uri()],
        cwd=entry.parent,
        what=f"importing {entry.name} to list its exports",
    )
    data: Mapping[str, Any] = json.loads(result.stdout or "{}")
    return {
        name: Export(v["kind"], f"{v['arity']} args" if v.get("arity") is not None else "")
        for name, v in data.items()
    }


# --- type declarations ------------------------------------------------------------------------

_DECL_KINDS = (
    r"function|const|let|var|class|abstract\s+class|interface|type|enum|const\s+enum|namespace"
)
_EXPORT_DECL = re.compile(
    rf"^export\s+(?:declare\s+)?(?:default\s+)?({_DECL_KINDS})\s+([A-Za-z_$][\w$]*)(.*)$", re.M
)
_LOCAL_DECL = re.compile(rf"^(?:declare\s+)?({_DECL_KINDS})\s+([A-Za-z_$][\w$]*)(.*)$", re.M)
_EXPORT_LIST = re.compile(
    r"^export\s+(type\s+)?\{([^}]*)\}\s*(?:from\s*['\"][^'\"]+['\"])?", re.M | re.S
)
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def _norm(text: str) -> str:
    return " ".join(text.split()).rstrip(";{ ").strip()


def type_exports(text: str) -> dict[str, Export]:
    """Exported names of a .d.mts, read line by line: `export declare ...`, `export { ... }`."""
    text = _COMMENTS.sub("", text)
    local: dict[str, Export] = {}
    for m in _LOCAL_DECL.finditer(text):
        kind = " ".join(m.group(1).split())
        local.setdefault(m.group(2), Export(kind, _norm(m.group(0))))
    found: dict[str, Export] = {}
    for m in _EXPORT_DECL.finditer(text):
        kind = " ".join(m.group(1).split())
        found[m.group(2)] = Export(kind, _norm(m.group(0).replace("export ", "", 1)))
    for m in _EXPORT_LIST.finditer(text):
        type_only = bool(m.group(1))
        for item in m.group(2).split(","):
            item = item.strip()
            if not item:
                continue
            item_type = type_only or item.startswith("type ")
            item = item.removeprefix("type ").strip()
            original, _, alias = (p.strip() for p in item.partition(" as "))
            name = alias or original
            decl = local.get(original)
            if decl is not None:
                found[name] = decl
            else:
                found[name] = Export("type" if item_type else "re-export")
    return found


# --- surface of a built package -------------------------------------------------------------


def surface(sdk_dir: Path, sdk_pkg: Mapping[str, Any], tc: Toolchain) -> Surface:
    """Runtime and type exports of a built SDK, through its published entry points."""
    exports = (sdk_pkg.get("publishConfig") or {}).get("exports", sdk_pkg.get("exports"))
    points = entry_points(exports)
    entry = points.get("module") or points.get("main")
    if not entry:
        raise MirrorError(f"{sdk_pkg.get('name')} declares no import entry in its exports")
    path = sdk_dir / entry
    if not path.is_file():
        raise MirrorError(f"{path} does not exist; build the SDK first")
    types_path = sdk_dir / points["types"] if "types" in points else None
    types = (
        type_exports(types_path.read_text(encoding="utf-8"))
        if types_path and types_path.is_file()
        else {}
    )
    return Surface(runtime_exports(path, tc), types)


def diff(old: Surface, new: Surface) -> Delta:
    """What changed between two surfaces; removals and kind changes break consumers."""
    delta = Delta()
    for where, a, b in (("runtime", old.runtime, new.runtime), ("types", old.types, new.types)):
        for name in sorted(set(b) - set(a)):
            delta.added.append((where, name, b[name]))
        for name in sorted(set(a) - set(b)):
            delta.removed.append((where, name, a[name]))
        for name in sorted(set(a) & set(b)):
            if a[name] != b[name]:
                breaking = a[name].kind != b[name].kind or _fewer_allowed(a[name], b[name])
                delta.changed.append((where, name, a[name], b[name], breaking))
    return delta


def _fewer_allowed(old: Export, new: Export) -> bool:
    """A function that now declares more parameters may break callers that pass fewer."""
    m_old, m_new = re.match(r"(\d+) args", old.detail), re.match(r"(\d+) args", new.detail)
    return bool(m_old and m_new and int(m_new.group(1)) > int(m_old.group(1)))


def markdown(
    delta: Delta, *, version: str, from_tag: str, to_tag: str, from_version: str, to_version: str
) -> str:
    """A draft RELEASES.md entry (to save as notes/<version>.md after review)."""
    lines = [
        f"## {version}",
        "",
        f"Upstream `{to_tag}` (SDK {to_version}); previous: `{from_tag}` (SDK {from_version}).",
        "",
        f"Interface change: **{delta.classification}**.",
    ]

    def section(title: str, rows: list[str]) -> None:
        if rows:
            lines.extend(["", f"### {title}", "", *rows])

    section("Added", [f"- `{n}` ({where}: {e.describe()})" for where, n, e in delta.added])
    section(
        "Removed (breaking)",
        [f"- `{n}` ({where}: {e.describe()})" for where, n, e in delta.removed],
    )
    section(
        "Changed",
        [
            f"- `{n}` ({where}): {a.describe()} -> {b.describe()}" + (" (breaking)" if br else "")
            for where, n, a, b, br in delta.changed
        ],
    )
    if delta.classification == "unchanged":
        lines.extend(["", "No change to the public surface."])
    return "\n".join(lines) + "\n"


def main(
    *,
    from_tag: str,
    to_tag: str,
    origin: str | None = None,
    upstream: str | None = None,
    cfg: Any = None,
) -> str:
    """Build both mirror tags, diff their public surfaces, print a draft RELEASES.md entry."""
    from . import config as config_mod
    from . import console
    from .ledger import MirrorLedger
    from .lock import exclusive
    from .publish import build_tag, resolve_source
    from .taskutil import origin_url

    cfg = cfg or config_mod.load(upstream=upstream)
    url = origin_url(cfg, origin)
    tags = MirrorLedger(cfg.mirror_ledger).tags
    records = [resolve_source(t, tags) for t in (from_tag, to_tag)]
    surfaces: list[Surface] = []
    versions: list[str] = []
    with exclusive(cfg.work_dir, cfg.lock_timeout, "release.notes"):
        for record in records:
            workdir = cfg.work_dir / "notes" / record.commit[:12]
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            built = build_tag(cfg, record, url, workdir)
            with console.step(f"reading the public surface of {record.name}"):
                surfaces.append(surface(built.sdk_dir, built.sdk_pkg, built.toolchain))
            versions.append(str(built.sdk_pkg.get("version")))
    delta = diff(*surfaces)
    text = markdown(
        delta,
        version=versions[1],
        from_tag=from_tag,
        to_tag=to_tag,
        from_version=versions[0],
        to_version=versions[1],
    )
    console.show(
        console.table(
            "interface delta",
            ["", ""],
            [
                ("from", f"{from_tag} (SDK {versions[0]})"),
                ("to", f"{to_tag} (SDK {versions[1]})"),
                ("added", len(delta.added)),
                ("removed", len(delta.removed)),
                ("changed", len(delta.changed)),
                ("classification", delta.classification),
            ],
        )
    )
    console.out.print(text, markup=False, end="")
    return text
