"""`invoke publish.build`: build a mirror tag, repackage, pack, verify; write the tarball and
its manifest. The stage that runs upstream code, so it holds no credential: every process it
starts runs in the sandbox (`sandbox`), and what it hands on is one tarball whose integrity
the manifest fixes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sdkmirror.core import config as config_mod
from sdkmirror.core.errors import MirrorError, UsageError, VerificationFailed
from sdkmirror.infra import console, npm_registry, npmtool, plainfiles
from sdkmirror.infra.gitio import origin_url
from sdkmirror.infra.lock import exclusive
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.mirror.ledger import MirrorLedger, TagRecord
from sdkmirror.mirror.patch_registry import Patch
from sdkmirror.release.declarations import bundle as declarations
from sdkmirror.release.declarations import consumer as typecheck
from sdkmirror.release.package import repackage, tarball
from sdkmirror.release.package.tarball import TarballReport
from sdkmirror.release.publish import verdicts
from sdkmirror.release.publish.manifest import NAME as MANIFEST_NAME
from sdkmirror.release.publish.manifest import Manifest
from sdkmirror.release.publish.manifest import write as write_manifest
from sdkmirror.release.publish.plan import (
    PublishPlan,
    Request,
    check_registry,
    check_version_flags,
    choose_dist_tag,
    choose_version,
    make_plan,
    resolve_patch,
    resolve_source,
)
from sdkmirror.smoke import build_cache

if TYPE_CHECKING:
    from sdkmirror.smoke.build import BuildOutcome
    from sdkmirror.smoke.build_key import BuildKey

PUBLINT = "publint"
PUBLINT_VERSION = "0.3.25"


@dataclass(frozen=True)
class Built:
    """A built SDK at a mirror tag: where its files are and what its package.json says."""

    tag: str
    commit: str
    source_dir: Path
    sdk_dir: Path
    dist_dir: Path
    sdk_pkg: dict[str, Any]
    toolchain: Any


def primary_spec(cfg: config_mod.Config, source_dir: Path) -> config_mod.ToolchainSpec:
    """The first toolchain of the matrix that the source's own declarations support."""
    from sdkmirror.infra.toolchain import read_declarations, support

    decl = read_declarations(source_dir)
    why: list[str] = []
    for spec in cfg.toolchains:
        ok, reason = support(spec, decl)
        if ok:
            return spec
        why.append(reason)
    raise MirrorError(
        f"no toolchain in [tool.sdkmirror] toolchains is supported by the upstream ({why[0]}); "
        "run `invoke toolchains.update --write`"
    )


def prepare(
    cfg: config_mod.Config,
    record: TagRecord,
    origin: str,
    workdir: Path,
    *,
    expected_version: str | None = None,
    patch: Patch | None = None,
) -> tuple[Path, str, str, Toolchain]:
    """The source tree exported into `workdir/source` and the primary toolchain provisioned:
    (source dir, commit, what was exported, toolchain). Nothing of the upstream runs yet."""
    from sdkmirror.infra import toolchain
    from sdkmirror.mirror import source

    source_dir = workdir / "source"
    if patch is None:
        ref, want, what = f"refs/tags/{record.name}", record.commit, record.name
    else:
        ref, want = f"refs/heads/{patch.branch}", patch_head(cfg, record, patch, origin)
        what = f"{patch.branch} on {record.name}"
    with console.step(f"materializing {what} ({want[:12]}) from {origin}"):
        commit = source.materialize(origin, ref, source_dir)
    if commit != want:
        raise VerificationFailed(
            f"{origin} gave commit {commit} for {ref}, expected {want}; "
            + (
                "the branch moved during the publish: rerun"
                if patch
                else "run `invoke verify` before publishing"
            )
        )
    pkg_path = source_dir / cfg.sdk_dir / "package.json"
    if not pkg_path.is_file():
        raise MirrorError(f"{record.name} has no {cfg.sdk_dir}/package.json; check sdk_dir")
    sdk_pkg = json.loads(pkg_path.read_text(encoding="utf-8"))
    if expected_version is not None:
        choose_version(str(sdk_pkg.get("version")), expected=expected_version, override=None)
    spec = primary_spec(cfg, source_dir)
    with console.step(f"provisioning node {spec.node} and pnpm {spec.pnpm}"):
        tc = toolchain.provision(spec, cfg.cache_dir)
    return source_dir, commit, what, tc


def tag_key(cfg: config_mod.Config, record: TagRecord, origin: str, workdir: Path) -> BuildKey:
    """The build cache key of the release build of `record`, without building it."""
    source_dir, _commit, _what, tc = prepare(cfg, record, origin, workdir)
    return release_key(cfg, source_dir, tc)


def build_tag(
    cfg: config_mod.Config,
    record: TagRecord,
    origin: str,
    workdir: Path,
    *,
    expected_version: str | None = None,
    patch: Patch | None = None,
    use_cache: bool = True,
) -> Built:
    """Materialize the mirror at the tag's commit (or at `patch`'s branch head, stacked on the
    tag) and build the SDK with the primary toolchain, its declarations bundled; through the
    build cache unless `use_cache` is false (a reproduction must build for real).

    `expected_version` is checked before the build: a mismatch fails before anything is packed.
    """
    from sdkmirror.smoke import build as smoke

    source_dir, commit, what, tc = prepare(
        cfg, record, origin, workdir, expected_version=expected_version, patch=patch
    )
    cache = build_cache.for_config(cfg) if use_cache else None
    with console.step(f"building {cfg.sdk_package} at {record.name}"):
        outcome = _build_release(cfg, source_dir, tc, cache)
    if not outcome.ok:
        _, next_step = smoke.verdict(outcome.category)
        raise VerificationFailed(
            f"the SDK at {what} does not build (smoke category {outcome.category}: "
            f"{outcome.reason}); nothing was packed or published. {next_step}"
        )
    return Built(
        tag=record.name,
        commit=commit,
        source_dir=source_dir,
        sdk_dir=Path(outcome.sdk_dir),
        dist_dir=Path(outcome.dist_dir),
        sdk_pkg=dict(outcome.package_json),
        toolchain=tc,
    )


# What the release stage adds to a build: the declaration bundling, with its pinned tools.
RELEASE_CODE = ("release/declarations/bundle.py",)


def release_key(cfg: config_mod.Config, source_dir: Path, tc: Toolchain) -> BuildKey:
    """The build cache key of a release build (the SDK built, its declarations bundled)."""
    from sdkmirror.smoke import build as smoke

    extra = {
        "rollup-plugin-dts": declarations.DTS_PLUGIN_VERSION,
        "rollup": declarations.ROLLUP_VERSION,
    }
    return smoke.cache_key(source_dir, tc, cfg, stage="release", extra=extra, code=RELEASE_CODE)


def _build_release(
    cfg: config_mod.Config, source_dir: Path, tc: Toolchain, cache: build_cache.BuildCache | None
) -> BuildOutcome:
    """The SDK built with its declarations bundled: from the cache's release entry, or built
    (the plain build itself from the cache's build entry, then installed) and bundled."""
    from sdkmirror.smoke import build as smoke

    if cache is None:
        outcome = smoke.build(source_dir, tc, cfg)
        if outcome.ok:
            _bundle(cfg, tc, outcome)
        return outcome
    key = release_key(cfg, source_dir, tc)
    with cache.hold(key):
        hit = smoke.restore(cache, key, source_dir, tc, cfg)
        if hit is not None:
            return hit
        outcome = smoke.build_cached(source_dir, tc, cfg, cache, install_on_hit=True)
        if outcome.ok:
            _bundle(cfg, tc, outcome)
            smoke.store(cache, key, outcome, cfg)
        return outcome


def _bundle(cfg: config_mod.Config, tc: Toolchain, outcome: BuildOutcome) -> None:
    deps = declarations.runtime_dependencies(outcome.package_json)
    declarations.bundle(tc, cfg.cache_dir, Path(outcome.sdk_dir), Path(outcome.dist_dir), deps)


def patch_head(cfg: config_mod.Config, record: TagRecord, patch: Patch, origin: str) -> str:
    """The patch branch's head on origin, once it is known to contain the base tag's commit."""
    from sdkmirror.infra.gitio import WorkRepo, ls_remote

    head = ls_remote(origin, [f"refs/heads/{patch.branch}"], name="origin").head(patch.branch)
    if head is None:
        raise UsageError(
            f"origin has no branch {patch.branch}, yet the registry lists it as active; push "
            f"the branch, or retire the patch with `invoke patch.retire {patch.name}`"
        )
    repo = WorkRepo(cfg.work_repo)
    with console.step(f"fetching {patch.branch} and {record.name} from origin"):
        repo.fetch(
            origin,
            [
                f"+refs/heads/{patch.branch}:refs/sdkmirror/publish-patch",
                f"+refs/tags/{record.name}:refs/sdkmirror/publish-source",
            ],
            name="origin",
        )
    head = repo.git("rev-parse", "refs/sdkmirror/publish-patch^{commit}").strip()
    if not repo.is_ancestor(record.commit, head):
        raise VerificationFailed(
            f"{patch.branch} ({head[:12]}) does not contain {record.name}'s commit "
            f"({record.commit[:12]}); rebase the branch onto {record.name} and push it"
        )
    return head


def pack(tc: Toolchain, package_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    res = tc.run(
        [tc.npm, "pack", "--json", "--pack-destination", dest, "--ignore-scripts"],
        cwd=package_dir,
        writable=[dest],
        what="npm pack",
    )
    try:
        filename = json.loads(res.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise MirrorError(f"npm pack printed no tarball name ({exc}); run it by hand") from exc
    # npm names scoped tarballs `scope-name-version.tgz`; older npm kept the `@`.
    return dest / Path(filename.replace("@", "").replace("/", "-")).name


def consumer_import(tc: Toolchain, workdir: Path, name: str, install_args: list[str]) -> list[str]:
    """Install into an empty consumer project with plain npm, `import()` it, list its exports.

    Sandboxed like every toolchain command, and with `--ignore-scripts`: no install script of
    the package or of any dependency runs; only the import executes the package's code."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "package.json").write_text(
        json.dumps(
            {"name": "sdkmirror-consumer", "version": "0.0.0", "private": True, "type": "module"}
        )
    )
    tc.run(
        [
            tc.npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--prefer-online",
            "--ignore-scripts",
            *install_args,
        ],
        cwd=workdir,
        network=True,
        what=f"installing {name} into an empty consumer",
    )
    script = (
        f"const m = await import({json.dumps(name)});"
        "process.stdout.write(JSON.stringify(Object.keys(m).sort()));"
    )
    res = tc.run(
        [tc.node, "--input-type=module", "-e", script],
        cwd=workdir,
        what=f"importing {name} in a consumer",
    )
    exports: list[str] = json.loads(res.stdout or "[]")
    if not exports:
        raise VerificationFailed(f"{name} imports but exports nothing; the bundle is broken")
    return exports


def publint(tc: Toolchain, cache_dir: Path, package_dir: Path) -> None:
    home = npmtool.install(cache_dir, PUBLINT, PUBLINT_VERSION, tc)
    script = npmtool.bin_script(home, PUBLINT)
    # `--pack false`: lint the directory just packed; publint's own packing looks for npm
    # beside the node binary, where a wheel-provided Node has only a wrapper.
    res = tc.run(
        [tc.node, script, package_dir, "--strict", "--pack", "false"],
        cwd=package_dir,
        check=False,
    )
    if res.returncode != 0:
        lines = [ln.strip() for ln in res.output.splitlines() if ln.strip()]
        detail = "; ".join(lines[-3:])[:400]
        raise VerificationFailed(f"publint rejects the package: {detail}")


class Checked(Protocol):
    """Where `verify` leaves what it found (the maintainer's run outcome, or a build's)."""

    report: tarball.TarballReport | None
    exports: list[str]


def verify(
    cfg: config_mod.Config,
    tc: Toolchain,
    pkg: repackage.Package,
    workdir: Path,
    outcome: Checked,
    *,
    typecheck_consumer: bool = True,
) -> tarball.TarballReport:
    """Pack, inspect the tarball, install it into an empty consumer and import it, publint;
    then the strict consumer type-check, unless the caller runs it apart (the sweep).

    Bytes that passed these checks with the same tools before are not checked again
    (`verdicts`; `invoke cache.prune --all` forgets them)."""
    with console.step("npm pack"):
        tgz = pack(tc, pkg.dir, workdir / "pack")
    report = tarball.inspect(tgz)
    outcome.report = report
    console.info(
        f"    {tgz.name}: {report.size} bytes, {report.file_count} files, "
        f"{report.integrity[:32]}..."
    )
    checks = list(CHECKS) + (list(CONSUMER_CHECKS) if typecheck_consumer else [])
    passed = passed_before(cfg, tc, report.integrity, checks)
    if passed is not None:
        outcome.exports = list(passed.exports)
        console.info(
            f"    {', '.join(checks)}: passed for these bytes at {passed.when}; not run again"
        )
        return report
    with console.step("installing the tarball into an empty consumer and importing it"):
        outcome.exports = consumer_import(tc, workdir / "consumer-tarball", pkg.name, [str(tgz)])
    with console.step("publint"):
        publint(tc, cfg.cache_dir, pkg.dir)
    if typecheck_consumer:
        consumer_typecheck(cfg, tc, tgz, pkg.name, workdir)
    record_pass(cfg, tc, report.integrity, checks, outcome.exports)
    return report


# The checks `verify` runs, as a verdict names them; and the pins of the tools that run them.
CHECKS = ("consumer import", "publint")
CONSUMER_CHECKS = ("tsc nodenext", "tsc bundler", "attw")
ALL_CHECKS = (*CHECKS, *CONSUMER_CHECKS)


def passed_before(
    cfg: config_mod.Config, tc: Toolchain, integrity: str, checks: Sequence[str]
) -> verdicts.Verdict | None:
    """A recorded pass of `checks` on these bytes with these tools; a pass of every check
    (what `publish.build` records) covers any part of them."""
    store = verdicts.Verdicts.of(build_cache.for_config(cfg))
    if store is None:
        return None
    tools = check_tools(tc)
    for covering in dict.fromkeys((ALL_CHECKS, tuple(checks))):  # each key looked up once
        if set(checks) <= set(covering):
            found = store.passed(verdicts.Verdicts.key(integrity, covering, tools), integrity)
            if found is not None:
                return found
    return None


def record_pass(
    cfg: config_mod.Config,
    tc: Toolchain,
    integrity: str,
    checks: Sequence[str],
    exports: Sequence[str],
) -> None:
    """Remember that these bytes passed `checks` (nothing without a build cache)."""
    store = verdicts.Verdicts.of(build_cache.for_config(cfg))
    if store is not None:
        key = verdicts.Verdicts.key(integrity, checks, check_tools(tc))
        store.record(key, integrity, checks, exports)


def check_tools(tc: Toolchain) -> dict[str, str]:
    major = int(str(tc.spec.node).split(".")[0])
    return {
        "node": str(tc.spec.node),
        "pnpm": str(tc.spec.pnpm),
        "publint": PUBLINT_VERSION,
        "attw": typecheck.ATTW_VERSION,
        "attw-profile": typecheck.ATTW_PROFILE,
        "typescript": npmtool.TYPESCRIPT_VERSION,
        "@types/node": typecheck.TYPES_NODE.get(major, "none"),
    }


def consumer_typecheck(
    cfg: config_mod.Config, tc: Toolchain, tgz: Path, name: str, workdir: Path
) -> None:
    """The strict consumer type-check of the tarball (nodenext and bundler) and attw."""
    with console.step("strict consumer type-check (nodenext, bundler) and attw"):
        typecheck.check(tc, cfg.cache_dir, tgz, name, workdir / "consumer-types")


# --- the stage --------------------------------------------------------------------------------


@dataclass
class Checks:
    report: tarball.TarballReport | None = None
    exports: list[str] = field(default_factory=list)


@dataclass
class BuildResult:
    """What `build` made: the tarball and manifest in `out`, and how it got there."""

    plan: PublishPlan
    built: Built
    package: repackage.Package
    manifest: Manifest
    tarball: Path
    manifest_path: Path
    report: TarballReport | None = None
    exports: list[str] = field(default_factory=list)


def build(
    cfg: config_mod.Config,
    req: Request,
    out: Path,
    *,
    registry: str | None = None,
    use_cache: bool = True,
) -> BuildResult:
    """Steps up to the tarball: build, repackage, pack, verify, then `out/<tarball>.tgz` and
    `out/manifest.json`. Reads the registry only for the dist-tag; uploads nothing. A build
    from the cache (`use_cache`) is checked like a fresh one; bytes that passed the same checks
    before are not checked again (`verdicts`)."""
    req, patch = resolve_patch(cfg, req)
    check_version_flags(req.version_override, req.override_reason, req.expected_version)
    wanted_registry = check_registry(registry or req.registry)
    origin = origin_url(cfg, req.origin)
    record = resolve_source(str(req.source_tag), MirrorLedger(cfg.mirror_ledger).tags)
    with exclusive(cfg.work_dir, cfg.lock_timeout, "publish"):
        workdir = cfg.work_dir / "publish" / record.commit[:12]
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            built = build_tag(
                cfg,
                record,
                origin,
                workdir,
                expected_version=req.expected_version,
                patch=patch,
                use_cache=use_cache,
            )
        except declarations.DeclarationsFailed:
            shutil.rmtree(workdir, ignore_errors=True)  # nothing half-built stays behind
            raise
        tc = built.toolchain
        reg = wanted_registry or npm_registry.default_registry(tc)
        plan = make_plan(
            req,
            record=record,
            origin=origin,
            registry=reg,
            npm_name=cfg.npm_name,
            sdk_version=str(built.sdk_pkg.get("version")),
            env={},
            commit=built.commit,
        )
        plan = replace(plan, dropped=repackage.dropped_fields(built.sdk_pkg))
        pkg = package(
            cfg, built, workdir, npm_name=plan.npm_name, version=plan.npm_version, patch=patch
        )
        checks = Checks()
        report = verify(cfg, tc, pkg, workdir, checks)
        latest = npm_registry.dist_tags(plan.npm_name, plan.registry).get("latest")
        dist_tag = choose_dist_tag(plan.npm_version, latest)
        manifest = Manifest(
            npm_name=plan.npm_name,
            npm_version=plan.npm_version,
            sdk_version=plan.sdk_version,
            upstream_tag=plan.source_tag,
            commit=plan.commit,
            source_ref=plan.source_ref,
            override_reason=plan.override_reason,
            tarball=report.path.name,
            integrity=report.integrity,
            shasum=report.shasum,
            dist_tag=dist_tag,
            toolchain={"node": tc.spec.node, "pnpm": tc.spec.pnpm},
        )
        tgz, manifest_path = deliver(report.path, manifest, out)
    console.info(f"built {tgz} and {manifest_path}")
    return BuildResult(plan, built, pkg, manifest, tgz, manifest_path, report, checks.exports)


def package(
    cfg: config_mod.Config,
    built: Built,
    workdir: Path,
    *,
    npm_name: str,
    version: str,
    patch: Patch | None = None,
) -> repackage.Package:
    """`npm_name@version` from the built SDK (dist copied as plain files)."""
    prov = repackage.Provenance(
        upstream=str(built.sdk_pkg.get("name", cfg.sdk_package)),
        upstream_version=str(built.sdk_pkg.get("version")),
        release_tag=built.tag,
        commit=built.commit,
        source_ref=patch.branch if patch else None,
        patch_reason=patch.reason if patch else "",
        patch_upstream_pr=patch.upstream_pr if patch else "",
    )
    with console.step(f"repackaging as {npm_name}@{version}"):
        return repackage.repackage(
            built.sdk_dir,
            built.dist_dir,
            workdir / "package",
            sdk_pkg=built.sdk_pkg,
            source_root=built.source_dir,
            npm_name=npm_name,
            version=version,
            provenance=prov,
            max_bytes=cfg.max_package_bytes,
        )


def deliver(tgz: Path, manifest: Manifest, out: Path) -> tuple[Path, Path]:
    """Copy the tarball into `out`, then write the manifest (last, atomically): a manifest
    present means its tarball is complete."""
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() == tgz.parent.resolve():
        raise UsageError(f"--out {out} is the pack directory itself; pass another directory")
    target = out / manifest.tarball
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    tmp = out / f".{manifest.tarball}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.write_bytes(plainfiles.read_plain(tgz, max_bytes=1 << 31))
    tmp.replace(target)
    if tarball.integrity(target) != manifest.integrity:
        raise VerificationFailed(f"{target} changed while it was copied; build again")
    return target, write_manifest(out / MANIFEST_NAME, manifest)
