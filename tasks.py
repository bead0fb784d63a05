"""Mirror and release operations. Each task maps flags onto one call into `sdkmirror`.

Run `invoke --list` for the tasks and `invoke --help TASK` for a task's flags.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))

from invoke import Collection, main, task
from invoke.exceptions import Exit, ParseError

from sdkmirror.core.errors import ExitCode
from sdkmirror.ops import boundary


def guarded(fn):
    """Every task ends in one `error:` line and a code from `ExitCode`, never a traceback."""
    return boundary.guarded(fn, lambda message, code: Exit(message, code=int(code)))


def _parse_tasks_exit_2(parse_tasks=main.program.parse_tasks):
    # Invoke's own usage errors (unknown flag, missing flag): one `error:` line, exit 2.
    try:
        parse_tasks()
    except ParseError as exc:
        raise Exit(boundary.invoke_usage(str(exc)), code=int(ExitCode.USAGE)) from None


main.program.parse_tasks = _parse_tasks_exit_2
ns = Collection()

REMOTE_HELP = {
    "upstream": "upstream git URL (default: [tool.sdkmirror] upstream)",
    "origin": "mirror git URL (default: this checkout's `origin` remote)",
}


# --- mirror: sync and verify ----------------------------------------------------------------


@task(
    help={
        **REMOTE_HELP,
        "dry_run": "print the plan; push nothing and write no ledger",
        "report": "write the run's report as JSON to this path",
        "json": "print the run's report as JSON (schema 1) on stdout (the table goes to stderr)",
    }
)
@guarded
def sync(c, upstream=None, origin=None, dry_run=False, report=None, json=False):
    """Fast-forward the mirror branch and mirror new release tags, atomically."""
    from sdkmirror.mirror import sync as sync_mod

    sync_mod.main(upstream=upstream, origin=origin, dry_run=dry_run, report=report, json_out=json)


@task(
    help={
        **REMOTE_HELP,
        "upstream": "upstream git URL: also list its release tags not mirrored yet (information)",
        "json": "print the audit as JSON (schema 1) on stdout (the tables go to stderr)",
        "repair": "restore mirror tags moved or deleted on origin from the ledger (plan first)",
        "dry_run": "with --repair: print the plan only (default); --no-dry-run pushes it",
    }
)
@guarded
def verify(c, origin=None, upstream=None, json=False, repair=False, dry_run=True):
    """Audit the mirror against the ledger: tags unmoved, release branches on their tags."""
    from sdkmirror.mirror import verify as verify_mod

    verify_mod.main(origin=origin, upstream=upstream, json_out=json, repair=repair, dry_run=dry_run)


ns.add_task(sync)
ns.add_task(verify)

# --- toolchains -------------------------------------------------------------------------------


@task(
    help={
        "ref": "upstream branch, tag or commit to read (default: [tool.sdkmirror] upstream_branch)",
        "upstream": REMOTE_HELP["upstream"],
        "write": "rewrite [[tool.sdkmirror.toolchains]] in pyproject.toml (default: diff only)",
    }
)
@guarded
def toolchains_update(c, ref=None, upstream=None, write=False):
    """Propose the smoke matrix from the upstream's engines, packageManager and .nvmrc."""
    from sdkmirror.smoke import matrix

    matrix.main(upstream=upstream, ref=ref, write=write)


ns.add_collection(Collection("toolchains", update=toolchains_update))

# --- publish and release ----------------------------------------------------------------------


BUILD_HELP = {
    **REMOTE_HELP,
    "source_tag": "mirror tag to publish, e.g. @moonshot-ai/kimi-code@0.14.2",
    "source_ref": "publish a registered patch branch patch-NAME (stacked on its base tag; "
    "needs --version-override X.Y.Z-patch.N)",
    "registry": "npm registry URL http(s)://host[:port]/[path] (default: the npm config's)",
    "version_override": "publish as this npm version instead of the SDK's own",
    "override_reason": "why the override (recorded in the release ledger)",
    "expected_version": "fail before packing unless the SDK's version is this",
    "no_sandbox": "run upstream code without bubblewrap (refused while credentials are reachable)",
}


def _sandbox(no_sandbox):
    """Refuse (exit 9) to run upstream code without a working bwrap, unless --no-sandbox."""
    from sdkmirror.infra import sandbox

    sandbox.require(no_sandbox=no_sandbox)


@task(
    default=True,
    help={
        **BUILD_HELP,
        "dry_run": "do everything but the upload and print it (default; --no-dry-run publishes)",
        "report": "write what the run did as JSON to this path (for `github.release`)",
    },
)
@guarded
def publish(
    c,
    source_tag=None,
    source_ref=None,
    dry_run=True,
    registry=None,
    version_override=None,
    override_reason=None,
    expected_version=None,
    upstream=None,
    origin=None,
    report=None,
    no_sandbox=False,
):
    """Build a mirror tag's (or patch branch's) SDK, then upload and check it; record it."""
    from sdkmirror.core.reports import check_writable
    from sdkmirror.release.publish import pipeline as publish_mod

    check_writable(report)  # an unwritable --report fails before anything is uploaded
    _sandbox(no_sandbox)
    publish_mod.run(
        publish_mod.Request(
            source_tag=source_tag,
            source_ref=source_ref,
            dry_run=dry_run,
            registry=registry,
            version_override=version_override,
            override_reason=override_reason,
            expected_version=expected_version,
            upstream=upstream,
            origin=origin,
            report=report,
        )
    )


@task(name="build", help={**BUILD_HELP, "out": "directory for <tarball>.tgz and manifest.json"})
@guarded
def publish_build(
    c,
    out,
    source_tag=None,
    source_ref=None,
    registry=None,
    version_override=None,
    override_reason=None,
    expected_version=None,
    upstream=None,
    origin=None,
    no_sandbox=False,
):
    """Build, repackage, pack and verify; write the tarball and its manifest. Uploads nothing."""
    from sdkmirror.release.publish import stages as publish_stages

    _sandbox(no_sandbox)
    publish_stages.main_build(
        out=out,
        source_tag=source_tag,
        source_ref=source_ref,
        registry=registry,
        version_override=version_override,
        override_reason=override_reason,
        expected_version=expected_version,
        upstream=upstream,
        origin=origin,
    )


@task(
    name="upload",
    help={
        "tarball": "the .tgz publish.build wrote",
        "integrity": "the sha512-... integrity the build reported (optional: the upload checks "
        "the bytes themselves)",
        "source_tag": "the mirror tag it was built from: the version is planned from it "
        "(default: the one the build's manifest.json beside the tarball names)",
        "version_override": "the version recorded for it instead of the SDK's own",
        "origin": REMOTE_HELP["origin"],
        "registry": BUILD_HELP["registry"],
        "dist_tag": "dist-tag to publish under (default: chosen from the registry's latest)",
        "dry_run": "check everything, run `npm publish --dry-run` (--no-dry-run uploads)",
    },
)
@guarded
def publish_upload(
    c,
    tarball,
    source_tag=None,
    integrity=None,
    version_override=None,
    origin=None,
    registry=None,
    dist_tag=None,
    dry_run=True,
):
    """Copy the tarball privately, check its bytes, then run nothing but `npm publish` of it."""
    from sdkmirror.release.publish import stages as publish_stages

    publish_stages.main_upload(
        tarball=tarball,
        integrity=integrity,
        source_tag=source_tag,
        version_override=version_override,
        origin=origin,
        registry=registry,
        dist_tag=dist_tag,
        dry_run=dry_run,
    )


@task(
    name="check",
    help={
        "version": "the published npm version",
        "manifest": "manifest.json of the build: the registry's integrity must be its",
        "registry": BUILD_HELP["registry"],
    },
)
@guarded
def publish_check(c, version, manifest=None, registry=None):
    """Install the published version into an empty consumer (no scripts), import it."""
    from sdkmirror.release.publish import stages as publish_stages

    publish_stages.main_check(version=version, manifest=manifest, registry=registry)


@task(
    name="reproduce",
    help={
        **REMOTE_HELP,
        "version": "a published npm version in the release ledger",
        "registry": "npm registry URL (default: the one the ledger recorded)",
    },
)
@guarded
def publish_reproduce(c, version, registry=None, origin=None, upstream=None):
    """Rebuild a published version from its tag; compare with the registry's tarball."""
    from sdkmirror.release.publish import reproduce as mod

    mod.main(version=version, registry=registry, origin=origin, upstream=upstream)


@task(
    name="tag",
    help={
        "origin": REMOTE_HELP["origin"],
        "source_tag": "mirror tag whose commit gets publish-sdk/vX.Y.Z",
        "push": "push the tag to origin (default: print the push command)",
        "version_override": "tag this npm version instead of the SDK's own",
    },
)
@guarded
def release_tag(c, source_tag, push=False, origin=None, version_override=None):
    """Create the publish tag on a mirror tag's commit; needs a RELEASES.md entry first."""
    from sdkmirror.release import tag as release_tag_mod

    release_tag_mod.main(
        source_tag=source_tag, push=push, origin=origin, version_override=version_override
    )


@task(
    name="notes",
    help={
        **REMOTE_HELP,
        "from_": "older mirror tag",
        "to": "newer mirror tag",
        "json": "print the delta and the entry as JSON on stdout (schema in docs/json.md)",
        "no_sandbox": BUILD_HELP["no_sandbox"],
    },
)
@guarded
def release_notes(c, from_, to, origin=None, upstream=None, json=False, no_sandbox=False):
    """Draft a RELEASES.md entry: the SDK's interface delta between two mirror tags."""
    from sdkmirror.release import notes as release_notes_mod
    from sdkmirror.release.notes import check_release_order

    check_release_order(from_, to)  # reversed is refused before anything is built
    _sandbox(no_sandbox)
    release_notes_mod.main(
        from_tag=from_, to_tag=to, origin=origin, upstream=upstream, json_out=json
    )


@task(name="render", help={"check": "fail when RELEASES.md differs instead of writing it"})
@guarded
def release_render(c, check=False):
    """Generate RELEASES.md from the release ledger and notes/<npm-version>.md."""
    from sdkmirror.mirror import releases

    releases.main(check=check)


@task(
    name="record",
    help={
        "npm_version": "the npm version that was published",
        "upstream_tag": "the mirror tag it was built from",
        "commit": "the 40-hex commit it was built from (the mirror tag's)",
        "integrity": "the tarball's sha512 SRI integrity",
        "npm_name": "the package name (must be [tool.sdkmirror] npm_name)",
        "sdk_version": "the SDK's own version (default: the npm version)",
        "dist_tag": "the dist-tag it was published under (default: latest)",
        "registry": "the registry it was published to (default: `npm config get registry`)",
        "override_reason": "why the npm version differs from the SDK's",
        "origin": REMOTE_HELP["origin"],
        "push": "apply the entry to origin's current main and push (default: this checkout)",
        "dry_run": "check the facts and print the plan; change nothing",
    },
)
@guarded
def release_record(
    c,
    npm_version,
    upstream_tag,
    commit,
    integrity,
    npm_name=None,
    sdk_version=None,
    dist_tag=None,
    registry=None,
    override_reason=None,
    origin=None,
    push=False,
    dry_run=False,
):
    """Add one published version to the release ledger and RELEASES.md, merged onto main."""
    from sdkmirror.release import record as mod

    mod.main(
        npm_version=npm_version,
        upstream_tag=upstream_tag,
        commit=commit,
        integrity=integrity,
        npm_name=npm_name,
        sdk_version=sdk_version,
        dist_tag=dist_tag,
        registry=registry,
        override_reason=override_reason,
        origin=origin,
        push=push,
        dry_run=dry_run,
    )


release = Collection("release")
release.add_task(release_tag)
release.add_task(release_notes)
release.add_task(release_render)
release.add_task(release_record)
ns.add_collection(
    Collection(
        "publish",
        publish,
        build=publish_build,
        upload=publish_upload,
        check=publish_check,
        reproduce=publish_reproduce,
    )
)
ns.add_collection(release)

# --- GitHub: alerts, releases, ledger commits -------------------------------------------------


@task(
    iterable=["smoke_report"],
    help={
        "sync_report": "the JSON report `invoke sync --report` wrote",
        "smoke_report": "a smoke report file or a directory of them (repeatable)",
        "dry_run": "print the issue plan; change nothing on GitHub",
        "run_url": "link to this run in issues (default: from the Actions environment)",
        "json": "print the plan and outcomes as JSON on stdout",
    },
)
@guarded
def report(c, sync_report, smoke_report=None, dry_run=False, run_url=None, json=False):
    """Raise, repeat or close alert issues from a run's reports; write the step summary."""
    from sdkmirror.ops import report as report_mod

    report_mod.main(
        sync_report=sync_report,
        smoke_reports=smoke_report or [],
        dry_run=dry_run,
        run_url=run_url,
        as_json=json,
    )


@task(name="commit", help={"push": "push the commit to origin", "dry_run": "print the plan only"})
@guarded
def ledger_commit(c, push=False, dry_run=False):
    """Commit only the ledger files (and RELEASES.md) to the current branch."""
    from sdkmirror.mirror import ledger_commit as mod

    mod.main(push=push, dry_run=dry_run)


@task(
    name="release",
    help={
        "upstream_tag": "the upstream tag the version was built from",
        "npm_version": "the npm version (default: the newest built from the tag)",
        "from_report": "take both from the JSON `invoke publish --report` wrote (none: no-op)",
        "dry_run": "print the plan only",
    },
)
@guarded
def github_release(c, upstream_tag="", npm_version="", from_report="", dry_run=False):
    """Create or update the GitHub Release of a published version, from the release ledger."""
    from sdkmirror.release import github_release as mod

    mod.main(
        upstream_tag=upstream_tag or None,
        npm_version=npm_version or None,
        dry_run=dry_run,
        report=Path(from_report) if from_report else None,
    )


@task(name="matrix")
@guarded
def ci_matrix(c):
    """Job outputs `matrix`, `ref` and `upstream`: the smoke sessions and what they build.

    `matrix` holds one smoke session per toolchain, checked against `nox --list`.
    """
    import os

    from sdkmirror.core import config as config_mod
    from sdkmirror.ops import ci

    ci.write_outputs(ci.matrix_outputs(config_mod.load(), os.environ))


@task(name="sync-outputs", help={"sync_report": "the JSON report `invoke sync --report` wrote"})
@guarded
def ci_sync_outputs(c, sync_report):
    """Job outputs `changed`, `ledger_changed`, `status`, `smoke_ref` from a sync report."""
    from sdkmirror.core import config as config_mod
    from sdkmirror.ops import ci

    ci.write_outputs(ci.sync_outputs(config_mod.load(), sync_report))


@task(name="publish-args")
@guarded
def ci_publish_args(c):
    """Job outputs `source_tag`, `expected_version`, `dry_run` from the triggering event."""
    import os

    from sdkmirror.core import config as config_mod
    from sdkmirror.ops import ci

    ci.write_outputs(ci.publish_args(config_mod.load(), os.environ))


@task(name="build-outputs", help={"manifest": "the manifest.json `invoke publish.build` wrote"})
@guarded
def ci_build_outputs(c, manifest):
    """Job outputs: the release facts of a build manifest, each checked.

    npm_version, upstream_tag, commit, integrity, tarball, dist_tag, ...
    """
    from sdkmirror.core import config as config_mod
    from sdkmirror.ops import ci

    ci.write_outputs(ci.build_outputs(config_mod.load(), manifest))


@task(
    name="upload",
    help={
        "tarball_dir": "the directory the build job's tarball artifact was downloaded to",
        "source_tag": "the mirror tag (from ci.publish-args, computed before the build)",
        "version_override": "the recorded override, if any (from ci.publish-args)",
        "override_reason": "its reason (from ci.publish-args)",
        "origin": REMOTE_HELP["origin"],
        "registry": BUILD_HELP["registry"],
    },
)
@guarded
def ci_upload(
    c,
    tarball_dir,
    source_tag,
    version_override=None,
    override_reason=None,
    origin=None,
    registry=None,
):
    """Upload the artifact's one tarball (every fact re-derived from its bytes); job outputs."""
    from sdkmirror.core import config as config_mod
    from sdkmirror.ops import ci

    ci.write_outputs(
        ci.upload_outputs(
            config_mod.load(),
            tarball_dir,
            source_tag=source_tag,
            version_override=version_override,
            override_reason=override_reason,
            origin=origin,
            registry=registry,
        )
    )


@task(name="sandbox-setup")
@guarded
def ci_sandbox_setup(c):
    """Install bubblewrap if missing and lift AppArmor's user-namespace restriction (CI)."""
    from sdkmirror.ops import ci

    ci.sandbox_setup()


@task(name="lint-workflows")
@guarded
def ci_lint_workflows(c):
    """Lint .github/workflows with actionlint and zizmor (offline, auditor persona).

    actionlint must report nothing, zizmor nothing above low.
    """
    from sdkmirror.core import config as config_mod
    from sdkmirror.ops import ci

    ci.lint_workflows(config_mod.load())


ns.add_task(report)
ns.add_collection(Collection("ledger", commit=ledger_commit))
ns.add_collection(Collection("github", release=github_release))
ns.add_collection(
    Collection(
        "ci",
        matrix=ci_matrix,
        sync_outputs=ci_sync_outputs,
        publish_args=ci_publish_args,
        build_outputs=ci_build_outputs,
        upload=ci_upload,
        sandbox_setup=ci_sandbox_setup,
        lint_workflows=ci_lint_workflows,
    )
)

# --- operations: status and patch branches ----------------------------------------------------


@task(
    help={
        **REMOTE_HELP,
        "json": "print the status as JSON (schema 1) on stdout (the table goes to stderr)",
    }
)
@guarded
def status(c, upstream=None, origin=None, json=False):
    """The mirror at a glance; exits 8 when something needs the maintainer."""
    from sdkmirror.ops import status as status_mod

    status_mod.main(upstream=upstream, origin=origin, json_out=json)


PATCH_HELP = {
    "name": "patch name: the branch becomes patch-NAME ([a-z0-9][a-z0-9-]{0,62})",
    **REMOTE_HELP,
    "dry_run": "print the plan; change nothing",
}


@task(
    help={
        **PATCH_HELP,
        "base": "the mirror tag the branch starts on (a tag in the mirror ledger)",
        "reason": "one line: why the mirror carries this patch",
        "upstream_pr": "URL of the upstream pull request that carries the same fix",
    }
)
@guarded
def patch_new(c, name, base, reason, upstream_pr=None, origin=None, upstream=None, dry_run=False):
    """Create patch-NAME on a mirror tag's commit on origin and register it.

    Warns when upstream moved or deleted the base tag since it was mirrored.
    """
    from sdkmirror.mirror import patch_branches

    patch_branches.main_new(
        name=name,
        base=base,
        reason=reason,
        upstream_pr=upstream_pr,
        origin=origin,
        upstream=upstream,
        dry_run=dry_run,
    )


@task(help={"json": "print the registry as JSON on stdout (schema in docs/json.md)"})
@guarded
def patch_list(c, json=False):
    """List registered patch branches, active and retired."""
    from sdkmirror.mirror import patch_registry

    patch_registry.main_list(json_out=json)


@task(help=PATCH_HELP)
@guarded
def patch_retire(c, name, origin=None, upstream=None, dry_run=False):
    """Delete patch-NAME on origin (upstream landed it); keep its record as retired.

    Prints upstream's newest release tag, to confirm the fix shipped.
    """
    from sdkmirror.mirror import patch_branches

    patch_branches.main_retire(name=name, origin=origin, upstream=upstream, dry_run=dry_run)


@task(help={"check": "fail when README.md's patch table differs from the registry"})
@guarded
def patch_table(c, check=False):
    """Regenerate the README's patch table from the registry."""
    from sdkmirror.mirror import patch_table

    patch_table.main_table(check=check)


@task(
    help={
        "repo": "OWNER/NAME (default: $GITHUB_REPOSITORY, else the origin remote's)",
        "json": "print the checks as JSON on stdout (schema in docs/json.md)",
    }
)
@guarded
def doctor(c, repo=None, json=False):
    """Check the GitHub settings the mirror's safety rests on; exits 8 when one deviates."""
    from sdkmirror.ops import doctor as doctor_mod

    doctor_mod.main(repo=repo, json_out=json)


ns.add_task(status)
ns.add_task(doctor)
ns.add_collection(
    Collection("patch", new=patch_new, list=patch_list, retire=patch_retire, table=patch_table)
)

# --- health page and smoke bisection ----------------------------------------------------------


@task(
    help={
        "good": "a ref that built green (the last green mirror tag)",
        "bad": "a later ref whose smoke build breaks",
        "toolchain": "NODE/PNPM to build with (default: the first configured one the bad ref "
        "supports)",
        "upstream": "git URL or path holding both refs (default: [tool.sdkmirror] upstream)",
        "json": "print the result as JSON on stdout",
        "report": "also write the JSON result to this path",
    }
)
@guarded
def smoke_bisect(c, good, bad, toolchain=None, upstream=None, json=False, report=None):
    """The first commit between GOOD and BAD that breaks the smoke build (exit 1: BAD builds)."""
    from sdkmirror.smoke import bisect

    bisect.main(
        good=good, bad=bad, toolchain=toolchain, upstream=upstream, as_json=json, report=report
    )


@task(
    iterable=["reports"],
    help={
        "out": "directory for index.html, health.json and health.md",
        "reports": "a report file or directory of them (repeatable; default: the reports dir)",
        "registry": "npm registry URL to read the published versions from (default: unknown)",
    },
)
@guarded
def health(c, out, reports=None, registry=None):
    """Write the mirror's health page (static HTML) and its data; print the page's path."""
    from sdkmirror.ops import health_site

    health_site.main(out=out, reports_dirs=reports or [], registry=registry)


@task(
    name="bisect-args",
    iterable=["smoke_report"],
    help={"smoke_report": "a smoke report file or a directory of them (repeatable)"},
)
@guarded
def smoke_bisect_args(c, smoke_report=None):
    """Job outputs: what to bisect after an upstream break in the smoke reports.

    `needed`, `good`, `bad`, `toolchain` and `upstream`."""
    import os

    from sdkmirror.core import config as config_mod
    from sdkmirror.ops import ci
    from sdkmirror.ops.bisect_args import bisect_args

    ci.write_outputs(bisect_args(config_mod.load(), smoke_report or [], os.environ))


ns.add_task(health)
ns.add_collection(Collection("smoke", bisect=smoke_bisect, bisect_args=smoke_bisect_args))

# --- the build cache (docs/cache.md) ----------------------------------------------------------


@task(name="list", help={"json": "print the entries as JSON on stdout"})
@guarded
def cache_list(c, json=False):
    """List the build cache's entries, most recently used first, with their sizes."""
    from sdkmirror.core import config
    from sdkmirror.smoke import build_cache_cli

    build_cache_cli.main_list(config.load(), json_out=json)


@task(
    name="prune",
    help={
        "dry_run": "print the plan only",
        "max_bytes": "the size to prune down to (default: build_cache_max_bytes)",
        "all": "remove every entry",
        "json": "print the plan as JSON on stdout",
    },
)
@guarded
def cache_prune(c, dry_run=False, max_bytes=None, all=False, json=False):
    """Remove partial or corrupt entries, leftovers, and least recently used entries."""
    from sdkmirror.core import config
    from sdkmirror.core.errors import UsageError
    from sdkmirror.smoke import build_cache_cli

    if max_bytes is not None and not str(max_bytes).isdigit():
        raise UsageError(f"--max-bytes must be a whole number of bytes, got {max_bytes!r}")
    limit = None if max_bytes is None else int(max_bytes)
    build_cache_cli.main_prune(
        config.load(), dry_run=dry_run, max_bytes=limit, everything=all, json_out=json
    )


ns.add_collection(Collection("cache", list=cache_list, prune=cache_prune))
