"""`invoke health`: the data model from real ledgers and reports, the page, the summary, and
the page in a real headless Chromium (console clean, one row per release, screenshots)."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Project

from sdkmirror.mirror.ledger import MirrorLedger, TagRecord
from sdkmirror.mirror.patch_registry import Patch, PatchRegistry
from sdkmirror.mirror.releases import Release, ReleaseLedger
from sdkmirror.ops import health, health_html, health_markdown, health_site, health_sources

TAG = "@moonshot-ai/kimi-code@{}"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TC_A = {"node": "24.15.0", "pnpm": "10.33.0", "allow_failure": False}
TC_B = {"node": "24.19.0", "pnpm": "10.33.0", "allow_failure": False}
TC_C = {"node": "22.20.0", "pnpm": "10.33.0", "allow_failure": True}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sha(i: int, salt: str = "c") -> str:
    return f"{salt}{i:039x}"


def smoke(ref: str, commit: str, *results: tuple[dict[str, Any], str, str | None]) -> dict:
    return {
        "kind": "smoke",
        "ref": ref,
        "commit": commit,
        "results": [
            {
                "toolchain": tc,
                "status": status,
                "category": category,
                "classification": "upstream-breaking"
                if category == "upstream-build"
                else ("our-env" if category else None),
                "reason": f"{status} {category or ''}".strip(),
                "commit": commit,
            }
            for tc, status, category in results
        ],
    }


SYNC = {
    "kind": "sync",
    "status": "updated",
    "started_at": "2026-12-06T04:17:00+00:00",
    "origin": "https://git.example.invalid/o/m.git",
    "alerts": [
        {"kind": "tag-moved", "ref": TAG.format("0.14.3"), "detail": "upstream moved it"},
        {"kind": "foreign-tag", "ref": TAG.format("0.99.0"), "detail": "not from upstream"},
    ],
    "new_tags": [{"name": TAG.format("0.19.0")}],
}


def seeded(project: Project) -> dict[str, Any]:
    """Four mirrored releases; the newest breaks upstream (bisected), 0.17.0 is green and
    published, 0.14.3 shares its SDK version with 0.14.2, one patch on 0.14.2."""
    with project.pyproject.open("a") as fh:
        for tc in (TC_A, TC_B, TC_C):
            fh.write(
                f'[[tool.sdkmirror.toolchains]]\nnode = "{tc["node"]}"\npnpm = "{tc["pnpm"]}"\n'
            )
            fh.write(f"allow_failure = {str(tc['allow_failure']).lower()}\n")
    cfg = project.config()
    versions = ["0.14.2", "0.14.3", "0.17.0", "0.19.0"]
    ledger = MirrorLedger(cfg.mirror_ledger)
    for i, v in enumerate(versions):
        ledger.add_tag(TAG.format(v), sha(i, "a"), sha(i), NOW - timedelta(days=10 - i))
    ledger.save()
    rel = ReleaseLedger(cfg.release_ledger)
    for i, (v, sdk) in enumerate([("0.14.2", "0.9.3"), ("0.17.0", "0.9.4")]):
        rel.add(
            Release(
                npm_version=sdk,
                npm_name=cfg.npm_name,
                upstream_tag=TAG.format(v),
                commit=sha(versions.index(v)),
                sdk_version=sdk,
                integrity="sha512-" + "A" * 86 + "==",
                published_at=NOW - timedelta(days=5 - i),
                registry="http://127.0.0.1:9/",
            )
        )
    rel.save()
    patches = PatchRegistry(cfg.patch_registry)
    patches.add(Patch("fix-steer", TAG.format("0.14.2"), sha(0), "steer drops a chunk"))
    patches.save()
    reports = cfg.reports_dir
    reports.mkdir(parents=True)
    (reports / "sync.json").write_text(json.dumps(SYNC))
    runs = [
        smoke(TAG.format("0.17.0"), sha(2), (TC_A, "pass", None), (TC_C, "unsupported", None)),
        smoke(
            TAG.format("0.19.0"),
            sha(3),
            (TC_A, "fail", "upstream-build"),
            (TC_B, "fail", "lockfile"),
            (TC_C, "unsupported", None),
        ),
    ]
    for i, run in enumerate(runs):
        path = reports / f"smoke-{i}.json"
        path.write_text(json.dumps(run))
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    (reports / "publish.json").write_text(
        json.dumps(
            {
                "kind": "publish",
                "npm_version": "0.10.0",
                "upstream_tag": TAG.format("0.19.0"),
                "dry_run": True,
                "published": False,
                "already_published": False,
            }
        )
    )
    culprit = {"sha": sha(77, "b"), "subject": "sdk: run turns with tools", "date": "2026-12-05"}
    (reports / "bisect.json").write_text(
        json.dumps(
            {
                "kind": "bisect",
                "bad": TAG.format("0.19.0"),
                "bad_commit": sha(3),
                "culprit": culprit,
            }
        )
    )
    return {"versions": versions, "culprit": culprit}


def test_the_data_model_from_ledgers_and_reports(project: Project) -> None:
    seed = seeded(project)
    cfg = project.config()
    h = health_sources.gather(cfg, report_paths=[cfg.reports_dir], registry=None)
    assert [r.version for r in h.releases] == list(reversed(seed["versions"]))
    assert h.toolchains == [
        "node 24.15.0 + pnpm 10.33.0",
        "node 24.19.0 + pnpm 10.33.0",
        "node 22.20.0 + pnpm 10.33.0",
    ]
    grid = {r.version: [c.state for c in r.cells] for r in h.releases}
    assert grid == {
        "0.19.0": ["upstream-break", "our-env", "unsupported"],
        "0.17.0": ["pass", "not-run", "unsupported"],
        "0.14.3": ["not-run"] * 3,
        "0.14.2": ["not-run"] * 3,
    }
    npm = {r.version: (r.npm.version, r.npm.why) for r in h.releases}
    assert npm["0.17.0"] == ("0.9.4", "in the release ledger")
    assert npm["0.19.0"] == (None, "smoke broken upstream: not publishable")
    assert npm["0.14.2"] == ("0.9.3", "in the release ledger")
    assert npm["0.14.3"] == (None, "not published yet")  # SDK version unknown without git
    assert h.latest_green == TAG.format("0.17.0")
    assert [r.release_branch for r in h.releases][:1] == ["release/v0.19.0"]
    kinds = [(a.kind, a.ref, a.culprit) for a in h.alerts]
    assert kinds == [
        ("tag-moved", TAG.format("0.14.3"), ""),
        ("foreign-tag", TAG.format("0.99.0"), ""),
        (
            "smoke upstream-break",
            TAG.format("0.19.0"),
            f"{sha(77, 'b')[:12]} sdk: run turns with tools (2026-12-05)",
        ),
        ("smoke our-env", TAG.format("0.19.0"), ""),
    ]
    assert h.last_sync is not None and h.last_sync["status"] == "updated"
    [p] = h.patches
    assert (p.branch, p.drift) == ("patch-fix-steer", 3)
    assert h.registry["status"] == "unknown"
    assert any("registry versions unknown" in m for m in h.missing)


def test_shared_sdk_version_and_registry_are_told(project: Project) -> None:
    seeded(project)
    cfg = project.config()
    found = health_sources.load_reports([cfg.reports_dir])
    h = health.collect(
        cfg,
        tags=MirrorLedger(cfg.mirror_ledger).tags,
        releases=ReleaseLedger(cfg.release_ledger).releases,
        patches={},
        sync=found.sync,
        smoke_reports=found.smoke,
        sdk_versions={sha(1): "0.9.3"},
        registry_url="http://127.0.0.1:4873/",
        registry_versions=["0.9.4"],
        now=NOW,
    )
    npm = {r.version: (r.npm.status, r.npm.why) for r in h.releases}
    assert npm["0.14.3"] == (
        "not-published",
        f"SDK 0.9.3 already published as 0.9.3 from {TAG.format('0.14.2')}",
    )
    assert npm["0.17.0"][0] == "on-registry"
    assert npm["0.14.2"] == ("missing-on-registry", "in the ledger, not on the registry")
    assert not any("registry" in m for m in h.missing)


def test_unreachable_registry_is_unknown_not_an_error(project: Project) -> None:
    versions, why = health_sources.registry_versions(
        "http://127.0.0.1:9/", "@botiverse/kimi-code-sdk"
    )
    assert versions is None and "unreachable" in why


def test_health_task_writes_page_json_and_summary(project: Project, tmp_path: Path) -> None:
    seeded(project)
    out = tmp_path / "site"
    summary = tmp_path / "summary.md"
    cp = project.invoke("health", "--out", str(out), env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == str((out / "index.html").resolve())
    data = json.loads((out / "health.json").read_text())
    assert data["schema"] == 1 and data["kind"] == "health"
    assert len(data["releases"]) == 4 and data["counts"]["upstream-break"] == 1
    md = summary.read_text()
    assert md == (out / "health.md").read_text()
    assert "| 0.19.0 |" in md and "✖ upstream-break" in md
    assert f"culprit: `{sha(77, 'b')[:12]} sdk:" in md
    page = (out / "index.html").read_text()
    assert "<script" not in page and "http" not in re.sub(r"http://127\.0\.0\.1:9/", "", page)
    assert page.count('<tr class="release"') == 4


def test_missing_reports_give_a_page_that_says_so(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    broken = tmp_path / "reports"
    broken.mkdir()
    (broken / "smoke.json").write_text('{"kind": "smoke", "results": "zz"}')
    cp = project.invoke("health", "--out", str(out), "--reports", str(broken))
    assert cp.returncode == 0, cp.stderr
    page = (out / "index.html").read_text()
    assert "What is missing" in page
    for words in ("no mirrored release", "no sync report", "no smoke report", "unknown"):
        assert words in page
    assert "unreadable report skipped" in page and "results" in page
    assert json.loads((out / "health.json").read_text())["releases"] == []


def test_bad_flags_are_one_error_line_and_nothing_written(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "site"
    cp = project.invoke("health", "--out", str(out), "--registry", "http://u:p@host/")
    assert cp.returncode == 2 and cp.stderr.count("error:") == 1 and "p@" not in cp.stderr
    assert not out.exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cp = project.invoke("health", "--out", str(a_file))
    assert cp.returncode == 2 and "is a file" in cp.stderr


def thousand(project: Project) -> health.Health:
    cfg = project.config()
    tags = {
        TAG.format(f"0.{i // 100}.{i % 100}"): TagRecord(
            TAG.format(f"0.{i // 100}.{i % 100}"), sha(i, "a"), sha(i), NOW - timedelta(hours=i)
        )
        for i in range(1000)
    }
    runs = [
        smoke(name, rec.commit, (TC_A, "pass" if i % 7 else "fail", None if i % 7 else "network"))
        for i, (name, rec) in enumerate(tags.items())
    ]
    return health.collect(
        cfg, tags=tags, releases={}, patches={}, sync=None, smoke_reports=runs, now=NOW
    )


def test_a_thousand_releases_fold_the_older_ones(project: Project) -> None:
    h = thousand(project)
    page = health_html.render(h)
    assert page.count('<tr class="release"') == 1000
    open_part, _, folded = page.partition("<details>")
    assert open_part.count('<tr class="release"') == health_html.SHOWN
    assert "980 older release(s)" in folded
    newest = re.findall(r'data-tag="([^"]+)"', page)
    assert newest[:2] == [TAG.format("0.9.99"), TAG.format("0.9.98")]
    md = health_markdown.render(h)
    assert md.count("\n| 0.") == health_markdown.SHOWN and "970 older release(s)" in md


# --- in a real browser --------------------------------------------------------------------------


def artifacts_dir(tmp_path: Path) -> Path:
    where = tmp_path / "screenshots"
    where.mkdir(exist_ok=True)
    return where


def browse(page_file: Path, shots: Path, name: str) -> dict[str, Any]:
    """Open the page in headless Chromium with JavaScript off, at 1280 and 390 px wide."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"errors": [], "requests": [], "rows": {}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width in (1280, 390):
                ctx = browser.new_context(
                    viewport={"width": width, "height": 900}, java_script_enabled=False
                )
                page = ctx.new_page()
                page.on(
                    "console",
                    lambda m: seen["errors"].append(m.text) if m.type == "error" else None,
                )
                page.on("pageerror", lambda e: seen["errors"].append(str(e)))
                page.on("request", lambda r: seen["requests"].append(r.url))
                page.goto(page_file.resolve().as_uri(), wait_until="load")
                seen["rows"][width] = page.locator("tr.release").count()
                seen["visible_rows"] = page.locator("tr.release:visible").count()
                seen["heading"] = page.locator("h1").inner_text()
                shot = shots / f"{name}-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                ctx.close()
        finally:
            browser.close()
    extra = os.environ.get("SDKMIRROR_ARTIFACTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for png in shots.glob(f"{name}-*.png"):
            shutil.copy2(png, Path(extra) / png.name)
    print(f"screenshots: {shots}")
    return seen


@pytest.mark.slow
def test_page_in_headless_chromium(project: Project, tmp_path: Path) -> None:
    seeded(project)
    out = tmp_path / "site"
    cp = project.invoke("health", "--out", str(out))
    assert cp.returncode == 0, cp.stderr
    page_file = Path(cp.stdout.strip())
    shots = artifacts_dir(tmp_path)
    seen = browse(page_file, shots, "health")
    assert seen["errors"] == []
    assert seen["requests"] == [page_file.resolve().as_uri()] * 2  # nothing else is fetched
    assert seen["rows"] == {1280: 4, 390: 4}  # one row per mirrored release
    assert "mirror health" in seen["heading"]
    for width in (1280, 390):
        png = shots / f"health-{width}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(png.read_bytes()[16:20], "big") == width


@pytest.mark.slow
def test_a_thousand_releases_in_headless_chromium(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "site"
    page_file = health_site.write(thousand(project), out)
    seen = browse(page_file, artifacts_dir(tmp_path), "health-1000")
    assert seen["errors"] == []
    assert seen["rows"] == {1280: 1000, 390: 1000}
    assert seen["visible_rows"] == health_html.SHOWN  # the older ones are folded


def test_sdk_versions_are_read_from_the_work_repository(project: Project, sample_upstream) -> None:
    cfg = project.config()
    up = sample_upstream(cfg.work_repo)  # the work repository holds the mirrored commits
    from sdkmirror.devtools import sample

    wanted = {up.tags[sample.TAG.format(r.cli)]: r.sdk for r in sample.DEFAULT_RELEASES}
    assert health_sources.sdk_versions(cfg, [*wanted, "f" * 40]) == wanted


def test_one_release_is_one_row_and_nothing_folded(project: Project) -> None:
    cfg = project.config()
    name = TAG.format("0.14.2")
    h = health.collect(
        cfg,
        tags={name: TagRecord(name, sha(0, "a"), sha(0), NOW)},
        releases={},
        patches={},
        sync=None,
        smoke_reports=[smoke(name, sha(0), (TC_B, "pass", None))],
        now=NOW,
    )
    page = health_html.render(h)
    assert page.count('<tr class="release"') == 1 and "<details>" not in page
    assert h.latest_green == name and [c.state for c in h.releases[0].cells] == ["pass"]
