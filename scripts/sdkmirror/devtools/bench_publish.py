"""Benchmark: the publish path as its three stages (build, upload, check) against the raw
commands a person would type (pnpm install + build, npm pack, npm publish, npm install +
import), on the embedded sample and a loopback Verdaccio.

`python -m sdkmirror.devtools.bench_publish` (or `nox -s bench -- publish`) prints a row per stage;
the target is that our overhead over the raw commands (every check the raw path skips:
plain-file copy, tarball policy, two consumer installs, publint, registry reads) stays
within 15 s on the project's 2-core machines.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sdkmirror.core import config as config_mod
from sdkmirror.devtools import registry_server, sample
from sdkmirror.infra import console, gitio, npm_registry, sandbox
from sdkmirror.infra.toolchain import Toolchain, provision
from sdkmirror.mirror import source
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.release.declarations import bundle as declarations
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish import check as publish_check
from sdkmirror.release.publish import upload as publish_upload
from sdkmirror.release.publish.plan import Request

TARGET_SECONDS = 15.0
RAW_NAME = "sdkmirror-bench-raw"
T = TypeVar("T")


def _timed(figures: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    start = time.monotonic()
    try:
        return fn()
    finally:
        figures[name] = round(time.monotonic() - start, 2)


def _mirror(workdir: Path, project: config_mod.Config) -> tuple[config_mod.Config, str]:
    """A mirror origin holding the sample's tags, and a config whose ledger lists them."""
    up = sample.create_upstream(workdir / "upstream.git")
    origin = workdir / "origin.git"
    gitio.run("clone", "-q", "--bare", up.url, origin)
    cfg = config_mod.from_mapping(
        {
            "upstream": up.url,
            "work_dir": str(workdir / "state"),
            "pnpm_store": str(project.pnpm_store.resolve()),
        },
        root=workdir,
    )
    ledger = MirrorLedger(cfg.mirror_ledger)
    out = gitio.run(
        "for-each-ref",
        "--format=%(refname:short) %(objectname) %(*objectname)",
        "refs/tags",
        cwd=origin,
    )
    for line in out.splitlines():
        name, obj, commit = line.split()
        ledger.add_tag(name, obj, commit)
    ledger.save()
    return cfg, str(origin)


def _raw(
    tc: Toolchain, cfg: config_mod.Config, origin: str, tag: str, reg: str, workdir: Path
) -> dict[str, float]:
    """The same path with the raw commands only, timed stage by stage."""
    figures: dict[str, float] = {}
    tree = workdir / "raw-source"
    pkg_dir = workdir / "raw-package"

    def build() -> Path:
        source.materialize(origin, f"refs/tags/{tag}", tree)
        store = ["--store-dir", str(cfg.pnpm_store)]
        sdk = cfg.sdk_package
        tc.run([tc.pnpm, "install", "--frozen-lockfile", "--filter", f"{sdk}...", *store], cwd=tree)
        _timed(figures, "pnpm build", lambda: tc.run([tc.pnpm, "--filter", sdk, "build"], cwd=tree))
        sdk_dir = tree / cfg.sdk_dir
        # The raw baseline copies links as links (npm pack then refuses them): never through.
        shutil.copytree(sdk_dir / "dist", pkg_dir / "dist", symlinks=True)
        meta = json.loads((sdk_dir / "package.json").read_text(encoding="utf-8"))
        exports = meta["publishConfig"]["exports"]
        data = {"name": RAW_NAME, "version": meta["version"], "type": "module", "exports": exports}
        # What a person publishing by hand keeps: the runtime dependencies the bundle imports.
        data["dependencies"] = meta.get("dependencies") or {}
        (pkg_dir / "package.json").write_text(json.dumps(data), encoding="utf-8")
        return publish_build.pack(tc, pkg_dir, workdir / "raw-pack")

    tgz = _timed(figures, "build", build)
    _timed(
        figures,
        "upload",
        lambda: npm_registry.run(tc, ["publish", str(tgz), "--registry", reg]),
    )

    def check() -> None:
        consumer = workdir / "raw-consumer"
        consumer.mkdir()
        (consumer / "package.json").write_text('{"private": true, "type": "module"}')
        version = json.loads((pkg_dir / "package.json").read_text())["version"]
        tc.run([tc.npm, "install", "--registry", reg, f"{RAW_NAME}@{version}"], cwd=consumer)
        tc.run([tc.node, "--input-type=module", "-e", f"await import('{RAW_NAME}')"], cwd=consumer)

    _timed(figures, "check", check)
    return figures


def declaration_stage(tc: Toolchain, cfg: config_mod.Config, workdir: Path) -> dict[str, float]:
    """Our declaration stage (compiler emit of the private packages, then the bundle) on the
    tree the raw baseline built, after its tarball was packed: seconds, whole and emit."""
    sdk_dir = workdir / "raw-source" / cfg.sdk_dir
    meta = json.loads((sdk_dir / "package.json").read_text(encoding="utf-8"))
    deps = declarations.runtime_dependencies(meta)
    result = declarations.bundle(tc, cfg.cache_dir, sdk_dir, sdk_dir / "dist", deps)
    emit = round(sum(e.seconds for e in result.emitted), 2)
    return {"seconds": result.seconds, "emit": emit, "packages": float(len(result.emitted))}


def measure(workdir: Path, project: config_mod.Config) -> dict[str, Any]:
    """One publish of the sample's first release, stage by stage, ours and raw."""
    cfg, origin = _mirror(workdir, project)
    spec = cfg.toolchains[0]
    tc = provision(spec, cfg.cache_dir)
    release = sample.DEFAULT_RELEASES[0]
    tag = sample.TAG.format(release.cli)
    ours: dict[str, float] = {}
    with registry_server.verdaccio(workdir / "verdaccio", tc, cache_dir=cfg.cache_dir) as reg:
        env_before = os.environ.get("NPM_CONFIG_USERCONFIG")
        os.environ["NPM_CONFIG_USERCONFIG"] = str(reg.npmrc)  # the publisher's npm config
        os.environ["NODE_AUTH_TOKEN"] = reg.token
        try:
            with sandbox.unsandboxed():  # the raw commands as typed by hand: no bwrap
                raw = _raw(tc, cfg, origin, tag, reg.url, workdir)
            decl = declaration_stage(tc, cfg, workdir)
            req = Request(source_tag=tag, origin=origin, registry=reg.url)
            built = _timed(ours, "build", lambda: publish_build.build(cfg, req, workdir / "out"))
            m = built.manifest
            _timed(
                ours,
                "upload",
                lambda: publish_upload.upload(
                    tc,
                    built.tarball,
                    m.integrity,
                    expected=publish_upload.Expected(m.npm_name, m.npm_version),
                    registry=reg.url,
                    dist_tag=m.dist_tag,  # as the manifest carries it to the upload
                    dry_run=False,
                ),
            )
            _timed(
                ours,
                "check",
                lambda: publish_check.check(
                    tc,
                    m.npm_version,
                    npm_name=m.npm_name,
                    registry=reg.url,
                    workdir=workdir / "check",
                    manifest=m,
                ),
            )
        finally:
            os.environ.pop("NODE_AUTH_TOKEN", None)
            if env_before is None:
                os.environ.pop("NPM_CONFIG_USERCONFIG", None)
            else:
                os.environ["NPM_CONFIG_USERCONFIG"] = env_before
    overhead = round(sum(ours.values()) - sum(raw.values()), 2)
    return {
        "kind": "bench-publish",
        "toolchain": spec.id,
        "tarball_bytes": built.report.size if built.report else 0,
        "files": built.report.file_count if built.report else 0,
        "stages": {k: {"ours": ours[k], "raw": raw[k]} for k in ("build", "upload", "check")},
        # Measured, not asserted: the declaration stage next to upstream's own `pnpm build`.
        "declarations": {**decl, "pnpm_build": raw["pnpm build"]},
        "total": round(sum(ours.values()), 2),
        "raw_total": round(sum(raw.values()), 2),
        "overhead": overhead,
        "target": TARGET_SECONDS,
        "within_target": overhead <= TARGET_SECONDS,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    project = config_mod.load()
    with tempfile.TemporaryDirectory(prefix="sdkmirror-bench-publish-") as tmp:
        result = measure(Path(tmp), project)
    rows = [
        (name, f"{f['ours']:.2f}s", f"{f['raw']:.2f}s", f"{f['ours'] / max(f['raw'], 0.01):.2f}")
        for name, f in result["stages"].items()
    ]
    rows.append(
        (
            f"total (overhead target <= {TARGET_SECONDS:g} s)",
            f"{result['total']:.2f}s",
            f"{result['raw_total']:.2f}s",
            f"{result['overhead']:+.2f}s",
        )
    )
    d = result["declarations"]
    rows.append(
        (
            f"declaration stage (emit {d['emit']:.2f}s, {d['packages']:.0f} package(s))"
            " vs upstream's pnpm build",
            f"{d['seconds']:.2f}s",
            f"{d['pnpm_build']:.2f}s",
            f"{d['seconds'] / max(d['pnpm_build'], 0.01):.2f}",
        )
    )
    console.show(
        console.table(
            f"publish benchmark ({result['toolchain']}, {result['tarball_bytes']} bytes, "
            f"{result['files']} files)",
            ["stage", "ours", "raw commands", "ratio"],
            rows,
        )
    )
    if "--json" in args:
        console.out.print(json.dumps(result), markup=False)
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
