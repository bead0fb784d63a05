"""The GitHub workflows: thin (one nox/invoke line per step), hardened, and linted clean;
and the invoke tasks that give them their job outputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT, Project
from gitrepos import git

from sdkmirror import ci, config
from sdkmirror.errors import UsageError
from sdkmirror.ledger import MirrorLedger

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# The one exception to "each run: is one nox or invoke line": installing the project (which
# pins nox and invoke) right after Python is set up.
INSTALL = re.compile(r'python -m pip install -e (?:\.|"\.\[[a-z,]+\]")')
PINNED = re.compile(r"^\s*(?:-\s+)?uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the `on` key as true
    return doc


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_the_four_workflows_exist() -> None:
    names = {p.name for p in FILES}
    assert {
        "sync-upstream.yml",
        "smoke.yml",
        "publish-sdk.yml",
        "record-release.yml",
        "ci.yml",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_run_step_is_one_nox_or_invoke_line(path: Path) -> None:
    runs = [s["run"].strip() for s in steps(load(path)) if "run" in s]
    assert runs
    for run in runs:
        assert "\n" not in run, run
        assert "${{" not in run, run
        assert run.startswith(("nox ", "invoke ")) or INSTALL.fullmatch(run), run


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_hardening(path: Path) -> None:
    text = path.read_text()
    doc = load(path)
    assert "pull_request_target" not in text and "${{" not in "".join(
        s.get("run", "") for s in steps(doc)
    )
    assert doc["permissions"] == {}
    for name, job in doc["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} sets no permissions"
        assert "write-all" not in str(job["permissions"])
    for line in text.splitlines():
        if re.match(r"^\s*(?:-\s+)?uses:", line) and "uses: $/" not in line:
            assert PINNED.match(line), f"{path.name}: not pinned by SHA with a version: {line}"
    # Only jobs that push keep no credentials either: pushes carry a token header instead.
    for s in steps(doc):
        if s.get("uses", "").startswith("actions/checkout@"):
            assert s["with"]["persist-credentials"] is False


def test_publish_workflow_is_least_privilege() -> None:
    doc = load(WORKFLOWS / "publish-sdk.yml")
    assert doc["on"]["push"] == {"tags": ["publish-sdk/v*"]}
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert inputs["source_tag"]["required"] is True
    assert inputs["dry_run"]["default"] is True
    # Every job, not just the publishing one: nothing here may write to the repository.
    assert doc["jobs"] and all(
        j["permissions"] == {"contents": "read", "id-token": "write"} for j in doc["jobs"].values()
    )
    publish = doc["jobs"]["publish"]
    assert publish["environment"] == "npm-publish"
    runs = [s for s in publish["steps"] if s.get("run", "").startswith("invoke publish ")]
    assert runs
    for step in runs:
        assert '--version-override "$VERSION_OVERRIDE"' in step["run"]
        assert '--override-reason "$OVERRIDE_REASON"' in step["run"]
        assert step["env"]["VERSION_OVERRIDE"] == "${{ steps.args.outputs.version_override }}"
        assert step["env"]["OVERRIDE_REASON"] == "${{ steps.args.outputs.override_reason }}"


def test_record_release_runs_after_a_successful_publish_without_id_token() -> None:
    publish = load(WORKFLOWS / "publish-sdk.yml")
    doc = load(WORKFLOWS / "record-release.yml")
    assert doc["on"] == {"workflow_run": {"workflows": ["publish-sdk"], "types": ["completed"]}}
    assert publish["name"] == "publish-sdk"
    assert "id-token" not in (WORKFLOWS / "record-release.yml").read_text()
    [job] = doc["jobs"].values()
    assert job["if"] == "${{ github.event.workflow_run.conclusion == 'success' }}"
    assert job["permissions"] == {"contents": "write", "actions": "read"}
    by_use = {s["uses"].split("@")[0]: s for s in job["steps"] if "uses" in s}
    assert by_use["actions/checkout"]["with"] == {"ref": "main", "persist-credentials": False}
    download = by_use["actions/download-artifact"]
    upload = next(s for s in publish["jobs"]["publish"]["steps"] if "upload-artifact" in str(s))
    assert download["with"]["pattern"] == upload["with"]["name"] == "release-ledger"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"
    assert upload["if"] == "${{ steps.args.outputs.dry_run == 'false' }}"  # dry run: no artifact
    # the report the publish writes is in the artifact and is what the Release reads
    report = ".sdkmirror/reports/publish.json"
    real = next(
        s for s in publish["jobs"]["publish"]["steps"] if "--no-dry-run" in s.get("run", "")
    )
    assert real["run"].endswith(f"--report {report}") and report in upload["with"]["path"]
    runs = {s["run"]: s.get("env", {}) for s in job["steps"] if "run" in s}
    assert runs["invoke ledger.commit --push"] == {"SDKMIRROR_PUSH_TOKEN": "${{ github.token }}"}
    assert runs[f"invoke github.release --from-report {report}"] == {
        "GITHUB_TOKEN": "${{ github.token }}"
    }
    # pinned like everywhere else
    shas = {s["uses"] for s in steps(load(WORKFLOWS / "sync-upstream.yml")) if "uses" in s}
    assert download["uses"] in shas


TOKENS = re.compile(r"secrets\.|github\.token|_TOKEN|_PAT\b")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_secret_is_only_on_the_step_that_needs_it(path: Path) -> None:
    doc = load(path)
    assert not TOKENS.search(json.dumps(doc.get("env", {})))
    for name, job in doc["jobs"].items():
        assert not TOKENS.search(json.dumps(job.get("env", {}))), f"{path.name}: job {name}"
        for step in job.get("steps", []):
            if TOKENS.search(json.dumps(step.get("env", {}))):
                assert "run" in step, f"{path.name}: an action gets a token through env: {step}"


def test_sync_workflow_schedule_concurrency_and_token() -> None:
    doc = load(WORKFLOWS / "sync-upstream.yml")
    assert doc["on"]["schedule"] == [{"cron": "17 4 * * *"}]
    assert "workflow_dispatch" in doc["on"]
    assert doc["concurrency"]["cancel-in-progress"] is False
    sync = doc["jobs"]["sync"]
    assert "SDKMIRROR_PUSH_TOKEN" not in sync["env"]
    with_token = {
        s["run"]: s["env"]["SDKMIRROR_PUSH_TOKEN"]
        for s in sync["steps"]
        if "SDKMIRROR_PUSH_TOKEN" in s.get("env", {})
    }
    assert with_token == {
        "invoke sync --report .sdkmirror/reports/sync.json": (
            "${{ secrets.SYNC_PAT || github.token }}"
        ),
        "invoke ledger.commit --push": "${{ secrets.SYNC_PAT || github.token }}",
    }
    assert (
        doc["jobs"]["smoke"]["if"] == "${{ !cancelled() && needs.sync.outputs.changed == 'true' }}"
    )
    assert doc["jobs"]["report"]["permissions"] == {"contents": "read", "issues": "write"}


def test_smoke_matrix_equals_the_toolchain_table(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {
        "GITHUB_OUTPUT": str(out),
        "GITHUB_SERVER_URL": "http://git.example.invalid",
        "GITHUB_REPOSITORY": "o/m",
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }
    cp = subprocess.run(
        [sys.executable, "-m", "invoke", "ci.matrix"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert cp.returncode == 0, cp.stderr
    values = dict(line.split("=", 1) for line in out.read_text().splitlines())
    cells = json.loads(values["matrix"])["include"]
    table = config.load(REPO_ROOT / "pyproject.toml").toolchains
    assert [(c["session"], c["allow_failure"]) for c in cells] == [
        (f"smoke(node='{t.node}', pnpm='{t.pnpm}')", t.allow_failure) for t in table
    ]
    assert (
        values["ref"] == "upstream-main"
        and values["upstream"] == "http://git.example.invalid/o/m.git"
    )
    doc = load(WORKFLOWS / "smoke.yml")
    job = doc["jobs"]["smoke"]
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    assert [s["run"] for s in job["steps"] if "run" in s][-1] == (
        'nox -s "$SESSION" -- --upstream "$SMOKE_UPSTREAM" --ref "$SMOKE_REF"'
    )
    assert "workflow_call" in doc["on"]


def test_actionlint_and_zizmor_report_nothing() -> None:
    for exe in ("actionlint", "zizmor"):
        assert shutil.which(exe), f"{exe} is missing: install the project's [test] extra"
    cp = subprocess.run(
        [sys.executable, "-m", "invoke", "ci.lint-workflows"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_linters_do_catch_an_injection(tmp_path: Path) -> None:
    """The lint step is not vacuous: `${{ inputs.x }}` in a run script is reported."""
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yml").write_text(
        "on:\n  workflow_dispatch:\n    inputs:\n      x:\n        type: string\n"
        "permissions: {}\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    permissions: {}\n"
        "    steps:\n      - run: echo ${{ inputs.x }}\n"
    )
    cp = subprocess.run(
        ["zizmor", "--offline", "--no-progress", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cp.returncode != 0 and "template-injection" in cp.stdout


# --- the tasks behind the job outputs ------------------------------------------------------------


def test_sync_outputs(project: Project, tmp_path: Path) -> None:
    report = tmp_path / "sync.json"
    report.write_text(
        json.dumps(
            {
                "kind": "sync",
                "status": "updated",
                "changed": True,
                "ledger_changed": True,
                "new_tags": [
                    {"name": "@moonshot-ai/kimi-code@0.9.0"},
                    {"name": "@moonshot-ai/kimi-code@0.10.0"},
                ],
            }
        )
    )
    cfg = project.config()
    assert ci.sync_outputs(cfg, str(report)) == {
        "changed": "true",
        "ledger_changed": "true",
        "status": "updated",
        "smoke_ref": "@moonshot-ai/kimi-code@0.10.0",
    }
    assert ci.sync_outputs(cfg, str(tmp_path / "missing.json"))["changed"] == "false"


def test_publish_args_from_a_publish_tag_and_a_dispatch(project: Project, tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    git("init", "-q", "-b", "main", str(root))
    (root / "pyproject.toml").write_text(project.pyproject.read_text())
    sdk = root / "packages" / "node-sdk"
    sdk.mkdir(parents=True)
    (sdk / "package.json").write_text(json.dumps({"name": "sdk", "version": "0.9.3"}))
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "source", cwd=root)
    commit = git("rev-parse", "HEAD", cwd=root)
    git("tag", "publish-sdk/v0.9.3", cwd=root)
    # what `release.tag --version-override 0.9.5` leaves on the same commit
    git("tag", "publish-sdk/v0.9.5", cwd=root)
    git("remote", "add", "origin", str(root), cwd=root)  # read from origin, as in CI
    cfg = config.load(root / "pyproject.toml")
    ledger = MirrorLedger(cfg.mirror_ledger)
    ledger.add_tag("@moonshot-ai/kimi-code@0.14.2", "a" * 40, commit)
    ledger.save()

    pushed = ci.publish_args(
        cfg, {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "publish-sdk/v0.9.3"}
    )
    assert pushed == {
        "source_tag": "@moonshot-ai/kimi-code@0.14.2",
        "expected_version": "0.9.3",
        "version_override": "",
        "override_reason": "",
        "dry_run": "false",
    }
    # the dispatch `invoke release.tag` prints names the publish tag: the version is checked
    assert ci.publish_args(
        cfg, {"GITHUB_EVENT_NAME": "workflow_dispatch", "INPUT_SOURCE_TAG": "publish-sdk/v0.9.3"}
    ) == {**pushed, "dry_run": "true"}
    # the SDK there says 0.9.3: publish-sdk/v0.9.5 is an override, not a failed expectation
    overridden = ci.publish_args(
        cfg, {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "publish-sdk/v0.9.5"}
    )
    assert overridden == {
        "source_tag": "@moonshot-ai/kimi-code@0.14.2",
        "expected_version": "",
        "version_override": "0.9.5",
        "override_reason": "publish tag publish-sdk/v0.9.5 on SDK 0.9.3",
        "dry_run": "false",
    }
    with pytest.raises(UsageError, match="not on origin"):
        ci.publish_args(cfg, {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "publish-sdk/v9.9.9"})
    dispatched = ci.publish_args(
        cfg,
        {
            "GITHUB_EVENT_NAME": "workflow_dispatch",
            "INPUT_SOURCE_TAG": "@moonshot-ai/kimi-code@0.14.2",
        },
    )
    assert dispatched == {
        "source_tag": "@moonshot-ai/kimi-code@0.14.2",
        "expected_version": "",
        "version_override": "",
        "override_reason": "",
        "dry_run": "true",
    }
    with pytest.raises(UsageError, match="neither a publish tag"):
        ci.publish_args(
            cfg, {"GITHUB_EVENT_NAME": "workflow_dispatch", "INPUT_SOURCE_TAG": "main; rm -rf /"}
        )
