"""Shared fixtures: real git repositories in a temp dir, a project config, the task runner.

Expensive inputs (the sample upstream, the publish tests' mirror) are built once per test run,
under a file lock that every xdist worker shares, and each test gets a copy of its own.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gitrepos import GitRepos  # noqa: E402
from taskserver import Client  # noqa: E402

from sdkmirror.release.package.repackage import Provenance  # noqa: E402
from sdkmirror.release.publish import build as publish_build  # noqa: E402

# Where the SDK laid out by the repackaging tests comes from.
PROV = Provenance(
    upstream="@moonshot-ai/kimi-code-sdk",
    upstream_version="0.9.3",
    release_tag="@moonshot-ai/kimi-code@0.14.2",
    commit="a" * 40,
)


@pytest.fixture(autouse=True)
def git_identity(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A git identity and an empty global config, so commits work on a fresh machine."""
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    gitconfig = home / ".gitconfig"
    if not gitconfig.exists():
        gitconfig.write_text(
            '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
        )
    for key, value in {
        "GIT_AUTHOR_NAME": "Mirror Tests",
        "GIT_AUTHOR_EMAIL": "mirror-tests@example.invalid",
        "GIT_COMMITTER_NAME": "Mirror Tests",
        "GIT_COMMITTER_EMAIL": "mirror-tests@example.invalid",
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in (
        "GITHUB_ACTIONS",
        "GITHUB_TOKEN",
        "GITHUB_REPOSITORY",
        "GITHUB_STEP_SUMMARY",
        "SDKMIRROR_PUSH_TOKEN",
        "SDKMIRROR_FAILPOINTS",
    ):
        monkeypatch.delenv(key, raising=False)


def load_tasks() -> Any:
    """`tasks.py`'s own collection, loaded in-process as `invoke` loads it."""
    spec = importlib.util.spec_from_file_location("sdkmirror_tasks", REPO_ROOT / "tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ns


def do_sync(project: Project, repos: GitRepos, **kw: Any) -> Any:
    """`sync.run` from `repos.upstream` into `repos.origin` with the project's config."""
    from sdkmirror.mirror import sync

    return sync.run(project.config(), upstream=str(repos.upstream), origin=str(repos.origin), **kw)


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp dir every xdist worker of this run sees (the workers' common parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory: pytest.TempPathFactory, key: str, build: Callable[[Path], Any]):
    """Run `build(dest)` once per test run for `key`, whichever worker asks first; returns
    the finished `dest`. A build that failed halfway is redone, never handed out."""
    root = shared_dir(tmp_path_factory) / "built-once"
    root.mkdir(exist_ok=True)
    dest, done = root / key, root / f"{key}.done"
    with FileLock(str(root / f"{key}.lock")):
        if not done.exists():
            shutil.rmtree(dest, ignore_errors=True)
            build(dest)
            done.touch()
    return dest


@dataclass(frozen=True)
class SampleFactory:
    """Hands out copies of sample upstreams that were each generated once per test run.

    The sample is deterministic (fixed dates and identity), so a copy is the repository
    `sample.create_upstream` would have made there.
    """

    tmp_path_factory: pytest.TempPathFactory

    def __call__(self, dest: Path, *, variant: str | None = None) -> Any:
        from sdkmirror.devtools import sample

        def build(where: Path) -> None:
            sample.create_upstream(where / "upstream.git", variant=variant)

        built = build_once(self.tmp_path_factory, f"sample-{variant or 'good'}", build)
        built = built / "upstream.git"
        if dest.exists() and any(dest.iterdir()):
            raise AssertionError(f"{dest} already exists and is not empty")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(built, dest, symlinks=True, dirs_exist_ok=True)
        return _sample_upstream(dest, variant)


def _sample_upstream(bare: Path, variant: str | None) -> Any:
    """The description of a built sample, read back from its repository."""
    from sdkmirror.devtools import sample

    out = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:short) %(*objectname)", "refs/tags"],
        cwd=bare, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    head = subprocess.run(
        ["git", "rev-parse", "refs/heads/main"], cwd=bare, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    tags = dict(line.split(" ", 1) for line in out.splitlines() if line)
    return sample.SampleUpstream(
        bare=bare,
        head=head,
        tags=tags,
        variant=variant,
        sdk_dir="packages/sdk" if variant == "layout" else sample.SDK_DIR,
    )


@pytest.fixture(scope="session")
def sample_upstream(tmp_path_factory: pytest.TempPathFactory) -> SampleFactory:
    """`sample_upstream(dest, variant=None)`: a copy of the sample upstream at `dest`."""
    return SampleFactory(tmp_path_factory)


@pytest.fixture
def repos(tmp_path: Path) -> GitRepos:
    """A bare `upstream` with a working clone, and an empty bare `origin`."""
    return GitRepos.create(tmp_path / "repos")


@dataclass
class Project:
    """A throwaway project directory with its own `[tool.sdkmirror]` and the real tasks."""

    root: Path
    pyproject: Path
    env: dict[str, str]
    server: Client | None = None

    def config(self, **overrides):
        from sdkmirror.core import config

        return config.load(self.pyproject, **overrides)

    def invoke(
        self,
        *args: str,
        check: bool = False,
        env: dict[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run `invoke ARGS` as a maintainer would, from the project directory: a process of
        its own, with the task server's imports already done (see `taskserver`)."""
        argv = ["invoke", "--search-root", str(REPO_ROOT), *args]
        run_env = {**self.env, **(env or {})}
        if self.server is not None:
            cp = self.server.run(argv, cwd=self.root, env=run_env, timeout=timeout)
        else:
            cp = subprocess.run(
                [sys.executable, "-m", *argv], cwd=self.root, env=run_env,
                capture_output=True, text=True, timeout=timeout, check=False,
            )  # fmt: skip
        if check and cp.returncode != 0:
            raise AssertionError(
                f"invoke {' '.join(args)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}"
            )
        return cp


def write_project(root: Path, upstream: str, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(f"""\
        [tool.sdkmirror]
        upstream = "{upstream}"
        work_dir = "state"
        lock_timeout = 2.0
        """)
        + textwrap.dedent(extra)
    )
    return pyproject


@pytest.fixture(scope="session")
def task_server() -> Iterator[Client | None]:
    """One task server per test worker; `SDKMIRROR_TESTS_FRESH_INVOKE=1` runs every task in a
    fresh `python -m invoke` instead."""
    if os.environ.get("SDKMIRROR_TESTS_FRESH_INVOKE") == "1":
        yield None
        return
    import tempfile

    # A socket path must be short; the pytest temp dir can be long.
    where = Path(tempfile.mkdtemp(prefix="sdkmirror-tasks-"))
    pythonpath = os.pathsep.join([str(REPO_ROOT / "scripts"), os.environ.get("PYTHONPATH", "")])
    client = Client(where / "socket", pythonpath, where / "server.log")
    try:
        yield client
    finally:
        client.close()
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def project(
    tmp_path: Path, repos: GitRepos, monkeypatch: pytest.MonkeyPatch, task_server: Client | None
) -> Iterator[Project]:
    pyproject = write_project(tmp_path / "project", str(repos.upstream))
    monkeypatch.setenv("SDKMIRROR_CONFIG", str(pyproject))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "scripts"), env.get("PYTHONPATH", "")])
    env["CI"] = "true"
    yield Project(pyproject.parent, pyproject, env, task_server)


_build_caches = iter(range(1 << 30))


@pytest.fixture(autouse=True)
def own_build_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test builds for real unless it shares a build cache on purpose: an entry another
    test stored would otherwise stand in for the build under test."""
    where = tmp_path_factory.getbasetemp() / "build-caches" / str(next(_build_caches))
    monkeypatch.setenv("SDKMIRROR_BUILD_CACHE", str(where))
    return where


@pytest.fixture
def shared_build_cache(
    tmp_path_factory: pytest.TempPathFactory, own_build_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """One build cache for every test of the run that asks for it: for tests whose subject is
    what happens after a build (publishing, faults, the sweep's table), a release built and
    checked by an earlier test stands in for building it again. Each entry is still checked on
    use, and the tests of building itself keep their own cache."""
    where = shared_dir(tmp_path_factory) / "shared-build-cache"
    monkeypatch.setenv("SDKMIRROR_BUILD_CACHE", str(where))
    return where


@pytest.fixture(scope="session", autouse=True)
def interruptible() -> None:
    """Ctrl-C raises KeyboardInterrupt here and reaches the processes tests start, even when
    the suite was launched with SIGINT ignored (a background job, `nohup`): an ignored signal
    stays ignored in every child, and the tests of Ctrl-C would wait forever."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def shared_cache() -> None:
    """Toolchains, Verdaccio and the pnpm store are downloaded once for the whole suite."""
    os.environ.setdefault("SDKMIRROR_CACHE", str(REPO_ROOT / ".sdkmirror" / "cache"))


@pytest.fixture(scope="session")
def toolchain_primary(shared_cache: None):
    """Node 24.19.0 with pnpm 10.33.0 from the registries, provisioned once into the cache."""
    from sdkmirror.core import config
    from sdkmirror.infra import toolchain

    spec = config.ToolchainSpec("24.19.0", "10.33.0")
    return toolchain.provision(spec, Path(os.environ["SDKMIRROR_CACHE"]))


@pytest.fixture(scope="session")
def npm_tools(toolchain_primary) -> None:
    """The npm programs a publish runs, installed into the cache from the user's registry, for
    tests that then point npm at a loopback registry which serves none of them."""
    from sdkmirror.infra import npmtool
    from sdkmirror.release.declarations import bundle as declarations
    from sdkmirror.release.declarations import consumer as typecheck

    cache = Path(os.environ["SDKMIRROR_CACHE"])
    npmtool.install(cache, publish_build.PUBLINT, publish_build.PUBLINT_VERSION, toolchain_primary)
    npmtool.install(cache, typecheck.ATTW, typecheck.ATTW_VERSION, toolchain_primary)
    declarations.install(toolchain_primary, cache)
    typecheck.install(toolchain_primary, cache)


@pytest.fixture
def no_npm_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused loopback connection fails at once instead of after npm's retry back-off."""
    monkeypatch.setenv("npm_config_fetch_retries", "0")


# --- a mirror with the sample's releases, and a loopback registry, for the publish tests ------


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory: pytest.TempPathFactory):
    """The configuration's default toolchain, provisioned into the shared cache."""
    from sdkmirror.core import config as config_mod
    from sdkmirror.infra import toolchain as toolchain_mod

    spec = config_mod.from_mapping({}, root=Path.cwd()).toolchains[0]
    return toolchain_mod.provision(spec, Path(os.environ["SDKMIRROR_CACHE"]))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mirror origin holding the sample's release tags (as `invoke sync` leaves it)."""
    from sdkmirror.infra import proc

    base = tmp_path_factory.mktemp("mirror")
    up = SampleFactory(tmp_path_factory)(base / "upstream.git")
    origin = base / "origin.git"
    proc.run(["git", "clone", "-q", "--bare", str(up.bare), str(origin)])
    return origin


class WorkerRegistry:
    """One loopback Verdaccio per worker, started again only once a test has stopped it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started = 0
        self._running: Any = None  # the `verdaccio()` context of the registry in use
        self.current: Any = None

    def fresh(self, toolchain) -> Any:
        """The registry without any package of our scope: as if just started. Third-party
        packages it proxied stay, as in its uplink's cache."""
        from sdkmirror.devtools import registry_server

        if self.current is None or self.current.process.poll() is not None:
            self.close()
            self.started += 1
            self._running = registry_server.verdaccio(
                self.base / f"verdaccio-{self.started}",
                toolchain,
                cache_dir=Path(os.environ["SDKMIRROR_CACHE"]),
            )
            self.current = self._running.__enter__()
        storage = self.current.log.parent / "storage"
        shutil.rmtree(storage / registry_server.OWN_SCOPE, ignore_errors=True)
        return self.current

    def close(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
        self._running = self.current = None


@pytest.fixture(scope="session")
def worker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerRegistry]:
    shared = WorkerRegistry(tmp_path_factory.mktemp("registry"))
    yield shared
    shared.close()


@pytest.fixture
def registry(worker_registry: WorkerRegistry, toolchain, monkeypatch):
    """A loopback Verdaccio that the user's npm config points at, with its token; holding no
    package of our scope. (Starting one costs a second: a worker keeps its own.)"""
    reg = worker_registry.fresh(toolchain)
    # The registry's token is "the user's npm config" for this test.
    for key, value in reg.npm_env().items():
        monkeypatch.setenv(key, value)
    yield reg


@pytest.fixture
def cfg(project, mirror: Path):
    """The project's config with the mirror's tags in its ledger, as after a sync."""
    from sdkmirror.infra import proc
    from sdkmirror.mirror.ledger import MirrorLedger

    cfg = project.config()
    ledger = MirrorLedger(cfg.mirror_ledger)
    out = proc.run(
        [
            "git",
            "for-each-ref",
            "--format=%(refname:short) %(objectname) %(*objectname)",
            "refs/tags",
        ],
        cwd=mirror,
    ).stdout
    for line in out.splitlines():
        name, obj, commit = line.split()
        ledger.add_tag(name, obj, commit)
    ledger.save()
    return cfg
