"""The smoke build on the sample: passes, unsupported toolchains, each failure category."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdkmirror.core import config
from sdkmirror.core.config import ToolchainSpec
from sdkmirror.devtools import sample
from sdkmirror.smoke import build as smoke

REPO_ROOT = Path(__file__).resolve().parents[1]

LOGS = {
    "unsupported-toolchain": " ERR_PNPM_UNSUPPORTED_ENGINE  Unsupported environment (bad pnpm "
    "and/or Node.js version)\nExpected version: >=24.15.0\nGot: v22.20.0",
    "lockfile": ' ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "frozen-lockfile" because '
    "pnpm-lock.yaml is not up to date with packages/node-sdk/package.json",
    "layout": 'No projects matched the filters in "/src"',
    "network": " ECONNREFUSED  request to http://127.0.0.1:9/x/-/x-1.0.0.tgz failed, reason: "
    "connect ECONNREFUSED 127.0.0.1:9",
    "upstream-build": "src/index.ts(3,10): error TS2305: Module '\"@moonshot-ai/agent-core\"' "
    "has no exported member 'runTurnWithTools'.\n ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL",
}


@pytest.mark.parametrize("category", list(LOGS), ids=list(LOGS))
def test_classify_log_snippets(category: str) -> None:
    assert smoke.classify(LOGS[category]) == category


def test_classify_fallbacks_and_runbook() -> None:
    assert smoke.classify("something odd", phase="install") == "lockfile"
    assert smoke.classify("something odd", phase="build") == "upstream-build"
    assert smoke.classify("503 Service Unavailable", phase="install") == "network"
    assert smoke.verdict("upstream-build")[0] == smoke.UPSTREAM
    assert smoke.verdict("artifacts")[0] == smoke.UPSTREAM
    for category in ("unsupported-toolchain", "lockfile", "layout", "network", "toolchain"):
        assert smoke.verdict(category)[0] == smoke.OUR_ENV
    assert smoke.verdict(None) == (None, "")


def test_export_files_and_entry_point() -> None:
    pkg = {
        "publishConfig": {
            "exports": {
                ".": {"types": "./dist/index.d.mts", "import": {"default": "./dist/index.mjs"}},
                "./cli": "./dist/cli.mjs",
                "./*": "./dist/*.mjs",
            }
        }
    }
    assert smoke.export_files(pkg) == ["./dist/index.d.mts", "./dist/index.mjs", "./dist/cli.mjs"]
    assert smoke.entry_point(pkg) == "./dist/index.mjs"
    assert smoke.export_files({}) == [] and smoke.entry_point({}) is None


def _report(node: str, status: str, *, allow: bool = False, commit: str = "a" * 40) -> dict:
    spec = ToolchainSpec(node, "10.33.0", allow)
    return {
        "kind": "smoke",
        "upstream": "u",
        "ref": "upstream-main",
        "commit": commit,
        "results": [
            {
                "id": spec.id,
                "toolchain": {"node": node, "pnpm": "10.33.0", "allow_failure": allow},
                "status": status,
                "category": None if status != "fail" else "network",
                "classification": None,
                "reason": "r",
                "next_step": "retry",
                "durations": {"install": 1.0, "build": 2.0},
                "versions": {"node": f"v{node}", "pnpm": "10.33.0"},
                "commit": commit,
                "log_tail": "",
            }
        ],
    }


def test_write_and_merge_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    smoke.write_report(_report("24.19.0", "pass"), tmp_path / "r", "smoke-24.19.0-10.33.0")
    smoke.write_report(
        _report("22.20.0", "fail", allow=True), tmp_path / "r", "smoke-22.20.0-10.33.0"
    )
    assert summary.read_text().count("| toolchain |") == 2
    merged = smoke.load_reports([tmp_path / "r"])
    assert [r["toolchain"]["node"] for r in merged["results"]] == ["22.20.0", "24.19.0"]
    assert merged["commit"] == "a" * 40
    assert not smoke.any_failed(merged)  # the failure is an allowed canary
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_report("24.19.0", "fail", commit="b" * 40)))
    merged = smoke.load_reports([tmp_path / "r", other])
    assert len(merged["results"]) == 2 and merged["commit"] is None
    assert smoke.any_failed(merged)  # the newer 24.19.0 result replaced the pass
    md = smoke.markdown(merged)
    assert "❌ fail" in md and "Next steps:" in md


def test_load_reports_refuses_junk(tmp_path: Path) -> None:
    (tmp_path / "smoke-x.json").write_text("{}")
    with pytest.raises(smoke.MirrorError, match="not a smoke report"):
        smoke.load_reports([tmp_path])
    (tmp_path / "empty").mkdir()
    with pytest.raises(smoke.MirrorError, match="no smoke reports"):
        smoke.load_reports([tmp_path / "empty"])


# --- real toolchains ------------------------------------------------------------------------


def _cfg(tmp_path: Path, upstream: str) -> config.Config:
    return config.from_mapping(
        {"upstream": upstream, "work_dir": str(tmp_path / "state")}, root=tmp_path
    )


@pytest.fixture(scope="module")
def upstreams(
    tmp_path_factory: pytest.TempPathFactory, sample_upstream
) -> dict[str | None, sample.SampleUpstream]:
    base = tmp_path_factory.mktemp("upstreams")
    return {
        v: sample_upstream(base / f"{v or 'good'}.git", variant=v) for v in (None, *sample.VARIANTS)
    }


@pytest.mark.slow
@pytest.mark.parametrize("node", ["24.19.0", "24.15.0"])
def test_pass_on_two_toolchains(tmp_path: Path, upstreams, node: str) -> None:
    up = upstreams[None]
    cfg = _cfg(tmp_path, up.url)
    result = smoke.run_smoke(
        cfg, ToolchainSpec(node, "10.33.0"), ref="main", report_dir=tmp_path / "reports"
    )
    entry = result.entry
    assert entry["status"] == "pass", entry["log_tail"]
    assert entry["versions"] == {"node": f"v{node}", "pnpm": "10.33.0"}  # isolation, proven
    assert entry["commit"] == up.head
    assert entry["durations"]["install"] > 0 and entry["durations"]["build"] > 0
    assert result.outcome is not None
    # The runtime also exports the bundler's one-letter helpers; they are not API.
    assert result.outcome.exports == [
        "KimiClient", "ToolInputDisplaySchema", "VERSION", "a", "createClient", "default", "i",
        "isTurnEvent", "n", "r", "readConfig", "t",
    ]  # fmt: skip
    assert "legacyPrompt" not in (result.outcome.dist_dir / "index.mjs").read_text()
    assert "kaosPlatform" in (result.outcome.dist_dir / "index.mjs").read_text()  # inlined
    saved = json.loads((tmp_path / "reports" / f"smoke-{node}-10.33.0.json").read_text())
    assert saved == result.report


@pytest.mark.slow
def test_release_tag_builds_its_own_sdk(tmp_path: Path, upstreams) -> None:
    up = upstreams[None]
    result = smoke.run_smoke(
        _cfg(tmp_path, up.url),
        ToolchainSpec("24.19.0", "10.33.0"),
        ref=up.tag("0.14.2"),
        report_dir=tmp_path / "r",
    )
    assert result.entry["commit"] == up.tags[up.tag("0.14.2")]
    assert result.outcome is not None and result.outcome.package_json["version"] == "0.9.3"
    assert {"createClient", "legacyPrompt", "KimiClient"} <= set(result.outcome.exports)
    assert "isTurnEvent" not in result.outcome.exports


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "node"), [(None, "22.20.0"), ("unsupported-toolchain", "24.19.0")]
)
def test_outside_engines_is_unsupported_not_failed(
    tmp_path: Path, upstreams, variant, node
) -> None:
    result = smoke.run_smoke(
        _cfg(tmp_path, upstreams[variant].url),
        ToolchainSpec(node, "10.33.0"),
        ref="main",
        report_dir=tmp_path / "r",
    )
    assert result.entry["status"] == "unsupported"
    assert "does not satisfy engines.node" in result.entry["reason"]
    assert result.entry["versions"] == {"node": None, "pnpm": None}  # nothing was provisioned
    assert not result.failed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "category", "classification"),
    [
        ("unsupported-toolchain", "unsupported-toolchain", "our-env"),
        ("lockfile", "lockfile", "our-env"),
        ("layout", "layout", "our-env"),
        ("network", "network", "our-env"),
        ("upstream-build", "upstream-build", "upstream-breaking"),
        ("missing-artifact", "artifacts", "upstream-breaking"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_broken_variant_is_classified(
    tmp_path: Path, upstreams, toolchain_primary, variant, category, classification
) -> None:
    up = upstreams[variant]
    cfg = _cfg(tmp_path, up.url)
    src = tmp_path / "src"
    smoke.materialize(up.url, "main", src)
    outcome = smoke.build(src, toolchain_primary, cfg)
    assert outcome.status == "fail"
    assert outcome.category == category, outcome.log
    assert smoke.verdict(outcome.category)[0] == classification
    if variant == "layout":
        assert "it is now at packages/sdk" not in outcome.reason  # renamed, so not found
    if variant == "missing-artifact":
        assert "./dist/index.d.mts" in outcome.reason


@pytest.mark.slow
def test_artifact_check_reads_dist_not_the_exit_code(
    tmp_path: Path, upstreams, toolchain_primary
) -> None:
    up = upstreams[None]
    cfg = _cfg(tmp_path, up.url)
    src = tmp_path / "src"
    smoke.materialize(up.url, "main", src)
    outcome = smoke.build(src, toolchain_primary, cfg)
    assert outcome.ok, outcome.log
    tc = toolchain_primary.with_store(cfg.pnpm_store)
    (outcome.dist_dir / "index.d.mts").unlink()
    smoke._check_artifacts(outcome, tc, src)
    assert (outcome.status, outcome.category) == ("fail", "artifacts")
    assert "./dist/index.d.mts" in outcome.reason
    (outcome.dist_dir / "index.d.mts").write_text("export {};\n")
    (outcome.dist_dir / "index.mjs").write_text("const unused = 1;\n")
    outcome.status, outcome.category = "pass", None
    smoke._check_artifacts(outcome, tc, src)
    assert outcome.category == "artifacts" and "no export" in outcome.reason


@pytest.mark.slow
def test_cli_exit_codes(tmp_path: Path, upstreams) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        f'[tool.sdkmirror]\nupstream = "{upstreams["upstream-build"].url}"\nwork_dir = "state"\n'
    )
    env = {
        **os.environ,
        "SDKMIRROR_CONFIG": str(pyproject),
        "PYTHONPATH": str(REPO_ROOT / "scripts"),
    }

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sdkmirror",
                "smoke",
                "--node",
                "24.19.0",
                "--pnpm",
                "10.33.0",
                "--ref",
                "main",
                *extra,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    failed = cli()
    assert failed.returncode == 1
    assert (
        "error: node='24.19.0', pnpm='10.33.0': upstream-build (upstream-breaking)" in failed.stderr
    )
    assert "Traceback" not in failed.stderr
    assert cli("--allow-failure").returncode == 0
    no_node = cli("--node-bin-dir", str(tmp_path))  # a toolchain that cannot be set up
    assert no_node.returncode == 1 and "toolchain (our-env)" in no_node.stderr
    bad_ref = cli("--ref", "no-such-branch")
    assert bad_ref.returncode == 2 and "has no branch or tag 'no-such-branch'" in bad_ref.stderr


def test_default_ref_falls_back_to_the_upstream_branch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sample_upstream
) -> None:
    up = sample_upstream(tmp_path / "upstream.git")  # the upstream: `main` only
    cfg = _cfg(tmp_path, up.url)
    # An unsupported toolchain provisions nothing, so this runs the whole path without a build.
    result = smoke.run_smoke(cfg, ToolchainSpec("22.20.0", "10.33.0"), report_dir=tmp_path / "r")
    assert (result.report["ref"], result.entry["commit"]) == ("main", up.head)
    assert result.entry["status"] == "unsupported"
    err = capsys.readouterr().err
    assert f"{up.url} has no branch upstream-main; building main, which upstream-main mirrors" in (
        " ".join(err.split())
    )
    # A mirror that has the branch builds it, whatever its `main` holds.
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "-q", "--bare", up.url, str(mirror)], check=True)
    first = up.tags[up.tag("0.14.2")]
    subprocess.run(["git", "update-ref", "refs/heads/upstream-main", first], cwd=mirror, check=True)
    assert smoke.default_ref(cfg, str(mirror)) == "upstream-main"
    assert "has no branch" not in capsys.readouterr().err
