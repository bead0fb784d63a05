"""`nox -s demo`: the whole loop on the embedded sample, in a scratch directory.

Creates the sample upstream and an empty origin, runs the real `invoke sync` against them
with a scratch configuration, smoke-builds the mirror branch with every configured toolchain,
and prints the reports. Toolchains and the pnpm store come from the project's cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import tomlkit

from . import config as config_mod
from . import console, proc, sample, smoke, tomlstore
from .gitio import ls_remote


def write_config(project_pyproject: Path, dest: Path, *, upstream: str) -> Path:
    """A pyproject.toml in `dest` with the project's [tool.sdkmirror], state kept in `dest`."""
    doc = tomlkit.parse(project_pyproject.read_text(encoding="utf-8"))
    table = doc["tool"]["sdkmirror"]  # type: ignore[index]
    project = config_mod.load(project_pyproject)
    table["upstream"] = upstream
    table["work_dir"] = "state"
    # Ledgers and notes are relative paths, so they already land beside this file.
    table["pnpm_store"] = str(project.pnpm_store.resolve())
    out = tomlkit.document()
    out.add(tomlkit.comment("Scratch configuration for `nox -s demo`; safe to delete."))
    out["tool"] = {"sdkmirror": table}
    path = dest / "pyproject.toml"
    tomlstore.write(path, out)
    return path


def run(tmp: Path, *, project_root: Path) -> int:
    tmp = tmp.resolve()
    project_pyproject = project_root / "pyproject.toml"
    project = config_mod.load(project_pyproject)
    upstream, origin = tmp / "upstream.git", tmp / "origin.git"
    for path in (upstream, origin, tmp / "state", tmp / "ledger"):
        if path.exists():
            import shutil

            shutil.rmtree(path)
    with console.step("creating the sample upstream and an empty origin"):
        up = sample.create_upstream(upstream)
        proc.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)])
    console.info(f"upstream {upstream}: main at {up.head[:12]}, {len(up.tags)} release tags")
    pyproject = write_config(project_pyproject, tmp, upstream=str(upstream))
    env = {
        **os.environ,
        config_mod.CONFIG_ENV: str(pyproject),
        config_mod.CACHE_ENV: str(project.cache_dir.resolve()),
    }
    os.environ.update({k: env[k] for k in (config_mod.CONFIG_ENV, config_mod.CACHE_ENV)})

    sync_report = tmp / "reports" / "sync.json"
    argv = [
        sys.executable,
        "-m",
        "invoke",
        "--search-root",
        str(project_root),
        "sync",
        "--upstream",
        str(upstream),
        "--origin",
        str(origin),
        "--report",
        str(sync_report),
    ]
    with console.step("invoke sync (sample upstream -> empty origin)"):
        console.command(argv, cwd=tmp)
        res = proc.run(argv, cwd=tmp, env=env, check=False, timeout=600)
    sys.stderr.write(res.output + ("\n" if res.output and not res.output.endswith("\n") else ""))
    if res.returncode != 0:
        console.error(f"invoke sync exited {res.returncode}; see the output above")
        return res.returncode
    refs = ls_remote(str(origin), name="origin")
    console.show(
        console.table(
            "origin after the sync",
            ["ref", "object"],
            [[r, o[:12]] for r, o in sorted(refs.refs.items())],
        )
    )

    cfg = config_mod.load(pyproject)
    results = [
        smoke.run_smoke(
            cfg, spec, upstream_url=str(origin), ref=cfg.mirror_branch, report_dir=tmp / "reports"
        )
        for spec in cfg.toolchains
    ]
    merged = smoke.load_reports([r.json_path for r in results])
    console.show(smoke.summary_table(merged))
    console.info(f"reports: {tmp / 'reports'} (sync.json, smoke-*.json, smoke-*.md)")
    return 1 if smoke.any_failed(merged) else 0
