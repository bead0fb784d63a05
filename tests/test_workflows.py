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

from sdkmirror.core import config
from sdkmirror.core.errors import UsageError, VerificationFailed
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.ops import ci
from sdkmirror.ops.bisect_args import bisect_args

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
    assert {"sync-upstream.yml", "smoke.yml", "publish-sdk.yml", "ci.yml"} <= names
    # Recording trusted another run's artifact; the publish workflow records by itself now.
    assert "record-release.yml" not in names


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


def run_steps(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["run"]: s.get("env", {}) for s in job["steps"] if "run" in s}


def test_publish_workflow_is_dispatch_only_and_staged() -> None:
    doc = load(WORKFLOWS / "publish-sdk.yml")
    # A tag trigger would run the workflow file of the tagged commit: upstream source.
    assert list(doc["on"]) == ["workflow_dispatch"]
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert inputs["source_tag"]["required"] is True
    assert inputs["dry_run"]["default"] is True
    jobs = doc["jobs"]
    assert list(jobs) == ["build", "upload", "check", "record"]
    assert jobs["upload"]["needs"] == "build"
    assert jobs["check"]["needs"] == ["build", "upload"]
    assert jobs["record"]["needs"] == ["upload", "check"]
    assert jobs["upload"]["if"] == "${{ needs.build.outputs.dry_run == 'false' }}"
    # Rights grow along the chain and only where needed; the OIDC token in one job only.
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["upload"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["check"]["permissions"] == {"contents": "read"}
    assert jobs["record"]["permissions"] == {"contents": "write"}
    assert {n: j.get("environment") for n, j in jobs.items()} == {
        "build": None,
        "upload": "npm-publish",
        "check": None,
        "record": None,
    }
    text = (WORKFLOWS / "publish-sdk.yml").read_text()
    assert "secrets." not in text
    for job in jobs.values():
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
        assert checkout["with"] == {"ref": "main", "persist-credentials": False}


def test_publish_build_job_runs_nothing_of_ours_after_the_upstream_build() -> None:
    build = load(WORKFLOWS / "publish-sdk.yml")["jobs"]["build"]
    runs = run_steps(build)
    build_run = next(r for r in runs if r.startswith("invoke publish.build "))
    assert build_run.startswith('invoke publish.build --source-tag "$SOURCE_TAG" --out out/ ')
    for flag, var in (
        ("--expected-version", "EXPECTED_VERSION"),
        ("--version-override", "VERSION_OVERRIDE"),
        ("--override-reason", "OVERRIDE_REASON"),
    ):
        assert f'{flag} "${var}"' in build_run
    assert not any("TOKEN" in k for k in runs[build_run])
    # Upstream code runs in the build step: every later step is an action, none of ours.
    order = [s.get("run") or s["uses"] for s in build["steps"]]
    after = order[order.index(build_run) + 1 :]
    assert after and all("run" not in s for s in build["steps"][len(order) - len(after) :])
    assert order.index("invoke ci.sandbox-setup") < order.index(build_run)
    uploads = [s for s in build["steps"] if "upload-artifact" in s.get("uses", "")]
    assert [u["with"]["path"] for u in uploads] == ["out/*.tgz"]
    # The job's outputs come from the arguments step, computed before the build ran.
    assert set(build["outputs"]) == {"dry_run", "source_tag", "version_override", "override_reason"}
    for name, value in build["outputs"].items():
        assert value == f"${{{{ steps.args.outputs.{name} }}}}"


def test_publish_upload_check_and_record_take_job_outputs_through_env() -> None:
    jobs = load(WORKFLOWS / "publish-sdk.yml")["jobs"]
    upload = jobs["upload"]
    download = next(s for s in upload["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {"name": "sdk-tarball", "path": "tarball/"}
    cmd = (
        'invoke ci.upload --tarball-dir tarball/ --source-tag "$SOURCE_TAG" '
        '--version-override "$VERSION_OVERRIDE" --override-reason "$OVERRIDE_REASON"'
    )
    assert run_steps(upload)[cmd] == {
        "SOURCE_TAG": "${{ needs.build.outputs.source_tag }}",
        "VERSION_OVERRIDE": "${{ needs.build.outputs.version_override }}",
        "OVERRIDE_REASON": "${{ needs.build.outputs.override_reason }}",
    }
    # The facts later jobs use are the upload job's, derived from its own copy of the bytes.
    assert set(upload["outputs"]) == set(ci.BUILD_FIELDS) - {"shasum"}
    for name, value in upload["outputs"].items():
        assert value == f"${{{{ steps.upload.outputs.{name} }}}}"
    assert run_steps(jobs["check"])['invoke publish.check --version "$NPM_VERSION"'] == {
        "NPM_VERSION": "${{ needs.upload.outputs.npm_version }}"
    }
    record = run_steps(jobs["record"])
    [(cmd, env)] = [(r, e) for r, e in record.items() if r.startswith("invoke release.record ")]
    assert cmd.endswith(" --push")
    for flag in re.findall(r"--([a-z-]+) \"\$", cmd):
        var = flag.replace("-", "_").upper()
        assert f'--{flag} "${var}"' in cmd
        assert env[var] == f"${{{{ needs.upload.outputs.{flag.replace('-', '_')} }}}}"
    assert env["SDKMIRROR_PUSH_TOKEN"] == "${{ github.token }}"
    assert (
        record['invoke github.release --upstream-tag "$UPSTREAM_TAG" --npm-version "$NPM_VERSION"'][
            "GITHUB_TOKEN"
        ]
        == "${{ github.token }}"
    )
    # No job after build downloads anything but the tarball, and only the upload job does.
    for name in ("check", "record"):
        assert not any("artifact" in s.get("uses", "") for s in jobs[name]["steps"])


def test_every_job_that_runs_upstream_code_sets_up_the_sandbox_first() -> None:
    for path, job, first in (
        ("publish-sdk.yml", "build", "invoke publish.build "),
        ("publish-sdk.yml", "check", "invoke publish.check "),
        ("smoke.yml", "smoke", "nox -s "),
        ("ci.yml", "tests", "nox -s tests"),
    ):
        runs = [s.get("run", "") for s in load(WORKFLOWS / path)["jobs"][job]["steps"]]
        at = next(i for i, r in enumerate(runs) if r.startswith(first))
        assert "invoke ci.sandbox-setup" in runs[:at], (path, job)


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
    assert sync["environment"] == "mirror-sync"
    assert "SDKMIRROR_PUSH_TOKEN" not in sync["env"]
    # The work-repository cache: restored from keys that name main, saved only on main.
    uses = {s["uses"].split("@")[0]: s for s in sync["steps"] if "uses" in s}
    assert "actions/cache" not in uses
    restore, save = uses["actions/cache/restore"], uses["actions/cache/save"]
    assert restore["with"]["restore-keys"] == "sdkmirror-work-refs/heads/main-"
    assert restore["with"]["key"] == save["with"]["key"]
    assert save["with"]["key"].startswith("sdkmirror-work-refs/heads/main-")
    assert save["if"] == "${{ !cancelled() && github.ref == 'refs/heads/main' }}"
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


def test_secrets_live_in_environments_only() -> None:
    for path in FILES:
        for name, job in load(path)["jobs"].items():
            if "secrets." in json.dumps(job):
                assert job.get("environment"), f"{path.name}: job {name} uses a secret outside"


def test_lint_fails_on_a_medium_auditor_finding(tmp_path: Path) -> None:
    """A repository secret outside an environment (medium for the auditor) fails the lint."""
    root = tmp_path / "proj"
    bad = root / ".github" / "workflows"
    bad.mkdir(parents=True)
    git("init", "-q", str(root))
    (root / "pyproject.toml").write_text("[tool.sdkmirror]\n")
    (bad / "bad.yml").write_text(
        "name: bad\non:\n  workflow_dispatch:\npermissions: {}\njobs:\n  j:\n    name: j\n"
        "    runs-on: ubuntu-24.04\n    permissions: {}\n    steps:\n      - name: s\n"
        "        env:\n          T: ${{ secrets.SYNC_PAT }}\n        run: invoke sync\n"
    )
    with pytest.raises(VerificationFailed, match="zizmor reported findings"):
        ci.lint_workflows(config.load(root / "pyproject.toml"))


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

    def dispatch(tag: str, dry_run: str | None = None) -> dict[str, str]:
        env = {"GITHUB_EVENT_NAME": "workflow_dispatch", "INPUT_SOURCE_TAG": tag}
        if dry_run is not None:
            env["INPUT_DRY_RUN"] = dry_run
        return ci.publish_args(cfg, env)

    pushed = dispatch("publish-sdk/v0.9.3", "false")
    assert pushed == {
        "source_tag": "@moonshot-ai/kimi-code@0.14.2",
        "expected_version": "0.9.3",
        "version_override": "",
        "override_reason": "",
        "dry_run": "false",
    }
    # the dispatch `invoke release.tag` prints names the publish tag: the version is checked
    assert dispatch("publish-sdk/v0.9.3") == {**pushed, "dry_run": "true"}
    # the SDK there says 0.9.3: publish-sdk/v0.9.5 is an override, not a failed expectation
    overridden = dispatch("publish-sdk/v0.9.5", "false")
    assert overridden == {
        "source_tag": "@moonshot-ai/kimi-code@0.14.2",
        "expected_version": "",
        "version_override": "0.9.5",
        "override_reason": "publish tag publish-sdk/v0.9.5 on SDK 0.9.3",
        "dry_run": "false",
    }
    with pytest.raises(UsageError, match="not on origin"):
        dispatch("publish-sdk/v9.9.9")
    # a tag push never publishes: its workflow file would come from the tagged commit
    with pytest.raises(UsageError, match="manual dispatch only"):
        ci.publish_args(cfg, {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "publish-sdk/v0.9.3"})
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


def manifest(**changes: Any) -> dict[str, Any]:
    base = {
        "kind": "publish-build",
        "schema": 1,
        "npm_name": "@botiverse/kimi-code-sdk",
        "npm_version": "0.9.3",
        "sdk_version": "0.9.3",
        "upstream_tag": "@moonshot-ai/kimi-code@0.14.2",
        "commit": "c" * 40,
        "source_ref": None,
        "override_reason": None,
        "tarball": "botiverse-kimi-code-sdk-0.9.3.tgz",
        "integrity": "sha512-" + "A" * 86 + "==",
        "shasum": "d" * 40,
        "dist_tag": "latest",
        "toolchain": {"node": "24.15.0", "pnpm": "10.33.0"},
    }
    return {**base, **changes}


def write_build(out: Path, data: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "botiverse-kimi-code-sdk-0.9.3.tgz").write_bytes(b"tgz")
    (out / "manifest.json").write_text(json.dumps(data))
    return out / "manifest.json"


def test_build_outputs_are_the_manifest_facts(project: Project, tmp_path: Path) -> None:
    path = write_build(tmp_path / "out", manifest(override_reason="re-bundled"))
    outputs = tmp_path / "github-output"
    cp = project.invoke(
        "ci.build-outputs", "--manifest", str(path), env={"GITHUB_OUTPUT": str(outputs)}
    )
    assert cp.returncode == 0, cp.stderr
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values == {
        "npm_name": "@botiverse/kimi-code-sdk",
        "npm_version": "0.9.3",
        "sdk_version": "0.9.3",
        "upstream_tag": "@moonshot-ai/kimi-code@0.14.2",
        "commit": "c" * 40,
        "integrity": "sha512-" + "A" * 86 + "==",
        "shasum": "d" * 40,
        "tarball": "botiverse-kimi-code-sdk-0.9.3.tgz",
        "dist_tag": "latest",
        "override_reason": "re-bundled",
    }
    assert set(values) == set(ci.BUILD_FIELDS)


CRAFTED = {
    "a version with a newline": ({"npm_version": "0.9.3\nx=1"}, "is not an exact npm version"),
    "a tag outside the pattern": ({"upstream_tag": "main"}, "is not a release tag"),
    "a short commit": ({"commit": "c" * 39}, "is not a full commit id"),
    "an integrity that is not SRI": ({"integrity": "sha1-abc"}, "is not a sha512 SRI"),
    "a tarball path": ({"tarball": "../../etc/passwd.tgz"}, "is not a plain .tgz file name"),
    "a missing tarball": ({"tarball": "other.tgz"}, "which is not a file next to it"),
    "another package": ({"npm_name": "evil"}, "is not the package this mirror publishes"),
    "a reason on two lines": ({"override_reason": "a\nnpm_version=6.6.6"}, "must be one line"),
    "a number for a string": ({"npm_version": 93}, "npm_version must be a string"),
    "another kind": ({"kind": "publish"}, "is not a publish-build manifest"),
}


@pytest.mark.parametrize("changes,message", list(CRAFTED.values()), ids=list(CRAFTED))
def test_build_outputs_refuse_a_crafted_manifest(
    project: Project, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = write_build(tmp_path / "out", manifest(**changes))
    outputs = tmp_path / "github-output"
    cp = project.invoke(
        "ci.build-outputs", "--manifest", str(path), env={"GITHUB_OUTPUT": str(outputs)}
    )
    assert cp.returncode == 2
    last = cp.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, cp.stderr
    assert not outputs.exists()  # nothing leaves the job


def test_build_outputs_refuse_a_linked_tarball(project: Project, tmp_path: Path) -> None:
    path = write_build(tmp_path / "out", manifest())
    tgz = tmp_path / "out" / "botiverse-kimi-code-sdk-0.9.3.tgz"
    tgz.unlink()
    tgz.symlink_to("/etc/passwd")
    cp = project.invoke("ci.build-outputs", "--manifest", str(path))
    assert cp.returncode == 2 and "which is not a file next to it" in cp.stderr


# --- the health page and the bisect of an upstream break -----------------------------------------


def test_sync_workflow_bisects_an_upstream_break_and_publishes_the_health_page() -> None:
    jobs = load(WORKFLOWS / "sync-upstream.yml")["jobs"]
    bisect = jobs["bisect"]
    assert bisect["needs"] == ["sync", "smoke"]
    assert bisect["permissions"] == {"contents": "read"} and "environment" not in bisect
    download = next(s for s in bisect["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {"pattern": "smoke-*", "path": "reports"}
    runs = run_steps(bisect)
    args = next(s for s in bisect["steps"] if s.get("run", "").startswith("invoke smoke.bisect-"))
    assert args["run"] == "invoke smoke.bisect-args --smoke-report reports" and args["id"] == "args"
    [(cmd, env)] = [(r, e) for r, e in runs.items() if r.startswith("invoke smoke.bisect ")]
    assert cmd == (
        'invoke smoke.bisect --good "$GOOD" --bad "$BAD" --toolchain "$TOOLCHAIN" '
        '--upstream "$UPSTREAM" --report bisect/bisect.json'
    )
    assert env == {k.upper(): f"${{{{ steps.args.outputs.{k} }}}}" for k in ci_bisect_keys()}
    step = next(s for s in bisect["steps"] if s.get("run") == cmd)
    assert step["if"] == "${{ steps.args.outputs.needed == 'true' }}"
    upload = next(s for s in bisect["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "bisect-report" and upload["with"]["path"] == "bisect/"
    report = jobs["report"]
    assert report["needs"] == ["sync", "smoke", "bisect"]
    checkout = next(s for s in report["steps"] if "checkout" in s.get("uses", ""))
    assert checkout["with"]["ref"] == "main"  # the ledger the sync just pushed
    runs = [s.get("run") for s in report["steps"]]
    # The alerts read the bisect report from the same downloaded directory.
    assert runs.index("invoke health --out health-page --reports reports") > runs.index(
        "invoke report --sync-report reports/sync-report/sync.json --smoke-report reports"
    )
    page = next(s for s in report["steps"] if "upload-artifact" in s.get("uses", ""))
    assert page["with"]["name"] == "health-page" and page["with"]["path"] == "health-page/"
    assert page["if"] == "${{ !cancelled() }}"


def ci_bisect_keys() -> list[str]:
    return ["good", "bad", "toolchain", "upstream"]


def test_bisect_args_from_the_smoke_reports(project: Project, tmp_path: Path) -> None:
    cfg = project.config()
    ledger = MirrorLedger(cfg.mirror_ledger)
    ledger.add_tag("@moonshot-ai/kimi-code@0.14.2", "a" * 40, "1" * 40)
    ledger.add_tag("@moonshot-ai/kimi-code@0.17.0", "b" * 40, "2" * 40)
    ledger.add_tag("@moonshot-ai/kimi-code@0.19.0", "c" * 40, "3" * 40)
    ledger.save()
    reports = tmp_path / "reports" / "smoke-node-24.19.0-pnpm-10.33.0"
    reports.mkdir(parents=True)

    def smoke(category: str, classification: str) -> None:
        (reports / "smoke.json").write_text(
            json.dumps(
                {
                    "kind": "smoke",
                    "ref": "@moonshot-ai/kimi-code@0.19.0",
                    "commit": "3" * 40,
                    "results": [
                        {
                            "toolchain": {"node": "24.19.0", "pnpm": "10.33.0"},
                            "status": "fail",
                            "category": category,
                            "classification": classification,
                            "commit": "3" * 40,
                        }
                    ],
                }
            )
        )

    env = {"GITHUB_SERVER_URL": "https://git.example.invalid", "GITHUB_REPOSITORY": "o/m"}
    smoke("upstream-build", "upstream-breaking")
    assert bisect_args(cfg, [str(tmp_path / "reports")], env) == {
        "needed": "true",
        "good": "@moonshot-ai/kimi-code@0.17.0",
        "bad": "3" * 40,
        "toolchain": "24.19.0/10.33.0",
        "upstream": "https://git.example.invalid/o/m.git",
    }
    smoke("lockfile", "our-env")  # our environment: nothing to bisect
    assert bisect_args(cfg, [str(tmp_path / "reports")], env)["needed"] == "false"
    assert bisect_args(cfg, [str(tmp_path / "none")], env)["needed"] == "false"
