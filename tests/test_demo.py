"""`nox -s demo` end to end: sync, smoke, publish to a real Verdaccio, consumer, notes, status,
and the commands it prints; Ctrl-C stops the registry. Plus the step printer on its own."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from gitrepos import GitRepos

from sdkmirror.core.errors import MirrorError
from sdkmirror.devtools import demo, sample
from sdkmirror.mirror.releases import ReleaseLedger

REPO_ROOT = Path(__file__).resolve().parents[1]
NPM_NAME = "@botiverse/kimi-code-sdk"
TAG = "@moonshot-ai/kimi-code@{}"
# The demo publishes the sample's two newest releases.
OLDER, NEWER = sample.DEFAULT_RELEASES[-2:]
# One worker runs this module, so the demo the tests read is run once.
pytestmark = pytest.mark.xdist_group("demo")


def demo_argv(where: Path) -> list[str]:
    """What `nox -s demo` runs inside its virtualenv."""
    return [sys.executable, "-m", "sdkmirror", "demo", "--dir", str(where)]


def demo_env() -> dict[str, str]:
    env = {**os.environ, "CI": "true", "npm_config_fetch_retries": "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "scripts"), env.get("PYTHONPATH", "")])
    return env


def build_cache_of(where: Path) -> Path:
    """The demo run's own build cache: it builds for real the first time."""
    return where.with_name(f"{where.name}-build-cache")


@dataclass
class DemoRun:
    dir: Path
    returncode: int
    output: str

    def lines(self, pattern: str) -> list[str]:
        return [ln for ln in self.output.splitlines() if re.search(pattern, ln)]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    where = tmp_path_factory.mktemp("demo")
    cp = subprocess.run(
        demo_argv(where),
        cwd=REPO_ROOT,
        env={**demo_env(), "SDKMIRROR_BUILD_CACHE": str(build_cache_of(where))},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return DemoRun(where, cp.returncode, cp.stdout + cp.stderr)


# --- the whole run ----------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_exits_0_with_one_line_per_step_and_a_summary(demo_run: DemoRun) -> None:
    assert demo_run.returncode == 0, demo_run.output[-4000:]
    assert "Traceback" not in demo_run.output
    steps = demo_run.lines(r"^(ok  |FAIL) +\d+\.\d+s  ")
    assert len(steps) >= 15 and not [s for s in steps if s.startswith("FAIL")]
    assert "demo summary" in demo_run.output and re.search(r"total .*\d+\.\ds", demo_run.output)
    # what the library printed went to a log per step, not to the reader
    assert "==> pnpm install" not in demo_run.output
    assert any("==> pnpm install" in p.read_text() for p in (demo_run.dir / "logs").glob("*"))


@pytest.mark.slow
def test_demo_sync_pushed_every_release_tag(demo_run: DemoRun) -> None:
    refs = GitRepos.refs(demo_run.dir / "origin.git")
    upstream = GitRepos.refs(demo_run.dir / "upstream.git")
    versions = [r.cli for r in sample.DEFAULT_RELEASES]
    for v in versions:
        assert refs[f"refs/tags/{TAG.format(v)}"] == upstream[f"refs/tags/{TAG.format(v)}"]
        assert f"refs/heads/release/v{v}" in refs
    assert refs["refs/heads/upstream-main"] == upstream["refs/heads/main"]
    report = json.loads((demo_run.dir / "state" / "reports" / "sync.json").read_text())
    n = len(versions)
    assert report["status"] == "updated" and len(report["new_tags"]) == n
    assert demo_run.lines(rf"invoke sync: updated: {n} tags, {n} release branches")


@pytest.mark.slow
def test_demo_smoke_verdict_per_toolchain(demo_run: DemoRun) -> None:
    reports = sorted((demo_run.dir / "state" / "reports").glob("smoke-*.json"))
    verdicts = {
        json.loads(p.read_text())["results"][0]["toolchain"]["node"]: json.loads(p.read_text())[
            "results"
        ][0]["status"]
        for p in reports
    }
    assert verdicts == {"24.15.0": "pass", "24.19.0": "pass", "22.20.0": "unsupported"}
    assert demo_run.lines(r"smoke node 24\.15\.0 \+ pnpm 10\.33\.0: pass \(install")
    assert demo_run.lines(r"smoke node 22\.20\.0 \+ pnpm 10\.33\.0: unsupported: node 22")


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.mark.slow
def test_demo_published_both_releases_with_the_ledger_integrity(demo_run: DemoRun) -> None:
    storage = demo_run.dir / "registry" / "storage" / NPM_NAME
    manifest = json.loads((storage / "package.json").read_text())
    ledger = ReleaseLedger(demo_run.dir / "ledger" / "releases.toml").releases
    assert sorted(ledger) == sorted([OLDER.sdk, NEWER.sdk])
    assert manifest["dist-tags"]["latest"] == NEWER.sdk
    for version, tag in ((OLDER.sdk, OLDER.cli), (NEWER.sdk, NEWER.cli)):
        integrity = manifest["versions"][version]["dist"]["integrity"]
        tarball = (storage / f"kimi-code-sdk-{version}.tgz").read_bytes()
        assert integrity == _sri(tarball) == ledger[version].integrity
        assert ledger[version].upstream_tag == TAG.format(tag)
        assert demo_run.lines(rf"publish\.build {tag}: \S*kimi-code-sdk-{version}\.tgz: sha512-")
        assert demo_run.lines(
            rf"publish\.upload {tag} --dry-run: would upload {NPM_NAME}@{version} "
        )
        assert demo_run.lines(rf"publish\.upload {tag} --no-dry-run: {NPM_NAME}@{version} ")
        assert demo_run.lines(rf"publish\.check {tag}: installed from the registry")


@pytest.mark.slow
def test_demo_consumer_sees_the_newest_version(demo_run: DemoRun) -> None:
    installed = demo_run.dir / "consumer" / "node_modules" / NPM_NAME / "package.json"
    assert json.loads(installed.read_text())["version"] == NEWER.sdk
    integrity = ReleaseLedger(demo_run.dir / "ledger" / "releases.toml").releases[NEWER.sdk]
    (line,) = demo_run.lines(r"into an empty consumer and import it: ")
    assert f"{NPM_NAME}@{NEWER.sdk}, " in line
    seen = json.loads((demo_run.dir / "demo.json").read_text())["consumer"]["exports"]
    assert set(NEWER.exports) <= set(seen)  # the bundler's one-letter helpers come along
    assert f"integrity {integrity.integrity} (as in the release ledger)" in line
    # today's sample ships self-contained declarations: the strict check passes
    tsc = re.escape(f"tsc {demo.TYPESCRIPT_VERSION} --strict, skipLibCheck false")
    assert demo_run.lines(rf"^ok .*{tsc}: \d+ declared exports compile in a strict consumer")
    summary = json.loads((demo_run.dir / "demo.json").read_text())
    assert summary["consumer"]["typecheck"] is True


@pytest.mark.slow
def test_demo_prints_the_interface_notes_and_releases_table(demo_run: DemoRun) -> None:
    out = demo_run.output
    removed = sorted(set(OLDER.exports) - set(NEWER.exports))
    verdict = "breaking" if removed else "(additive|unchanged)"
    pair = f"{re.escape(TAG.format(OLDER.cli))} -> {re.escape(TAG.format(NEWER.cli))}"
    assert demo_run.lines(rf"interface notes {pair}: {verdict}$")
    assert f"## {NEWER.sdk}" in out
    assert ("### Removed (breaking)" in out) == bool(removed)
    if removed:
        section = out.split("### Removed (breaking)", 1)[1].split("\n\n", 2)[1]
        for name in removed:
            assert name in section, section
    table = (demo_run.dir / "RELEASES.md").read_text()
    for r in (NEWER, OLDER):
        row = f"| {r.sdk} | `{TAG.format(r.cli)}` | {r.sdk} |"
        assert row in table and row in out


@pytest.mark.slow
def test_demo_ends_with_status_and_hints_that_run_as_printed(demo_run: DemoRun) -> None:
    assert demo_run.lines(r"^ok .*invoke status: ok$")
    assert "mirror status: ok" in demo_run.output
    # The smoke steps built the newest release tag: status names it green, never "none".
    newest = TAG.format(NEWER.cli)
    assert demo_run.lines(
        rf"smoke node 24\.15\.0 \+ pnpm 10\.33\.0: pass \(.*\) at {re.escape(newest)}$"
    )
    assert f"latest green tag: {newest}" in demo_run.output
    assert "latest green tag: none" not in demo_run.output
    # Long steps said how far they were; the closing block names real files.
    assert demo_run.lines(r"^        publish\.build \S+: .+ \(\d+s\) \.\.\.$")
    where = demo_run.output[demo_run.output.index("Where things are") :]
    tarballs = [ln.split()[-1] for ln in where.splitlines() if ln.endswith(".tgz")]
    assert len(tarballs) == 2 and all(Path(t).is_file() for t in tarballs)
    assert f"  logs      {demo_run.dir / 'logs'} " in where
    assert where.index("Where things are") < where.index("Keep exploring")
    assert re.search(rf"^npm\s+│?\s*{re.escape(NEWER.sdk)}\s", demo_run.output, re.M)
    text = demo_run.output[demo_run.output.index("Keep exploring") :]
    hints = [shlex.split(ln) for ln in text.splitlines() if ln.startswith("  env ")]
    tasks = [argv[argv.index("--search-root") + 2] for argv in hints]
    assert tasks == ["sync", "verify", "status", "publish"]
    expect = {
        "sync": "sync: noop",
        "verify": f"verify: ok ({len(sample.DEFAULT_RELEASES)} mirror tag(s)",
        "status": "mirror status: ok",
        "publish": "dry run: nothing uploaded",
    }
    before = GitRepos.refs(demo_run.dir / "origin.git")
    for argv, task in zip(hints, tasks, strict=True):
        assert str(demo_run.dir / "origin.git") in argv
        assert Path(argv[3]).is_absolute()  # the interpreter's own invoke, no PATH needed
        # The build cache the demo ran with: a maintainer's default one, shared by both.
        env = {**os.environ, "SDKMIRROR_BUILD_CACHE": str(build_cache_of(demo_run.dir))}
        cp = subprocess.run(
            argv, cwd="/", env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert cp.returncode == 0, f"{shlex.join(argv)}:\n{cp.stderr[-3000:]}"
        assert expect[task] in cp.stdout + cp.stderr
    assert GitRepos.refs(demo_run.dir / "origin.git") == before


@pytest.mark.slow
def test_a_second_demo_run_rebuilds_nothing(demo_run: DemoRun) -> None:
    """Run last of the module's demo tests: it runs the demo again in the same directory."""
    assert any("==> pnpm build" in p.read_text() for p in (demo_run.dir / "logs").glob("*"))
    cp = subprocess.run(
        demo_argv(demo_run.dir),
        cwd=REPO_ROOT,
        env={**demo_env(), "SDKMIRROR_BUILD_CACHE": str(build_cache_of(demo_run.dir))},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    again = DemoRun(demo_run.dir, cp.returncode, cp.stdout + cp.stderr)
    assert again.returncode == 0, again.output[-3000:]
    logs = [p.read_text() for p in (demo_run.dir / "logs").glob("*")]
    assert logs and not any("==> pnpm" in text for text in logs)  # no install, no build
    assert sum("build cache hit" in text for text in logs) >= 4  # 2 smoke, 2 publish (+ notes)
    assert again.lines(r"smoke node 24\.15\.0 \+ pnpm 10\.33\.0: pass \(restore")


# --- Ctrl-C -----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_ctrl_c_stops_the_registry_and_exits_130(tmp_path: Path) -> None:
    log = tmp_path / "demo.out"
    with log.open("w") as fh:
        p = subprocess.Popen(
            demo_argv(tmp_path / "demo"),
            cwd=REPO_ROOT,
            env=demo_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        started = None
        deadline = time.monotonic() + 600
        while started is None and time.monotonic() < deadline and p.poll() is None:
            started = re.search(
                r"start Verdaccio on loopback: http://127\.0\.0\.1:(\d+)/ \(pid (\d+)\)",
                log.read_text(),
            )
            time.sleep(0.2)
        assert started, log.read_text()[-3000:]
        port, pid = int(started.group(1)), int(started.group(2))
        assert _alive(pid)
        # The first publish step has opened its log: the demo is inside that publish now.
        logs, deadline = tmp_path / "demo" / "logs", time.monotonic() + 600
        while not list(logs.glob("*-publish-build-*.log")) and p.poll() is None:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = log.read_text()
    assert [ln for ln in out.splitlines() if "interrupted" in ln] == [
        ln for ln in out.splitlines() if ln.startswith("interrupted (SIGINT)")
    ]
    assert len([ln for ln in out.splitlines() if "interrupted" in ln]) == 1, out
    assert "Traceback" not in out
    assert not _alive(pid)
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("127.0.0.1", port))


# --- the step printer -------------------------------------------------------------------------


def test_steps_print_one_line_each_and_keep_library_output_in_logs(tmp_path: Path) -> None:
    stream = io.StringIO()
    steps = demo.Steps(tmp_path / "logs", stream=stream)
    with steps("1. first", "a step") as s:
        print("library chatter")
        sys.stderr.write("more chatter\n")
        s.detail = "did it"
    with steps("1. first", "a step that fails softly") as s:
        s.fail("went wrong")
    with pytest.raises(MirrorError), steps("2. second", "a step that fails"):
        raise MirrorError("the reason\nsecond line")
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"ok +\d+\.\ds  a step: did it", lines[0])
    assert re.fullmatch(r"FAIL +\d+\.\ds  a step that fails softly: went wrong", lines[1])
    assert re.fullmatch(r"FAIL +\d+\.\ds  a step that fails: the reason \(log: .*\.log\)", lines[2])
    assert "chatter" not in stream.getvalue()
    assert (tmp_path / "logs" / "01-a-step.log").read_text() == "library chatter\nmore chatter\n"
    assert steps.any_failed and [s.failed for s in steps.done] == [False, True, True]


def test_plain_output_gets_a_progress_line_per_stage_with_its_seconds(tmp_path: Path) -> None:
    from sdkmirror.infra import console

    stream = io.StringIO()
    steps = demo.Steps(tmp_path / "logs", stream=stream)
    with steps("1", "Node 24.15.0", announce=True) as s:
        with console.step("exporting the tree"):
            pass
        with console.step("installing Node 24.15.0"):
            pass
        s.detail = "downloaded"
    with steps("1", "a quiet step") as s, console.step("building"):
        pass
    lines = stream.getvalue().splitlines()
    # A download step names only its downloads; any other step names each stage it enters.
    assert re.fullmatch(r" {8}Node 24\.15\.0: installing Node 24\.15\.0 \(\d+s\) \.\.\.", lines[0])
    assert re.fullmatch(r"ok +\d+\.\ds  Node 24\.15\.0: downloaded", lines[1])
    assert re.fullmatch(r" {8}a quiet step: building \(\d+s\) \.\.\.", lines[2])
    assert re.fullmatch(r"ok +\d+\.\ds  a quiet step", lines[3]) and len(lines) == 4


def test_an_interrupted_step_prints_no_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    steps = demo.Steps(tmp_path / "logs", stream=stream)
    with pytest.raises(demo.Interrupted), steps("1", "long step"):
        raise demo.Interrupted(signal.SIGINT)
    assert stream.getvalue() == "" and steps.done == [] and steps.current is None


@pytest.mark.slow
def test_demo_writes_the_health_page(demo_run: DemoRun) -> None:
    [line] = demo_run.lines(r"^health page: ")
    page = Path(line.removeprefix("health page: ").strip())
    assert page == demo_run.dir / "health" / "index.html" and "<table" in page.read_text()
    data = json.loads((page.parent / "health.json").read_text())
    versions = [r.cli for r in sample.DEFAULT_RELEASES]
    assert [r["version"] for r in data["releases"]] == versions[::-1]
    published = {r["version"]: r["npm"]["version"] for r in data["releases"]}
    assert published[NEWER.cli] == NEWER.sdk and published[OLDER.cli] == OLDER.sdk
    assert data["latest_smoke"]["ref"] == sample.TAG.format(versions[-1])  # the one published
