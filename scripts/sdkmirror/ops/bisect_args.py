"""What the daily workflow bisects after its smoke: job outputs from the run's smoke reports.

A required toolchain that broke upstream (`upstream-breaking`) is bisected with that toolchain
between the last green mirror tag and the commit that failed; anything else needs no bisect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sdkmirror.alerts import alert as alerts
from sdkmirror.core.config import Config
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.ops.ci import repo_url_from_env

NOTHING = {"needed": "false", "good": "", "bad": "", "toolchain": "", "upstream": ""}


def bisect_args(cfg: Config, smoke_paths: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """`needed`, and `good`, `bad`, `toolchain` (NODE/PNPM), `upstream` when it is."""
    smokes = alerts.load_smoke_reports(smoke_paths)
    broken = [
        (r, str(r.get("commit") or report.get("commit") or ""))
        for report in smokes
        for r in alerts.required_failures(report.get("results", []))
        if r.get("classification") == "upstream-breaking"
    ]
    broken = [(r, commit) for r, commit in broken if commit]
    if not broken:
        return dict(NOTHING)
    result, bad = broken[0]
    tags = {n: rec.commit for n, rec in MirrorLedger(cfg.mirror_ledger).tags.items()}
    good = alerts.last_green_tag(smokes, {n: c for n, c in tags.items() if c != bad}, cfg.tags)
    if good is None:
        return dict(NOTHING)
    tc = result.get("toolchain") or {}
    return {
        "needed": "true",
        "good": good,
        "bad": bad,
        "toolchain": f"{tc.get('node')}/{tc.get('pnpm')}",
        "upstream": repo_url_from_env(env) or cfg.upstream,
    }
