"""Alerts: from sync and smoke reports to issue actions (open, comment, close), planned purely.

Each problem has a fingerprint (kind + affected ref or toolchain + failure category). It is
stored in the issue body as an HTML comment, so a later run finds the open issue again: a
repeat comments there, and a later green run for that fingerprint comments and closes it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sdkmirror.core import reports
from sdkmirror.core.errors import UsageError
from sdkmirror.core.mirror_tag import TagPattern, describe_invalid

MARKER = re.compile(r"<!--\s*sdkmirror-fingerprint:\s*(\S+)\s*-->")
BASE_LABEL = "sync"
SYNC_STATUSES = ("noop", "updated", "diverged", "failed")
# A sync that got as far as a plan saw every ref: a problem it did not report is gone.
SYNC_PLANNED = ("noop", "updated", "diverged")


@dataclass(frozen=True)
class RunbookStep:
    anchor: str
    text: str

    def link(self, readme: str) -> str:
        return f"[runbook § {self.anchor}]({readme}#{self.anchor})"


# The runbook sections each alert points at; the anchors must exist in RUNBOOK_DOC.
RUNBOOK_DOC = "docs/operations.md"
RUNBOOK: dict[str, RunbookStep] = {
    "upstream-break": RunbookStep(
        "smoke-failure-triage-runbook",
        "Upstream breaking change: consumers stay pinned to the last green mirror tag. Track it "
        "upstream; bump consumer pins only after a green release tag lands. Never edit the mirror.",
    ),
    "our-env": RunbookStep(
        "smoke-failure-triage-runbook",
        "Our environment (toolchain, lockfile, layout, network): fix the smoke harness or the "
        "toolchain table in pyproject.toml; the mirror tags are unaffected.",
    ),
    "diverged": RunbookStep(
        "upstream-history-rewrite",
        "Upstream rewrote its branch: the mirror branch is held. Compare the two heads, then "
        "follow the runbook's steps before anything moves; never force-push the mirror.",
    ),
    "tag-moved": RunbookStep(
        "moved-or-deleted-upstream-tag",
        "An upstream release tag moved or vanished: the mirror tag keeps its original commit. "
        "Consumers stay on the mirror tag; ask upstream whether the release was re-cut.",
    ),
    "foreign-tag": RunbookStep(
        "moved-or-deleted-upstream-tag",
        "A release tag on the mirror that upstream never had on that object: it was not recorded "
        "and has no release branch. Delete it on origin; never adopt it by hand.",
    ),
    "invalid-tag": RunbookStep(
        "moved-or-deleted-upstream-tag",
        "An upstream tag looks like a release but is not a valid release name: it was not "
        "mirrored. Nothing to do unless upstream confirms it is a release.",
    ),
    "push-auth": RunbookStep(
        "one-time-setup",
        "The push token cannot update workflow files: set the SYNC_PAT secret to a token with "
        "`repo` + `workflow` scope, then re-run the sync.",
    ),
    "sync-failed": RunbookStep(
        "failed-sync",
        "The sync changed nothing on the mirror (pushes are atomic). Read the error, fix its "
        "cause, then re-run the sync workflow.",
    ),
}

SYNC_KIND_LABEL = {
    "diverged": "diverged",
    "tag-moved": "tag-moved",
    "tag-deleted": "tag-moved",
    "foreign-tag": "tag-moved",
    "invalid-tag": "upstream-break",
    "push-auth-workflows": "our-env",
    "push-refused": "our-env",
    "release-branch-conflict": "our-env",
}
SYNC_KIND_RUNBOOK = {
    "diverged": "diverged",
    "tag-moved": "tag-moved",
    "tag-deleted": "tag-moved",
    "foreign-tag": "foreign-tag",
    "invalid-tag": "invalid-tag",
    "push-auth-workflows": "push-auth",
    "push-refused": "sync-failed",
    "release-branch-conflict": "sync-failed",
}


# --- reports ----------------------------------------------------------------------------------


def load_sync_report(path: str | Path) -> dict[str, Any]:
    data = reports.read(Path(path), "sync")
    if data.get("status") not in SYNC_STATUSES:
        raise UsageError(f"{path}: sync status must be one of {', '.join(SYNC_STATUSES)}")
    return data


def load_smoke_reports(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Smoke reports from files and directories (`*.json` inside); a missing path means the
    smoke matrix did not run, which is not an error."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # A directory of downloaded artifacts may hold other reports: take the smoke ones.
            files += [f for f in sorted(p.rglob("*.json")) if reports.kind_of(f) == "smoke"]
        elif p.exists():
            files.append(p)
    return [reports.read(f, "smoke") for f in files]


# --- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing that went wrong in this run, under its fingerprint."""

    fingerprint: str
    title: str
    label: str
    classification: str
    reason: str
    next_step: str = ""
    log_tail: str = ""
    runbook: RunbookStep = RUNBOOK["sync-failed"]
    culprit: str = ""  # the first bad commit `invoke smoke.bisect` named


def toolchain_slug(toolchain: Mapping[str, Any]) -> str:
    return f"node@{toolchain.get('node', '?')}+pnpm@{toolchain.get('pnpm', '?')}"


def _fp(*parts: str) -> str:
    # Quoted so that no ref name can end the HTML comment that stores it, or contain spaces.
    return "/".join(urllib.parse.quote(p, safe="@.+=:,'_-") for p in parts)


def sync_problems(sync: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for alert in sync.get("alerts", []):
        kind, ref = str(alert.get("kind", "")), str(alert.get("ref", ""))
        label = SYNC_KIND_LABEL.get(kind, "our-env")
        problems.append(
            Problem(
                fingerprint=_fp("sync", kind, ref),
                title=f"sync: {kind} on {describe_invalid(ref)}",
                label=label,
                classification=label,
                reason=str(alert.get("detail", "")),
                runbook=RUNBOOK[SYNC_KIND_RUNBOOK.get(kind, "sync-failed")],
            )
        )
    if sync.get("status") == "failed" and not problems:
        problems.append(
            Problem(
                fingerprint=_fp("sync", "failed", str(sync.get("origin", ""))),
                title="sync: the run failed",
                label="our-env",
                classification="our-env",
                reason=str(sync.get("error") or "no error message in the report"),
            )
        )
    return problems


def load_culprits(paths: Iterable[str | Path]) -> dict[str, str]:
    """Toolchain slug -> "sha subject (date)" from the bisect reports among `paths`' files."""
    out: dict[str, str] = {}
    for p in map(Path, paths):
        for f in sorted(p.rglob("*.json")) if p.is_dir() else []:
            if reports.kind_of(f) != "bisect":
                continue
            data = reports.read(f, "bisect")
            c, (node, _, pnpm) = data.get("culprit"), str(data.get("toolchain", "")).partition("/")
            if isinstance(c, dict):
                slug = toolchain_slug({"node": node, "pnpm": pnpm})
                out[slug] = f"{c.get('sha')} {c.get('subject')} ({c.get('date')})"
    return out


def smoke_problems(
    results: Iterable[Mapping[str, Any]], culprits: Mapping[str, str] | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    for r in results:
        status = r.get("status")
        toolchain = r.get("toolchain") or {}
        allowed = bool(toolchain.get("allow_failure"))
        # A canary outside the upstream's engines is expected to be unsupported: no alert.
        if status == "pass" or (status == "unsupported" and allowed):
            continue
        category = str(
            r.get("category") or ("unsupported-toolchain" if status == "unsupported" else "unknown")
        )
        classification = str(r.get("classification") or "our-env")
        label = "upstream-break" if classification == "upstream-breaking" else "our-env"
        slug = toolchain_slug(toolchain)
        problems.append(
            Problem(
                fingerprint=_fp("smoke", slug, category),
                title=f"smoke: {category} with {slug}",
                label=label,
                classification=classification,
                reason=str(r.get("reason", "")),
                next_step=str(r.get("next_step", "")),
                log_tail=str(r.get("log_tail", "")),
                runbook=RUNBOOK[label],
                culprit=(culprits or {}).get(slug, "") if label == "upstream-break" else "",
            )
        )
    return problems


def smoke_results(reports: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for report in reports for r in report.get("results", [])]


def required_failures(results: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Results that make the run red: anything but a pass on a toolchain that must work."""
    return [
        r
        for r in results
        if r.get("status") != "pass" and not (r.get("toolchain") or {}).get("allow_failure")
    ]


def last_green_tag(
    smoke_reports: Iterable[Mapping[str, Any]], mirror_tags: Mapping[str, str], pattern: TagPattern
) -> str | None:
    """The newest mirror tag (name -> commit) that no smoke report here shows red.

    Tags were smoke-built when mirrored, so a tag is presumed green unless a report of this
    run built its commit and a required toolchain failed there.
    """
    red = {
        str(r.get("commit") or report.get("commit"))
        for report in smoke_reports
        for r in required_failures(report.get("results", []))
    }
    versioned = [(pattern.version_of(n), n) for n, c in mirror_tags.items() if c not in red]
    ordered = sorted(((v, n) for v, n in versioned if v is not None), reverse=True)
    return ordered[0][1] if ordered else None


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenIssue:
    number: int
    fingerprint: str
    title: str = ""


@dataclass(frozen=True)
class Action:
    verb: Literal["open", "comment", "close"]
    fingerprint: str
    title: str
    body: str
    labels: tuple[str, ...] = ()
    number: int | None = None

    def describe(self) -> str:
        where = f"#{self.number}" if self.number else "new issue"
        return f"{self.verb} {where}: {self.title}"


@dataclass(frozen=True)
class Context:
    run_url: str
    last_green: str | None = None
    readme: str = RUNBOOK_DOC


def fingerprint_of(body: str | None) -> str | None:
    m = MARKER.search(body or "")
    return m.group(1) if m else None


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def issue_body(p: Problem, ctx: Context) -> str:
    green = f"`{ctx.last_green}`" if ctx.last_green else "none known yet"
    lines = [
        f"**{p.title}**",
        "",
        f"- Classification: `{p.classification}`",
        f"- Reason: {p.reason or 'not given'}",
    ]
    if p.next_step:
        lines.append(f"- Next step: {p.next_step}")
    if p.culprit:
        lines.append(f"- Culprit (first bad commit, `invoke smoke.bisect`): `{p.culprit}`")
    lines += [
        f"- Consumers stay on the last green mirror tag: {green}",
        f"- Run: {ctx.run_url or 'not recorded'}",
        "",
        f"Runbook ({p.runbook.link(ctx.readme)}): {p.runbook.text}",
    ]
    if p.log_tail.strip():
        lines += [
            "",
            "<details><summary>Log tail</summary>",
            "",
            _fence(p.log_tail),
            "",
            "</details>",
        ]
    lines += ["", f"<!-- sdkmirror-fingerprint: {p.fingerprint} -->"]
    return "\n".join(lines)


def repeat_body(p: Problem, ctx: Context) -> str:
    green = f"`{ctx.last_green}`" if ctx.last_green else "none known yet"
    text = f"Still failing in {ctx.run_url or 'a later run'}: {p.reason or p.title}\n\n"
    text += f"Last green mirror tag: {green}"
    if p.log_tail.strip():
        text += "\n\n" + _fence(p.log_tail)
    return text


def recovered(
    fingerprint: str,
    sync: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    current: set[str],
) -> bool:
    """Whether this run saw the fingerprint's subject and found it green."""
    if fingerprint in current:
        return False
    scope, _, rest = fingerprint.partition("/")
    if scope == "sync":
        return sync.get("status") in SYNC_PLANNED
    if scope == "smoke":
        slug = rest.partition("/")[0]
        return any(
            _fp(toolchain_slug(r.get("toolchain") or {})) == slug and r.get("status") == "pass"
            for r in results
        )
    return False


def plan_alerts(
    sync_report: Mapping[str, Any],
    smoke_reports: Sequence[Mapping[str, Any]],
    open_issues: Sequence[OpenIssue],
    run_url: str,
    *,
    last_green: str | None = None,
    readme: str = RUNBOOK_DOC,
    culprits: Mapping[str, str] | None = None,
) -> list[Action]:
    """Open, comment on, or close issues so that each open problem has exactly one issue."""
    results = smoke_results(smoke_reports)
    problems = sync_problems(sync_report) + smoke_problems(results, culprits)
    ctx = Context(run_url, last_green, readme)
    by_fp: dict[str, OpenIssue] = {}
    for issue in sorted(open_issues, key=lambda i: i.number):
        by_fp.setdefault(issue.fingerprint, issue)  # duplicates: the oldest one is the thread
    actions: list[Action] = []
    seen: set[str] = set()
    for p in problems:
        if p.fingerprint in seen:
            continue
        seen.add(p.fingerprint)
        existing = by_fp.get(p.fingerprint)
        if existing:
            actions.append(
                Action(
                    "comment",
                    p.fingerprint,
                    existing.title or p.title,
                    repeat_body(p, ctx),
                    number=existing.number,
                )
            )
        else:
            actions.append(
                Action(
                    "open", p.fingerprint, p.title, issue_body(p, ctx), labels=(BASE_LABEL, p.label)
                )
            )
    for fp, issue in by_fp.items():
        if recovered(fp, sync_report, results, seen):
            body = f"Green again in {run_url or 'a later run'}; closing."
            actions.append(Action("close", fp, issue.title or fp, body, number=issue.number))
    return actions


# --- the run's summary --------------------------------------------------------------------------


def run_failures(sync: Mapping[str, Any], smoke_reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """What makes this run red, from its own reports (never from GitHub's answers)."""
    reasons = []
    if sync.get("status") in ("failed", "diverged"):
        reasons.append(f"sync {sync['status']}")
    for r in required_failures(smoke_results(smoke_reports)):
        reasons.append(f"smoke {r.get('status')} with {toolchain_slug(r.get('toolchain') or {})}")
    return reasons


def _md(text: object) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def markdown_summary(
    sync: Mapping[str, Any],
    smoke_reports: Sequence[Mapping[str, Any]],
    actions: Sequence[Action],
    outcomes: Mapping[int, str],
    *,
    last_green: str | None,
    github_problems: Sequence[str] = (),
) -> str:
    """The run as Markdown for `$GITHUB_STEP_SUMMARY`; `outcomes` maps action index to result."""
    branch = sync.get("mirror_branch") or {}
    tags = ", ".join(f"`{t.get('name')}`" for t in sync.get("new_tags", [])) or "none"
    out = [
        "## Mirror run",
        "",
        f"Sync: **{sync.get('status')}**" + (" (dry run)" if sync.get("dry_run") else ""),
        f"- {branch.get('name', 'mirror branch')}: `{str(branch.get('before') or '-')[:12]}` → "
        f"`{str(branch.get('after') or '-')[:12]}`",
        f"- New tags: {tags}",
        f"- Last green mirror tag: {f'`{last_green}`' if last_green else 'none known'}",
    ]
    if sync.get("error"):
        out.append(f"- Error: {_md(sync['error'])}")
    results = smoke_results(smoke_reports)
    if results:
        out += [
            "",
            "### Smoke builds",
            "",
            "| toolchain | status | category | reason |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {_md(toolchain_slug(r.get('toolchain') or {}))} | {_md(r.get('status'))} | "
            f"{_md(r.get('category') or '')} | {_md(r.get('reason') or '')} |"
            for r in results
        ]
    out += ["", "### Alerts", ""]
    if actions:
        out += ["| action | issue | result |", "|---|---|---|"]
        out += [
            f"| {a.verb} | {_md(a.describe())} | {_md(outcomes.get(i, 'planned'))} |"
            for i, a in enumerate(actions)
        ]
    else:
        out.append("Nothing to report.")
    if github_problems:
        out += ["", "### GitHub problems (the run's result is unaffected)", ""]
        out += [f"- {_md(p)}" for p in github_problems]
    return "\n".join(out) + "\n"
