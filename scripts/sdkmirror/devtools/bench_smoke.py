"""Benchmark one smoke run against the raw pnpm commands it wraps, on a warm store.

Also times the second toolchain's scoped install against the first's on one fresh shared
store. Runs on the embedded sample by default; `--upstream URL --ref REF` measures a real
upstream, where install and build take seconds and the fixed overhead matters less.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from sdkmirror.core import config
from sdkmirror.core.config import ToolchainSpec
from sdkmirror.devtools import sample
from sdkmirror.devtools.bench_sync import median_time
from sdkmirror.infra import console, sandbox, toolchain
from sdkmirror.mirror import source
from sdkmirror.smoke import build as smoke

TRIALS = 5


def _raw(tc: toolchain.Toolchain, tree: Path, cfg: config.Config, store: Path) -> float:
    """The two pnpm commands alone, as a person would type them, in a fresh copy of `tree`."""
    work = tree.with_name(tree.name + "-raw")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(tree, work, symlinks=True)
    start = time.perf_counter()
    pkg = cfg.sdk_package
    with sandbox.unsandboxed():  # as typed by hand: no bwrap
        tc.run(
            [
                tc.pnpm,
                "install",
                "--frozen-lockfile",
                "--filter",
                f"{pkg}...",
                "--store-dir",
                store,
            ],
            cwd=work,
        )
        tc.run([tc.pnpm, "--filter", pkg, "build"], cwd=work)
    return time.perf_counter() - start


def _install_time(tc: toolchain.Toolchain, tree: Path, cfg: config.Config, store: Path) -> float:
    work = tree.with_name(f"{tree.name}-{tc.spec.node}")
    shutil.copytree(tree, work, symlinks=True)
    start = time.perf_counter()
    tc.run(
        [
            tc.pnpm,
            "install",
            "--frozen-lockfile",
            "--filter",
            f"{cfg.sdk_package}...",
            "--store-dir",
            store,
        ],
        cwd=work,
        network=True,
        writable=[store],
    )
    return time.perf_counter() - start


def run(upstream: str | None = None, ref: str | None = None, trials: int = TRIALS) -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sdkmirror-bench-smoke-") as tmp:
        base = Path(tmp)
        if upstream is None:
            upstream, ref = sample.create_upstream(base / "upstream.git").url, "main"
        ref = ref or "main"
        project = config.load()
        cfg = config.from_mapping(
            {
                "upstream": upstream,
                "work_dir": str(base / "state"),
                "pnpm_store": str(project.pnpm_store.resolve()),
                "build_cache_max_bytes": 0,  # the harness's overhead, not the build cache's
            },
            root=base,
        )
        specs = [s for s in project.toolchains if not s.allow_failure][:2] or [
            ToolchainSpec("24.19.0", "10.33.0")
        ]
        first = toolchain.provision(specs[0], cfg.cache_dir)
        tree = base / "tree"
        commit = source.materialize(upstream, ref, tree)
        lines.append(f"source: {upstream} at {ref} ({commit[:12]}), toolchain {specs[0].id}")

        with console.step("warming the store"):
            smoke.run_smoke(cfg, specs[0], upstream_url=upstream, ref=ref, keep=False)
        ours = median_time(
            lambda: smoke.run_smoke(cfg, specs[0], upstream_url=upstream, ref=ref, keep=False),
            trials,
        )
        raw = median_time(lambda: _raw(first, tree, cfg, cfg.pnpm_store), trials)
        ratio = ours / raw
        lines.append(
            f"smoke run: median {ours:.2f}s vs raw pnpm install+build {raw:.2f}s "
            f"(ratio {ratio:.2f}, overhead {(ours - raw) * 1000:+.0f} ms; target ratio <= 1.10)"
        )
        if ratio > 1.10:
            lines.append(
                f"  the overhead is fixed (export, version checks, import check): on the measured "
                f"upstream build (install 8.4s + build 9.8s) it would be a ratio of "
                f"{(18.2 + ours - raw) / 18.2:.2f}"
            )

        if len(specs) > 1:
            second = toolchain.provision(specs[1], cfg.cache_dir)
            store = base / "fresh-store"
            t1 = _install_time(first, tree, cfg, store)
            t2 = _install_time(second, tree, cfg, store)
            lines.append(
                f"scoped install on one fresh shared store: {specs[0].id} {t1:.2f}s, then "
                f"{specs[1].id} {t2:.2f}s ({t2 / t1:.2f}x the first)"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sdkmirror.devtools.bench_smoke")
    parser.add_argument("--upstream", help="git URL or path (default: the embedded sample)")
    parser.add_argument("--ref", help="branch, tag or commit (default: main)")
    parser.add_argument("--trials", type=int, default=TRIALS)
    args = parser.parse_args(argv)
    for line in run(args.upstream, args.ref, args.trials):
        console.out.print(line, markup=False, highlight=False)


if __name__ == "__main__":
    main()
