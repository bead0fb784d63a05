"""Alerts kept as GitHub issues: read the open ones, apply a plan of open/comment/close."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sdkmirror.alerts.alert import BASE_LABEL, Action, OpenIssue, fingerprint_of
from sdkmirror.infra.github_api import Client, GitHubUnavailable


def open_alerts(client: Client) -> tuple[list[OpenIssue], dict[int, Any]]:
    """Open issues labelled `sync` that carry a fingerprint marker."""
    issues = client.call(
        "listing open alert issues",
        lambda: list(client.repo.get_issues(state="open", labels=[BASE_LABEL])),
    )
    found, objects = [], {}
    for issue in issues:
        fp = fingerprint_of(issue.body)
        # Pull requests share the listing; `html_url` is in it, `pull_request` may not be.
        if fp and "/pull/" not in (issue.html_url or ""):
            found.append(OpenIssue(issue.number, fp, issue.title))
            objects[issue.number] = issue
    return found, objects


def apply(
    client: Client, actions: Sequence[Action], issues: Mapping[int, Any]
) -> tuple[dict[int, str], str | None]:
    """Apply the plan in order, stopping at the first GitHub failure.

    Returns each action's outcome by index and the failure, if any.
    """
    outcomes: dict[int, str] = {}
    for i, a in enumerate(actions):
        try:
            outcomes[i] = _apply_one(client, a, issues)
        except GitHubUnavailable as exc:
            outcomes[i] = "failed"
            outcomes.update({j: "skipped" for j in range(i + 1, len(actions))})
            return outcomes, str(exc)
    return outcomes, None


def _apply_one(client: Client, a: Action, issues: Mapping[int, Any]) -> str:
    if a.verb == "open":
        created = client.call(
            f"opening an issue for {a.fingerprint}",
            lambda: client.repo.create_issue(title=a.title, body=a.body, labels=list(a.labels)),
        )
        return f"opened #{created.number}"
    if a.number is None:  # the plan gives every comment and close its issue's number
        raise ValueError(f"cannot {a.verb} an alert issue without its number: {a.describe()}")
    issue = issues[a.number]
    client.call(f"commenting on #{a.number}", lambda: issue.create_comment(a.body))
    if a.verb == "close":
        client.call(
            f"closing #{a.number}",
            lambda: issue.edit(state="closed", state_reason="completed"),
        )
        return "closed"
    return "commented"
