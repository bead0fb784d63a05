"""`invoke report`: a run's sync and smoke reports become issue actions and a step summary.

Exit codes: 0 when the reports are green, whatever GitHub did (its failures are reported on
stderr and in the step summary, never turned into a failed run); 1 when the reports themselves
say the run failed (sync failed or diverged, a required toolchain did not pass); 2 for
unreadable reports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict

from sdkmirror.alerts import alert as alerts
from sdkmirror.alerts import github_issues
from sdkmirror.core import config as config_mod
from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import console
from sdkmirror.infra.github_api import Client, GitHubUnavailable
from sdkmirror.mirror.ledger import MirrorLedger

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


class RunFailed(MirrorError):
    """The reports say the run failed; alerts were still raised."""

    exit_code = 1


def run_url_from_env() -> str:
    server, repo, run = (
        os.environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""


def readme_from_env() -> str:
    server, repo = os.environ.get("GITHUB_SERVER_URL", ""), os.environ.get("GITHUB_REPOSITORY", "")
    doc = alerts.RUNBOOK_DOC
    return f"{server}/{repo}/blob/main/{doc}" if server and repo else doc


def write_step_summary(markdown: str) -> None:
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown)
    except OSError as exc:
        console.warn(f"cannot write the step summary to {path}: {exc.strerror}")


def main(
    *,
    sync_report: str,
    smoke_reports: Sequence[str] = (),
    dry_run: bool = False,
    run_url: str | None = None,
    as_json: bool = False,
) -> None:
    cfg = config_mod.load()
    sync = alerts.load_sync_report(sync_report)
    smokes = alerts.load_smoke_reports(smoke_reports)
    tags = {name: rec.commit for name, rec in MirrorLedger(cfg.mirror_ledger).tags.items()}
    green = alerts.last_green_tag(smokes, tags, cfg.tags)
    url = run_url if run_url is not None else run_url_from_env()

    problems: list[str] = []
    client, why_not = Client.from_env()
    open_issues: list[alerts.OpenIssue] = []
    objects: dict[int, object] = {}
    can_apply = client is not None and not dry_run
    if client is None:
        console.warn(f"{why_not}; printing the plan instead of applying it")
        problems.append(why_not)
    else:
        try:
            with console.step("reading open alert issues"):
                open_issues, objects = github_issues.open_alerts(client)
        except GitHubUnavailable as exc:
            # Without the open issues every alert would be opened twice: plan, do not apply.
            console.warn(f"{exc}; printing the plan instead of applying it")
            problems.append(str(exc))
            can_apply = False

    actions = alerts.plan_alerts(
        sync,
        smokes,
        open_issues,
        url,
        last_green=green,
        readme=readme_from_env(),
        culprits=alerts.load_culprits(smoke_reports),
    )
    outcomes: dict[int, str] = {}
    if can_apply and actions and client is not None:
        with console.step(f"applying {len(actions)} issue action(s)"):
            outcomes, failure = github_issues.apply(client, actions, objects)
        if failure:
            console.warn(failure)
            problems.append(failure)
    elif actions:
        outcomes = {i: "dry run" if dry_run else "not applied" for i in range(len(actions))}

    if not as_json:
        console.result(
            console.table(
                f"Alerts ({'dry run' if dry_run else 'applied' if can_apply else 'plan only'})",
                ["action", "fingerprint", "result"],
                [[a.describe(), a.fingerprint, outcomes.get(i, "")] for i, a in enumerate(actions)]
                or [["nothing to report", "", ""]],
            )
        )
    write_step_summary(
        alerts.markdown_summary(
            sync, smokes, actions, outcomes, last_green=green, github_problems=problems
        )
    )
    if as_json:
        console.result_json(
            {
                "actions": [
                    asdict(a) | {"outcome": outcomes.get(i)} for i, a in enumerate(actions)
                ],
                "last_green_tag": green,
                "github_problems": problems,
            }
        )
    failures = alerts.run_failures(sync, smokes)
    if failures:
        raise RunFailed(
            f"the reports say this run failed ({'; '.join(failures)}); "
            "the alerts above say what to do"
        )
    if problems:
        console.info("GitHub was not fully updated; the run itself is green (exit 0)")
