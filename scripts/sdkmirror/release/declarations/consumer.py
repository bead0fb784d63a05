"""The consumer type-check and attw: the packed declarations, as a strict consumer sees them.

An empty project installs the tarball and, with a pinned TypeScript and `@types/node` from
the cache, compiles a file importing every export the declarations name, with `skipLibCheck:
false`, so a type the declarations import from a package the consumer lacks is an error
rather than a silent `any`. It does so under both resolutions consumers use: `nodenext` and
`bundler`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdkmirror.core.errors import ExitCode, MirrorError, VerificationFailed
from sdkmirror.infra import npmtool
from sdkmirror.infra.toolchain import Toolchain

ATTW = "@arethetypeswrong/cli"
ATTW_VERSION = "0.18.5"
# `esm-only`: the package ships ESM alone (`type: module`, `.mjs`/`.d.mts`, no `require`
# condition), so attw's CommonJS resolutions (node10, node16 from CJS) have nothing to find;
# the profile ignores exactly those and still checks node16-ESM and bundler resolution.
ATTW_PROFILE = "esm-only"
ATTW_IGNORED = ("node10", "node16-cjs")  # what that profile ignores; its JSON still lists them
# `@types/node` per Node major: the declarations use Node's globals (`Buffer`, `NodeJS`), so a
# consumer needs the types of the Node line the upstream runs on (its toolchain's major).
TYPES_NODE = {
    20: "20.19.43",
    22: "22.20.7",
    24: npmtool.TYPES_NODE_VERSION,
    25: "25.9.12",
    26: "26.6.11",
}
RESOLUTIONS: dict[str, dict[str, str]] = {
    "nodenext": {"module": "nodenext", "moduleResolution": "nodenext"},
    "bundler": {"module": "esnext", "moduleResolution": "bundler"},
}

AUDIT_SCRIPT = Path(__file__).resolve().parents[1] / "js" / "audit-declarations.mjs"
TYPECHECK_SCRIPT = AUDIT_SCRIPT.with_name("consumer-typecheck.mjs")
RUNTIME_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")
_TS_ERROR = re.compile(r"^(?P<where>.*?)\((?P<line>\d+),\d+\): error (?P<msg>TS\d+: .*)$", re.M)


class TypeCheckFailed(VerificationFailed):
    """A strict TypeScript consumer cannot compile against the package, or attw rejects it."""

    exit_code = ExitCode.VIOLATION


@dataclass(frozen=True)
class ExportNames:
    values: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(sorted((*self.values, *self.types)))


@dataclass(frozen=True)
class TypeCheckResult:
    exports: dict[str, ExportNames]  # subpath ("." or "./x") -> its declared exports
    resolutions: tuple[str, ...]
    failed: dict[str, TypeCheckFailed] = field(default_factory=dict)  # with keep_going only

    @property
    def count(self) -> int:
        return sum(len(n.all) for n in self.exports.values())


# --- pure parts -------------------------------------------------------------------------------


def typed_subpaths(pkg: Mapping[str, Any]) -> dict[str, str]:
    """subpath -> declaration file for each entry of `exports` with a `types` condition."""
    exports = pkg.get("exports")
    if isinstance(exports, str | list) or (
        isinstance(exports, dict) and not any(k.startswith(".") for k in exports)
    ):
        exports = {".": exports}
    found: dict[str, str] = {}
    for subpath, entry in (exports or {}).items():
        target = _types_target(entry)
        if target and "*" not in subpath:
            found[subpath] = target
    if not found and isinstance(pkg.get("types"), str):
        found["."] = pkg["types"]
    return found


def _types_target(entry: Any) -> str | None:
    if isinstance(entry, list):
        return next((t for e in entry if (t := _types_target(e))), None)
    if isinstance(entry, dict):
        for key, value in entry.items():
            if key == "types" and isinstance(value, str):
                return value
            if isinstance(value, dict | list) and (hit := _types_target(value)):
                return hit
    return None


def consumer_source(name: str, exports: Mapping[str, ExportNames]) -> str:
    """A module importing every declared export (values as values, types as types), each under
    an alias so that subpaths never collide, and re-exporting them so none is unused."""
    lines: list[str] = []
    values: list[str] = []
    types: list[str] = []
    for subpath, names in sorted(exports.items()):
        spec = name if subpath == "." else f"{name}/{subpath.removeprefix('./')}"
        for kind, found, into in (("", names.values, values), ("type ", names.types, types)):
            if not found:
                continue
            aliases = [f"__{len(values) + len(types) + i}" for i in range(len(found))]
            into.extend(aliases)
            items = ", ".join(f"{n} as {a}" for n, a in zip(found, aliases, strict=True))
            lines.append(f"import {kind}{{ {items} }} from {json.dumps(spec)};")
    if values:
        lines.append(f"export {{ {', '.join(values)} }};")
    if types:
        lines.append(f"export type {{ {', '.join(types)} }};")
    return "\n".join(lines) + "\n"


def tsconfig(resolution: str, type_roots: Path) -> dict[str, Any]:
    return {
        "compilerOptions": {
            **RESOLUTIONS[resolution],
            "target": "es2023",
            # No DOM: a Node consumer's globals come from @types/node, and the DOM library
            # would double the compiler's work for every check.
            "lib": ["es2023"],
            "strict": True,
            "skipLibCheck": False,
            "noEmit": True,
            "verbatimModuleSyntax": True,
            "types": ["node"],
            "typeRoots": [str(type_roots)],
        },
        "files": ["consumer.ts"],
    }


def first_error(output: str) -> str | None:
    """`TS2307: Cannot find module ... (file:line)` from tsc's output, or None."""
    m = _TS_ERROR.search(output)
    if not m:
        return None
    where = m.group("where").strip().rsplit("node_modules/", 1)[-1]
    return f"{m.group('msg').strip()} ({where}:{m.group('line')})"


# --- steps that run programs ------------------------------------------------------------------


def export_names(tc: Toolchain, typescript_dir: Path, files: Sequence[Path]) -> list[ExportNames]:
    """The exports of each declaration file, read by the TypeScript compiler."""
    return read_declarations(tc, typescript_dir, None, [], files)


def read_declarations(
    tc: Toolchain,
    typescript_dir: Path,
    pkg_dir: Path | None,
    audited: Sequence[Path],
    entries: Sequence[Path],
) -> list[ExportNames]:
    """`audit` of the files in `audited` (the package in `pkg_dir` ships them), then the
    exports of each of `entries`: one process, one load of the compiler."""
    if not audited and not entries:
        return []
    allowed: list[str] = []
    if pkg_dir is not None:
        pkg = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
        allowed = sorted({n for f in RUNTIME_FIELDS for n in (pkg.get(f) or {})})
    names = [str(Path(f).resolve()) for f in entries]
    job_data = {"files": [str(f) for f in audited], "allowed": allowed, "names": names}
    readable = [_project_of(Path(f)) for f in entries]  # what the entries import, too
    with tempfile.TemporaryDirectory(prefix="sdkmirror-audit-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps(job_data))
        res = tc.run(
            [tc.node, AUDIT_SCRIPT, typescript_dir, job],
            cwd=Path(tmp),
            readable=[*([pkg_dir] if pkg_dir else []), *readable],
            what="auditing the published declarations and reading their exports",
            timeout=300,
        )
    data = json.loads(res.stdout)
    if data["problems"] and pkg_dir is not None:
        raise _audit_failure(data["problems"], pkg_dir)
    out: list[ExportNames] = []
    for f, key in zip(entries, names, strict=True):
        entry = data["names"][key]
        if not entry["found"]:
            raise TypeCheckFailed(f"{f} is not a module the compiler can read; check its path")
        out.append(ExportNames(tuple(entry["values"]), tuple(entry["types"])))
    return out


def published_declarations(pkg_dir: Path) -> list[Path]:
    """Every declaration file the package ships (not its dependencies')."""
    found = [
        p
        for pattern in ("*.d.ts", "*.d.mts", "*.d.cts")
        for p in pkg_dir.rglob(pattern)
        if "node_modules" not in p.relative_to(pkg_dir).parts and p.is_file()
    ]
    return sorted(found)


def audit(tc: Toolchain, typescript_dir: Path, pkg_dir: Path, files: Sequence[Path]) -> None:
    """The published declarations hold no code (an initializer or a body in an ambient
    context) and import nothing but the package's runtime dependencies and Node builtins."""
    read_declarations(tc, typescript_dir, pkg_dir, files, [])


def _audit_failure(problems: list[dict[str, Any]], pkg_dir: Path) -> TypeCheckFailed:
    """The first problem of the audit as one line (and how many more there are)."""
    p = problems[0]
    where = f"{Path(p['file']).relative_to(pkg_dir)}:{p['line']}"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    if p["kind"] == "import":
        return TypeCheckFailed(
            f"the published declarations import {p['detail']!r} ({where}){more}, which a "
            "consumer does not get: it is neither a runtime dependency nor a Node builtin; "
            "inline its types or make it a dependency"
        )
    what = "an initializer" if p["kind"] == "initializer" else "a body"
    return TypeCheckFailed(
        f"the published declarations have {what} in an ambient context at {where} "
        f"(`{p['detail']}`: {p['snippet']}){more}; declarations must come from the compiler's "
        "declaration emit, not from source"
    )


def _project_of(path: Path) -> Path:
    """The project a file was installed into (above its `node_modules`), else its directory."""
    resolved = path.resolve()
    for parent in resolved.parents:
        if parent.name == "node_modules":
            return parent.parent
    return resolved.parent


def install(tc: Toolchain, cache_dir: Path) -> Path:
    """TypeScript and `@types/node`, pinned, installed once into the cache (like publint), so
    the check needs no registry beyond what the tarball's own dependencies do."""
    return npmtool.typescript(tc, cache_dir)


def types_node(tc: Toolchain, cache_dir: Path) -> Path:
    """The `@types` directory holding `@types/node` for the toolchain's Node major."""
    major = int(str(tc.spec.node).split(".")[0])
    pin = TYPES_NODE.get(major)
    if pin is None:
        raise TypeCheckFailed(
            f"no @types/node is pinned for Node {major} (known: "
            f"{', '.join(map(str, TYPES_NODE))}); add its version to typecheck.TYPES_NODE"
        )
    if pin == npmtool.TYPES_NODE_VERSION:  # installed beside the pinned TypeScript
        return install(tc, cache_dir) / "node_modules" / "@types"
    home = npmtool.install(cache_dir / "types-node" / str(major), "@types/node", pin, tc)
    return home / "node_modules" / "@types"


def typecheck(
    tc: Toolchain,
    cache_dir: Path,
    source: Path | Sequence[str],
    name: str,
    workdir: Path,
    *,
    keep_going: bool = False,
) -> TypeCheckResult:
    """Install the package into an empty consumer and compile an import of every export.

    `source` is the tarball, or the `npm install` arguments that fetch the package from a
    registry (what a consumer of the published version gets). With `keep_going`, a
    resolution that fails is recorded in the result (`failed`) and the next one still runs."""
    install_args = [str(source)] if isinstance(source, Path) else list(source)
    home = install(tc, cache_dir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    manifest = {"name": "sdkmirror-types-consumer", "version": "0.0.0", "private": True}
    (workdir / "package.json").write_text(json.dumps({**manifest, "type": "module"}))
    tc.run(
        [
            tc.npm,
            "install",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            *install_args,
        ],
        cwd=workdir,
        network=True,
        what=f"installing {name} into an empty consumer",
        timeout=600,
    )
    pkg_dir = workdir / "node_modules" / name
    pkg = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
    subpaths = typed_subpaths(pkg)
    if not subpaths:
        raise TypeCheckFailed(f"{name} declares no types in its exports; consumers get `any`")
    missing = [t for t in subpaths.values() if not (pkg_dir / t).is_file()]
    if missing:
        raise TypeCheckFailed(f"{name}'s exports name the declarations {missing[0]}, not packed")
    ts_dir = home / "node_modules" / "typescript"
    entries = [pkg_dir / t for t in subpaths.values()]
    names = read_declarations(tc, ts_dir, pkg_dir, published_declarations(pkg_dir), entries)
    exports = dict(zip(subpaths, names, strict=True))
    (workdir / "consumer.ts").write_text(consumer_source(name, exports), encoding="utf-8")
    type_roots = types_node(tc, cache_dir)
    configs = {}
    for resolution in RESOLUTIONS:
        config = workdir / f"tsconfig.{resolution}.json"
        config.write_text(json.dumps(tsconfig(resolution, type_roots), indent=2), "utf-8")
        configs[resolution] = str(config)
    job = workdir / "typecheck-job.json"
    pinned = [home / "node_modules", type_roots.parent]
    job.write_text(json.dumps({"configs": configs, "pinned": [str(p) for p in pinned]}))
    res = tc.run(
        [tc.node, TYPECHECK_SCRIPT, ts_dir, job],
        cwd=workdir,
        what=f"type-checking {name} as a strict consumer",
        timeout=600,
    )
    compiled = json.loads(res.stdout)
    failed: dict[str, TypeCheckFailed] = {}
    for resolution in RESOLUTIONS:
        output = compiled[resolution]["output"]
        if compiled[resolution]["errors"]:
            first = first_error(output) or (output.strip().splitlines() or ["?"])[0]
            failed[resolution] = TypeCheckFailed(
                f"a strict consumer (skipLibCheck off, {resolution} resolution) cannot "
                f"type-check {name}: {first}"
            )
            if not keep_going:
                raise failed[resolution]
    return TypeCheckResult(exports, tuple(RESOLUTIONS), failed)


def attw(tc: Toolchain, cache_dir: Path, tgz: Path) -> None:
    """@arethetypeswrong/cli on the tarball, with the ESM-only profile."""
    home = npmtool.install(cache_dir, ATTW, ATTW_VERSION, tc)
    script = npmtool.bin_script(home, ATTW, "attw")
    res = tc.run(
        [
            tc.node,
            script,
            tgz,
            "--profile",
            ATTW_PROFILE,
            "--no-definitely-typed",  # the package ships its types; ask no registry for @types
            "--format",
            "json",
        ],
        cwd=tgz.parent,
        check=False,
        timeout=300,
    )
    problem = attw_problem(res.stdout)
    if res.returncode != 0 or problem:
        raise TypeCheckFailed(
            f"attw ({ATTW_PROFILE}) rejects the package: {problem or _head(res.output)}"
        )


def attw_problem(stdout: str) -> str | None:
    """The first problem of attw's JSON report that the profile does not ignore, as one line;
    a package without any declarations is a problem too (its consumers get `any`)."""
    try:
        analysis = json.loads(stdout).get("analysis") or {}
    except (ValueError, AttributeError):
        return None
    if analysis.get("types") is False:
        return "the package contains no type declarations"
    problems = [
        p for p in analysis.get("problems") or [] if p.get("resolutionKind") not in ATTW_IGNORED
    ]
    if not problems:
        return None
    p = problems[0]
    where = ", ".join(
        str(p[k]) for k in ("entrypoint", "resolutionKind", "fileName") if p.get(k) is not None
    )
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{p.get('kind', 'problem')} at {where or 'the package'}{more}"


def _head(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[0][:300] if lines else "no output"


def check(tc: Toolchain, cache_dir: Path, tgz: Path, name: str, workdir: Path) -> TypeCheckResult:
    """Both checks a tarball passes before publishing: the strict consumer, then attw."""
    result = typecheck(tc, cache_dir, tgz, name, workdir)
    attw(tc, cache_dir, tgz)
    return result


def steps(tc: Toolchain, cache_dir: Path, tgz: Path, name: str, workdir: Path) -> dict[str, str]:
    """Each consumer check on its own (the sweep's columns): `tsc nodenext`, `tsc bundler`,
    `attw` -> "" when it passes, else its one-line failure. One that cannot start (the
    install, the audit) fails both compilations."""
    out: dict[str, str] = {}
    try:
        result = typecheck(tc, cache_dir, tgz, name, workdir, keep_going=True)
        for resolution in RESOLUTIONS:
            failure = result.failed.get(resolution)
            out[f"tsc {resolution}"] = str(failure) if failure else ""
    except MirrorError as exc:
        out |= {f"tsc {r}": str(exc) for r in RESOLUTIONS}
    try:
        attw(tc, cache_dir, tgz)
        out["attw"] = ""
    except MirrorError as exc:
        out["attw"] = str(exc)
    return out
