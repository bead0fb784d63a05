"""`invoke publish`: build a mirror tag, repackage, verify, publish, record. Dry run by default.

Each step either proves something about the package or refuses with one line; the only
irreversible step, the upload, comes after every check and is skipped in a dry run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import nodesemver

from . import config as config_mod
from . import console, failpoints, npmtool, patches, releases, repackage, tarball
from .errors import CommandError, MirrorError, RemoteError, UsageError, VerificationFailed
from .ledger import MirrorLedger, TagRecord
from .lock import exclusive
from .netlimits import NPM_READ_FLAGS, npm_reason
from .releases import Release, ReleaseLedger
from .taskutil import origin_url
from .toolchain import Toolchain

PUBLINT = "publint"
PUBLINT_VERSION = "0.3.25"
PROVENANCE_NPM = "11.5.1"  # the first npm that publishes with an OIDC token (trusted publishing)
PRERELEASE_TAG = "prerelease"  # for prereleases whose first identifier cannot name a dist-tag


class RegistryConflict(MirrorError):
    """The registry already holds this version with other content: npm versions are immutable."""

    exit_code = 10  # errors.ExitCode.REGISTRY_CONFLICT


class Action(Enum):
    PUBLISH = "publish"
    ALREADY_PUBLISHED = "already published (identical tarball): nothing to upload"


@dataclass(frozen=True)
class Request:
    source_tag: str | None = None  # optional with `source_ref`: the patch's base tag
    dry_run: bool = True
    registry: str | None = None
    version_override: str | None = None
    override_reason: str | None = None
    expected_version: str | None = None
    origin: str | None = None
    upstream: str | None = None
    source_ref: str | None = None  # a registered `patch-NAME` branch instead of the tag's commit
    report: str | None = None  # where to write the run's outcome as JSON

    def __post_init__(self) -> None:
        # A workflow passes every flag, empty when unset (`--expected-version ""` on a manual
        # dispatch): an empty value means "not given", never "must equal the empty string".
        for name in (
            "source_tag",
            "registry",
            "version_override",
            "override_reason",
            "expected_version",
            "origin",
            "upstream",
            "source_ref",
            "report",
        ):
            value = getattr(self, name)
            if isinstance(value, str) and not value.strip():
                object.__setattr__(self, name, None)


@dataclass
class Hooks:
    """Points where tests interfere with a run (e.g. stop the registry before the upload)."""

    before_upload: Callable[[], None] | None = None


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


@dataclass
class Outcome:
    plan: PublishPlan
    package_dir: Path | None = None
    report: tarball.TarballReport | None = None
    exports: list[str] = field(default_factory=list)
    published: bool = False
    recorded: bool = False


# --- pure decisions ---------------------------------------------------------------------------


def resolve_source(tag: str, ledger_tags: Mapping[str, TagRecord]) -> TagRecord:
    """The mirror ledger's record of `tag`; only a mirrored release can be published."""
    record = ledger_tags.get(tag)
    if record is None:
        known = sorted(ledger_tags)[-3:]
        hint = (
            f" (latest: {', '.join(known)})"
            if known
            else " (the ledger is empty: run `invoke sync`)"
        )
        raise UsageError(
            f"source tag {tag!r} is not a mirror tag in the ledger{hint}; "
            "pass a tag `invoke sync` has mirrored"
        )
    return record


def resolve_patch(cfg: config_mod.Config, req: Request) -> tuple[Request, patches.Patch | None]:
    """With `--source-ref patch-NAME`: the active registered patch, and the request completed
    from it (source tag = the patch's base, override reason = the registered reason)."""
    if req.source_ref is None:
        if req.source_tag is None:
            raise UsageError("pass --source-tag TAG (a mirror tag) or --source-ref patch-NAME")
        return req, None
    base = patches.for_source_ref(cfg, req.source_ref).base
    patch = patches.publish_source(
        cfg,
        req.source_ref,
        source_tag=req.source_tag or base,
        version_override=req.version_override,
    )
    reason = req.override_reason or f"local patch {patch.branch}: {patch.reason}"
    return replace(req, source_tag=patch.base, override_reason=reason), patch


def check_version_flags(
    version_override: str | None, override_reason: str | None, expected_version: str | None
) -> None:
    """Flag combinations that can be refused before anything is fetched or built."""
    for flag, value in (
        ("--version-override", version_override),
        ("--expected-version", expected_version),
    ):
        if value is not None and nodesemver.valid(value, loose=False) is None:
            raise UsageError(f"{flag} {value!r} is not an npm version; pass X.Y.Z")
    if override_reason and not version_override:
        raise UsageError("--override-reason only goes with --version-override V")


def choose_version(sdk_version: str, *, expected: str | None, override: str | None) -> str:
    """The npm version: the SDK's own unless overridden; fails closed on a mismatch."""
    if expected is not None and sdk_version != expected:
        raise UsageError(
            f"the SDK's package.json says {sdk_version}, but {expected} was expected; "
            "nothing was packed: tag the commit whose SDK version matches, or fix the expectation"
        )
    return override or sdk_version


def decide(
    local_integrity: str, remote_integrity: str | None, *, name: str, version: str
) -> Action:
    if remote_integrity is None:
        return Action.PUBLISH
    if remote_integrity == local_integrity:
        return Action.ALREADY_PUBLISHED
    raise RegistryConflict(
        f"{name}@{version} is already on the registry with other content "
        f"({remote_integrity[:24]}... != {local_integrity[:24]}...); npm versions are "
        "immutable: publish a new version with --version-override V [--override-reason TEXT]"
    )


def oidc_requested(env: Mapping[str, str]) -> bool:
    """In GitHub Actions with an id-token permission, publish with provenance."""
    return env.get("GITHUB_ACTIONS") == "true" and bool(env.get("ACTIONS_ID_TOKEN_REQUEST_URL"))


def choose_dist_tag(version: str, latest: str | None) -> str:
    """The dist-tag a version is published under, so `npm install NAME` keeps resolving to the
    newest release: a prerelease is tagged after its first identifier (`0.9.3-patch.1` ->
    `patch`), a release older than the registry's `latest` gets `previous`, else `latest`."""
    parsed = nodesemver.parse(version, loose=False)
    if parsed is None:
        raise UsageError(f"{version!r} is not an npm version; pass X.Y.Z")
    if parsed.prerelease:
        first = str(parsed.prerelease[0])
        # npm refuses a dist-tag that reads as a version range (`1`, `v2`, `x`).
        usable = nodesemver.valid_range(first, loose=False) is None
        return first if usable and first not in ("latest", "previous") else PRERELEASE_TAG
    if latest is not None and nodesemver.lt(version, latest, loose=False):
        return "previous"
    return "latest"


def publish_argv(
    tgz: Path, registry: str, *, provenance: bool, dry_run: bool, tag: str = "latest"
) -> list[str]:
    argv = ["npm", "publish", str(tgz), "--registry", registry, "--tag", tag]
    if provenance:
        argv.append("--provenance")
    if dry_run:
        argv.append("--dry-run")
    return argv


@dataclass(frozen=True)
class PublishPlan:
    """What a run does, computed from gathered facts; printed before anything irreversible."""

    source_tag: str
    commit: str
    origin: str
    registry: str
    npm_name: str
    sdk_version: str
    npm_version: str
    override_reason: str | None = None
    dry_run: bool = True
    provenance: bool = False
    action: Action | None = None
    source_ref: str | None = None
    dist_tag: str | None = None  # decided with the registry's dist-tags, next to `action`

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("source tag", self.source_tag),
            ("local patch", self.source_ref or ""),
            ("commit", self.commit),
            ("origin", self.origin),
            ("registry", self.registry),
            ("package", f"{self.npm_name}@{self.npm_version}"),
            ("dist-tag", self.dist_tag or ""),
            ("SDK version", self.sdk_version),
            ("override reason", self.override_reason or ""),
            ("provenance", "yes (OIDC)" if self.provenance else "no (user's npm credentials)"),
            (
                "upload",
                ("dry run: printed, not run" if self.dry_run else "yes")
                if self.action is not Action.ALREADY_PUBLISHED
                else self.action.value,
            ),
        ]

    def show(self, title: str = "publish plan") -> None:
        console.show(console.table(title, ["", ""], self.rows()))


def make_plan(
    req: Request,
    *,
    record: TagRecord,
    origin: str,
    registry: str,
    npm_name: str,
    sdk_version: str,
    env: Mapping[str, str],
    commit: str | None = None,
) -> PublishPlan:
    """Pure: the plan from the request and the gathered facts (the upload is decided later).

    `commit` is what was built: the tag's commit, or a patch branch's head."""
    check_version_flags(req.version_override, req.override_reason, req.expected_version)
    npm_version = choose_version(
        sdk_version, expected=req.expected_version, override=req.version_override
    )
    return PublishPlan(
        source_tag=record.name,
        commit=commit or record.commit,
        origin=origin,
        registry=registry if registry.endswith("/") else registry + "/",
        npm_name=npm_name,
        sdk_version=sdk_version,
        npm_version=npm_version,
        override_reason=req.override_reason,
        dry_run=req.dry_run,
        provenance=oidc_requested(env),
        source_ref=req.source_ref,
    )


# --- steps that touch the world ---------------------------------------------------------------


def default_registry(tc: Toolchain) -> str:
    """The registry the user's npm config names (no host written in this project)."""
    url = tc.run([tc.npm, "config", "get", "registry"]).stdout.strip()
    return url if url.endswith("/") else url + "/"


def primary_spec(cfg: config_mod.Config, source_dir: Path) -> config_mod.ToolchainSpec:
    """The first toolchain of the matrix that the source's own declarations support."""
    from .toolchain import read_declarations, support

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


def build_tag(
    cfg: config_mod.Config,
    record: TagRecord,
    origin: str,
    workdir: Path,
    *,
    expected_version: str | None = None,
    patch: patches.Patch | None = None,
) -> Built:
    """Materialize the mirror at the tag's commit (or at `patch`'s branch head, stacked on the
    tag) and build the SDK with the primary toolchain.

    `expected_version` is checked before the build: a mismatch fails before anything is packed.
    """
    from . import smoke, source, toolchain

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
    with console.step(f"building {cfg.sdk_package} at {record.name}"):
        outcome = smoke.build(source_dir, tc, cfg)
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


def patch_head(cfg: config_mod.Config, record: TagRecord, patch: patches.Patch, origin: str) -> str:
    """The patch branch's head on origin, once it is known to contain the base tag's commit."""
    from .gitio import WorkRepo, ls_remote

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
        what="npm pack",
    )
    try:
        filename = json.loads(res.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise MirrorError(f"npm pack printed no tarball name ({exc}); run it by hand") from exc
    # npm names scoped tarballs `scope-name-version.tgz`; older npm kept the `@`.
    return dest / Path(filename.replace("@", "").replace("/", "-")).name


def consumer_import(tc: Toolchain, workdir: Path, name: str, install_args: list[str]) -> list[str]:
    """Install into an empty consumer project with plain npm, `import()` it, list its exports."""
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
            *install_args,
        ],
        cwd=workdir,
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
    exports = json.loads(res.stdout or "[]")
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


def registry_integrity(tc: Toolchain, name: str, version: str, registry: str) -> str | None:
    """`dist.integrity` of name@version on the registry, or None when it is not there."""
    res = tc.run(
        [
            tc.npm,
            "view",
            f"{name}@{version}",
            "dist.integrity",
            "--json",
            "--registry",
            registry,
            "--prefer-online",
            *NPM_READ_FLAGS,
        ],
        check=False,
    )
    text = res.stdout.strip()
    if res.returncode == 0:
        return json.loads(text) if text else None
    if "E404" in res.output:
        return None
    raise RemoteError(f"cannot read {name}@{version} from {registry}: {npm_reason(res.output)}")


def registry_dist_tags(tc: Toolchain, name: str, registry: str) -> dict[str, str]:
    """The package's dist-tags on the registry (`{}` when the package is not there yet)."""
    res = tc.run(
        [
            tc.npm,
            "view",
            name,
            "dist-tags",
            "--json",
            "--registry",
            registry,
            "--prefer-online",
            *NPM_READ_FLAGS,
        ],
        check=False,
    )
    text = res.stdout.strip()
    if res.returncode == 0:
        tags = json.loads(text) if text else {}
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
    if "E404" in res.output:
        return {}
    raise RemoteError(
        f"cannot read the dist-tags of {name} from {registry}: {npm_reason(res.output)}"
    )


def provenance_problem(npm_version: str) -> str | None:
    """Why this npm cannot publish with provenance, or None when it can."""
    if nodesemver.gte(npm_version, PROVENANCE_NPM, loose=False):
        return None
    return (
        f"publishing with provenance (OIDC) needs npm >= {PROVENANCE_NPM}, the primary "
        f"toolchain has npm {npm_version}; put a newer Node first in [tool.sdkmirror] toolchains"
    )


def check_provenance_npm(tc: Toolchain) -> None:
    problem = provenance_problem(npmtool.npm_version(tc))
    if problem:
        raise MirrorError(problem)


# --- the run ----------------------------------------------------------------------------------


def run(
    req: Request,
    cfg: config_mod.Config | None = None,
    *,
    hooks: Hooks | None = None,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Steps 1-8 of a publish; a dry run stops before the upload and prints it."""
    cfg = cfg or config_mod.load(upstream=req.upstream)
    hooks = hooks or Hooks()
    env = os.environ if env is None else env
    req, patch = resolve_patch(cfg, req)
    check_version_flags(req.version_override, req.override_reason, req.expected_version)
    origin = origin_url(cfg, req.origin)
    record = resolve_source(str(req.source_tag), MirrorLedger(cfg.mirror_ledger).tags)
    provenance = oidc_requested(env)

    with exclusive(cfg.work_dir, cfg.lock_timeout, "publish"):
        workdir = cfg.work_dir / "publish" / record.commit[:12]
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        built = build_tag(
            cfg,
            record,
            origin,
            workdir,
            expected_version=req.expected_version,
            patch=patch,
        )
        tc = built.toolchain
        if provenance:
            check_provenance_npm(tc)
        registry = req.registry or default_registry(tc)
        outcome = Outcome(
            make_plan(
                req,
                record=record,
                origin=origin,
                registry=registry,
                npm_name=cfg.npm_name,
                sdk_version=str(built.sdk_pkg.get("version")),
                env=env,
                commit=built.commit,
            )
        )
        verify_and_publish(cfg, built, outcome.plan, outcome, workdir, hooks, patch)
    summary(outcome, workdir)
    if req.report:
        write_report(outcome, Path(req.report))
    return outcome


def outcome_report(outcome: Outcome) -> dict[str, Any]:
    """What a run did, for the steps after it (the GitHub Release names this version)."""
    p = outcome.plan
    return {
        "kind": "publish",
        "npm_name": p.npm_name,
        "npm_version": p.npm_version,
        "dist_tag": p.dist_tag,
        "upstream_tag": p.source_tag,
        "commit": p.commit,
        "source_ref": p.source_ref,
        "dry_run": p.dry_run,
        "published": outcome.published,
        "already_published": p.action is Action.ALREADY_PUBLISHED,
        "recorded": outcome.recorded,
        "integrity": outcome.report.integrity if outcome.report else None,
    }


def write_report(outcome: Outcome, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome_report(outcome), indent=2) + "\n", encoding="utf-8")
    console.info(f"publish report written to {path}")


def read_report(path: Path) -> dict[str, Any] | None:
    """A publish report, or None when there is none (a dry run uploads no report)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(
            f"{path} is not a publish report ({exc}); pass the file `invoke publish --report` wrote"
        ) from exc
    if not isinstance(data, dict) or data.get("kind") != "publish":
        raise UsageError(
            f"{path} is not a publish report; pass the file `invoke publish --report` wrote"
        )
    return data


def verify_and_publish(
    cfg: config_mod.Config,
    built: Built,
    plan: PublishPlan,
    outcome: Outcome,
    workdir: Path,
    hooks: Hooks,
    patch: patches.Patch | None = None,
) -> None:
    tc = built.toolchain
    prov = repackage.Provenance(
        upstream=str(built.sdk_pkg.get("name", cfg.sdk_package)),
        upstream_version=plan.sdk_version,
        release_tag=built.tag,
        commit=built.commit,
        source_ref=patch.branch if patch else None,
        patch_reason=patch.reason if patch else "",
        patch_upstream_pr=patch.upstream_pr if patch else "",
    )
    with console.step(f"repackaging as {plan.npm_name}@{plan.npm_version}"):
        pkg = repackage.repackage(
            built.sdk_dir,
            built.dist_dir,
            workdir / "package",
            sdk_pkg=built.sdk_pkg,
            source_root=built.source_dir,
            npm_name=plan.npm_name,
            version=plan.npm_version,
            provenance=prov,
        )
        outcome.package_dir = pkg.dir
    local = verify(cfg, tc, pkg, workdir, outcome)
    failpoints.reach("after-pack")  # fault-injection tests stop a run here

    remote = registry_integrity(tc, plan.npm_name, plan.npm_version, plan.registry)
    action = decide(local.integrity, remote, name=plan.npm_name, version=plan.npm_version)
    latest = registry_dist_tags(tc, plan.npm_name, plan.registry).get("latest")
    dist_tag = choose_dist_tag(plan.npm_version, latest)
    plan = outcome.plan = replace(plan, action=action, dist_tag=dist_tag)
    plan.show()

    real = publish_argv(
        local.path, plan.registry, provenance=plan.provenance, dry_run=False, tag=dist_tag
    )
    if action is Action.PUBLISH:
        if plan.dry_run:
            with console.step("npm publish --dry-run"):
                tc.run(
                    [
                        tc.npm,
                        *publish_argv(
                            local.path, plan.registry, provenance=False, dry_run=True, tag=dist_tag
                        )[1:],
                    ],
                    what="npm publish --dry-run",
                )
            console.manual(real, "publish for real (or rerun with --no-dry-run)")
            return
        if hooks.before_upload:
            hooks.before_upload()
        with console.step(f"publishing {plan.npm_name}@{plan.npm_version} to {plan.registry}"):
            try:
                tc.run([tc.npm, *real[1:]], echo=True, what="npm publish")
            except CommandError as exc:
                raise RemoteError(
                    f"upload to {plan.registry} failed ({exc.message}); the release ledger is "
                    "unchanged: rerun the same command once the registry is reachable"
                ) from exc
        outcome.published = True
        failpoints.reach("after-upload")
        after = registry_integrity(tc, plan.npm_name, plan.npm_version, plan.registry)
        if after != local.integrity:
            raise VerificationFailed(
                f"the registry reports {after!r} for {plan.npm_name}@{plan.npm_version}, "
                f"not the uploaded {local.integrity}; nothing recorded: inspect the registry"
            )
    elif plan.dry_run:
        console.info(f"{plan.npm_name}@{plan.npm_version} is already published, identical")
        return

    scope = plan.npm_name.split("/")[0] if plan.npm_name.startswith("@") else None
    route = [f"--{scope}:registry={plan.registry}"] if scope else ["--registry", plan.registry]
    with console.step(f"installing {plan.npm_name}@{plan.npm_version} from the registry"):
        consumer_import(
            tc,
            workdir / "consumer-registry",
            plan.npm_name,
            [*route, f"{plan.npm_name}@{plan.npm_version}"],
        )
    ledger = ReleaseLedger(cfg.release_ledger)
    outcome.recorded = ledger.add(
        Release(
            npm_version=plan.npm_version,
            npm_name=plan.npm_name,
            upstream_tag=built.tag,
            commit=built.commit,
            sdk_version=plan.sdk_version,
            integrity=local.integrity,
            published_at=datetime.now(UTC),
            registry=plan.registry,
            override_reason=plan.override_reason,
            source_ref=plan.source_ref,
        )
    )
    if outcome.recorded:
        ledger.save()
        render_release_notes(cfg)


def render_release_notes(cfg: config_mod.Config) -> None:
    """Regenerate RELEASES.md right after the ledger changed, so the two never drift.

    The upload already happened: a problem here (a badly named notes file) is a warning with
    the command that finishes the job, never a failed publish."""
    try:
        text = releases.render_file(cfg.release_ledger, cfg.notes_dir, cfg.root)
        changed = releases.sync_file(cfg.release_notes, text, check=False)
    except MirrorError as exc:
        console.warn(f"{cfg.release_notes.name} not regenerated: {exc.message}")
        console.manual(["invoke", "release.render"], "regenerate it once that is fixed")
        return
    state = "written" if changed else "already up to date"
    console.info(f"{cfg.release_notes.name} {state} from {cfg.release_ledger.name}")


def verify(
    cfg: config_mod.Config,
    tc: Toolchain,
    pkg: repackage.Package,
    workdir: Path,
    outcome: Outcome,
) -> tarball.TarballReport:
    """Pack, inspect the tarball, install it into an empty consumer and import it, publint."""
    with console.step("npm pack"):
        tgz = pack(tc, pkg.dir, workdir / "pack")
    report = tarball.inspect(tgz)
    outcome.report = report
    console.info(
        f"    {tgz.name}: {report.size} bytes, {report.file_count} files, "
        f"{report.integrity[:32]}..."
    )
    with console.step("installing the tarball into an empty consumer and importing it"):
        outcome.exports = consumer_import(tc, workdir / "consumer-tarball", pkg.name, [str(tgz)])
    with console.step("publint"):
        publint(tc, cfg.cache_dir, pkg.dir)
    return report


def summary(outcome: Outcome, workdir: Path) -> None:
    p = outcome.plan
    r = outcome.report
    if p.action is Action.ALREADY_PUBLISHED:
        result = "already published (no-op)"
    elif outcome.published:
        result = "published"
    else:
        result = "dry run: nothing uploaded"
    rows = [
        ("package", f"{p.npm_name}@{p.npm_version}"),
        (
            "from",
            f"{p.source_ref + ' on ' if p.source_ref else ''}{p.source_tag} ({p.commit[:12]})",
        ),
        ("tarball", f"{r.size} bytes, {r.file_count} files" if r else ""),
        ("integrity", r.integrity if r else ""),
        ("exports", ", ".join(outcome.exports)),
        ("result", result),
        ("release ledger", "recorded" if outcome.recorded else "unchanged"),
        ("work dir", str(workdir)),
    ]
    console.show(console.table("publish summary", ["", ""], rows))
