"""`invoke report` against a loopback stand-in for the GitHub REST API that checks each request."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from sdkmirror.alerts import alert as alerts
from sdkmirror.core.mirror_tag import TagPattern
from sdkmirror.mirror.ledger import MirrorLedger

REPO = "owner/mirror"
API = f"/api/repos/{REPO}"
TAGS = TagPattern("@moonshot-ai/kimi-code@{version}")
PRIMARY = {"node": "24.19.0", "pnpm": "10.33.0", "allow_failure": False}
CANARY = {"node": "22.20.0", "pnpm": "10.33.0", "allow_failure": True}
C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40


def sync_report(status: str = "noop", alerts_: list[dict[str, str]] | None = None) -> dict:
    return {
        "kind": "sync",
        "status": status,
        "dry_run": False,
        "upstream": "u",
        "origin": "o",
        "mirror_branch": {"name": "upstream-main", "before": C1, "after": C1, "upstream": C1},
        "new_tags": [],
        "new_release_branches": [],
        "alerts": alerts_ or [],
        "changed": False,
        "ledger_changed": False,
        "error": None,
    }


def result(
    toolchain: dict,
    status: str,
    category: str | None = None,
    classification: str | None = None,
    commit: str = C3,
) -> dict:
    return {
        "id": f"node='{toolchain['node']}', pnpm='{toolchain['pnpm']}'",
        "toolchain": toolchain,
        "status": status,
        "category": category,
        "classification": classification,
        "reason": f"{category or status} happened",
        "next_step": "look at the log",
        "durations": {},
        "versions": {},
        "commit": commit,
        "log_tail": "error TS2305: Module has no exported member 'Session'\n```",
    }


def smoke_report(*results: dict, commit: str = C3) -> dict:
    return {
        "kind": "smoke",
        "upstream": "u",
        "ref": "upstream-main",
        "commit": commit,
        "results": list(results),
    }


DIVERGED = {"kind": "diverged", "ref": "upstream-main", "detail": "upstream rewrote main"}
FP_DIVERGED = "sync/diverged/upstream-main"
FP_BUILD = "smoke/node@24.19.0+pnpm@10.33.0/upstream-build"


# --- the plan, pure ----------------------------------------------------------------------------


def test_plan_opens_one_issue_per_fingerprint_with_labels_marker_and_runbook() -> None:
    sync = sync_report("diverged", [DIVERGED, DIVERGED])
    smoke = smoke_report(
        result(PRIMARY, "fail", "upstream-build", "upstream-breaking"),
        result(CANARY, "unsupported", "unsupported-toolchain", "our-env"),
    )
    actions = alerts.plan_alerts(
        sync, [smoke], [], "RUN-7", last_green="@moonshot-ai/kimi-code@0.14.2"
    )
    assert [(a.verb, a.fingerprint, a.labels) for a in actions] == [
        ("open", FP_DIVERGED, ("sync", "diverged")),
        ("open", FP_BUILD, ("sync", "upstream-break")),
    ]
    body = actions[1].body
    assert alerts.fingerprint_of(body) == FP_BUILD
    assert "`upstream-breaking`" in body and "RUN-7" in body
    assert "`@moonshot-ai/kimi-code@0.14.2`" in body
    assert "#smoke-failure-triage-runbook" in body
    # The log tail holds a ``` run, so the fence around it is longer.
    assert "````text\nerror TS2305" in body


def test_repeat_comments_and_recovery_closes() -> None:
    open_issues = [
        alerts.OpenIssue(4, FP_DIVERGED, "t"),
        alerts.OpenIssue(9, FP_BUILD, "b"),
        alerts.OpenIssue(2, FP_DIVERGED, "older duplicate"),
    ]
    sync = sync_report("diverged", [DIVERGED])
    smoke = smoke_report(result(PRIMARY, "pass"))
    actions = alerts.plan_alerts(sync, [smoke], open_issues, "RUN-8")
    assert [(a.verb, a.number) for a in actions] == [("comment", 2), ("close", 9)]
    assert "RUN-8" in actions[0].body and "RUN-8" in actions[1].body


def test_a_failed_sync_closes_nothing_and_no_smoke_keeps_smoke_issues_open() -> None:
    open_issues = [alerts.OpenIssue(4, FP_DIVERGED), alerts.OpenIssue(9, FP_BUILD)]
    failed = sync_report("failed")
    failed["error"] = "cannot read upstream"
    actions = alerts.plan_alerts(failed, [], open_issues, "RUN")
    assert [(a.verb, a.fingerprint) for a in actions] == [("open", "sync/failed/o")]


def test_hostile_ref_cannot_break_the_marker() -> None:
    evil = {"kind": "invalid-tag", "ref": "x --> <b>@1.2.3 \n", "detail": "not a release name"}
    (action,) = alerts.plan_alerts(sync_report("noop", [evil]), [], [], "")
    assert alerts.fingerprint_of(action.body) == action.fingerprint
    assert "-->" not in action.fingerprint and " " not in action.fingerprint


def test_last_green_tag_skips_tags_built_red() -> None:
    tags = {
        "@moonshot-ai/kimi-code@0.14.2": C1,
        "@moonshot-ai/kimi-code@0.15.0": C2,
        "@moonshot-ai/kimi-code@0.9.0": C1,
        "not-a-release": C3,
    }
    red = smoke_report(result(PRIMARY, "fail", "upstream-build", commit=C2), commit=C2)
    assert alerts.last_green_tag([red], tags, TAGS) == "@moonshot-ai/kimi-code@0.14.2"
    canary_red = smoke_report(result(CANARY, "fail", "lockfile", commit=C2), commit=C2)
    assert alerts.last_green_tag([canary_red], tags, TAGS) == "@moonshot-ai/kimi-code@0.15.0"
    assert alerts.last_green_tag([], {}, TAGS) is None


# --- `invoke report` against the stand-in API ----------------------------------------------------


def issue_json(server: HTTPServer, number: int, fingerprint: str, title: str = "t") -> dict:
    return {
        "number": number,
        "title": title,
        "state": "open",
        "body": f"old body\n<!-- sdkmirror-fingerprint: {fingerprint} -->",
        "url": server.url_for(f"{API}/issues/{number}"),
        "html_url": f"http://example.invalid/{number}",
        "labels": [{"name": "sync"}],
    }


@pytest.fixture
def run(project, httpserver: HTTPServer, tmp_path: Path):
    """Write reports and run `invoke report` with a token pointing at the stand-in API."""
    ledger = MirrorLedger(project.config().mirror_ledger)
    ledger.add_tag("@moonshot-ai/kimi-code@0.14.2", "a" * 40, C1)
    ledger.save()

    def go(sync: dict, smokes: list[dict] = (), *, token: bool = True, extra: list[str] = ()):
        (tmp_path / "sync.json").write_text(json.dumps(sync))
        smoke_dir = tmp_path / "smoke"
        smoke_dir.mkdir(exist_ok=True)
        for i, s in enumerate(smokes):
            (smoke_dir / f"smoke-{i}.json").write_text(json.dumps(s))
        summary = tmp_path / "summary.md"
        env = {
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": httpserver.url_for("/api"),
            "GITHUB_STEP_SUMMARY": str(summary),
            "SDKMIRROR_GITHUB_RETRY": "attempts=3,backoff=0.01,max_wait=0.2,write_gap=0",
        }
        if token:
            env["GITHUB_TOKEN"] = "t0ken"
        cp = project.invoke(
            "report",
            "--sync-report",
            str(tmp_path / "sync.json"),
            "--smoke-report",
            str(smoke_dir),
            "--run-url",
            "RUN-URL",
            *extra,
            env=env,
        )
        return cp, summary.read_text() if summary.exists() else ""

    return go


def listing(httpserver: HTTPServer, issues: list[dict[str, Any]]) -> None:
    httpserver.expect_ordered_request(
        f"{API}/issues",
        method="GET",
        query_string={"state": "open", "labels": "sync"},
        headers={"Authorization": "token t0ken"},
    ).respond_with_json(issues)


def bodies(httpserver: HTTPServer) -> list[tuple[str, str, Any]]:
    return [(req.method, req.path, req.get_json(silent=True)) for req, _ in httpserver.log]


def test_new_problem_opens_an_issue(run, httpserver: HTTPServer) -> None:
    listing(httpserver, [])
    httpserver.expect_ordered_request(f"{API}/issues", method="POST").respond_with_json(
        issue_json(httpserver, 12, FP_BUILD), status=201
    )
    cp, summary = run(
        sync_report("updated"),
        [smoke_report(result(PRIMARY, "fail", "upstream-build", "upstream-breaking"))],
    )
    httpserver.check_assertions()
    assert cp.returncode == 1, cp.stderr  # the smoke itself failed: the run is red
    assert "the reports say this run failed" in cp.stderr and "Traceback" not in cp.stderr
    method, path, body = bodies(httpserver)[1]
    assert (method, path) == ("POST", f"{API}/issues")
    assert body["labels"] == ["sync", "upstream-break"]
    assert body["title"] == "smoke: upstream-build with node@24.19.0+pnpm@10.33.0"
    assert alerts.fingerprint_of(body["body"]) == FP_BUILD
    assert "`@moonshot-ai/kimi-code@0.14.2`" in body["body"] and "RUN-URL" in body["body"]
    assert "opened #12" in summary


def test_repeat_becomes_a_comment(run, httpserver: HTTPServer) -> None:
    listing(httpserver, [issue_json(httpserver, 5, FP_BUILD)])
    httpserver.expect_ordered_request(f"{API}/issues/5/comments", method="POST").respond_with_json(
        {"id": 1, "body": "x"}, status=201
    )
    cp, _ = run(
        sync_report("noop"),
        [smoke_report(result(PRIMARY, "fail", "upstream-build", "upstream-breaking"))],
    )
    httpserver.check_assertions()
    assert cp.returncode == 1
    assert [(m, p) for m, p, _ in bodies(httpserver)] == [
        ("GET", f"{API}/issues"),
        ("POST", f"{API}/issues/5/comments"),
    ]
    assert "RUN-URL" in bodies(httpserver)[1][2]["body"]


def test_recovery_comments_and_closes(run, httpserver: HTTPServer) -> None:
    listing(
        httpserver, [issue_json(httpserver, 5, FP_BUILD), issue_json(httpserver, 6, FP_DIVERGED)]
    )
    for n in (5, 6):
        httpserver.expect_ordered_request(
            f"{API}/issues/{n}/comments", method="POST"
        ).respond_with_json({"id": n}, status=201)
        httpserver.expect_ordered_request(f"{API}/issues/{n}", method="PATCH").respond_with_json(
            issue_json(httpserver, n, "x") | {"state": "closed"}
        )
    cp, summary = run(sync_report("noop"), [smoke_report(result(PRIMARY, "pass"))])
    httpserver.check_assertions()
    assert cp.returncode == 0, cp.stderr
    patches = [b for m, _, b in bodies(httpserver) if m == "PATCH"]
    assert patches == [{"state": "closed", "state_reason": "completed"}] * 2
    assert summary.count("| closed |") == 2


def test_server_error_is_retried_then_succeeds(run, httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(f"{API}/issues", method="GET").respond_with_json(
        {"message": "Server Error"}, status=502
    )
    listing(httpserver, [])
    httpserver.expect_ordered_request(f"{API}/issues", method="POST").respond_with_json(
        {"message": "Server Error"}, status=503
    )
    httpserver.expect_ordered_request(f"{API}/issues", method="POST").respond_with_json(
        issue_json(httpserver, 3, FP_DIVERGED), status=201
    )
    cp, summary = run(
        sync_report(
            "noop",
            [
                {
                    "kind": "tag-moved",
                    "ref": "@moonshot-ai/kimi-code@0.14.2",
                    "detail": "upstream moved it",
                }
            ],
        )
    )
    httpserver.check_assertions()
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.count("retrying in") == 2
    assert "opened #3" in summary and "GitHub problems" not in summary


def test_rate_limit_waits_for_the_reset_within_the_cap(run, httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(f"{API}/issues", method="GET").respond_with_json(
        {"message": "API rate limit exceeded for installation"},
        status=403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)},
    )
    httpserver.expect_ordered_request(f"{API}/issues", method="GET").respond_with_json(
        {"message": "slow down"}, status=429, headers={"Retry-After": "0"}
    )
    listing(httpserver, [])
    cp, _ = run(sync_report("noop"))
    httpserver.check_assertions()
    assert cp.returncode == 0, cp.stderr
    # An hour-long reset is honoured only up to the configured cap.
    assert "rate limited" in cp.stderr and "retrying in 0.2s" in cp.stderr


def test_github_down_never_fails_a_green_run(run, httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{API}/issues", method="GET").respond_with_json(
        {"message": "unavailable"}, status=500
    )
    cp, summary = run(
        sync_report(
            "noop",
            [
                {
                    "kind": "tag-deleted",
                    "ref": "@moonshot-ai/kimi-code@0.14.2",
                    "detail": "deleted upstream",
                }
            ],
        )
    )
    assert cp.returncode == 0, cp.stderr
    assert len(httpserver.log) == 3  # bounded: the configured number of attempts
    assert [m for m, _, _ in bodies(httpserver)] == ["GET"] * 3  # nothing opened blindly
    assert "listing open alert issues failed: HTTP 500" in cp.stderr
    assert "GitHub problems" in summary and "not applied" in summary


def test_missing_token_prints_the_plan_and_stays_green(run, httpserver: HTTPServer) -> None:
    cp, summary = run(
        sync_report(
            "noop",
            [
                {
                    "kind": "tag-moved",
                    "ref": "@moonshot-ai/kimi-code@0.14.2",
                    "detail": "upstream moved it",
                }
            ],
        ),
        token=False,
        extra=["--json"],
    )
    assert cp.returncode == 0, cp.stderr
    assert not httpserver.log
    assert "GITHUB_TOKEN is not set" in cp.stderr and "Traceback" not in cp.stderr
    (action,) = json.loads(cp.stdout)["actions"]
    assert (action["verb"], action["title"], action["outcome"]) == (
        "open",
        "sync: tag-moved on @moonshot-ai/kimi-code@0.14.2",
        "not applied",
    )
    assert "GITHUB_TOKEN is not set" in summary


def test_dry_run_reads_but_never_writes(run, httpserver: HTTPServer) -> None:
    listing(httpserver, [])
    cp, _ = run(sync_report("diverged", [DIVERGED]), extra=["--dry-run", "--json"])
    httpserver.check_assertions()
    assert cp.returncode == 1  # the sync diverged: the run is red, dry or not
    out = json.loads(cp.stdout)  # stdout alone: the table is not printed beside the JSON
    assert out["schema"] == 1
    assert [(a["verb"], a["outcome"]) for a in out["actions"]] == [("open", "dry run")]
    assert out["last_green_tag"] == "@moonshot-ai/kimi-code@0.14.2"


def test_unreadable_report_is_one_clear_error(project, tmp_path: Path) -> None:
    bad = tmp_path / "sync.json"
    bad.write_text(json.dumps({"kind": "smoke", "results": []}))
    cp = project.invoke("report", "--sync-report", str(bad))
    assert cp.returncode == 2
    assert cp.stderr.strip().splitlines() == [
        f"error: {bad} is not a sync report (its \"kind\" is not 'sync')"
    ]


# --- GitHub Release per published version -------------------------------------------------------


def record_release(project, notes: str) -> None:
    from datetime import UTC, datetime

    from sdkmirror.mirror.releases import Release, ReleaseLedger

    cfg = project.config()
    ledger = ReleaseLedger(cfg.release_ledger)
    ledger.add(
        Release(
            "0.9.3",
            "@botiverse/kimi-code-sdk",
            "@moonshot-ai/kimi-code@0.14.2",
            C1,
            "0.9.3",
            "sha512-abc",
            datetime(2026, 1, 2, tzinfo=UTC),
            "r",
        )
    )
    ledger.save()
    cfg.notes_dir.mkdir(parents=True, exist_ok=True)
    (cfg.notes_dir / "0.9.3.md").write_text(notes)


def test_github_release_created_then_updated(project, httpserver: HTTPServer) -> None:
    record_release(project, "Added `Session.steer`.")
    env = {
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": httpserver.url_for("/api"),
        "SDKMIRROR_GITHUB_RETRY": "attempts=2,backoff=0.01,max_wait=0.1,write_gap=0",
    }
    tag_path = f"{API}/releases/tags/@moonshot-ai/kimi-code@0.14.2"
    httpserver.expect_ordered_request(tag_path, method="GET").respond_with_json(
        {"message": "Not Found"}, status=404
    )
    httpserver.expect_ordered_request(f"{API}/releases", method="POST").respond_with_json(
        {"id": 1, "tag_name": "@moonshot-ai/kimi-code@0.14.2"}, status=201
    )
    cp = project.invoke(
        "github.release", "--upstream-tag", "@moonshot-ai/kimi-code@0.14.2", env=env
    )
    httpserver.check_assertions()
    assert cp.returncode == 0, cp.stderr
    created = httpserver.log[-1][0].get_json()
    assert created["tag_name"] == created["name"] == "@moonshot-ai/kimi-code@0.14.2"
    assert "`@botiverse/kimi-code-sdk@0.9.3`" in created["body"]
    assert "Added `Session.steer`." in created["body"]

    httpserver.clear()
    existing = {
        "id": 1,
        "tag_name": "@moonshot-ai/kimi-code@0.14.2",
        "name": "old",
        "body": "old",
        "url": httpserver.url_for(f"{API}/releases/1"),
    }
    httpserver.expect_ordered_request(tag_path, method="GET").respond_with_json(existing)
    httpserver.expect_ordered_request(f"{API}/releases/1", method="PATCH").respond_with_json(
        existing
    )
    cp = project.invoke("github.release", "--npm-version", "0.9.3", env=env)
    httpserver.check_assertions()
    assert cp.returncode == 0, cp.stderr
    assert httpserver.log[-1][0].get_json()["body"] == created["body"]


def test_github_release_needs_a_recorded_publish(project) -> None:
    cp = project.invoke("github.release", "--upstream-tag", "@moonshot-ai/kimi-code@0.1.0")
    assert cp.returncode == 2
    assert cp.stderr.strip().splitlines()[-1] == (
        "error: the release ledger records no publish from @moonshot-ai/kimi-code@0.1.0; "
        "publish it first (`invoke publish --no-dry-run`)"
    )
