"""The publish stages as tasks: `publish.build`, `publish.upload`, `publish.check`.

Flags become one call into a stage each; a stage that needs Node gets the first toolchain of
`[tool.sdkmirror] toolchains` (upload and check build nothing, so the upstream's own
declarations do not matter to them).
"""

from __future__ import annotations

from pathlib import Path

from sdkmirror.core import config as config_mod
from sdkmirror.core import versions
from sdkmirror.core.errors import UsageError
from sdkmirror.infra import console, npm_registry
from sdkmirror.infra.toolchain import Toolchain, provision
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish import check as publish_check
from sdkmirror.release.publish import manifest as publish_manifest
from sdkmirror.release.publish import upload as publish_upload
from sdkmirror.release.publish.plan import Action, Request, check_registry


def _toolchain(cfg: config_mod.Config) -> Toolchain:
    spec = cfg.toolchains[0]
    with console.step(f"provisioning node {spec.node} and pnpm {spec.pnpm}"):
        return provision(spec, cfg.cache_dir)


def main_build(*, out: str, registry: str | None = None, **flags: str | None) -> None:
    req = Request(registry=registry, dry_run=True, **flags)
    cfg = config_mod.load(upstream=req.upstream)
    result = publish_build.build(cfg, req, Path(out))
    m = result.manifest
    console.result(
        console.table(
            "publish build",
            ["", ""],
            [
                ("package", f"{m.npm_name}@{m.npm_version}"),
                ("from", f"{m.upstream_tag} ({m.commit[:12]})"),
                ("dist-tag", m.dist_tag),
                ("tarball", str(result.tarball)),
                ("integrity", m.integrity),
                ("manifest", str(result.manifest_path)),
            ],
        )
    )
    console.manual(
        ["invoke", "publish.upload", "--tarball", str(result.tarball), "--integrity", m.integrity],
        "upload it (a dry run until --no-dry-run)",
    )


def main_upload(
    *,
    tarball: str,
    integrity: str | None,
    source_tag: str | None = None,
    version_override: str | None = None,
    origin: str | None = None,
    registry: str | None = None,
    dist_tag: str | None = None,
    dry_run: bool = True,
) -> None:
    cfg = config_mod.load()
    reg = check_registry(registry or None)
    if integrity:
        publish_upload.check_integrity(integrity)  # refused before anything is provisioned
    if not source_tag:
        # Our own build's manifest beside the tarball names the tag (never the sandbox's: it
        # cannot write there); the version is still planned from the tag itself.
        built = publish_manifest.read(Path(tarball).parent)
        source_tag = built.upstream_tag
        if built.npm_version != built.sdk_version and not version_override:
            version_override = built.npm_version  # the override the build recorded
    expected = publish_upload.plan_expected(
        cfg, source_tag, origin=origin, version_override=version_override or None
    )
    tc = _toolchain(cfg)
    result = publish_upload.upload(
        tc,
        Path(tarball),
        integrity or None,
        expected=expected,
        registry=reg or npm_registry.default_registry(tc),
        dist_tag=dist_tag or None,
        dry_run=dry_run,
    )
    state = (
        "uploaded"
        if result.published
        else "dry run: nothing uploaded"
        if result.dry_run and result.action is not Action.ALREADY_PUBLISHED
        else result.action.value
    )
    console.result(f"{result.npm_name}@{result.npm_version} ({result.dist_tag}): {state}")


def main_check(*, version: str, manifest: str | None = None, registry: str | None = None) -> None:
    problem = versions.npm_version_problem(version, "--version")
    if problem:
        raise UsageError(problem)
    cfg = config_mod.load()
    reg = check_registry(registry or None)
    built = publish_manifest.read(Path(manifest)) if manifest else None
    tc = _toolchain(cfg)
    publish_check.check(
        tc,
        version,
        npm_name=built.npm_name if built else cfg.npm_name,
        registry=reg or npm_registry.default_registry(tc),
        workdir=cfg.work_dir / "publish-check",
        manifest=built,
    )
