"""`invoke doctor` against a loopback stand-in for the GitHub REST API."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from conftest import REPO_ROOT, Project
from pytest_httpserver import HTTPServer

REPO = "owner/mirror"
API = f"/api/repos/{REPO}"

COMPLIANT: dict[str, Any] = {
    "actions/permissions/workflow": {
        "default_workflow_permissions": "read",
        "can_approve_pull_request_reviews": False,
    },
    "environments/mirror-sync": {
        "name": "mirror-sync",
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
    },
    "environments/mirror-sync/deployment-branch-policies": {
        "total_count": 1,
        "branch_policies": [{"id": 1, "name": "main", "type": "branch"}],
    },
    "environments/mirror-sync/secrets": {"total_count": 1, "secrets": [{"name": "SYNC_PAT"}]},
    "environments/npm-publish": {
        "name": "npm-publish",
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
    },
    "environments/npm-publish/deployment-branch-policies": {
        "total_count": 1,
        "branch_policies": [{"id": 2, "name": "main", "type": "branch"}],
    },
    "actions/secrets": {"total_count": 0, "secrets": []},
    "actions/permissions": {"enabled": True, "allowed_actions": "selected"},
    "actions/permissions/selected-actions": {
        "github_owned_allowed": True,
        "verified_allowed": False,
        "patterns_allowed": [],
    },
}


def serve(httpserver: HTTPServer, answers: dict[str, Any]) -> None:
    for path, body in answers.items():
        status = 200
        if isinstance(body, tuple):
            status, body = body
        httpserver.expect_request(
            f"{API}/{path}", method="GET", headers={"Authorization": "token t0ken"}
        ).respond_with_json(body, status=status)


def doctor(project: Project, httpserver: HTTPServer, answers: dict[str, Any], *flags: str):
    serve(httpserver, answers)
    env = {
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": httpserver.url_for("/api"),
        "SDKMIRROR_GITHUB_RETRY": "attempts=2,backoff=0.01,max_wait=0.1,write_gap=0",
        # our workflows, for the allowed-actions check
        "SDKMIRROR_CONFIG": str(REPO_ROOT / "pyproject.toml"),
    }
    return project.invoke("doctor", *(flags or ("--json",)), env=env)


def test_the_table_is_the_result_on_stdout(project: Project, httpserver: HTTPServer) -> None:
    cp = doctor(project, httpserver, COMPLIANT, "--repo", REPO)
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert lines[0] == f"Repository settings of {REPO}"
    assert lines[1].split() == ["check", "state", "detail", "fix"]
    assert len(lines) == 2 + 7  # one unwrapped line per check, however long its detail
    assert all(" ok " in ln for ln in lines[2:])
    assert lines[2].split()[0] == "sandbox"  # this machine's own check comes first
    assert cp.stderr.strip() == "doctor: ok (7 checks)"


def test_no_repository_anywhere_is_one_plain_error(project: Project) -> None:
    env = {"GITHUB_REPOSITORY": "", "GITHUB_TOKEN": "t0ken"}
    cp = project.invoke("doctor", env=env)
    assert cp.returncode == 2
    assert cp.stderr.strip().splitlines() == [
        "error: cannot tell which repository to read: no --repo, no $GITHUB_REPOSITORY, and no "
        "origin remote on GitHub; pass --repo OWNER/NAME"
    ]
    bad = project.invoke("doctor", "--repo", "owner", env=env)
    assert bad.stderr.strip().splitlines() == [
        "error: owner is not a GitHub repository name; pass --repo OWNER/NAME"
    ]


def checks(cp) -> dict[str, dict[str, str]]:
    data = json.loads(cp.stdout)  # stdout alone: one JSON document
    assert data["schema"] == 1
    assert data["repository"] == REPO
    return {c["name"]: c for c in data["checks"]}


def rows(cp) -> dict[str, str]:
    return {name: c["state"] for name, c in checks(cp).items()}


def test_a_compliant_repository_is_ok(project: Project, httpserver: HTTPServer) -> None:
    cp = doctor(project, httpserver, COMPLIANT)
    assert cp.returncode == 0, cp.stderr
    assert "doctor: ok (7 checks)" in cp.stderr
    assert set(rows(cp).values()) == {"ok"} and len(rows(cp)) == 7
    # only reads
    assert {req.method for req, _ in httpserver.log} == {"GET"}


def deviation(path: str, body: Any) -> dict[str, Any]:
    answers = copy.deepcopy(COMPLIANT)
    answers[path] = body
    return answers


DEVIATIONS = {
    "write token": (
        deviation(
            "actions/permissions/workflow",
            {"default_workflow_permissions": "write", "can_approve_pull_request_reviews": False},
        ),
        "default workflow token",
        "-f default_workflow_permissions=read",
    ),
    "token approves pull requests": (
        deviation(
            "actions/permissions/workflow",
            {"default_workflow_permissions": "read", "can_approve_pull_request_reviews": True},
        ),
        "default workflow token",
        "-F can_approve_pull_request_reviews=false",
    ),
    "environment missing": (
        deviation("environments/npm-publish", (404, {"message": "Not Found"})),
        "environment npm-publish",
        f"gh api -X PUT repos/{REPO}/environments/npm-publish",
    ),
    "any branch deploys": (
        deviation(
            "environments/mirror-sync",
            {"name": "mirror-sync", "deployment_branch_policy": None},
        ),
        "environment mirror-sync",
        "deployment-branch-policies -f name=main -f type=branch",
    ),
    "another branch deploys": (
        deviation(
            "environments/mirror-sync/deployment-branch-policies",
            {
                "total_count": 2,
                "branch_policies": [
                    {"id": 1, "name": "main", "type": "branch"},
                    {"id": 7, "name": "upstream-*", "type": "branch"},
                ],
            },
        ),
        "environment mirror-sync",
        f"gh api -X DELETE repos/{REPO}/environments/mirror-sync/deployment-branch-policies/7",
    ),
    "SYNC_PAT missing": (
        deviation("environments/mirror-sync/secrets", {"total_count": 0, "secrets": []}),
        "secrets of mirror-sync",
        f"gh secret set SYNC_PAT --env mirror-sync --repo {REPO}",
    ),
    "repository secret": (
        deviation("actions/secrets", {"total_count": 1, "secrets": [{"name": "SYNC_PAT"}]}),
        "repository secrets",
        f"gh secret delete SYNC_PAT --repo {REPO}",
    ),
    "any action allowed": (
        deviation("actions/permissions", {"enabled": True, "allowed_actions": "all"}),
        "allowed actions",
        "patterns_allowed[]=actions/cache/restore@*",
    ),
    "our actions not allowed": (
        deviation(
            "actions/permissions/selected-actions",
            {"github_owned_allowed": False, "patterns_allowed": ["actions/checkout@*"]},
        ),
        "allowed actions",
        "-f allowed_actions=selected",
    ),
}


@pytest.mark.parametrize("answers,check,fix", list(DEVIATIONS.values()), ids=list(DEVIATIONS))
def test_each_deviation_is_named_with_its_fix(
    project: Project, httpserver: HTTPServer, answers: dict[str, Any], check: str, fix: str
) -> None:
    cp = doctor(project, httpserver, answers)
    assert cp.returncode == 8, cp.stderr
    states = rows(cp)
    assert states[check] == "deviates", cp.stderr
    assert [c for c, s in states.items() if s != "ok"] == [check]
    assert fix in checks(cp)[check]["fix"]
    last = cp.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 setting(s) deviate") and "Traceback" not in cp.stderr


def test_unreadable_settings_exit_4(project: Project, httpserver: HTTPServer) -> None:
    answers = deviation(
        "actions/permissions/workflow", (403, {"message": "Resource not accessible by integration"})
    )
    cp = doctor(project, httpserver, answers)
    assert cp.returncode == 4, cp.stderr
    assert rows(cp)["default workflow token"] == "unreadable"
    assert (
        cp.stderr.strip()
        .splitlines()[-1]
        .startswith("error: cannot read default workflow token of owner/mirror")
    )


def test_an_unreadable_actions_policy_is_only_unknown(
    project: Project, httpserver: HTTPServer
) -> None:
    answers = deviation("actions/permissions", (403, {"message": "Must have admin rights"}))
    cp = doctor(project, httpserver, answers)
    assert cp.returncode == 0, cp.stderr
    assert rows(cp)["allowed actions"] == "unknown"


def test_no_token_is_one_error(project: Project) -> None:
    cp = project.invoke("doctor", env={"GITHUB_REPOSITORY": REPO})
    assert cp.returncode == 4
    assert cp.stderr.strip().splitlines() == [
        "error: GITHUB_TOKEN is not set; export a token that may read owner/mirror's settings "
        "(e.g. `GITHUB_TOKEN=$(gh auth token)`)"
    ]
