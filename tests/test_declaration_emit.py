"""The sample's private protocol package exports TypeScript source, as the real one does: its
declarations must come from the compiler's own emit, then be bundled, then pass a strict
consumer that uses both a type and a value the SDK re-exports from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sdkmirror.core import config
from sdkmirror.devtools import sample
from sdkmirror.release.declarations import bundle as declarations
from sdkmirror.release.declarations import consumer as typecheck
from sdkmirror.release.declarations import emit as declaration_emit
from sdkmirror.release.package import repackage
from sdkmirror.release.publish import build as publish_build
from sdkmirror.smoke import build as smoke

NPM_NAME = "@botiverse/kimi-code-sdk"
# A consumer that uses the re-exported schema value, the inferred type and the class.
CONSUMER = """\
import { ToolInputDisplaySchema, createClient } from "@botiverse/kimi-code-sdk";
import type { ToolInputDisplay } from "@botiverse/kimi-code-sdk";

const shown: ToolInputDisplay = ToolInputDisplaySchema.parse({ kind: "text", text: "hi" });
const kind: "text" | "diff" = shown.kind;
const diff: ToolInputDisplay = { kind: "diff", path: "a.ts", added: 1, removed: 0 };
const size: number = createClient().log.size;
const id: string = createClient().makeSessionId(3, "s");
export { kind, diff, size, id };
"""


def cache() -> Path:
    return Path(os.environ["SDKMIRROR_CACHE"])


def build_sample(tc, root: Path, release: sample.Release | None = None) -> smoke.BuildOutcome:
    src = sample.write_tree(root / "src", release)
    cfg = config.from_mapping({"upstream": str(root), "work_dir": str(root / "state")}, root=root)
    outcome = smoke.build(src, tc, cfg)
    assert outcome.ok, outcome.reason
    return outcome


def pack(tc, outcome: smoke.BuildOutcome, dest: Path) -> Path:
    sdk = Path(outcome.sdk_dir)
    prov = repackage.Provenance(
        upstream=sample.SDK_NAME,
        upstream_version="0.0.0",
        release_tag="t",
        commit="0" * 40,
    )
    pkg = repackage.repackage(
        sdk,
        Path(outcome.dist_dir),
        dest / "package",
        sdk_pkg=dict(outcome.package_json),
        source_root=sdk.parent.parent,
        npm_name=NPM_NAME,
        version=str(outcome.package_json["version"]),
        provenance=prov,
    )
    return publish_build.pack(tc, pkg.dir, dest / "pack")


def consumer_compiles(tc, consumer: Path) -> str:
    """tsc over a consumer file that uses the SDK's values and types, strict; its output."""
    (consumer / "use.ts").write_text(CONSUMER)
    config_file = consumer / "tsconfig.nodenext.json"
    cfg = json.loads(config_file.read_text())
    cfg["files"] = ["consumer.ts", "use.ts"]
    config_file.write_text(json.dumps(cfg))
    ts = declarations.install(tc, cache()) / "node_modules" / "typescript" / "bin" / "tsc"
    res = tc.run([tc.node, ts, "-p", config_file, "--pretty", "false"], cwd=consumer, check=False)
    return res.output


@pytest.mark.slow
def test_protocol_source_is_emitted_then_bundled(toolchain_primary, tmp_path: Path) -> None:
    tc = toolchain_primary
    outcome = build_sample(tc, tmp_path)
    sdk, dist = Path(outcome.sdk_dir), Path(outcome.dist_dir)
    deps = declarations.runtime_dependencies(outcome.package_json)
    result = declarations.bundle(tc, cache(), sdk, dist, deps)
    text = (dist / "index.d.mts").read_text()
    # The compiler's emit: the const typed, the overloads without a body, private fields bare.
    assert "declare const ToolInputDisplaySchema: UnionSchema<" in text
    assert "discriminatedUnion(" not in text
    assert "#private;" in text and "private readonly limit;" in text
    assert "declare function sessionId(value: number, prefix?: string): SessionId;" in text
    assert "@moonshot-ai/protocol" in result.inlined
    assert sorted(result.files[0].kept_imports) == ["smol-toml"]

    tgz = pack(tc, outcome, tmp_path / "out")
    checked = typecheck.check(tc, cache(), tgz, NPM_NAME, tmp_path / "consumer")
    assert "ToolInputDisplaySchema" in checked.exports["."].values
    assert "ToolInputDisplay" in checked.exports["."].types
    assert "error" not in consumer_compiles(tc, tmp_path / "consumer")


# --- the compiler cannot emit -----------------------------------------------------------------

TS2883 = (
    "src/index.ts(1,42): error TS2883: The inferred type of 'Made' cannot be named without a "
    "reference to 'Hidden' from '../node_modules/kit/internal'. This is likely not portable. "
    "A type annotation is necessary.\n"
    "src/other.ts(3,1): error TS2304: Cannot find name 'Buffer'.\n"
)


def test_an_emit_error_is_one_line_naming_file_symbol_code_and_fix(tmp_path: Path) -> None:
    pkg = tmp_path / "packages" / "protocol"
    (pkg / "src").mkdir(parents=True)
    (pkg / "src" / "index.ts").write_text('import { make } from "kit"; export const Made = make();')
    fatal, warnings = declaration_emit.classify(TS2883)
    assert fatal is not None and fatal["code"] == "2883"
    assert warnings == ["src/other.ts:3: TS2304: Cannot find name 'Buffer'."]  # not fatal
    line = declaration_emit.describe(fatal, "@moonshot-ai/protocol", pkg, tmp_path)
    assert "\n" not in line
    assert line.startswith(
        "the compiler cannot emit the declarations of @moonshot-ai/protocol: "
        "packages/protocol/src/index.ts:1: `Made`: TS2883: The inferred type of 'Made'"
    )
    assert "give `Made` an explicit type annotation in packages/protocol/src/index.ts" in line
    # A type error elsewhere does not stop the emit; a configuration error does.
    assert declaration_emit.classify("a.ts(1,1): error TS2322: x\n")[0] is None
    assert declaration_emit.classify("error TS5023: Unknown compiler option 'x'.\n")[0]


@pytest.mark.slow
def test_an_emit_that_does_not_finish_names_its_step(toolchain_primary, tmp_path: Path) -> None:
    outcome = build_sample(toolchain_primary, tmp_path)
    sdk, dist = Path(outcome.sdk_dir), Path(outcome.dist_dir)
    before = (dist / "index.d.mts").read_text()
    with pytest.raises(declarations.DeclarationsFailed) as failed:
        declarations.bundle(toolchain_primary, cache(), sdk, dist, ["smol-toml"], timeout=0.05)
    message = str(failed.value)
    assert "did not finish within 0s" in message
    assert "bundling the declarations" in message or "declaration emit of" in message
    assert (dist / "index.d.mts").read_text() == before  # untouched
    assert not list(sdk.parent.glob(f"*/{declaration_emit.EMIT_DIR}"))  # scratch removed

    ts_dir = declarations.install(toolchain_primary, cache()) / "node_modules" / "typescript"
    protocol = sdk.parent / "protocol"
    with pytest.raises(declaration_emit.DeclarationEmitFailed) as hung:
        declaration_emit.emit(
            toolchain_primary, ts_dir, protocol, sdk.parent.parent, name="proto", timeout=0.05
        )
    assert str(hung.value).startswith(
        "the declaration emit of proto (tsc --declaration --emitDeclarationOnly) did not "
        "finish within 0s"
    )


UNNAMEABLE = "\nexport const Mixin = class {\n  private secret = 1;\n};\n"


@pytest.mark.slow
def test_publish_build_refuses_declarations_the_compiler_cannot_emit(
    project, cfg, mirror, tmp_path: Path
) -> None:
    from test_publish import commit_on_branch, register_patch

    from sdkmirror.infra import proc

    origin = tmp_path / "patch-origin.git"
    proc.run(["git", "clone", "-q", "--bare", str(mirror), str(origin)])
    branch = register_patch(cfg, origin, "unnameable")
    display = "packages/protocol/src/display.ts"
    text = proc.run(["git", "show", f"refs/heads/{branch}:{display}"], cwd=origin).stdout
    commit_on_branch(origin, branch, tmp_path, {display: text + UNNAMEABLE})

    out = tmp_path / "out"
    cp = project.invoke(
        "publish.build", "--out", str(out), "--source-ref", branch,
        "--version-override", "0.9.3-patch.1", "--origin", str(origin),
    )  # fmt: skip
    assert cp.returncode == 7, cp.stderr
    errors = [ln for ln in cp.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, cp.stderr
    assert errors[0].startswith(
        f"error: the compiler cannot emit the declarations of @moonshot-ai/protocol: {display}:"
    )
    assert "`Mixin`: TS4094:" in errors[0] and "explicit type annotation" in errors[0]
    assert "Traceback" not in cp.stderr
    assert not out.exists() or not any(out.iterdir())  # no tarball, no manifest
    assert not any((cfg.work_dir / "publish").glob("*"))  # the work directory cleaned


# --- what is published is audited --------------------------------------------------------------


@pytest.mark.slow
def test_audit_refuses_code_and_imports_a_consumer_lacks(toolchain_primary, tmp_path: Path) -> None:
    tc = toolchain_primary
    ts_dir = typecheck.install(tc, cache()) / "node_modules" / "typescript"
    pkg = tmp_path / "pkg"
    (pkg / "dist").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "p", "dependencies": {"zod": "^4"}}))
    dts = pkg / "dist" / "index.d.mts"

    def audit(text: str) -> None:
        dts.write_text(text)
        typecheck.audit(tc, ts_dir, pkg, typecheck.published_declarations(pkg))

    audit(
        'import type { z } from "zod";\nimport { Readable } from "node:stream";\n'
        'import type { EventEmitter } from "events";\nexport * from "./more.mjs";\n'
        "export declare const schema: z.ZodString;\nexport declare enum E { A = 1 }\n"
        "export declare function f(r: Readable, e: EventEmitter): void;\n"
    )  # passes: runtime dependency, builtins, relative, an enum's initializer
    with pytest.raises(
        typecheck.TypeCheckFailed,
        match=r"initializer in an ambient context at "
        r"dist/index\.d\.mts:2 \(`X`: X = s\.union\(\[\]\)\)",
    ):
        audit('import * as s from "zod";\ndeclare const X = s.union([]);\nexport { X };\n')
    with pytest.raises(typecheck.TypeCheckFailed, match=r"a body in an ambient context"):
        audit("export declare function f(a: string): string {\n  return a;\n}\n")
    with pytest.raises(
        typecheck.TypeCheckFailed, match=r"import 'undici' \(dist/index\.d\.mts:1\)"
    ):
        audit('import type { Pool } from "undici";\nexport declare const p: Pool;\n')
    with pytest.raises(typecheck.TypeCheckFailed, match=r"import '@moonshot-ai/protocol'"):
        audit('export declare const e: import("@moonshot-ai/protocol").Event;\n')
