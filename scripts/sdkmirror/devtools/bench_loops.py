"""`nox -s bench`: the rows of the performance table, measured side by side in one run.

On the embedded sample, each row as medians of a few repeats and, where the table has one, a
ratio against its baseline measured in the same run (the machines are shared and noisy, so
ratios travel better than seconds):

- smoke as documented (build cache off) vs raw `pnpm install` + build; a cached smoke too;
- `invoke release.notes` with both builds cached (the first, cold run printed beside it);
- `nox -s demo`, second run (the first one creates the virtualenv and fills the caches);
- the sweep over the sample's releases, first and second run;
- a no-op `invoke sync` as a whole process vs `python -c pass`.

Every command runs as a process, the way a person runs it; only the smoke rows call the
library, as `bench_smoke` does.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sdkmirror.core import config
from sdkmirror.core.mirror_tag import Version
from sdkmirror.devtools import bench_smoke, sample
from sdkmirror.infra import console, proc, toolchain
from sdkmirror.mirror import source
from sdkmirror.smoke import build as smoke

REPEATS = 3
ROOT = Path(__file__).resolve().parents[3]  # the checkout holding tasks.py and noxfile.py
ROWS = ("smoke", "notes", "demo", "sweep", "sync")


def timed(argv: Sequence[str], *, env: dict[str, str], cwd: Path | None = None) -> float:
    """Wall time of one process; it must succeed (a failing row is no measurement)."""
    start = time.perf_counter()
    res = proc.run(list(argv), env=env, cwd=cwd, check=False, timeout=3600)
    took = time.perf_counter() - start
    if res.returncode != 0:
        tail = "\n".join(res.output.strip().splitlines()[-15:])
        raise SystemExit(f"error: {' '.join(argv[:6])} ... exited {res.returncode}:\n{tail}")
    return took


def median(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


class Bench:
    """A scratch project on the sample: upstream, synced origin, its own work dir and build
    cache; toolchains and the pnpm store come from the shared cache."""

    def __init__(self, base: Path, repeats: int) -> None:
        self.base, self.repeats = base, repeats
        self.up = sample.create_upstream(base / "upstream.git")
        self.origin = base / "origin.git"
        proc.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)])
        project = config.load(ROOT / "pyproject.toml")
        self.project = base / "project"
        self.project.mkdir()
        self.pyproject = self.project / "pyproject.toml"
        self.pyproject.write_text(
            "[tool.sdkmirror]\n"
            f'upstream = "{self.up.bare}"\n'
            'work_dir = "state"\n'
            f'pnpm_store = "{project.pnpm_store.resolve()}"\n'
        )
        self.cache = project.cache_dir.resolve()
        self.env = {
            **os.environ,
            config.CONFIG_ENV: str(self.pyproject),
            config.CACHE_ENV: str(self.cache),
            config.BUILD_CACHE_ENV: str(base / "build-cache"),
            "CI": "1",  # plain lines, no spinners
        }
        # The in-process rows (smoke) use this run's build cache too, never the shared one.
        os.environ[config.BUILD_CACHE_ENV] = self.env[config.BUILD_CACHE_ENV]
        self.cfg = config.load(self.pyproject)

    def invoke(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "invoke", "--search-root", str(ROOT), *args]

    def tags(self) -> list[str]:
        return sorted(self.up.tags, key=lambda t: self.cfg.tags.version_of(t) or Version(0, 0, 0))

    # --- the rows -----------------------------------------------------------------------------

    def smoke(self) -> list[list[str]]:
        spec = next(s for s in self.cfg.toolchains if not s.allow_failure)
        tc = toolchain.provision(spec, self.cfg.cache_dir)
        off = config.load(self.pyproject, build_cache_max_bytes=0)
        url = str(self.up.bare)
        tree = self.base / "smoke-tree"
        source.materialize(url, "main", tree)

        def run(cfg: config.Config) -> float:
            start = time.perf_counter()
            smoke.run_smoke(cfg, spec, upstream_url=url, ref="main", keep=False)
            return time.perf_counter() - start

        run(off)  # warms the store
        ours = median(lambda: run(off), self.repeats)
        raw = median(lambda: bench_smoke._raw(tc, tree, off, off.pnpm_store), self.repeats)
        run(self.cfg)  # stores the build
        cached = median(lambda: run(self.cfg), self.repeats)
        return [
            ["smoke as documented (cache off) vs raw pnpm install + build",
             f"{ours:.2f} s vs {raw:.2f} s", f"{ours / raw:.2f}x", "<= 1.10x"],
            ["smoke, build cached, vs raw pnpm install + build",
             f"{cached:.2f} s vs {raw:.2f} s", f"{cached / raw:.2f}x", ""],
        ]  # fmt: skip

    def sync(self) -> float:
        return timed(
            self.invoke("sync", "--upstream", str(self.up.bare), "--origin", str(self.origin)),
            env=self.env,
        )

    def notes(self) -> list[list[str]]:
        self.sync()
        old, new = self.tags()[-2:]
        origin = str(self.origin)
        argv = self.invoke("release.notes", "--from", old, "--to", new, "--origin", origin)
        cold = timed(argv, env=self.env, cwd=self.project)
        warm = median(lambda: timed(argv, env=self.env, cwd=self.project), self.repeats)
        return [
            ["`invoke release.notes`, both builds cached (first run: cold)",
             f"{warm:.2f} s (cold {cold:.2f} s)", f"{warm / cold:.2f}x of cold", "<= 15 s"],
        ]  # fmt: skip

    def demo(self) -> list[list[str]]:
        nox = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", "demo"]
        # A cold first run: a new virtualenv and an empty build cache (toolchains and tools
        # stay in the shared cache); the demo writes its own configuration.
        env = {**self.env, config.BUILD_CACHE_ENV: str(self.base / "demo-cache")}
        env.pop(config.CONFIG_ENV)
        first = timed([*nox, "--reuse-venv=never"], env=env, cwd=ROOT)
        second = median(lambda: timed(nox, env=env, cwd=ROOT), max(1, self.repeats - 2))
        return [
            ["`nox -s demo`, second run (first: venv, caches)",
             f"{second:.1f} s (first {first:.1f} s)", f"{second / first:.2f}x of first",
             "<= 30 s"],
        ]  # fmt: skip

    def sweep(self) -> list[list[str]]:
        argv = [
            sys.executable, "-m", "sdkmirror", "sweep", "--upstream", str(self.up.bare),
            "--out", str(self.base / "sweep-out"),
        ]  # fmt: skip
        env = {**self.env, config.BUILD_CACHE_ENV: str(self.base / "sweep-cache")}
        first = timed(argv, env=env, cwd=self.project)
        second = median(lambda: timed(argv, env=env, cwd=self.project), max(1, self.repeats - 2))
        n = len(self.up.tags)
        return [
            [f"sweep of the sample's {n} releases, second run (first: cold)",
             f"{second:.1f} s (first {first:.1f} s)", f"{second / first:.2f}x of first",
             "68 real releases: first <= 30 min, second <= 3 min"],
        ]  # fmt: skip

    def noop_sync(self) -> list[list[str]]:
        self.sync()  # the origin is current: what follows is the quiet day
        floor = median(
            lambda: timed([sys.executable, "-c", "pass"], env=self.env), max(5, self.repeats)
        )
        noop = median(self.sync, max(5, self.repeats))
        return [
            ["no-op `invoke sync` (whole process) vs `python -c pass`",
             f"{noop:.2f} s vs {floor:.2f} s", f"+{noop - floor:.2f} s", "<= +0.20 s"],
        ]  # fmt: skip


def run(rows: Sequence[str] = ROWS, repeats: int = REPEATS) -> str:
    """The table, as Markdown (for docs/cache.md) with the date and the machine."""
    table: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="sdkmirror-bench-loops-") as tmp:
        bench = Bench(Path(tmp), repeats)
        steps: dict[str, Callable[[], list[list[str]]]] = {
            "smoke": bench.smoke,
            "notes": bench.notes,
            "demo": bench.demo,
            "sweep": bench.sweep,
            "sync": bench.noop_sync,
        }
        for name in rows:
            with console.step(f"benchmark: {name}"):
                table += steps[name]()
        shutil.rmtree(Path(tmp) / "project" / "state", ignore_errors=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"Measured {when} on {platform.node() or 'this machine'} ({platform.machine()}, "
        f"{cores} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}), "
        f"medians of {repeats} repeats (5 for sync), on the embedded sample."
    )
    lines = [head, "", "| what | measured | ratio | goal |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sdkmirror.devtools.bench_loops")
    parser.add_argument("rows", nargs="*", help=f"rows to measure: {', '.join(ROWS)} (all)")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown row {unknown[0]!r}; choose from {', '.join(ROWS)}")
    console.out.print(run(args.rows or ROWS, args.repeats), markup=False, highlight=False)


if __name__ == "__main__":
    main()
