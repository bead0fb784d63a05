"""`nox -s demo`: the whole job on the embedded sample, in a scratch directory.

1. sync the sample upstream into an empty origin, smoke-build with every configured toolchain;
2. start Verdaccio on loopback and publish the two newest releases the way a maintainer does;
3. install the newest version into an empty consumer, import it, type-check it strictly;
4. print the interface notes between the two releases and the RELEASES.md table;
5. `invoke status`; a closing block says where the tarballs, reports and logs are and prints
   the commands to keep exploring the scratch repositories.

Each step prints one line with its time; a long step also prints a progress line (with the
seconds so far) for each stage the library announces. What the library prints goes to a log
per step.
Toolchains, Verdaccio and TypeScript come from the project's cache.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import tomlkit
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sdkmirror.core import config as config_mod
from sdkmirror.core import reports
from sdkmirror.core.errors import MirrorError, UsageError, VerificationFailed
from sdkmirror.core.mirror_tag import Version
from sdkmirror.devtools import registry_server, sample
from sdkmirror.infra import gitio, npmtool, proc, tomlstore, toolchain
from sdkmirror.infra.gitio import ls_remote
from sdkmirror.mirror import source
from sdkmirror.mirror.releases import ReleaseLedger
from sdkmirror.ops import health_site
from sdkmirror.release import notes as release_notes
from sdkmirror.release.declarations import consumer as typecheck
from sdkmirror.release.publish import build as publish_build
from sdkmirror.release.publish import check as publish_check
from sdkmirror.release.publish import pipeline as publish
from sdkmirror.release.publish import plan as publish_plan
from sdkmirror.release.publish import upload as publish_upload
from sdkmirror.smoke import build as smoke

TYPESCRIPT_VERSION = npmtool.TYPESCRIPT_VERSION
# The scratch directory's entries the demo owns; a rerun replaces exactly these.
OWNED = (
    "upstream.git",
    "origin.git",
    "state",
    "ledger",
    "notes",
    "RELEASES.md",
    "registry",
    "consumer",
    "logs",
    "pyproject.toml",
    "health",
)
EXIT_STEP_FAILED = 1


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: unwind so every `finally` (the registry's stop) runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # A second Ctrl-C (or the SIGINT a runner forwards) must not cut the cleanup short.
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


# --- one line per step ------------------------------------------------------------------------


@dataclass
class Step:
    title: str
    phase: str
    detail: str = ""
    failed: bool = False
    seconds: float = 0.0
    log: Path | None = None

    def fail(self, detail: str) -> None:
        self.detail, self.failed = detail, True


@dataclass
class Steps:
    """A spinner with the elapsed time on a terminal, plain lines in CI or a pipe (a progress
    line with the seconds so far for each stage the library announces); what the library
    prints inside a step goes to that step's log file instead."""

    logs: Path
    stream: Any = field(default_factory=lambda: sys.stderr)
    done: list[Step] = field(default_factory=list)
    current: Step | None = None

    def __post_init__(self) -> None:
        self.term = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.live = self.term.is_terminal and not os.environ.get("CI")
        self.logs.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def __call__(self, phase: str, title: str, *, announce: bool = False) -> Iterator[Step]:
        """Run a step. A `MirrorError` fails the step and propagates; a step that only marks
        itself failed (`step.fail`) lets the run keep going. With `announce`, plain output gets a
        line for each download the library starts (a spinner names it on a terminal)."""
        s = Step(title, phase)
        s.log = (
            self.logs / f"{len(self.done) + 1:02d}-{re.sub(r'[^a-z0-9]+', '-', title.lower())}.log"
        )
        self.current = s
        start = time.monotonic()
        try:
            with ExitStack() as stack:
                fh = stack.enter_context(s.log.open("w", encoding="utf-8"))
                show: Callable[[str], None] | None = None
                if self.live:
                    progress = stack.enter_context(
                        Progress(
                            SpinnerColumn(),
                            TextColumn("{task.description}"),
                            TimeElapsedColumn(),
                            console=self.term,
                            transient=True,
                            redirect_stdout=False,
                            redirect_stderr=False,
                        )
                    )
                    task = progress.add_task(title, total=None)

                    def show(sub: str) -> None:
                        progress.update(task, description=f"{title}: {sub}")
                else:
                    # No spinner: a publish.build runs 40-50 s, so each stage the library
                    # announces gets a line with the seconds so far. `announce` steps (tool
                    # downloads) name only their downloads.
                    def show(sub: str) -> None:
                        if announce and not sub.startswith("installing "):
                            return
                        self.say(f"        {title}: {sub} ({time.monotonic() - start:.0f}s) ...")

                log = _Log(fh, show)
                stack.enter_context(redirect_stdout(log))
                stack.enter_context(redirect_stderr(log))
                yield s
        except MirrorError as exc:
            s.fail(f"{exc.message.splitlines()[0][:160]} (log: {s.log})")
            self._line(s, start)
            raise
        except BaseException:
            self.current = None  # interrupted: the run prints the one line that says so
            raise
        self._line(s, start)

    def _line(self, s: Step, start: float) -> None:
        s.seconds = time.monotonic() - start
        self.current = None
        self.done.append(s)
        mark = ("✗" if s.failed else "✓") if self.live else ("FAIL" if s.failed else "ok  ")
        style = "red" if s.failed else ("green" if self.live else None)
        text = f"{mark} {s.seconds:5.1f}s  {s.title}" + (f": {s.detail}" if s.detail else "")
        self.term.print(text, style=style, markup=False)

    def say(self, text: str = "", style: str | None = None) -> None:
        self.term.print(text, style=style, markup=False)

    def show(self, renderable: object) -> None:
        self.term.print(renderable)

    def summary(self) -> None:
        phases: dict[str, list[Step]] = {}
        for s in self.done:
            phases.setdefault(s.phase, []).append(s)
        from rich.table import Table

        t = Table(title="demo summary", title_justify="left")
        for col in ("", "result", "time"):
            t.add_column(col, overflow="fold")
        for phase, group in phases.items():
            failed = [s.title for s in group if s.failed]
            result = "failed: " + ", ".join(failed) if failed else "ok"
            t.add_row(phase, result, f"{sum(s.seconds for s in group):.1f}s")
        t.add_row("total", "", f"{sum(s.seconds for s in self.done):.1f}s")
        self.show(t)

    @property
    def any_failed(self) -> bool:
        return any(s.failed for s in self.done)


class _Log(io.TextIOBase):
    """A step's log file that also passes the library's `==> what` lines to `show`: the
    spinner names the sub-step, and a download in plain mode gets a line of its own."""

    def __init__(self, fh: TextIO, show: Callable[[str], None] | None) -> None:
        self.fh, self.show = fh, show

    def write(self, text: str) -> int:
        self.fh.write(text)
        if self.show is not None:
            for line in text.splitlines():
                if line.startswith("==> "):
                    self.show(line[4:].strip())
        return len(text)

    def flush(self) -> None:
        self.fh.flush()

    def tell(self) -> int:
        return self.fh.tell()


# --- the scratch project ----------------------------------------------------------------------


def write_config(project_pyproject: Path, dest: Path, *, upstream: str) -> Path:
    """A pyproject.toml in `dest` with the project's [tool.sdkmirror], state kept in `dest`."""
    doc = tomlkit.parse(project_pyproject.read_text(encoding="utf-8"))
    table = doc["tool"]["sdkmirror"]
    project = config_mod.load(project_pyproject)
    table["upstream"] = upstream
    table["work_dir"] = "state"
    # Ledgers, notes and RELEASES.md are relative paths, so they already land beside this file.
    table["pnpm_store"] = str(project.pnpm_store.resolve())
    out = tomlkit.document()
    out.add(tomlkit.comment("Scratch configuration for `nox -s demo`; safe to delete."))
    out["tool"] = {"sdkmirror": table}
    path = dest / "pyproject.toml"
    tomlstore.write(path, out)
    return path


@dataclass
class Demo:
    tmp: Path
    project_root: Path
    steps: Steps
    cache: Path
    upstream: Path = field(init=False)
    origin: Path = field(init=False)
    pyproject: Path = field(init=False)

    def __post_init__(self) -> None:
        self.upstream, self.origin = self.tmp / "upstream.git", self.tmp / "origin.git"
        self.pyproject = self.tmp / "pyproject.toml"

    @property
    def cfg(self) -> config_mod.Config:
        return config_mod.load(self.pyproject)

    def env(self) -> dict[str, str]:
        return {
            config_mod.CONFIG_ENV: str(self.pyproject),
            config_mod.CACHE_ENV: str(self.cache),
        }

    def invoke(self, *args: str) -> list[str]:
        """`invoke ARGS` as a reader can paste it: the environment that points the tasks at
        the scratch project, and the `invoke` of the interpreter running this demo."""
        assigns = [f"{k}={v}" for k, v in self.env().items()]
        return ["env", *assigns, *runner(), "--search-root", str(self.project_root), *args]

    def run_invoke(self, *args: str) -> proc.Result:
        env = {**os.environ, "COLUMNS": str(max(self.steps.term.width, 100))}
        return proc.run(self.invoke(*args), cwd=self.tmp, env=env, check=False, timeout=900)


def runner() -> list[str]:
    """The `invoke` beside this interpreter (a nox session's virtualenv), by absolute path."""
    exe = Path(os.path.abspath(sys.executable))  # the venv's own path: no symlink resolved
    script = exe.parent / "invoke"
    return [str(script)] if script.is_file() else [str(exe), "-m", "invoke"]


# --- 1. sync and smoke ------------------------------------------------------------------------


def sync_and_smoke(d: Demo) -> tuple[list[str], config_mod.ToolchainSpec]:
    """Returns the two newest release tags and the primary toolchain."""
    steps, phase = d.steps, "1. sync + smoke"
    with steps(phase, "sample upstream and an empty origin") as s:
        up = sample.create_upstream(d.upstream)
        gitio.run("init", "-q", "--bare", "-b", "main", d.origin)
        write_config(d.project_root / "pyproject.toml", d.tmp, upstream=str(d.upstream))
        s.detail = f"{len(up.tags)} release tags, main at {up.head[:12]}"
    cfg = d.cfg
    tags = sorted(up.tags, key=lambda name: cfg.tags.version_of(name) or Version(0, 0, 0))[-2:]
    report = cfg.reports_dir / "sync.json"
    with steps(phase, "invoke sync") as s:
        res = d.run_invoke(
            "sync",
            "--upstream",
            str(d.upstream),
            "--origin",
            str(d.origin),
            "--report",
            str(report),
        )
        print(res.output)
        if res.returncode != 0:
            raise MirrorError(f"invoke sync exited {res.returncode}", exit_code=res.returncode)
        data = json.loads(report.read_text(encoding="utf-8"))
        refs = ls_remote(str(d.origin), name="origin").refs
        pushed = [r for r in refs if r.startswith("refs/tags/")]
        s.detail = (
            f"{data['status']}: {len(pushed)} tags, {len(data['new_release_branches'])} release "
            f"branches and {cfg.mirror_branch} pushed to origin"
        )

    tree = cfg.work_dir / "demo" / "mirror"
    shutil.rmtree(tree, ignore_errors=True)
    source.materialize(str(d.origin), cfg.mirror_branch, tree)
    for spec in cfg.toolchains:
        # The newest release tag, the one the demo publishes: `invoke status` then counts it as
        # the latest green tag, so the smoke verdict and the status say the same thing.
        # The first smoke build with a toolchain downloads it: `announce` shows that.
        with steps(phase, f"smoke node {spec.node} + pnpm {spec.pnpm}", announce=True) as s:
            result = smoke.run_smoke(
                cfg, spec, upstream_url=str(d.origin), ref=tags[-1], keep=False
            )
            e = result.entry
            took = ", ".join(f"{k} {v:.1f}s" for k, v in e["durations"].items() if v is not None)
            s.detail = f"{e['status']}" + (f" ({took})" if took else f": {e['reason']}")
            s.detail += f" at {tags[-1]}"
            if result.failed:
                s.fail(f"{e['status']}: {e['category']}: {e['reason']}")
    if steps.any_failed:
        raise VerificationFailed("the sample does not build here; read the smoke step's log")
    return tags, publish_build.primary_spec(cfg, tree)


def _cached_or_installed(install: Callable[[], object]) -> str:
    """Run an install inside a step; the installers print only when they download."""
    before = sys.stdout.tell()
    install()
    return "cached" if sys.stdout.tell() == before else "downloaded"


# --- 2. publish through an embedded registry --------------------------------------------------


@dataclass(frozen=True)
class Published:
    tag: str
    version: str
    dist_tag: str
    integrity: str
    exports: list[str]
    tarball: str


def publish_release(
    d: Demo, tag: str, registry: registry_server.Registry, origin: str
) -> Published:
    """Publish one mirror tag through the maintainer's stages: `publish.build` (with every
    package check), `publish.upload` as a dry run and then for real, `publish.check`, and the
    release ledger entry `invoke publish` records."""
    cfg = d.cfg
    version = str(cfg.tags.version_of(tag))
    request = publish_plan.Request(source_tag=tag, registry=registry.url, origin=origin)
    with d.steps("2. publish", f"publish.build {version}") as s:
        built = publish_build.build(cfg, request, d.tmp / "publish" / version)
        tc, m = built.built.toolchain, built.manifest
        s.detail = f"{built.tarball.name}: {m.integrity[:20]}..., {len(built.exports)} exports"
    expected = publish_upload.Expected(m.npm_name, m.npm_version, cfg.max_package_bytes)
    # The dry run first, as a maintainer would, then the real upload of the same bytes.
    for dry_run in (True, False):
        flag = "--dry-run" if dry_run else "--no-dry-run"
        with d.steps("2. publish", f"publish.upload {version} {flag}") as s:
            up = publish_upload.upload(
                tc,
                built.tarball,
                m.integrity,
                expected=expected,
                registry=registry.url,
                dist_tag=m.dist_tag,
                dry_run=dry_run,
            )
            if dry_run:
                s.detail = (
                    f"would upload {m.npm_name}@{m.npm_version} as {m.dist_tag}; nothing uploaded"
                )
            elif not up.published:
                raise VerificationFailed(
                    f"{m.npm_name}@{m.npm_version} was not uploaded; see the log"
                )
            else:
                s.detail = f"{m.npm_name}@{m.npm_version} ({m.dist_tag}) on {registry.url}"
    with d.steps("2. publish", f"publish.check {version}") as s:
        publish_check.check(
            tc,
            m.npm_version,
            npm_name=m.npm_name,
            registry=registry.url,
            workdir=d.tmp / "publish" / f"{version}-check",
            manifest=m,
        )
        if not publish.record(cfg, built, built.plan):
            raise VerificationFailed(f"{m.npm_name}@{m.npm_version} was already in the ledger")
        s.detail = "installed from the registry, imported, same integrity; recorded in the ledger"
    return Published(
        tag, m.npm_version, str(m.dist_tag), m.integrity, list(built.exports), str(built.tarball)
    )


def prepare_npm_tools(d: Demo, tc: toolchain.Toolchain) -> None:
    """Verdaccio, publint and TypeScript into the cache, in one step."""
    cache = d.cache
    tools: list[tuple[str, Callable[[], object]]] = [
        (
            f"Verdaccio {registry_server.VERDACCIO_VERSION}",
            lambda: registry_server.install(cache, tc),
        ),
        (
            f"publint {publish_build.PUBLINT_VERSION}",
            lambda: npmtool.install(
                cache, publish_build.PUBLINT, publish_build.PUBLINT_VERSION, tc
            ),
        ),
        (f"TypeScript {TYPESCRIPT_VERSION}", lambda: npmtool.typescript(tc, cache)),
    ]
    with d.steps("2. publish", ", ".join(title for title, _ in tools), announce=True) as s:
        done = [_cached_or_installed(install) for _, install in tools]
        s.detail = "downloaded" if "downloaded" in done else "cached"


# --- 3. what a consumer sees ------------------------------------------------------------------


def consume(
    d: Demo,
    tc: toolchain.Toolchain,
    registry: registry_server.Registry,
    newest: Published,
) -> dict[str, Any]:
    cfg, phase = d.cfg, "3. consumer"
    name = cfg.npm_name
    where = d.tmp / "consumer"
    scope = name.split("/")[0]
    with d.steps(phase, f"install {name}@latest into an empty consumer and import it") as s:
        route = [f"--{scope}:registry={registry.url}", f"{name}@latest"]
        exports = publish_build.consumer_import(tc, where, name, route)
        pkg = json.loads((where / "node_modules" / name / "package.json").read_text("utf-8"))
        seen = publish.registry_integrity(name, pkg["version"], registry.url)
        recorded = ReleaseLedger(cfg.release_ledger).get(pkg["version"])
        if pkg["version"] != newest.version:
            raise VerificationFailed(
                f"{name}@latest installed {pkg['version']}, not the newest release "
                f"{newest.version}; the dist-tags are wrong: `npm view {name} dist-tags`"
            )
        if recorded is None or seen != recorded.integrity:
            raise VerificationFailed(
                f"{name}@{pkg['version']}: the registry serves {seen}, the release ledger "
                f"records {recorded.integrity if recorded else 'nothing'}"
            )
        s.detail = (
            f"{name}@{pkg['version']}, {len(exports)} exports ({', '.join(exports)}), "
            f"integrity {seen} (as in the release ledger)"
        )
    with d.steps(phase, f"tsc {TYPESCRIPT_VERSION} --strict, skipLibCheck false") as s:
        try:
            checked = typecheck.typecheck(tc, d.cache, route, name, d.tmp / "consumer-types")
            s.detail = (
                f"{checked.count} declared exports compile in a strict consumer "
                f"({', '.join(checked.resolutions)} resolution)"
            )
        except typecheck.TypeCheckFailed as exc:
            s.fail(exc.message)  # shown as a failed step; the rest of the demo still runs
    return {
        "version": pkg["version"],
        "exports": exports,
        "integrity": seen,
        "typecheck": not d.steps.done[-1].failed,
    }


# --- 4. notes, 5. status and what to run next -------------------------------------------------


def notes_and_table(d: Demo, tags: Sequence[str], origin: str) -> None:
    cfg = d.cfg
    with d.steps("4. notes", f"interface notes {tags[0]} -> {tags[1]}") as s:
        text = release_notes.main(from_tag=tags[0], to_tag=tags[1], origin=origin, cfg=cfg)
        m = re.search(r"Interface change: \**(\w+)", text)
        s.detail = m.group(1) if m else text.strip().splitlines()[0]
    d.steps.say()
    d.steps.say(text.rstrip())
    d.steps.say()
    with d.steps("4. notes", f"{cfg.release_notes.name} from the release ledger") as s:
        table = [
            ln
            for ln in cfg.release_notes.read_text(encoding="utf-8").splitlines()
            if ln.startswith("|")
        ]
        s.detail = f"{len(table) - 2} release rows ({cfg.release_notes})"
    d.steps.say()
    d.steps.say("\n".join(table))
    d.steps.say()


def status(d: Demo) -> None:
    upstream, origin = str(d.upstream), str(d.origin)
    with d.steps("5. status", "invoke status") as s:
        res = d.run_invoke("status", "--upstream", upstream, "--origin", origin)
        print(res.output)
        verdict = re.search(r"mirror status: ([^\n]+)", res.output)
        s.detail = verdict.group(1).strip() if verdict else f"exit {res.returncode}"
        if res.returncode != 0:
            s.fail(f"exit {res.returncode}: {s.detail}")
    # The status table, from whichever stream carries it.
    stream = next((o for o in (res.stdout, res.stderr) if "mirror status" in o), res.output)
    d.steps.say(stream[max(stream.find("mirror status"), 0) :].rstrip())
    d.steps.say()


def closing(d: Demo, published: Sequence[Published], newest_tag: str) -> None:
    """Where the demo left its files, then the commands to keep exploring."""
    cfg, say = d.cfg, d.steps.say
    say(f"Where things are (scratch directory {d.tmp}):", style="bold")
    rows = [("tarballs", p.tarball) for p in published]
    rows += [
        ("reports", f"{cfg.reports_dir} (sync.json, smoke-*.json), {d.tmp / 'demo.json'}"),
        ("logs", f"{d.steps.logs} (one per step, numbered in run order)"),
        ("ledgers", f"{cfg.mirror_ledger}, {cfg.release_ledger}, {cfg.release_notes}"),
        ("git", f"{d.upstream} (the sample upstream), {d.origin} (the mirror)"),
        ("health", f"{d.tmp / 'health' / 'index.html'} (open it in a browser)"),
    ]
    for i, (what, where) in enumerate(rows):
        shown = what if i == 0 or rows[i - 1][0] != what else ""
        say(f"  {shown:<9} {where}")
    say()
    say("Keep exploring: each command runs as printed, from any directory. `env` points")
    d.steps.say(f"the tasks at the demo's scratch project in {d.tmp}; {shlex.join(runner())}")
    d.steps.say(f"is the demo's own invoke (tasks from {d.project_root}).")
    for why, cmd in hints(d, newest_tag):
        d.steps.say(f"  # {why}", style="dim")
        d.steps.say(f"  {shlex.join(cmd)}")
    d.steps.say()


def hints(d: Demo, newest_tag: str) -> list[tuple[str, list[str]]]:
    up, org = str(d.upstream), str(d.origin)
    return [
        (
            "sync again: a quiet day, nothing to fetch",
            d.invoke("sync", "--upstream", up, "--origin", org),
        ),
        ("audit origin against the ledger", d.invoke("verify", "--origin", org, "--upstream", up)),
        ("the mirror on one screen", d.invoke("status", "--upstream", up, "--origin", org)),
        (
            "a publish dry run against your npm registry (uploads nothing)",
            d.invoke("publish", "--source-tag", newest_tag, "--origin", org),
        ),
    ]


# --- the run ----------------------------------------------------------------------------------


def run(tmp: Path, *, project_root: Path) -> int:
    if tmp.exists() and not tmp.is_dir():
        raise UsageError(f"--dir {tmp} is a file; pass a scratch directory")
    tmp.mkdir(parents=True, exist_ok=True)
    tmp = tmp.resolve()
    for name in OWNED:
        path = tmp / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    project = config_mod.load(project_root / "pyproject.toml")
    d = Demo(tmp, project_root, Steps(tmp / "logs"), project.cache_dir.resolve())
    os.environ.update(d.env())
    # A loopback registry answers at once; npm's retries would only hide a stopped one.
    os.environ.setdefault("npm_config_fetch_retries", "0")
    tags, spec = sync_and_smoke(d)
    tc = toolchain.provision(spec, d.cache)
    prepare_npm_tools(d, tc)
    with ExitStack() as stack:
        with d.steps("2. publish", "start Verdaccio on loopback") as s:
            registry = stack.enter_context(
                registry_server.verdaccio(d.tmp / "registry", tc, cache_dir=d.cache)
            )
            s.detail = f"{registry.url} (pid {registry.process.pid})"
        stack.callback(_stopped, d, registry)
        saved = os.environ.get("NPM_CONFIG_USERCONFIG")
        stack.callback(_restore, "NPM_CONFIG_USERCONFIG", saved)
        stack.callback(_restore, "NODE_AUTH_TOKEN", os.environ.get("NODE_AUTH_TOKEN"))
        os.environ.update(registry.npm_env())
        published = [publish_release(d, tag, registry, str(d.origin)) for tag in tags]
        consumer = consume(d, tc, registry, published[-1])
    notes_and_table(d, tags, str(d.origin))
    status(d)
    d.steps.say(f"health page: {health_site.page(d.cfg, tmp / 'health')}")
    d.steps.summary()
    d.steps.say()
    reports.write_json(
        tmp / "demo.json",
        {
            "published": [p.__dict__ for p in published],
            "consumer": consumer,
            "hints": [cmd for _, cmd in hints(d, tags[-1])],
            "failed_steps": [s.title for s in d.steps.done if s.failed],
        },
        what="the demo summary",
    )
    closing(d, published, tags[-1])
    return EXIT_STEP_FAILED if d.steps.any_failed else 0


def _stopped(d: Demo, registry: registry_server.Registry) -> None:
    registry.stop()
    d.steps.say(f"        Verdaccio on {registry.url} stopped", style="dim")


def _restore(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def main(tmp: Path, *, project_root: Path) -> int:
    """Run the demo; Ctrl-C (or SIGTERM, SIGHUP) stops the registry and exits 128 + signal."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in SIGNALS}
    try:
        return run(tmp, project_root=project_root)
    except Interrupted as exc:
        sys.stderr.write(
            f"interrupted ({exc}): nothing is left running; {tmp.resolve()} holds the partial "
            "demo\n"
        )
        return 128 + exc.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
