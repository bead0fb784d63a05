"""Benchmark: repackage + pack + verify + publish to a loopback Verdaccio, the build excluded.

`python -m sdkmirror.bench_publish` (or `nox -s bench`) prints one row per phase; the target
for the whole is at most 15 s on the project's 2-core machines.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from . import config as config_mod
from . import console, publish, registry_server, repackage, sample, smoke, tarball
from .toolchain import provision

TARGET_SECONDS = 15.0
T = TypeVar("T")


def _timed(figures: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    start = time.monotonic()
    try:
        return fn()
    finally:
        figures[name] = round(time.monotonic() - start, 2)


def measure(workdir: Path, cfg: config_mod.Config) -> dict[str, Any]:
    """One publish of the sample's first release, phase by phase; returns the figures."""
    spec = cfg.toolchains[0]
    tc = provision(spec, cfg.cache_dir)
    release = sample.DEFAULT_RELEASES[0]
    source = sample.write_tree(workdir / "source", release)
    built = smoke.build(source, tc, cfg)  # not measured: the build is the smoke's figure
    if built.status != smoke.PASS:
        raise SystemExit(f"error: the sample did not build: {built.reason}")
    figures: dict[str, float] = {}
    with registry_server.verdaccio(workdir / "verdaccio", tc, cache_dir=cfg.cache_dir) as reg:
        env_before = os.environ.get("NPM_CONFIG_USERCONFIG")
        os.environ["NPM_CONFIG_USERCONFIG"] = str(reg.npmrc)
        try:
            prov = repackage.Provenance(
                sample.SDK_NAME, release.sdk, sample.TAG.format(release.cli), "0" * 40
            )
            pkg = _timed(
                figures,
                "repackage",
                lambda: repackage.repackage(
                    built.sdk_dir,
                    built.dist_dir,
                    workdir / "package",
                    sdk_pkg=built.package_json,
                    source_root=source,
                    npm_name=cfg.npm_name,
                    version=release.sdk,
                    provenance=prov,
                ),
            )
            tgz = _timed(figures, "npm pack", lambda: publish.pack(tc, pkg.dir, workdir / "pack"))
            report = _timed(figures, "inspect tarball", lambda: tarball.inspect(tgz))
            _timed(
                figures,
                "consumer install + import (tarball)",
                lambda: publish.consumer_import(
                    tc, workdir / "consumer-tarball", pkg.name, [str(tgz)]
                ),
            )
            _timed(figures, "publint", lambda: publish.publint(tc, cfg.cache_dir, pkg.dir))
            _timed(
                figures,
                "registry lookup",
                lambda: publish.registry_integrity(tc, pkg.name, pkg.version, reg.url),
            )
            argv = publish.publish_argv(tgz, reg.url, provenance=False, dry_run=False)
            _timed(
                figures,
                "npm publish",
                lambda: tc.run([tc.npm, *argv[1:]], what="npm publish"),
            )
            scope = pkg.name.split("/")[0]
            _timed(
                figures,
                "consumer install + import (registry)",
                lambda: publish.consumer_import(
                    tc,
                    workdir / "consumer-registry",
                    pkg.name,
                    [f"--{scope}:registry={reg.url}", f"{pkg.name}@{pkg.version}"],
                ),
            )
        finally:
            if env_before is None:
                os.environ.pop("NPM_CONFIG_USERCONFIG", None)
            else:
                os.environ["NPM_CONFIG_USERCONFIG"] = env_before
    total = round(sum(figures.values()), 2)
    return {
        "kind": "bench-publish",
        "toolchain": spec.id,
        "tarball_bytes": report.size,
        "files": report.file_count,
        "phases": figures,
        "total": total,
        "target": TARGET_SECONDS,
        "within_target": total <= TARGET_SECONDS,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cfg = config_mod.load()
    with tempfile.TemporaryDirectory(prefix="sdkmirror-bench-publish-") as tmp:
        result = measure(Path(tmp), cfg)
    rows = [(name, f"{secs:.2f}s") for name, secs in result["phases"].items()]
    rows.append(("total (target <= 15 s)", f"{result['total']:.2f}s"))
    console.show(
        console.table(
            f"publish benchmark ({result['toolchain']}, {result['tarball_bytes']} bytes, "
            f"{result['files']} files)",
            ["phase", "time"],
            rows,
        )
    )
    if "--json" in args:
        console.out.print(json.dumps(result), markup=False)
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
