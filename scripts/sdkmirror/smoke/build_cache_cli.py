"""`invoke cache.list` and `invoke cache.prune`: the build cache's entries and prune plans, on
stdout (a table, or `--json`); progress on stderr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sdkmirror.core.config import Config
from sdkmirror.infra import console
from sdkmirror.smoke.build_cache import BuildCache, Listed, PrunePlan, age


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    t = console.table(title, columns, rows)
    if console.out.is_terminal:
        console.out.print(t)
    else:
        console.out.print(console.plain(t), markup=False, highlight=False)


def _row(item: Listed) -> dict[str, Any]:
    entry = item.entry
    inputs = entry.manifest.get("inputs", {}) if entry else {}
    toolchain = inputs.get("toolchain", {}) if isinstance(inputs, dict) else {}
    return {
        "key": item.key,
        "label": entry.manifest.get("label", "") if entry else "",
        "stage": inputs.get("stage", "") if isinstance(inputs, dict) else "",
        "node": toolchain.get("node", ""),
        "pnpm": toolchain.get("pnpm", ""),
        "bytes": item.size,
        "created": entry.manifest.get("created", "") if entry else "",
        "last_used": datetime.fromtimestamp(item.last_used, UTC).isoformat(timespec="seconds"),
        "ok": entry is not None,
        "problem": item.problem,
    }


def main_list(cfg: Config, *, json_out: bool = False) -> list[dict[str, Any]]:
    """`invoke cache.list`: every entry, most recently used first, on stdout."""
    cache = BuildCache(cfg.build_cache_dir, cfg.build_cache_max_bytes)
    listed = list(reversed(cache.listing()))
    rows = [_row(item) for item in listed]
    total = sum(item.size for item in listed)
    if json_out:
        doc = {
            "root": str(cache.root),
            "max_bytes": cache.max_bytes,
            "bytes": total,
            "entries": rows,
        }
        console.out.print_json(json.dumps(doc))
        return rows
    table = [
        [
            r["key"][:16],
            r["label"] if r["ok"] else f"partial or corrupt: {r['problem']}",
            f"{r['node']} / {r['pnpm']}".strip(" /") or "-",
            _human(r["bytes"]),
            age(item.last_used),
        ]
        for r, item in zip(rows, listed, strict=True)
    ]
    title = (
        f"build cache {cache.root}: {len(rows)} entries, {_human(total)} of "
        f"{_human(cache.max_bytes)}"
    )
    _print_table(title, ["key", "build", "node / pnpm", "size", "used"], table)
    return rows


def main_prune(
    cfg: Config,
    *,
    dry_run: bool = False,
    max_bytes: int | None = None,
    everything: bool = False,
    json_out: bool = False,
) -> PrunePlan:
    """`invoke cache.prune`: the plan on stdout (partial or corrupt entries, leftovers of
    stopped runs, least recently used entries over the budget), applied unless `dry_run`."""
    from sdkmirror.core.errors import UsageError

    if max_bytes is not None and max_bytes < 0:
        raise UsageError(f"--max-bytes must be a number of bytes >= 0, got {max_bytes}")
    cache = BuildCache(cfg.build_cache_dir, cfg.build_cache_max_bytes)
    plan = cache.plan_prune(max_bytes, everything=everything)
    if json_out:
        console.out.print_json(json.dumps({**plan.as_json(), "dry_run": dry_run}))
    else:
        rows = [[i.key[:16], _human(i.size), why] for i, why in plan.remove]
        rows += [[p.name[:16], "-", "left by a stopped run"] for p in plan.leftovers]
        if plan.verdicts:
            rows.append(["verdicts", "-", "the publish checks' remembered passes"])
        verb = "would remove" if dry_run else "removes"
        title = (
            f"prune plan for {cache.root}: {verb} {len(rows)}, frees {_human(plan.freed)}; "
            f"keeps {plan.kept} entries, {_human(plan.kept_bytes)} of {_human(plan.budget)}"
        )
        _print_table(title, ["key", "size", "why"], rows)
    if dry_run:
        console.info("dry run: nothing removed")
        return plan
    removed = cache.prune(plan)
    console.info(f"removed {len(removed)} entries and {len(plan.leftovers)} leftovers")
    return plan
