"""Interface notes: the SDK's declared surface at two releases, its changes classified.

The public surface is what the declarations (`publishConfig.exports`' `types` file) export,
read by the TypeScript compiler (`api_surface`) from the very files that are published: the
build bundles them (compiler emit, then rollup-plugin-dts) before anything reads them.
Runtime-only exports, such as the bundler's helpers re-exported under one-letter names, are
not API and never appear here.

What changed is listed from the two surfaces; whether a change breaks is the compiler's call
(`api_compat`): it is breaking when code that compiled against the old declarations fails
against the new, and the notes quote the compiler's reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sdkmirror.core import config as config_mod
from sdkmirror.core.errors import MirrorError, UsageError
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.release.declarations.compat import Compatibility
from sdkmirror.release.declarations.surface import Export, Member, Signature, Surface
from sdkmirror.release.package.repackage import entry_points

ADDITIVE = "additive"
BREAKING = "breaking"
IMPLEMENTERS = "breaking for implementers"  # callers are safe, implementations must change
_RANK = {ADDITIVE: 1, IMPLEMENTERS: 2, BREAKING: 3}

# Which section of the notes each change goes to.
_ADDED = ("export added", "member added", "overload added")
_REMOVED = ("export removed", "member removed", "overload removed")


@dataclass(frozen=True)
class Change:
    subject: str  # `createClient`, `KimiClient.steer`
    change: str  # export added, required parameter added, signature changed, ...
    severity: str  # additive | breaking | breaking for implementers
    old: str = ""
    new: str = ""
    why: str = ""  # the compiler's verdict, when it judged the change

    def describe(self) -> str:
        head = f"`{self.subject}`: {self.change} ({self.severity})"
        if self.old and self.new:
            head = f"{head}: `{self.old}` -> `{self.new}`"
        elif self.new or self.old:
            head = f"{head}: `{self.new or self.old}`"
        return f"{head}; why: {self.why}" if self.why else head


@dataclass
class Delta:
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return any(c.severity == BREAKING for c in self.changes)

    @property
    def classification(self) -> str:
        """The most severe change: breaking > breaking for implementers > additive."""
        if not self.changes:
            return "unchanged"
        return max((c.severity for c in self.changes), key=_RANK.__getitem__)

    def section(self, kinds: Sequence[str] | None) -> list[Change]:
        taken = (*_ADDED, *_REMOVED)
        return [c for c in self.changes if (c.change in kinds if kinds else c.change not in taken)]


# --- the diff (pure: surfaces in, changes out) -------------------------------------------------


def diff(old: Surface, new: Surface, compat: Compatibility | None = None) -> Delta:
    """Every change between two declared surfaces, classified: by the compiler's verdict
    when `compat` is given (what the notes use), else by their text alone."""
    delta = _text_diff(old, new)
    return delta if compat is None else judge(delta, compat)


# Which failure explains a change best: the most specific probe first.
_PROBE_ORDER = ("setter", "member", "read", "write", "value")
_COMPATIBLE = "old code still compiles against it (checked by the compiler)"


def judge(delta: Delta, compat: Compatibility) -> Delta:
    """Each change's severity from the compiler: breaking with the compiler's reason when a
    probe written for the old declarations fails on the new, additive when all compile.
    A failure no listed change explains (a setter gone, say) becomes a change of its own."""
    used: set[tuple[str, str | None, str]] = set()
    judged = Delta()
    for c in delta.changes:
        if c.change == "export added":
            judged.changes.append(c)
            continue
        if c.change == "export removed":
            why = f"code that imports `{c.subject}` no longer compiles"
            judged.changes.append(replace(c, severity=BREAKING, why=why))
            continue
        name, _, member = c.subject.partition(".")
        breaks = compat.breaks(name)
        if member:
            hits = [f for f in breaks if f.member == member or f"'{member}'" in f.message]
        else:
            hits = list(breaks)
        if c.change == "member removed" and not hits:
            why = f"code that reads `{c.subject}` no longer compiles"
            judged.changes.append(replace(c, severity=BREAKING, why=why))
            continue
        if hits:
            hits.sort(key=lambda f: _PROBE_ORDER.index(f.probe))
            used.update((name, f.member, f.probe) for f in hits)
            change = _label(hits[0].probe) if hits[0].probe == "setter" else c.change
            why = _clip(hits[0].why(name))
            judged.changes.append(replace(c, change=change, severity=BREAKING, why=why))
        else:
            judged.changes.append(replace(c, severity=ADDITIVE, why=_COMPATIBLE))
    explained = {(n, m) for n, m, _ in used}
    for name in sorted(compat.failures):
        for f in compat.breaks(name):
            # One entry per member (or per export, for a failure not tied to a member).
            if (name, f.member) in explained or (f.member is None and (name, None) in explained):
                continue
            explained.add((name, f.member))
            subject = f"{name}.{f.member}" if f.member else name
            judged.changes.append(
                Change(subject, _label(f.probe), BREAKING, why=_clip(f.why(name)))
            )
    return judged


def _label(probe: str) -> str:
    return {
        "setter": "no longer writable",
        "write": "no longer accepts what old code passes",
        "read": "no longer fits old code",
        "member": "type changed",
        "value": "no longer usable as before",
    }.get(probe, "changed")


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text_diff(old: Surface, new: Surface) -> Delta:
    """Every change between two declared surfaces, classified by their text."""
    delta = Delta()
    a, b = old.exports, new.exports
    for name in sorted(set(b) - set(a)):
        delta.changes.append(Change(name, "export added", ADDITIVE, new=b[name].text))
    for name in sorted(set(a) - set(b)):
        delta.changes.append(Change(name, "export removed", BREAKING, old=a[name].text))
    for name in sorted(set(a) & set(b)):
        delta.changes.extend(_export_changes(a[name], b[name]))
    return delta


def _export_changes(a: Export, b: Export) -> list[Change]:
    name = a.name
    if a.kind != b.kind or (b.type_only and not a.type_only):
        # A value that became type-only, or a function that became a class: narrowed.
        return [_changed(name, f"{_kind(a)} {a.text}", f"{_kind(b)} {b.text}")]
    if a.members is not None or b.members is not None:
        found: list[Change] = []
        if [s.text for s in a.signatures] != [s.text for s in b.signatures]:
            found.append(_changed(name, a.text, b.text))
        found.extend(_member_changes(name, a.members or (), b.members or (), kind=b.kind))
        return found
    if _callable(a.signatures) and _callable(b.signatures):
        return _call_changes(name, a.signatures, b.signatures)
    if [s.text for s in a.signatures] != [s.text for s in b.signatures]:
        return [_changed(name, a.text, b.text)]
    return []


def _kind(e: Export) -> str:
    return (
        f"{e.kind} (type only)" if e.type_only and e.kind not in ("type", "interface") else e.kind
    )


def _member_changes(
    owner: str, old: Iterable[Member], new: Iterable[Member], *, kind: str
) -> list[Change]:
    a, b = {m.name: m for m in old}, {m.name: m for m in new}
    found: list[Change] = []
    for name in [n for n in b if n not in a]:
        m = b[name]
        # A new required member of an interface breaks every object that implements it.
        severity = IMPLEMENTERS if "interface" in kind and not m.optional else ADDITIVE
        found.append(Change(f"{owner}.{name}", "member added", severity, new=_text(m.signatures)))
    for name in [n for n in a if n not in b]:
        found.append(
            Change(f"{owner}.{name}", "member removed", BREAKING, old=_text(a[name].signatures))
        )
    for name in [n for n in a if n in b]:
        x, y = a[name], b[name]
        if _callable(x.signatures) and _callable(y.signatures):
            found.extend(_call_changes(f"{owner}.{name}", x.signatures, y.signatures))
        elif _text(x.signatures) != _text(y.signatures):
            found.append(_changed(f"{owner}.{name}", _text(x.signatures), _text(y.signatures)))
    return found


def _call_changes(subject: str, old: Sequence[Signature], new: Sequence[Signature]) -> list[Change]:
    """Overloads added or removed, then each remaining signature compared parameter by parameter."""
    if len(old) == len(new):
        return [c for x, y in zip(old, new, strict=True) if (c := _params_change(subject, x, y))]
    old_texts, new_texts = [s.text for s in old], [s.text for s in new]
    found = [
        Change(subject, "overload added", ADDITIVE, new=s.text)
        for s in new
        if s.text not in old_texts
    ]
    found += [
        Change(subject, "overload removed", BREAKING, old=s.text)
        for s in old
        if s.text not in new_texts
    ]
    return found


def _params_change(subject: str, a: Signature, b: Signature) -> Change | None:
    pa, pb = a.params or (), b.params or ()
    same_frame = (a.returns, a.type_params) == (b.returns, b.type_params)
    common = min(len(pa), len(pb))
    same_prefix = all(x.same_contract(y) for x, y in zip(pa[:common], pb[:common], strict=True))
    if same_frame and same_prefix and len(pa) == len(pb):
        return None  # only parameter names changed
    if same_frame and same_prefix and len(pb) > len(pa):
        extra = pb[len(pa) :]
        if any(not p.optional for p in extra):
            return Change(subject, "required parameter added", BREAKING, old=a.text, new=b.text)
        return Change(subject, "optional parameter added", ADDITIVE, old=a.text, new=b.text)
    return _changed(subject, a.text, b.text)


def _changed(subject: str, old: str, new: str) -> Change:
    return Change(subject, "signature changed", BREAKING, old=old, new=new)


def _callable(sigs: Sequence[Signature]) -> bool:
    return bool(sigs) and all(s.params is not None for s in sigs)


def _text(sigs: Sequence[Signature]) -> str:
    return " / ".join(s.text for s in sigs)


# --- the surface of a built package -------------------------------------------------------------


def declarations_file(sdk_dir: Path, sdk_pkg: Mapping[str, Any]) -> Path:
    """The `types` file the published exports name: the public surface is what it declares."""
    exports = (sdk_pkg.get("publishConfig") or {}).get("exports", sdk_pkg.get("exports"))
    types = entry_points(exports).get("types")
    if not types:
        raise MirrorError(
            f"{sdk_pkg.get('name')} names no `types` file in its exports; interface notes are "
            "read from the declarations, so there is nothing to compare"
        )
    path = sdk_dir / types
    if not path.is_file():
        raise MirrorError(f"{path} does not exist; build the SDK first")
    return path


def surface(sdk_dir: Path, sdk_pkg: Mapping[str, Any], tc: Toolchain, cache_dir: Path) -> Surface:
    """The declared surface of a built SDK, read with the pinned TypeScript."""
    from sdkmirror.release.declarations import surface as api_surface

    return api_surface.read(declarations_file(sdk_dir, sdk_pkg), tc, cache_dir)


@dataclass(frozen=True)
class Snapshot:
    """A release's surface and a copy of the bundled declarations it was read from (kept for
    the compiler's comparison with the next release, after the build tree is gone)."""

    surface: Surface
    declarations: Path


def snapshot(
    sdk_dir: Path, sdk_pkg: Mapping[str, Any], tc: Toolchain, cache_dir: Path, keep: Path
) -> Snapshot:
    """Read the surface of a built SDK and copy its declarations to `keep`."""
    source = declarations_file(sdk_dir, sdk_pkg)
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, keep)
    return Snapshot(surface(sdk_dir, sdk_pkg, tc, cache_dir), keep)


def compare(old: Snapshot, new: Snapshot, tc: Toolchain, cache_dir: Path) -> Delta:
    """The changes from `old` to `new`, judged by the compiler."""
    from sdkmirror.release.declarations import compat as api_compat

    compat = api_compat.compare(old.declarations, new.declarations, tc, cache_dir)
    return diff(old.surface, new.surface, compat)


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

    def section(title: str, changes: list[Change]) -> None:
        if changes:
            lines.extend(["", f"### {title}", "", *(f"- {c.describe()}" for c in changes)])

    section("Added", delta.section(_ADDED))
    section("Removed (breaking)", delta.section(_REMOVED))
    section("Changed", delta.section(None))
    if delta.classification == "unchanged":
        lines.extend(["", "No change to the declared surface."])
    return "\n".join(lines) + "\n"


def main(
    *,
    from_tag: str,
    to_tag: str,
    origin: str | None = None,
    upstream: str | None = None,
    cfg: Any = None,
    json_out: bool = False,
) -> str:
    """Build both mirror tags, diff their declared surfaces, print a draft RELEASES.md entry.

    The entry (markdown, or with `json_out` the delta as JSON) is the result, on stdout; the
    summary table goes to stderr so that `> notes.md` holds the entry alone.
    """
    from sdkmirror.core import config as config_mod
    from sdkmirror.infra import console
    from sdkmirror.infra.gitio import origin_url
    from sdkmirror.infra.lock import exclusive
    from sdkmirror.mirror.ledger import MirrorLedger
    from sdkmirror.release.publish.build import build_tag
    from sdkmirror.release.publish.plan import resolve_source

    cfg = cfg or config_mod.load(upstream=upstream)
    url = origin_url(cfg, origin)
    tags = MirrorLedger(cfg.mirror_ledger).tags
    records = [resolve_source(t, tags) for t in (from_tag, to_tag)]
    snapshots: list[Snapshot] = []
    versions: list[str] = []
    with exclusive(cfg.work_dir, cfg.lock_timeout, "release.notes"):
        keep = cfg.work_dir / "notes" / "declarations"
        for i, record in enumerate(records):
            workdir = cfg.work_dir / "notes" / record.commit[:12]
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
            built = build_tag(cfg, record, url, workdir)
            tc = built.toolchain
            with console.step(f"reading the public surface of {record.name}"):
                snapshots.append(
                    snapshot(built.sdk_dir, built.sdk_pkg, tc, cfg.cache_dir, keep / f"{i}.d.mts")
                )
            versions.append(str(built.sdk_pkg.get("version")))
        with console.step("judging the changes with the compiler"):
            delta = compare(snapshots[0], snapshots[1], tc, cfg.cache_dir)
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
                ("added", len(delta.section(_ADDED))),
                ("removed", len(delta.section(_REMOVED))),
                ("changed", len(delta.section(None))),
                ("classification", delta.classification),
            ],
        )
    )
    if json_out:
        console.result_json(
            {
                "from": {"tag": from_tag, "sdk_version": versions[0]},
                "to": {"tag": to_tag, "sdk_version": versions[1]},
                "classification": delta.classification,
                "changes": [asdict(c) for c in delta.changes],
                "markdown": text,
            }
        )
    else:
        console.out.file.write(text)
    return text


def check_release_order(from_tag: str, to_tag: str) -> None:
    """`--from` must be the older release of the two: the notes read from old to new."""
    tags = config_mod.load().tags
    old, new = tags.version_of(from_tag), tags.version_of(to_tag)
    if old is not None and new is not None and not old < new:
        raise UsageError(
            f"--from {from_tag} is not older than --to {to_tag}; pass the older release as "
            "--from and the newer as --to"
        )
