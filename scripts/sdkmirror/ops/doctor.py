"""`invoke doctor`: the repository settings the mirror's safety rests on, read from GitHub.

The mirror's pushes start upstream's own `on: push` workflows inside this repository. What
keeps them harmless is configuration, not code: a read-only default workflow token that cannot
approve pull requests, no repository-level secrets (only environment secrets, in environments
only `main` may deploy to), and an allow-list of actions. This reads each setting through the
REST API and prints what deviates with the exact fix.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from github import GithubException

from sdkmirror.core import config as config_mod
from sdkmirror.core.errors import MirrorError, RemoteError, UsageError
from sdkmirror.infra import console
from sdkmirror.infra.github_api import (
    API_ENV,
    REPO_ENV,
    TOKEN_ENV,
    Client,
    GitHubUnavailable,
    RetryPolicy,
)
from sdkmirror.infra.gitio import remote_url

EXIT_DEVIATES = 8
ENVIRONMENTS = {"mirror-sync": ("SYNC_PAT",), "npm-publish": ()}
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", re.ASCII)
_FROM_URL = re.compile(r"github\.com[:/]([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")
_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w./-]+)@(\S+)", re.M)

OK, DEVIATES, UNREADABLE, UNKNOWN = "ok", "deviates", "unreadable", "unknown"


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # ok | deviates | unreadable (needed, could not be read) | unknown (optional)
    detail: str
    fix: str = ""


class _Missing(Exception):
    """The API answered 404: the thing does not exist (or the token may not see it)."""


class Reader:
    """GET requests against one repository through the retrying client."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.repo = client.name

    def get(self, path: str) -> Any:
        url = f"/repos/{self.repo}/{path}"
        requester = self.client.gh.requester
        try:
            _, data = self.client.call(
                f"reading {path}", lambda: requester.requestJsonAndCheck("GET", url)
            )
        except GitHubUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, GithubException) and cause.status == 404:
                raise _Missing(path) from None
            raise
        return data


def _guard(name: str, fn: Callable[[], Check], *, optional: bool = False) -> Check:
    state = UNKNOWN if optional else UNREADABLE
    fix = "use a token that may read the repository's settings (admin read)"
    try:
        return fn()
    except GitHubUnavailable as exc:
        return Check(name, state, str(exc), fix)
    except _Missing as exc:
        # Settings a token may not read answer 404, as if they did not exist.
        return Check(name, state, f"GitHub: {exc} answered 404", fix)


def workflow_token(r: Reader) -> Check:
    name = "default workflow token"
    data = r.get("actions/permissions/workflow")
    perms, approve = (
        data.get("default_workflow_permissions"),
        data.get("can_approve_pull_request_reviews"),
    )
    if perms == "read" and approve is False:
        return Check(name, OK, "read-only, cannot approve pull requests")
    return Check(
        name,
        DEVIATES,
        f"default permissions {perms!r}, can approve pull requests: {approve!r}",
        f"gh api -X PUT repos/{r.repo}/actions/permissions/workflow "
        "-f default_workflow_permissions=read -F can_approve_pull_request_reviews=false "
        "(Settings > Actions > General > Workflow permissions)",
    )


def _branch_fix(repo: str, env: str) -> str:
    return (
        f"gh api -X PUT repos/{repo}/environments/{env} "
        "-F 'deployment_branch_policy[protected_branches]=false' "
        "-F 'deployment_branch_policy[custom_branch_policies]=true' && "
        f"gh api -X POST repos/{repo}/environments/{env}/deployment-branch-policies "
        f"-f name=main -f type=branch (Settings > Environments > {env} > Deployment branches)"
    )


def environment(r: Reader, env: str) -> Check:
    name = f"environment {env}"
    try:
        data = r.get(f"environments/{env}")
    except _Missing:
        return Check(name, DEVIATES, "missing", _branch_fix(r.repo, env))
    policy = data.get("deployment_branch_policy")
    if not policy:
        return Check(name, DEVIATES, "every branch may deploy to it", _branch_fix(r.repo, env))
    if policy.get("protected_branches") or not policy.get("custom_branch_policies"):
        return Check(
            name,
            DEVIATES,
            "deploys from protected branches, not main only",
            _branch_fix(r.repo, env),
        )
    rules = r.get(f"environments/{env}/deployment-branch-policies").get("branch_policies", [])
    names = sorted((str(p.get("name")), str(p.get("type", "branch"))) for p in rules)
    if names == [("main", "branch")]:
        return Check(name, OK, "only main may deploy")
    extra = [p for p in rules if (p.get("name"), p.get("type", "branch")) != ("main", "branch")]
    fix = " && ".join(
        f"gh api -X DELETE repos/{r.repo}/environments/{env}/deployment-branch-policies/{p['id']}"
        for p in extra
        if "id" in p
    )
    if ("main", "branch") not in names:
        fix = _branch_fix(r.repo, env) + (f" && {fix}" if fix else "")
    shown = ", ".join(f"{t} {n}" for n, t in names) or "none"
    return Check(name, DEVIATES, f"deployment branch rules: {shown}", fix)


def environment_secrets(r: Reader, env: str, wanted: tuple[str, ...]) -> Check:
    name = f"secrets of {env}"
    try:
        data = r.get(f"environments/{env}/secrets")
    except _Missing:
        data = {"secrets": []}
    have = {str(s.get("name")) for s in data.get("secrets", [])}
    missing = [s for s in wanted if s not in have]
    if not missing:
        return Check(name, OK, ", ".join(wanted) + " present")
    return Check(
        name,
        DEVIATES,
        f"{', '.join(missing)} not set",
        " && ".join(f"gh secret set {s} --env {env} --repo {r.repo}" for s in missing),
    )


def repository_secrets(r: Reader) -> Check:
    name = "repository secrets"
    names = sorted(str(s.get("name")) for s in r.get("actions/secrets").get("secrets", []))
    if not names:
        return Check(name, OK, "none: every workflow, upstream's included, sees no secret")
    where = {s: env for env, secrets in ENVIRONMENTS.items() for s in secrets}
    fixes = [
        f"gh secret set {s} --env {where.get(s, 'mirror-sync')} --repo {r.repo} && "
        f"gh secret delete {s} --repo {r.repo}"
        for s in names
    ]
    return Check(
        name,
        DEVIATES,
        f"{', '.join(names)} visible to every workflow run in this repository",
        " && ".join(fixes),
    )


def our_actions(workflows_dir: Any) -> list[str]:
    """`owner/repo[/path]@ref` of every action our workflows use."""
    found: set[str] = set()
    if workflows_dir.is_dir():
        for path in sorted(workflows_dir.glob("*.y*ml")):
            for m in _USES.finditer(path.read_text(encoding="utf-8")):
                found.add(f"{m.group(1)}@{m.group(2)}")
    return sorted(found)


def allowed_actions(r: Reader, ours: list[str]) -> Check:
    name = "allowed actions"
    data = r.get("actions/permissions")
    # One pattern per action (path included, any ref): our workflows pin each by SHA anyway.
    patterns = sorted({a.split("@")[0] + "@*" for a in ours})
    fix = (
        f"gh api -X PUT repos/{r.repo}/actions/permissions -F enabled=true "
        f"-f allowed_actions=selected && gh api -X PUT "
        f"repos/{r.repo}/actions/permissions/selected-actions -F github_owned_allowed=false "
        "-F verified_allowed=false "
        + "".join(f"-f 'patterns_allowed[]={p}' " for p in patterns)
        + "(Settings > Actions > General > Actions permissions)"
    )
    policy = data.get("allowed_actions")
    if data.get("enabled") is False:
        return Check(name, DEVIATES, "Actions are disabled: nothing runs", fix)
    if policy != "selected":
        return Check(name, DEVIATES, f"policy {policy!r}: any workflow may run any action", fix)
    sel = r.get("actions/permissions/selected-actions")
    allowed = [str(p) for p in sel.get("patterns_allowed", [])]

    def ok(action: str) -> bool:
        owner = action.split("/", 1)[0]
        if sel.get("github_owned_allowed") and owner in ("actions", "github"):
            return True
        return any(
            fnmatch.fnmatchcase(action, p) or fnmatch.fnmatchcase(action, p + "@*") for p in allowed
        )

    refused = [a for a in ours if not ok(a)]
    if refused:
        return Check(name, DEVIATES, f"selected, but refuses {', '.join(refused)}", fix)
    return Check(name, OK, f"selected: {len(allowed)} pattern(s), ours all allowed")


def run_checks(client: Client, workflows_dir: Any) -> list[Check]:
    r = Reader(client)
    checks = [_guard("default workflow token", lambda: workflow_token(r))]
    for env, secrets in ENVIRONMENTS.items():
        checks.append(_guard(f"environment {env}", partial(environment, r, env)))
        if secrets:
            checks.append(
                _guard(
                    f"secrets of {env}",
                    partial(environment_secrets, r, env, secrets),
                )
            )
    checks.append(_guard("repository secrets", lambda: repository_secrets(r)))
    ours = our_actions(workflows_dir)
    checks.append(_guard("allowed actions", lambda: allowed_actions(r, ours), optional=True))
    return checks


def sandbox_check() -> Check:
    """Whether bubblewrap can sandbox upstream code on this machine, and if not, why."""
    from sdkmirror.infra import sandbox

    name = "sandbox (bubblewrap)"
    why = sandbox.problem()
    if why is None:
        return Check(name, OK, f"bwrap works ({sandbox.PROFILE_VERSION})")
    fix = why.split("; ", 1)[1] if "; " in why else sandbox.INSTALL_HINT
    return Check(name, DEVIATES, why.split("; ", 1)[0], fix)


def repository(cfg_root: Any, repo: str | None) -> str:
    """`--repo`, else `$GITHUB_REPOSITORY`, else the GitHub repository the origin remote names."""
    name = repo or os.environ.get(REPO_ENV, "")
    if not name:
        try:
            m = _FROM_URL.search(remote_url(cfg_root))
        except MirrorError:
            m = None
        name = f"{m.group(1)}/{m.group(2)}" if m else ""
    if not name:
        raise UsageError(
            f"cannot tell which repository to read: no --repo, no ${REPO_ENV}, and no origin "
            "remote on GitHub; pass --repo OWNER/NAME"
        )
    if not _REPO.fullmatch(name):
        raise UsageError(f"{name} is not a GitHub repository name; pass --repo OWNER/NAME")
    return name


def main(*, repo: str | None = None, json_out: bool = False) -> list[Check]:
    cfg = config_mod.load()
    local = sandbox_check()  # this machine's own check needs no token
    if local.state != OK:  # said even when the repository cannot be read
        console.warn(f"{local.name}: {local.detail}; {local.fix}")
    name = repository(cfg.root, repo)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise RemoteError(
            f"{TOKEN_ENV} is not set; export a token that may read {name}'s settings "
            "(e.g. `GITHUB_TOKEN=$(gh auth token)`)"
        )
    client = Client(
        name, token, base_url=os.environ.get(API_ENV) or None, policy=RetryPolicy.from_env()
    )
    checks = [local, *run_checks(client, cfg.root / ".github" / "workflows")]
    if json_out:
        console.result_json({"repository": name, "checks": [asdict(c) for c in checks]})
    else:
        console.result(
            console.table(
                f"Repository settings of {name}",
                ["check", "state", "detail", "fix"],
                [[c.name, c.state, c.detail, c.fix] for c in checks],
            )
        )
    deviating = [c.name for c in checks if c.state == DEVIATES]
    unreadable = [c for c in checks if c.state == UNREADABLE]
    if deviating:
        raise MirrorError(
            f"{len(deviating)} setting(s) deviate ({', '.join(deviating)}); apply the fixes above",
            exit_code=EXIT_DEVIATES,
        )
    if unreadable:
        raise RemoteError(
            f"cannot read {unreadable[0].name} of {name}: {unreadable[0].detail}; use a token "
            "that may read the repository's settings"
        )
    console.info(f"doctor: ok ({len(checks)} checks)")
    return checks
