"""`nox -s bench -- sandbox`: smoke and `publish.build` with and without the bubblewrap sandbox,
side by side in one run, on the embedded sample (goal: at most 5 % overhead).

Each figure is the median of a few runs after one warm-up, alternating the two modes so that a
warming cache favours neither. Measured, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sdkmirror.core import config as config_mod
from sdkmirror.devtools import registry_server, sample
from sdkmirror.devtools.bench_publish import _mirror
from sdkmirror.infra import console, sandbox
from sdkmirror.infra.toolchain import provision
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish.plan import Request
from sdkmirror.smoke import build as smoke

TRIALS = 3
GOAL = 0.05


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(fn: Callable[[], object], trials: int) -> tuple[float, float]:
    """Median seconds of `fn` in the sandbox and without it, alternating, after a warm-up."""
    fn()  # warm the store, the npm cache and the cached tools
    boxed: list[float] = []
    bare: list[float] = []
    for _ in range(trials):
        boxed.append(_time(fn))
        with sandbox.unsandboxed():
            bare.append(_time(fn))
    return statistics.median(boxed), statistics.median(bare)


def run(trials: int = TRIALS) -> list[tuple[str, float, float]]:
    project = config_mod.load()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="sdkmirror-bench-sandbox-") as tmp:
        base = Path(tmp)
        cfg, origin = _mirror(base, project)
        # Every trial builds for real: a build-cache hit would time a copy, not the sandbox.
        cfg = dataclasses.replace(cfg, build_cache_max_bytes=0)
        spec = cfg.toolchains[0]
        tag = sample.TAG.format(sample.DEFAULT_RELEASES[0].cli)

        def smoke_run() -> object:
            return smoke.run_smoke(cfg, spec, upstream_url=origin, ref=tag, keep=False)

        rows.append(("smoke", *side_by_side(smoke_run, trials)))
        tc = provision(spec, cfg.cache_dir)
        # publish.build reads the dist-tags: a loopback registry answers them.
        with registry_server.verdaccio(base / "verdaccio", tc, cache_dir=cfg.cache_dir) as reg:

            def publish_run() -> object:
                req = Request(source_tag=tag, origin=origin, registry=reg.url)
                return publish_build.build(cfg, req, base / "out")

            rows.append(("publish.build", *side_by_side(publish_run, trials)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdkmirror.devtools.bench_sandbox")
    parser.add_argument("--trials", type=int, default=TRIALS, help="runs per mode (median)")
    args = parser.parse_args(argv)
    why = sandbox.problem()
    if why is not None:
        console.error(why)
        return 9
    rows = run(max(1, args.trials))
    console.show(
        console.table(
            f"sandbox overhead (median of {args.trials}, goal <= {GOAL:.0%})",
            ["step", "sandboxed", "no sandbox", "overhead"],
            [
                (name, f"{boxed:.2f}s", f"{bare:.2f}s", f"{(boxed - bare) / bare:+.1%}")
                for name, boxed, bare in rows
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
