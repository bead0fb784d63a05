"""The health data as Markdown: the daily workflow's step summary and `health.md`."""

from __future__ import annotations

from sdkmirror.ops.health import STATES, Health

SHOWN = 30  # releases in the summary's grid; the page has them all


def _md(value: object) -> str:
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def _state(state: str) -> str:
    return f"{STATES[state][0]} {state}"


def render(health: Health) -> str:
    green = f"`{health.latest_green}`" if health.latest_green else "none known"
    counts = ", ".join(f"{_state(s)}: {n}" for s, n in health.counts().items() if n)
    out = [
        f"## Mirror health: {health.npm_name}",
        "",
        f"Generated {health.generated_at}; latest green release: {green}; "
        f"{len(health.releases)} release(s) x {len(health.toolchains)} toolchain(s)"
        + (f" ({counts})" if counts else ""),
    ]
    if health.missing:
        out += ["", "### What is missing", "", *(f"- {_md(m)}" for m in health.missing)]
    out += ["", "### Open alerts", ""]
    if health.alerts:
        out += [
            f"- ⚠ **{_md(a.kind)}** ({a.source}) on `{_md(a.ref)}`: {_md(a.detail)}"
            + (f"; culprit: `{_md(a.culprit)}`" if a.culprit else "")
            for a in health.alerts
        ]
    else:
        out.append("None in the latest reports.")
    out += ["", "### Releases x toolchains (newest first)", ""]
    if health.releases:
        head = ["release", *health.toolchains, "SDK", "npm", "release branch", "mirrored"]
        out += ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
        for r in health.releases[:SHOWN]:
            npm = r.npm.version or f"— ({r.npm.why})"
            cells = [_state(c.state) for c in r.cells]
            row = [r.version, r.sdk_version or "?", npm, r.release_branch, r.mirrored_at[:10]]
            out.append("| " + " | ".join(_md(c) for c in [row[0], *cells, *row[1:]]) + " |")
        more = len(health.releases) - SHOWN
        if more > 0:
            out += ["", f"{more} older release(s) are on the page (artifact `health-page`)."]
        out += ["", "Legend: " + "; ".join(f"{_state(s)}: {m}" for s, (_, m) in STATES.items())]
    else:
        out.append("No mirrored release yet.")
    run = health.latest_smoke
    if run is not None:
        out += ["", f"### Latest smoke run: `{_md(run['ref'])}` ({run['commit'][:12]})", ""]
        out += [f"- {_md(c['toolchain'])}: {_state(c['state'])}" for c in run["cells"]]
    out += ["", "### Last sync", ""]
    s = health.last_sync
    out.append(
        f"{s.get('started_at') or 'time not recorded'}: **{s.get('status')}**"
        + (f"; error: {_md(s.get('error'))}" if s.get("error") else "")
        if s
        else "No sync report found."
    )
    out += ["", "### Patch branches", ""]
    out += [f"- `{p.branch}` on `{p.base}`: {_md(p.detail)}" for p in health.patches] or [
        "No active patch branch."
    ]
    reg = health.registry
    out += ["", "### Registry", ""]
    out.append(
        f"Published versions: unknown ({_md(reg['why'])})"
        if reg["status"] == "unknown"
        else f"{reg['url']}: {', '.join(reg['versions'] or []) or 'none'}"
    )
    return "\n".join(out) + "\n"
