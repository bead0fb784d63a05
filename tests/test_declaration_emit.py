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
from sdkmirror.release import declarations, publish_build, repackage, typecheck
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
