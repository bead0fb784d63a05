"""`invoke publish` end to end: the sample upstream mirrored, built, published to a real
Verdaccio on loopback, installed back and imported. Plus the pure decisions it rests on."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sdkmirror.core.errors import MirrorError, RemoteError, UsageError, VerificationFailed
from sdkmirror.devtools import registry_server, sample
from sdkmirror.infra import proc
from sdkmirror.mirror import releases
from sdkmirror.mirror.ledger import MirrorLedger, TagRecord
from sdkmirror.mirror.releases import ReleaseLedger
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish import pipeline as publish
from sdkmirror.release.publish import plan as publish_plan
from sdkmirror.release.publish import upload as publish_upload

NPM_NAME = "@botiverse/kimi-code-sdk"
TAG = "@moonshot-ai/kimi-code@{}"
# A refused loopback connection fails at once in every test here.
# Publishing is the subject here, not building: a release built by an earlier test is reused.
pytestmark = pytest.mark.usefixtures("no_npm_retries", "shared_build_cache")


# --- pure decisions ---------------------------------------------------------------------------


def record(name: str = TAG.format("0.14.2")) -> TagRecord:
    return TagRecord(name, "o" * 40, "c" * 40, datetime(2026, 1, 1, tzinfo=UTC))


def test_missing_source_tag_names_the_fix() -> None:
    with pytest.raises(UsageError, match=r"not a mirror tag in the ledger.*invoke sync"):
        publish_plan.resolve_source(TAG.format("9.9.9"), {})
    assert publish_plan.resolve_source(record().name, {record().name: record()}) == record()


def test_version_rules() -> None:
    assert publish_plan.choose_version("0.9.3", expected="0.9.3", override=None) == "0.9.3"
    assert publish_plan.choose_version("0.9.3", expected=None, override="0.9.5") == "0.9.5"
    with pytest.raises(UsageError, match="nothing was packed"):
        publish_plan.choose_version("0.9.3", expected="0.9.4", override=None)
    # An override needs no reason (the ledger keeps one only when given) ...
    publish_plan.check_version_flags("0.9.5", None, None)
    publish_plan.check_version_flags("0.9.5", "re-bundled", None)
    # ... but a reason without an override is a mistake.
    with pytest.raises(UsageError, match="only goes with"):
        publish_plan.check_version_flags(None, "because", None)
    with pytest.raises(UsageError, match="not an exact npm version"):
        publish_plan.check_version_flags(None, None, "v1")


def test_upload_decision() -> None:
    kw = {"name": NPM_NAME, "version": "0.9.3"}
    assert publish_plan.decide("sha512-A", None, **kw) is publish_plan.Action.PUBLISH
    assert (
        publish_plan.decide("sha512-A", "sha512-A", **kw) is publish_plan.Action.ALREADY_PUBLISHED
    )
    with pytest.raises(publish_plan.RegistryConflict, match="immutable"):
        publish_plan.decide("sha512-A", "sha512-B", **kw)


def test_provenance_only_with_an_oidc_token_in_actions() -> None:
    assert not publish_plan.oidc_requested({})
    assert not publish_plan.oidc_requested({"GITHUB_ACTIONS": "true"})
    assert publish_plan.oidc_requested(
        {"GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1/t"}
    )
    argv = publish_plan.publish_argv(
        Path("x.tgz"), "http://r/", provenance=True, dry_run=False, tag="previous"
    )
    assert argv == [
        "npm",
        "publish",
        "x.tgz",
        "--registry",
        "http://r/",
        "--tag",
        "previous",
        "--provenance",
    ]


def test_dist_tag_keeps_latest_on_the_newest_release() -> None:
    tag = publish_plan.choose_dist_tag
    assert tag("0.9.3", None) == "latest"  # first publish
    assert tag("0.9.4", "0.9.3") == "latest"
    assert tag("0.10.0", "0.9.3") == "latest"  # by semver, not as strings
    assert tag("0.9.2", "0.9.3") == "previous"
    assert tag("0.9.3-patch.1", "0.9.3") == "patch"
    assert tag("1.0.0-rc.2", "0.9.3") == "rc"
    assert tag("0.9.4-patch.1", None) == "patch"  # a prerelease never becomes latest
    # npm refuses dist-tags that read as ranges, and `latest` must stay a release
    assert tag("0.9.3-1", "0.9.3") == "prerelease"
    assert tag("0.9.3-v2", "0.9.3") == "prerelease"
    assert tag("0.9.3-latest.1", "0.9.3") == "prerelease"
    with pytest.raises(UsageError, match="not an exact npm version"):
        tag("v1", None)


def offline_plan(req: publish_plan.Request) -> publish_plan.PublishPlan:
    """The plan for `req` against a fixed record and registry: no I/O at all."""
    return publish_plan.make_plan(
        req,
        record=record(),
        origin="o",
        registry="http://r",
        npm_name=NPM_NAME,
        sdk_version="0.9.3",
        env={},
    )


def test_plan_is_pure_and_printable() -> None:
    req = publish_plan.Request(
        source_tag=record().name, version_override="0.9.5", override_reason="re-bundled"
    )
    plan = offline_plan(req)
    assert (plan.npm_version, plan.registry, plan.dry_run) == ("0.9.5", "http://r/", True)
    assert ("override reason", "re-bundled") in plan.rows()
    bare = offline_plan(publish_plan.Request(source_tag=record().name, version_override="0.9.5"))
    assert (bare.npm_version, bare.override_reason) == ("0.9.5", None)
    assert ("dist-tag", "previous") in replace(bare, dist_tag="previous").rows()
    dropped = replace(bare, dropped=("imports", "scripts")).rows()
    assert ("dropped fields", "imports, scripts") in dropped


def test_report_names_the_published_version(tmp_path: Path) -> None:
    from sdkmirror.release import github_release

    plan = offline_plan(publish_plan.Request(source_tag=record().name, dry_run=False))
    path = tmp_path / "reports" / "publish.json"
    publish.write_report(publish.Outcome(plan, published=True, recorded=True), path)
    assert github_release.from_report(path) == (record().name, "0.9.3")
    # a dry run: no Release; a report that is not there is a wrong path, not a no-op
    publish.write_report(publish.Outcome(replace(plan, dry_run=True)), path)
    assert github_release.from_report(path) is None
    with pytest.raises(MirrorError, match="cannot read the publish report"):
        github_release.from_report(tmp_path / "missing.json")
    path.write_text('{"kind": "sync"}')
    with pytest.raises(MirrorError, match="not a publish report"):
        github_release.from_report(path)
    path.write_text('{"kind": "publish", "dry_run": "no"}')
    with pytest.raises(MirrorError, match="npm_version is missing"):
        github_release.from_report(path)


def test_github_release_from_the_report_names_that_version(project, httpserver, tmp_path) -> None:
    """What record-release.yml runs: the Release is for the version the publish report names
    (not merely the newest built from that tag); a missing report is an error, no request."""
    cfg = project.config()
    ledger = ReleaseLedger(cfg.release_ledger)
    for version, reason in (("0.9.3", None), ("0.9.4", "re-bundled")):
        ledger.add(
            releases.Release(
                version, NPM_NAME, record().name, "c" * 40, "0.9.3", f"sha512-{version}",
                datetime(2026, 1, 2, tzinfo=UTC), "http://r/", reason,
            )
        )  # fmt: skip
    ledger.save()
    env = {
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": "owner/mirror",
        "GITHUB_API_URL": httpserver.url_for("/api"),
    }
    missing = project.invoke(
        "github.release", "--from-report", str(tmp_path / "none.json"), env=env
    )
    assert missing.returncode == 2, missing.stderr
    assert "cannot read the publish report" in missing.stderr and not httpserver.log

    plan = offline_plan(publish_plan.Request(source_tag=record().name, dry_run=False))
    report = tmp_path / "publish.json"
    publish.write_report(publish.Outcome(plan, published=True, recorded=True), report)
    api = "/api/repos/owner/mirror"
    httpserver.expect_ordered_request(
        f"{api}/releases/tags/{record().name}", method="GET"
    ).respond_with_json({"message": "Not Found"}, status=404)
    httpserver.expect_ordered_request(f"{api}/releases", method="POST").respond_with_json(
        {"id": 1, "tag_name": record().name}, status=201
    )
    cp = project.invoke("github.release", "--from-report", str(report), env=env)
    assert cp.returncode == 0, cp.stderr
    httpserver.check_assertions()
    body = httpserver.log[-1][0].get_json()["body"]
    assert f"`{NPM_NAME}@0.9.3`" in body and "0.9.4" not in body


# --- against a real registry ------------------------------------------------------------------


@pytest.mark.slow
def test_loopback_registry_serves_dependencies_but_never_shadows_our_scope(
    registry, toolchain
) -> None:
    # A consumer whose npm names this registry still gets the SDK's third-party dependencies.
    view = toolchain.run(
        [toolchain.npm, "view", f"{sample.TOML_NAME}@{sample.TOML_VERSION}", "dist.integrity",
         "--registry", registry.url],
        network=True,
    )  # fmt: skip
    assert view.stdout.strip() == sample.TOML_INTEGRITY
    # Our own scope is never looked up elsewhere: nothing is there until we publish it.
    assert on_registry(toolchain, registry, "0.9.3") is None
    config = (registry.npmrc.parent / "config.yaml").read_text()
    own, rest = config.split("  '**':")
    assert "'@botiverse/*':" in own and "proxy" not in own.split("packages:")[1]
    assert "proxy: upstream" in rest


def on_registry(tc, reg, version: str) -> str | None:
    return publish.registry_integrity(NPM_NAME, version, reg.url)


def req(tag: str, mirror: Path, reg, **kw) -> publish_plan.Request:
    return publish_plan.Request(
        source_tag=TAG.format(tag), origin=str(mirror), registry=reg.url, **kw
    )


@pytest.mark.slow
def test_publish_install_import_then_noop_then_conflict(
    cfg, mirror, registry, toolchain, tmp_path
) -> None:
    out = publish.run(req("0.14.2", mirror, registry, dry_run=False), cfg)
    assert out.published and out.recorded
    assert {"KimiClient", "VERSION", "createClient", "default", "legacyPrompt"} <= set(out.exports)
    assert on_registry(toolchain, registry, "0.9.3") == out.report.integrity
    assert set(out.report.files) == {
        "package.json",
        "LICENSE",
        "NOTICE.md",
        "README.md",
        "dist/index.mjs",
        "dist/index.d.mts",
        "dist/chunk-meta.mjs",
    }

    # A stranger installs it from the registry with plain npm and imports it.
    consumer = tmp_path / "stranger"
    exports = publish_build.consumer_import(
        toolchain,
        consumer,
        NPM_NAME,
        [f"--@botiverse:registry={registry.url}", f"{NPM_NAME}@0.9.3"],
    )
    assert "createClient" in exports
    installed = json.loads((consumer / "node_modules" / NPM_NAME / "package.json").read_text())
    assert installed["sdkmirror"]["releaseTag"] == TAG.format("0.14.2")
    assert not {"devDependencies", "private", "imports", "scripts"} & set(installed)
    # The declarations stand alone: the private workspace package's types were inlined.
    dts = (consumer / "node_modules" / NPM_NAME / "dist" / "index.d.mts").read_text()
    assert "@moonshot-ai/protocol" not in dts and "@sample-vendor/" not in dts

    rec = ReleaseLedger(cfg.release_ledger).get("0.9.3")
    assert (rec.upstream_tag, rec.sdk_version, rec.integrity) == (
        TAG.format("0.14.2"),
        "0.9.3",
        out.report.integrity,
    )
    ledger_text = cfg.release_ledger.read_text()

    again = publish.run(req("0.14.2", mirror, registry, dry_run=False), cfg)
    assert again.plan.action is publish_plan.Action.ALREADY_PUBLISHED
    assert not again.published and not again.recorded
    assert cfg.release_ledger.read_text() == ledger_text

    # 0.14.3 ships the same SDK version from another commit: other bytes, same version.
    with pytest.raises(publish_plan.RegistryConflict, match="already on the registry"):
        publish.run(req("0.14.3", mirror, registry, dry_run=False), cfg)
    assert on_registry(toolchain, registry, "0.9.3") == out.report.integrity
    assert cfg.release_ledger.read_text() == ledger_text


@pytest.mark.slow
def test_version_mismatch_publishes_nothing(cfg, mirror, registry, toolchain) -> None:
    with pytest.raises(UsageError, match=r"0\.9\.4 was expected"):
        publish.run(req("0.14.2", mirror, registry, dry_run=False, expected_version="0.9.4"), cfg)
    assert on_registry(toolchain, registry, "0.9.3") is None
    assert not (cfg.work_dir / "publish" / "pack").exists()
    assert not list((cfg.work_dir / "publish").glob("*/package"))
    assert not cfg.release_ledger.exists()


@pytest.mark.slow
def test_registry_down_mid_publish_leaves_the_ledger_alone(
    cfg, mirror, registry, toolchain
) -> None:
    hooks = publish.Hooks(before_upload=registry.stop)
    with pytest.raises(RemoteError, match="ledger is unchanged"):
        publish.run(req("0.14.2", mirror, registry, dry_run=False), cfg, hooks=hooks)
    assert not cfg.release_ledger.exists()
    assert not cfg.release_notes.exists()


def dist_tags(tc, reg) -> dict[str, str]:
    return publish.registry_dist_tags(NPM_NAME, reg.url)


def releases_md_in_sync(cfg) -> bool:
    text = releases.render_file(cfg.release_ledger, cfg.notes_dir, cfg.root)
    return not releases.sync_file(cfg.release_notes, text, check=True)


@pytest.mark.slow
def test_dist_tags_and_releases_md_follow_each_publish(
    project, cfg, mirror, registry, toolchain, tmp_path
) -> None:
    assert dist_tags(toolchain, registry) == {}  # no package yet: nothing, not an error
    report = tmp_path / "publish.json"
    first = publish.run(req("0.14.2", mirror, registry, dry_run=False, report=str(report)), cfg)
    assert first.plan.dist_tag == "latest"
    assert dist_tags(toolchain, registry) == {"latest": "0.9.3"}
    # RELEASES.md is regenerated with the ledger, so `release.render --check` passes at once
    assert "| 0.9.3 | `@moonshot-ai/kimi-code@0.14.2` |" in cfg.release_notes.read_text()
    assert releases_md_in_sync(cfg)
    assert json.loads(report.read_text())["npm_version"] == "0.9.3"

    # An older version (override without a reason) must not take `latest` away.
    older = publish.run(
        req("0.14.3", mirror, registry, dry_run=False, version_override="0.9.2"), cfg
    )
    assert older.published and older.plan.dist_tag == "previous"
    assert dist_tags(toolchain, registry) == {"latest": "0.9.3", "previous": "0.9.2"}
    rec = ReleaseLedger(cfg.release_ledger).get("0.9.2")
    assert (rec.sdk_version, rec.override_reason) == ("0.9.3", None)
    assert "override_reason" not in cfg.release_ledger.read_text()
    assert "| 0.9.2 |" in cfg.release_notes.read_text() and releases_md_in_sync(cfg)

    # A prerelease through the task, with the empty flags the workflow passes: its own tag.
    cp = project.invoke(
        "publish", "--source-tag", TAG.format("0.14.3"), "--origin", str(mirror),
        "--registry", registry.url, "--expected-version", "", "--version-override",
        "0.9.3-patch.1", "--override-reason", "", "--no-dry-run",
        env=registry.npm_env(),
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "--tag patch" in cp.stderr and "RELEASES.md written" in cp.stderr
    assert dist_tags(toolchain, registry) == {
        "latest": "0.9.3",
        "previous": "0.9.2",
        "patch": "0.9.3-patch.1",
    }
    assert releases_md_in_sync(cfg)
    # a consumer asking for the package by name still gets the newest release
    consumer = tmp_path / "by-name"
    publish_build.consumer_import(
        toolchain, consumer, NPM_NAME, [f"--@botiverse:registry={registry.url}", NPM_NAME]
    )
    installed = json.loads((consumer / "node_modules" / NPM_NAME / "package.json").read_text())
    assert installed["version"] == "0.9.3"


@pytest.mark.slow
def test_override_is_recorded_with_its_reason(cfg, mirror, registry, toolchain) -> None:
    out = publish.run(
        req(
            "0.14.3",
            mirror,
            registry,
            dry_run=False,
            version_override="0.9.3-1",
            override_reason="re-bundled without an SDK bump",
        ),
        cfg,
    )
    assert out.published
    rec = ReleaseLedger(cfg.release_ledger).get("0.9.3-1")
    assert rec.override_reason == "re-bundled without an SDK bump"
    assert rec.sdk_version == "0.9.3"


@pytest.mark.slow
def test_dry_run_task_publishes_nothing_and_prints_the_command(
    project, cfg, mirror, registry, toolchain
) -> None:
    env = registry.npm_env()
    cp = project.invoke(
        "publish",
        "--source-tag",
        TAG.format("0.14.2"),
        "--origin",
        str(mirror),
        "--registry",
        registry.url,
        "--expected-version",
        "",  # what the workflow passes on a manual dispatch: "not given"
        env=env,
    )
    assert cp.returncode == 0, cp.stderr
    assert "npm publish" in cp.stderr and "--registry " + registry.url in cp.stderr
    assert "dry run: nothing uploaded" in cp.stdout  # in the summary, the run's result
    assert on_registry(toolchain, registry, "0.9.3") is None
    assert not cfg.release_ledger.exists()


@pytest.mark.slow
def test_missing_tag_via_task_is_one_line(project, cfg, mirror) -> None:
    cp = project.invoke("publish", "--source-tag", TAG.format("9.9.9"), "--origin", str(mirror))
    assert cp.returncode == 2
    assert cp.stderr.strip().startswith("error: source tag")
    assert "Traceback" not in cp.stderr and len(cp.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_registry_down_before_anything_is_read(toolchain, tmp_path) -> None:
    port = registry_server.free_port()  # nothing listens there
    with pytest.raises(MirrorError, match="cannot read"):
        publish.registry_integrity(NPM_NAME, "0.9.3", f"http://127.0.0.1:{port}/")


def test_provenance_needs_npm_11_5_1() -> None:
    assert publish_plan.provenance_problem("11.5.1") is None
    assert "npm >= 11.5.1" in publish_plan.provenance_problem("10.9.2")
    assert "npm >= 11.5.1" in publish_plan.provenance_problem("11.5.0")


@pytest.mark.slow
def test_primary_toolchain_can_publish_with_provenance(toolchain) -> None:
    publish_upload.check_provenance_npm(toolchain)  # raises when the toolchain's npm is too old


@pytest.mark.slow
def test_verdaccio_stops_cleanly(tmp_path, toolchain) -> None:
    with registry_server.verdaccio(
        tmp_path / "v", toolchain, cache_dir=Path(os.environ["SDKMIRROR_CACHE"])
    ) as reg:
        assert "_authToken=" in reg.npmrc.read_text()
        pid = reg.process.pid
    assert reg.process.poll() is not None
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


# --- publishing from a patch branch -----------------------------------------------------------

PATCH_PR = "https://example.invalid/kimi-code/pull/7"


def test_empty_flags_mean_not_given() -> None:
    """The publish workflow passes `--expected-version ""` on a manual dispatch."""
    r = publish_plan.Request(source_tag=TAG.format("0.14.2"), expected_version="", registry=" ")
    assert (r.expected_version, r.registry, r.version_override) == (None, None, None)
    publish_plan.check_version_flags(r.version_override, r.override_reason, r.expected_version)
    assert (
        publish_plan.choose_version("0.9.3", expected=r.expected_version, override=None) == "0.9.3"
    )


@pytest.fixture
def patch_origin(mirror: Path, tmp_path: Path) -> Path:
    """A private copy of the mirror origin: these tests push patch branches to it."""
    origin = tmp_path / "patch-origin.git"
    proc.run(["git", "clone", "-q", "--bare", str(mirror), str(origin)])
    return origin


def register_patch(cfg, origin: Path, name: str, base: str = "0.14.2") -> str:
    """`invoke patch.new` on the origin; returns the branch."""
    from sdkmirror.mirror import patch_branches

    patch_branches.new(
        cfg,
        name,
        base=TAG.format(base),
        reason="steer drops the last chunk",
        upstream_pr=PATCH_PR,
        origin=str(origin),
        dry_run=False,
    )
    return f"patch-{name}"


def commit_on_branch(origin: Path, branch: str, tmp_path: Path, files: dict[str, str]) -> str:
    """Commit `files` on top of `branch` and push it, as a maintainer carrying a fix does."""
    work = tmp_path / f"work-{branch}"
    proc.run(["git", "clone", "-q", "-b", branch, str(origin), str(work)])
    for rel, text in files.items():
        (work / rel).write_text(text)
    proc.run(["git", "commit", "-q", "-am", f"fix on {branch}"], cwd=work)
    proc.run(["git", "push", "-q", "origin", branch], cwd=work)
    return proc.run(["git", "rev-parse", "HEAD"], cwd=work).stdout.strip()


INDEX = f"{sample.SDK_DIR}/src/index.ts"


def patched_index(origin: Path) -> str:
    text = proc.run(["git", "show", f"refs/tags/{TAG.format('0.14.2')}:{INDEX}"], cwd=origin)
    return text.stdout + "\nexport const PATCHED = true;\n"


def patch_req(origin: Path, ref: str, **kw) -> publish_plan.Request:
    return publish_plan.Request(source_ref=ref, origin=str(origin), **kw)


@pytest.mark.slow
def test_publish_from_a_patch_branch_records_the_patch(
    cfg, patch_origin, registry, toolchain, tmp_path
) -> None:
    branch = register_patch(cfg, patch_origin, "fix-steer")
    head = commit_on_branch(patch_origin, branch, tmp_path, {INDEX: patched_index(patch_origin)})

    out = publish.run(
        patch_req(
            patch_origin,
            branch,
            registry=registry.url,
            dry_run=False,
            version_override="0.9.3-patch.1",
        ),
        cfg,
    )
    assert out.published and out.recorded
    assert "PATCHED" in out.exports  # the branch head was built, not the tag
    assert (out.plan.source_tag, out.plan.commit) == (TAG.format("0.14.2"), head)

    rec = ReleaseLedger(cfg.release_ledger).get("0.9.3-patch.1")
    assert (rec.source_ref, rec.upstream_tag, rec.commit, rec.sdk_version) == (
        branch,
        TAG.format("0.14.2"),
        head,
        "0.9.3",
    )
    assert "steer drops the last chunk" in rec.override_reason
    assert 'source_ref = "patch-fix-steer"' in cfg.release_ledger.read_text()

    # What the registry serves carries the patch in its NOTICE.md and package.json.
    consumer = tmp_path / "consumer"
    publish_build.consumer_import(
        toolchain,
        consumer,
        NPM_NAME,
        [f"--@botiverse:registry={registry.url}", f"{NPM_NAME}@0.9.3-patch.1"],
    )
    installed = consumer / "node_modules" / NPM_NAME
    notice = (installed / "NOTICE.md").read_text()
    assert f"carries the local patch `fix-steer` (branch `{branch}`, commit `{head}`)" in notice
    assert f"on top of the upstream release tag `{TAG.format('0.14.2')}`" in notice
    assert "Reason: steer drops the last chunk." in notice and PATCH_PR in notice
    meta = json.loads((installed / "package.json").read_text())["sdkmirror"]
    assert (meta["sourceRef"], meta["releaseTag"], meta["commit"]) == (
        branch,
        TAG.format("0.14.2"),
        head,
    )


def test_patch_publish_needs_a_prerelease_override(cfg, patch_origin) -> None:
    branch = register_patch(cfg, patch_origin, "fix-steer")
    for override in (None, "0.9.3"):
        with pytest.raises(UsageError, match=r"X\.Y\.Z-patch\.N \(for example 0\.9\.3-patch\.1\)"):
            publish.run(patch_req(patch_origin, branch, version_override=override), cfg)
    # an explicit --source-tag must be the patch's base
    with pytest.raises(UsageError, match="is based on"):
        publish.run(
            patch_req(
                patch_origin,
                branch,
                source_tag=TAG.format("0.14.3"),
                version_override="0.9.3-patch.1",
            ),
            cfg,
        )
    assert not cfg.release_ledger.exists()
    assert not (cfg.work_dir / "publish").exists()


def test_patch_publish_refuses_unregistered_and_retired_patches(cfg, patch_origin) -> None:
    from sdkmirror.mirror import patch_branches

    commit = MirrorLedger(cfg.mirror_ledger).tags[TAG.format("0.14.2")].commit
    proc.run(["git", "update-ref", "refs/heads/patch-ghost", commit], cwd=patch_origin)
    with pytest.raises(UsageError, match="patch-ghost: that patch is not registered"):
        publish.run(patch_req(patch_origin, "patch-ghost", version_override="0.9.3-patch.1"), cfg)

    branch = register_patch(cfg, patch_origin, "landed")
    patch_branches.retire(cfg, "landed", origin=str(patch_origin), dry_run=False)
    with pytest.raises(UsageError, match="patch-landed: that patch is retired"):
        publish.run(patch_req(patch_origin, branch, version_override="0.9.3-patch.1"), cfg)
    assert not cfg.release_ledger.exists()


def test_patch_branch_must_contain_its_base_tag(cfg, patch_origin) -> None:
    branch = register_patch(cfg, patch_origin, "rewound", base="0.17.0")
    older = MirrorLedger(cfg.mirror_ledger).tags[TAG.format("0.14.3")].commit
    proc.run(["git", "update-ref", f"refs/heads/{branch}", older], cwd=patch_origin)
    with pytest.raises(VerificationFailed, match=r"does not contain .*0\.17\.0's commit.*rebase"):
        publish.run(patch_req(patch_origin, branch, version_override="0.9.4-patch.1"), cfg)
    assert not cfg.release_ledger.exists()


@pytest.mark.slow
def test_a_failing_build_stops_the_publish(
    project, cfg, patch_origin, registry, toolchain, tmp_path
) -> None:
    branch = register_patch(cfg, patch_origin, "breaks")
    broken = sample.tree(sample.DEFAULT_RELEASES[0], "upstream-build")[INDEX]
    commit_on_branch(patch_origin, branch, tmp_path, {INDEX: broken})

    cp = project.invoke(
        "publish", "--source-ref", branch, "--version-override", "0.9.3-patch.1",
        "--origin", str(patch_origin), "--registry", registry.url, "--no-dry-run",
        env=registry.npm_env(),
    )  # fmt: skip
    assert cp.returncode == VerificationFailed.exit_code, cp.stderr
    last = cp.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the SDK at {branch} on {TAG.format('0.14.2')} does not build")
    assert "smoke category upstream-build" in last and "nothing was packed or published" in last
    assert "consumers stay pinned" in last  # the runbook's next step
    assert "Traceback" not in cp.stderr
    assert on_registry(toolchain, registry, "0.9.3-patch.1") is None
    assert not list((cfg.work_dir / "publish").glob("*/package"))
    assert not cfg.release_ledger.exists()


def test_ledger_records_the_patch_and_reads_old_entries(tmp_path: Path) -> None:
    from sdkmirror.mirror import releases

    path = tmp_path / "releases.toml"
    path.write_text(  # an entry written before patch branches could publish
        f'[releases."0.9.3"]\nnpm_name = "x"\nupstream_tag = "t"\ncommit = "{"c" * 40}"\n'
        'sdk_version = "0.9.3"\nintegrity = "sha512-A"\n'
        'published_at = 2026-01-01T00:00:00Z\nregistry = "http://r/"\n'
    )
    ledger = ReleaseLedger(path)
    assert ledger.get("0.9.3").source_ref is None
    old = ledger.get("0.9.3")
    ledger.add(
        releases.Release(
            npm_version="0.9.3-patch.1",
            npm_name="x",
            upstream_tag="t",
            commit="d" * 40,
            sdk_version="0.9.3",
            integrity="sha512-B",
            published_at=old.published_at,
            registry="http://r/",
            override_reason="local patch patch-fix: r",
            source_ref="patch-fix",
        )
    )
    ledger.save()
    again = ReleaseLedger(path).releases
    assert again["0.9.3-patch.1"].source_ref == "patch-fix"
    assert again["0.9.3"].source_ref is None
    text = releases.render(again, {}, ledger_name="l", notes_name="n")
    assert "From `t` with the local patch `patch-fix` (SDK 0.9.3)." in text
    assert "From `t` (SDK 0.9.3)." in text


def test_notice_names_the_patch_only_for_a_patch_build() -> None:
    from sdkmirror.release.package import repackage

    pkg = {"name": NPM_NAME, "version": "0.9.3-patch.1"}
    plain = repackage.Provenance("@moonshot-ai/kimi-code-sdk", "0.9.3", TAG.format("0.14.2"), "c")
    assert "patch" not in repackage.notice_md(pkg, plain).replace("0.9.3-patch.1", "")
    patched = repackage.Provenance(
        "@moonshot-ai/kimi-code-sdk", "0.9.3", TAG.format("0.14.2"), "d", "patch-fix",
        "steer drops the last chunk.", PATCH_PR,
    )  # fmt: skip
    notice = repackage.notice_md(pkg, patched)
    assert "carries the local patch `fix` (branch `patch-fix`, commit `d`)" in notice
    assert "- Reason: steer drops the last chunk.\n" in notice
    assert f"- Upstream pull request: {PATCH_PR}\n" in notice
