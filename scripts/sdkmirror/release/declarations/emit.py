"""The compiler's own declaration emit for the private workspace packages the SDK's
declarations reach.

The real `@moonshot-ai/protocol` exports TypeScript *source* as its types, with un-annotated
consts whose types a generic library infers. A declaration bundler reading that source copies
initializers and bodies into an ambient context (TS1254, TS1183 for a consumer). So each such
package is compiled first: `tsc --declaration --emitDeclarationOnly` with the full type
checker and the package's own compiler options (never isolatedDeclarations), and only the
emitted `.d.ts` are bundled. The emitted tree lives inside the package (`EMIT_DIR`), so that
what it imports resolves through the package's own node_modules, and is removed after.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sdkmirror.core.errors import CommandError, VerificationFailed
from sdkmirror.infra import console
from sdkmirror.infra.toolchain import Toolchain

EMIT_DIR = ".sdkmirror-declarations"
# As long as upstream's own build may take (smoke's bound on `pnpm build`).
EMIT_TIMEOUT = 1800.0
_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\n(]+)\((?P<line>\d+),\d+\): error TS(?P<code>\d+): (?P<msg>.*)$", re.M
)
_GLOBAL = re.compile(r"^error TS(?P<code>\d+): (?P<msg>.*)$", re.M)
# Codes of the declaration emitter itself: an inferred type it cannot write down.
_EMIT_CODES = {2527, 2742, 2883, 5088, 7056}


class DeclarationEmitFailed(VerificationFailed):
    """The compiler cannot write declarations for a private workspace package."""


@dataclass(frozen=True)
class Emitted:
    package_dir: Path  # the workspace package compiled
    out_dir: Path  # its declarations, mirroring the source tree under `root_dir`
    root_dir: Path  # the workspace root (tsc's rootDir)
    seconds: float
    warnings: tuple[str, ...]  # type errors that did not stop the emit

    def declaration_for(self, source: Path) -> Path:
        """Where the compiler wrote the declarations of `source` (a .ts/.mts/.cts/.tsx file)."""
        rel = source.resolve().relative_to(self.root_dir)
        name = re.sub(r"\.(m|c)?tsx?$", lambda m: f".d.{m.group(1) or ''}ts", rel.name)
        return self.out_dir / rel.parent / name


def is_declaration_emit_code(code: int) -> bool:
    return code in _EMIT_CODES or 4000 <= code < 5000 or 9000 <= code < 10000


def argv(tsc: Path, package_dir: Path, root_dir: Path, out_dir: Path, project: Path) -> list[str]:
    """tsc with the package's options, forced to emit declarations only, into `out_dir`."""
    return [
        str(tsc),
        "--project",
        str(project),
        "--declaration",
        "--emitDeclarationOnly",
        "--noEmit",
        "false",
        "--noEmitOnError",
        "false",
        "--isolatedDeclarations",
        "false",
        "--declarationMap",
        "false",
        "--sourceMap",
        "false",
        "--composite",
        "false",
        "--incremental",
        "false",
        "--outDir",
        str(out_dir),
        "--declarationDir",  # a tsconfig's own declarationDir would win over outDir
        str(out_dir),
        # The pinned compiler is newer than upstream's: options it only deprecates still work.
        "--ignoreDeprecations",
        "6.0",
        "--rootDir",
        str(root_dir),
        "--pretty",
        "false",
    ]


def default_tsconfig(package_dir: Path, out_dir: Path) -> dict[str, object]:
    """For a package without a tsconfig.json: the compiler's strict defaults over its sources."""
    return {
        "compilerOptions": {
            "target": "es2022",
            "module": "esnext",
            "moduleResolution": "bundler",
            "strict": True,
            "skipLibCheck": True,
        },
        "include": [str(package_dir / "**" / "*.ts"), str(package_dir / "**" / "*.mts")],
        "exclude": [str(package_dir / "node_modules"), str(out_dir)],
    }


def emit(
    tc: Toolchain,
    typescript_dir: Path,
    package_dir: Path,
    root_dir: Path,
    *,
    name: str,
    timeout: float = EMIT_TIMEOUT,
) -> Emitted:
    """Compile `package_dir`'s declarations; `DeclarationEmitFailed` when the compiler cannot."""
    import time

    out_dir = package_dir / EMIT_DIR
    shutil.rmtree(out_dir, ignore_errors=True)
    project = package_dir / "tsconfig.json"
    if not project.is_file():
        project = package_dir / f"{EMIT_DIR}.tsconfig.json"
        project.write_text(json.dumps(default_tsconfig(package_dir, out_dir)), encoding="utf-8")
    tsc = typescript_dir / "bin" / "tsc"
    start = time.monotonic()
    step = f"declaration emit of {name} (tsc --declaration --emitDeclarationOnly)"
    try:
        with console.step(step):
            res = tc.run(
                [tc.node, *argv(tsc, package_dir, root_dir, out_dir, project)],
                cwd=package_dir,
                readable=[root_dir],  # the workspace's other packages and node_modules
                check=False,
                timeout=timeout,
            )
    except CommandError as exc:
        if exc.returncode == 124:
            raise DeclarationEmitFailed(
                f"the {step} did not finish within {timeout:.0f}s; run it by hand in "
                f"{package_dir} to see where it stalls"
            ) from None
        raise
    seconds = round(time.monotonic() - start, 2)
    fatal, warnings = classify(res.output)
    if fatal:
        raise DeclarationEmitFailed(describe(fatal, name, package_dir, root_dir))
    if not out_dir.is_dir():
        first = res.output.strip().splitlines()[:1] or ["no output"]
        raise DeclarationEmitFailed(
            f"the {step} wrote no declarations ({first[0][:200]}); check that its "
            "tsconfig.json includes its sources"
        )
    for w in warnings[:1]:
        console.warn(
            f"{name}: the compiler reports {len(warnings)} type error(s) that do not stop its "
            f"declaration emit; first: {w}"
        )
    return Emitted(package_dir, out_dir, root_dir, seconds, tuple(warnings))


def classify(output: str) -> tuple[dict[str, str] | None, list[str]]:
    """The first error that stops the emit (a declaration emit or configuration error), and
    one line per other type error."""
    fatal: dict[str, str] | None = None
    warnings: list[str] = []
    for m in _GLOBAL.finditer(output):  # configuration: nothing was compiled as asked
        fatal = fatal or {"file": "tsconfig.json", "line": "0", **m.groupdict()}
    for m in _DIAGNOSTIC.finditer(output):
        code = int(m.group("code"))
        if fatal is None and (is_declaration_emit_code(code) or 5000 <= code < 7000):
            fatal = m.groupdict()
        elif len(warnings) < 20:
            warnings.append(f"{m.group('file')}:{m.group('line')}: TS{code}: {m.group('msg')}")
    return fatal, warnings


def describe(diag: dict[str, str], name: str, package_dir: Path, root_dir: Path) -> str:
    """One line: file, symbol, the compiler's code, the fix."""
    where = Path(diag["file"])
    if where.is_absolute() and where.resolve().is_relative_to(root_dir):
        where = where.resolve().relative_to(root_dir)
    elif not where.is_absolute():
        full = (package_dir / where).resolve()
        where = full.relative_to(root_dir) if full.is_relative_to(root_dir) else where
    symbol = _declared_at(root_dir / where, int(diag["line"])) or _quoted(diag["msg"])
    code = int(diag["code"])
    if is_declaration_emit_code(code):
        fix = (
            f"give `{symbol}` an explicit type annotation in {where} upstream (or on a patch "
            "branch), so its declaration can be written"
        )
    else:
        fix = f"fix {name}'s tsconfig.json upstream (or on a patch branch)"
    return (
        f"the compiler cannot emit the declarations of {name}: {where}:{diag['line']}: "
        f"`{symbol}`: TS{code}: {diag['msg'].strip().rstrip('.')[:240]}; {fix}; nothing was packed"
    )


def _declared_at(file: Path, line: int) -> str | None:
    """The name the exported declaration on `line` of `file` declares, if it is one."""
    try:
        text = file.read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    m = re.search(r"export\s+(?:declare\s+)?(?:const|let|var|function|class|enum)\s+([\w$]+)", text)
    return m.group(1) if m else None


def _quoted(msg: str) -> str:
    quoted = re.findall(r"'([^']+)'", msg)
    return quoted[0] if quoted else "?"
