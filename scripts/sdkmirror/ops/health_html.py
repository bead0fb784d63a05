"""The health page: one self-contained HTML file (inline CSS and SVG, no script, no request).

Every state is told by a symbol and a word as well as by colour. The newest releases are
shown; older ones are folded into `<details>`, so 1,000 releases stay one usable page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from sdkmirror.ops.health import NOT_RUN, STATES, Health, ReleaseRow

SHOWN = 20  # releases in the open grid; the rest are folded

_CSS = """
:root { color-scheme: light; --pass:#1a7f37; --upstream-break:#cf222e; --our-env:#9a6700;
  --unsupported:#57606a; --not-run:#8c959f; --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  margin: 0 auto; padding: 1rem; max-width: 80rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); }
.muted, caption { color: var(--muted); }
caption { text-align: left; padding: .25rem 0; }
.notice { border: 2px solid var(--our-env); border-radius: 6px; padding: .5rem .9rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .25rem .45rem; text-align: left;
  vertical-align: top; white-space: nowrap; }
th { background: #f6f8fa; }
table.grid tbody th, table.grid thead th:first-child { position: sticky; left: 0; z-index: 1; }
td.npm { white-space: normal; min-width: 9rem; max-width: 16rem; }
code { font-size: .85em; word-break: break-all; white-space: normal; }
.cell { font-weight: 600; }
.s-pass { color: var(--pass); background: #dafbe1; }
.s-upstream-break { color: var(--upstream-break); background: #ffebe9; }
.s-our-env { color: var(--our-env); background: #fff8c5; }
.s-unsupported { color: var(--unsupported); background: #f6f8fa; }
.s-not-run { color: var(--not-run); font-weight: 400; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1rem; padding: 0; list-style: none; }
.legend li { padding: .1rem .4rem; border-radius: 4px; }
details { margin-top: .75rem; }
summary { cursor: pointer; font-weight: 600; }
ul.alerts li { margin-bottom: .3rem; }
svg { max-width: 100%; height: auto; }
@media (max-width: 600px) { body { padding: .5rem; font-size: 14px; } }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _state(state: str, reason: str = "") -> str:
    symbol, meaning = STATES[state]
    title = f"{state}: {reason or meaning}"
    return (
        f'<td class="cell s-{state}" title="{_e(title)}">'
        f'<span aria-hidden="true">{symbol}</span> {_e(state.replace("-", " "))}</td>'
    )


def _bar(health: Health) -> str:
    """The grid's states as one stacked bar, each part titled and labelled in words."""
    counts = health.counts()
    total = sum(counts.values())
    if total == 0:
        return ""
    x, parts, labels = 0.0, [], []
    for state, n in counts.items():
        if not n:
            continue
        w = 600 * n / total
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="18" fill="var(--{state})">'
            f"<title>{_e(state)}: {n}</title></rect>"
        )
        labels.append(f"{STATES[state][0]} {state.replace('-', ' ')}: {n}")
        x += w
    return (
        '<svg role="img" viewBox="0 0 600 18" width="600" height="18" '
        f'aria-label="{_e("; ".join(labels))}">{"".join(parts)}</svg>'
        f'<p class="muted">{_e("; ".join(labels))}</p>'
    )


def _grid(rows: Sequence[ReleaseRow], toolchains: Sequence[str], caption: str) -> str:
    head = (
        "<th scope=col>release</th>"
        + "".join(
            f'<th scope=col class="tc">{"<br>".join(_e(p) for p in t.split(" + "))}</th>'
            for t in toolchains
        )
        + "".join(f"<th scope=col>{h}</th>" for h in ("SDK", "npm", "release branch", "mirrored"))
    )
    body = []
    for r in rows:
        npm = _e(r.npm.version) if r.npm.version else "—"
        npm_cell = f'<td class="npm">{npm}<br><span class="muted">{_e(r.npm.why)}</span></td>'
        cells = "".join(_state(c.state, c.reason) for c in r.cells)
        body.append(
            f'<tr class="release" data-tag="{_e(r.tag)}"><th scope=row>{_e(r.version)}</th>'
            f"{cells}<td>{_e(r.sdk_version or '?')}</td>{npm_cell}"
            f"<td><code>{_e(r.release_branch)}</code></td><td>{_e(r.mirrored_at[:10])}</td></tr>"
        )
    return (
        f'<div class="scroll"><table class="grid"><caption>{_e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _legend() -> str:
    items = "".join(
        f'<li class="s-{s}"><span aria-hidden="true">{sym}</span> <b>{_e(s.replace("-", " "))}'
        f"</b>: {_e(meaning)}</li>"
        for s, (sym, meaning) in STATES.items()
    )
    return f'<ul class="legend" aria-label="legend">{items}</ul>'


def _alerts(health: Health) -> str:
    if not health.alerts:
        return "<p>✔ No open alerts in the latest reports.</p>"
    items = []
    for a in health.alerts:
        culprit = f"<br>culprit: <code>{_e(a.culprit)}</code>" if a.culprit else ""
        items.append(
            f"<li>⚠ <b>{_e(a.kind)}</b> ({_e(a.source)}) on <code>{_e(a.ref)}</code>: "
            f"{_e(a.detail)}{culprit}</li>"
        )
    return f'<ul class="alerts">{"".join(items)}</ul>'


def _latest_smoke(health: Health) -> str:
    run = health.latest_smoke
    if run is None:
        return "<p>No smoke report found.</p>"
    cells = "".join(
        f"<tr><th scope=row>{_e(c['toolchain'])}</th>{_state(c['state'], c['reason'])}</tr>"
        for c in run["cells"]
    )
    return (
        f"<p>Built <code>{_e(run['ref'])}</code> at <code>{_e(run['commit'][:12])}</code>:</p>"
        f'<div class="scroll"><table class="latest"><tbody>{cells}</tbody></table></div>'
    )


def _sync(health: Health) -> str:
    s = health.last_sync
    if s is None:
        return "<p>No sync report found.</p>"
    new = ", ".join(str(t) for t in s.get("new_tags") or []) or "none"
    error = f"<br>error: {_e(s.get('error'))}" if s.get("error") else ""
    return (
        f"<p>{_e(s.get('started_at') or 'time not recorded')}: <b>{_e(s.get('status'))}</b>; "
        f"new tags: {_e(new)}{error}</p>"
    )


def _patches(health: Health) -> str:
    if not health.patches:
        return "<p>No active patch branch.</p>"
    rows = "".join(
        f"<tr><td><code>{_e(p.branch)}</code></td><td><code>{_e(p.base)}</code></td>"
        f"<td>{p.drift}</td><td>{_e(p.detail)}</td></tr>"
        for p in health.patches
    )
    return (
        '<div class="scroll"><table><thead><tr><th>branch</th><th>base</th><th>drift</th>'
        f"<th>detail</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _registry(health: Health) -> str:
    reg = health.registry
    if reg["status"] == "unknown":
        return f"<p>Published versions on the registry: <b>unknown</b> ({_e(reg['why'])}).</p>"
    versions = ", ".join(reg["versions"] or []) or "none"
    return f"<p>{_e(reg['url'])} serves {_e(health.npm_name)}: {_e(versions)}</p>"


def render(health: Health) -> str:
    rows = health.releases
    shown, folded = rows[:SHOWN], rows[SHOWN:]
    missing = ""
    if health.missing:
        items = "".join(f"<li>{_e(m)}</li>" for m in health.missing)
        missing = f'<section class="notice"><h2>What is missing</h2><ul>{items}</ul></section>'
    if rows:
        grid = _grid(shown, health.toolchains, f"{len(rows)} mirrored release(s), newest first")
        if folded:
            grid += (
                f"<details><summary>{len(folded)} older release(s)</summary>"
                f"{_grid(folded, health.toolchains, 'older releases, newest first')}</details>"
            )
    else:
        grid = "<p>No mirrored release yet.</p>"
    not_run = sum(1 for r in rows for c in r.cells if c.state == NOT_RUN)
    green = health.latest_green or "none known"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(health.npm_name)} mirror health</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(health.npm_name)}: mirror health</h1>
<p class="muted">Generated {_e(health.generated_at)} · latest green release: <b>{_e(green)}</b>
· {len(rows)} release(s) x {len(health.toolchains)} toolchain(s), {not_run} cell(s) not run</p>
{_bar(health)}
</header>
<main>
{missing}
<section><h2>Open alerts</h2>{_alerts(health)}</section>
<section><h2>Releases x toolchains</h2>{_legend()}{grid}</section>
<section><h2>Latest smoke run</h2>{_latest_smoke(health)}</section>
<section><h2>Last sync</h2>{_sync(health)}</section>
<section><h2>Patch branches</h2>{_patches(health)}</section>
<section><h2>Registry</h2>{_registry(health)}</section>
</main>
</body>
</html>
"""
