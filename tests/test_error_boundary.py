"""One error boundary: every task, fed each malformed input, ends in one `error:` line.

The tasks are enumerated from `tasks.py`'s own collection, so a task added later is fed the
same inputs. Each case asserts: one `error:` line, a code from `errors.ExitCode`, no
traceback (an exception escaping the task fails the test), and nothing on origin or in the
ledger changed.
"""

from __future__ import annotations

import inspect
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import do_sync, load_tasks
from gitrepos import TAG, seed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoke import Context
from invoke.exceptions import Exit

from sdkmirror.core.errors import ExitCode
from sdkmirror.infra.lock import exclusive
from sdkmirror.release.publish import plan as publish_plan

REPO_ROOT = Path(__file__).resolve().parents[1]
CODES = {int(c) for c in ExitCode}


NS = load_tasks()
TASKS = sorted(NS.task_names)

# A value for every required argument a task may declare. A new task with a new required
# argument fails `test_every_task_is_covered` until it gets a sample here.
SAMPLES: dict[str, Callable[[Path], Any]] = {
    "source_tag": lambda d: TAG.format("0.14.2"),
    "from_": lambda d: TAG.format("0.14.2"),
    "to": lambda d: TAG.format("0.14.3"),
    "name": lambda d: "demo",
    "base": lambda d: TAG.format("0.14.2"),
    "reason": lambda d: "a reason",
    "sync_report": lambda d: str(d / "sync.json"),
    "out": lambda d: str(d / "out"),
    "tarball": lambda d: str(d / "out" / "package.tgz"),
    "tarball_dir": lambda d: str(d / "out"),
    "integrity": lambda d: "sha512-" + "A" * 86 + "==",
    "version": lambda d: "0.9.3",
    "manifest": lambda d: str(d / "out" / "manifest.json"),
    "npm_version": lambda d: "0.9.3",
    "upstream_tag": lambda d: TAG.format("0.14.2"),
    "commit": lambda d: "a" * 40,
    "good": lambda d: TAG.format("0.14.2"),
    "bad": lambda d: TAG.format("0.14.3"),
}


def call_args(task_name: str, project, repos) -> dict[str, Any]:
    """Required arguments from samples; remotes point at the local repositories, always."""
    params = inspect.signature(NS[task_name].body).parameters
    args = {p: SAMPLES[p](project.root) for p, v in params.items() if p in SAMPLES}
    args |= {"origin": str(repos.origin)} if "origin" in params else {}
    args |= {"upstream": str(repos.upstream)} if "upstream" in params else {}
    args |= {"dry_run": True} if "dry_run" in params else {}
    return args


def run_task(task_name: str, project, repos, capsys) -> tuple[int, list[str]]:
    """Run a task's body in-process; its exit code and the `error:` lines it printed."""
    capsys.readouterr()
    code, message = 0, ""
    try:
        NS[task_name].body(Context(), **call_args(task_name, project, repos))
    except Exit as exc:
        code, message = int(exc.code), str(exc.message or "")
    captured = capsys.readouterr()
    text = "\n".join([captured.out, captured.err, message])
    assert "Traceback" not in text, f"{task_name}: {text}"
    return code, [ln for ln in text.splitlines() if ln.startswith("error:")]


def test_every_task_is_covered():
    for name in TASKS:
        params = inspect.signature(NS[name].body).parameters
        required = [
            p
            for p, v in list(params.items())[1:]
            if v.default is inspect.Parameter.empty and p not in SAMPLES
        ]
        assert not required, f"add a sample value for {name}'s {required} to SAMPLES"


# --- the malformed inputs ---------------------------------------------------------------------


def _pyproject(project, text: str | bytes) -> None:
    if isinstance(text, bytes):
        project.pyproject.write_bytes(text)
    else:
        project.pyproject.write_text(textwrap.dedent(text))


def _keep(project, extra: str) -> None:
    base = project.pyproject.read_text()
    project.pyproject.write_text(base + textwrap.dedent(extra))


def _ledger(project, text: str | bytes) -> None:
    path = project.config().mirror_ledger
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))


def _registry(project, text: str) -> None:
    path = project.config().patch_registry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


CONFIG_FAULTS: dict[str, Callable[[Any], None]] = {
    "toml-syntax": lambda p: _pyproject(p, "[tool.sdkmirror\nupstream = 1\n"),
    "pyproject-not-utf8": lambda p: _pyproject(p, b'[tool.sdkmirror]\nupstream = "\xff\xfe"\n'),
    "toolchain-table-typo": lambda p: _keep(
        p, '[[tool.sdkmirror.toolchain]]\nnode = "24.19.0"\npnpm = "10.33.0"\n'
    ),
    "node-not-exact": lambda p: _keep(
        p, '[[tool.sdkmirror.toolchains]]\nnode = "24"\npnpm = "10.33.0"\n'
    ),
    "pnpm-missing": lambda p: _keep(p, '[[tool.sdkmirror.toolchains]]\nnode = "24.19.0"\n'),
    "lock-timeout-nan": lambda p: _pyproject(
        p, p.pyproject.read_text().replace("lock_timeout = 2.0", "lock_timeout = nan")
    ),
}

RECORD_FAULTS: dict[str, Callable[[Any], None]] = {
    "ledger-entry-without-object": lambda p: _ledger(
        p,
        f"""\
        [tags."{TAG.format("0.14.2")}"]
        commit = "{"a" * 40}"
        mirrored_at = 2026-01-01T00:00:00Z
        """,
    ),
    "ledger-tags-a-list": lambda p: _ledger(p, "tags = [1, 2]\n"),
    "ledger-not-utf8": lambda p: _ledger(p, b"[tags]\n# \xff\xfe\n"),
    "ledger-not-toml": lambda p: _ledger(p, "[tags\n"),
    "registry-bad-commit": lambda p: _registry(
        p,
        f"""\
        [patches.demo]
        base = "{TAG.format("0.14.2")}"
        commit = "zz"
        """,
    ),
}


def _lock_dir(project) -> None:
    lock = project.config().work_dir / "run.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir(parents=True)


def _work_dir_under_a_file(project) -> None:
    text = project.pyproject.read_text()
    project.pyproject.write_text(text.replace('work_dir = "state"', 'work_dir = "sync.json/state"'))


OS_FAULTS: dict[str, Callable[[Any], None]] = {
    "run-lock-a-directory": _lock_dir,
    "work-dir-unwritable": _work_dir_under_a_file,
}


@pytest.fixture
def mirrored(project, repos):
    """A healthy mirror: two releases synced, the ledger written, a valid sync report."""
    seed(repos, "0.14.2", "0.14.3")
    report = do_sync(project, repos)
    (project.root / "sync.json").write_text(json.dumps(report.to_json()))
    return project, repos


def _snapshot(project, repos) -> tuple[dict[str, str], bytes | None]:
    ledger = project.root / "ledger" / "mirror-tags.toml"
    return repos.origin_refs(), ledger.read_bytes() if ledger.exists() else None


@pytest.mark.parametrize("fault", sorted(CONFIG_FAULTS))
def test_every_task_refuses_a_broken_configuration(fault, mirrored, capsys):
    project, repos = mirrored
    CONFIG_FAULTS[fault](project)
    before = _snapshot(project, repos)
    for name in TASKS:
        code, errors = run_task(name, project, repos, capsys)
        assert code == ExitCode.USAGE, f"{name} on {fault}: exit {code}, {errors}"
        assert len(errors) == 1, f"{name} on {fault}: {errors}"
        assert "[tool.sdkmirror]" in errors[0] or "pyproject.toml" in errors[0], errors
    assert _snapshot(project, repos) == before


# Tasks that read the mirror ledger or the patch registry before anything else.
READS_LEDGER = {"sync", "verify", "status", "publish", "release.tag", "patch.new", "report"}
READS_REGISTRY = {"verify", "status", "patch.new", "patch.list", "patch.retire"}


@pytest.mark.parametrize("fault", sorted(RECORD_FAULTS))
def test_every_task_refuses_a_malformed_record(fault, mirrored, capsys):
    project, repos = mirrored
    RECORD_FAULTS[fault](project)
    before = _snapshot(project, repos)
    readers = READS_REGISTRY if fault.startswith("registry") else READS_LEDGER
    record = "patches.toml" if fault.startswith("registry") else "mirror-tags.toml"
    for name in TASKS:
        code, errors = run_task(name, project, repos, capsys)
        assert code in CODES, f"{name} on {fault}: exit {code}"
        assert len(errors) == (1 if code else 0), f"{name} on {fault}: {errors}"
        if name in readers:
            assert code == ExitCode.USAGE, f"{name} on {fault}: exit {code}, {errors}"
            assert record in errors[0], errors
        assert _snapshot(project, repos) == before, f"{name} changed origin or the ledger"


@pytest.mark.parametrize("fault", sorted(OS_FAULTS))
def test_file_system_faults_are_one_line(fault, mirrored, capsys):
    project, repos = mirrored
    OS_FAULTS[fault](project)
    if fault == "run-lock-a-directory":
        # A sync with nothing to write takes no lock, so it cannot meet this fault ...
        assert run_task("sync", project, repos, capsys) == (0, [])
        # ... one with a new release to mirror does.
        repos.release("0.14.4")
        repos.push_all()
    before = _snapshot(project, repos)
    for name in ("sync", "verify", "patch.new", "release.tag"):
        code, errors = run_task(name, project, repos, capsys)
        if fault == "work-dir-unwritable":  # a configuration mistake, refused before the run
            assert code == ExitCode.USAGE, f"{name}: exit {code}, {errors}"
            assert len(errors) == 1 and "work_dir" in errors[0], errors
            assert errors[0].endswith(
                "is a file); point work_dir at a directory, or move the file away"
            )
        else:
            assert code == ExitCode.LOCAL, f"{name}: exit {code}, {errors}"
            assert len(errors) == 1 and "run.lock" in errors[0], errors
    assert _snapshot(project, repos) == before


def test_an_unwritable_report_path_fails_before_the_push(project, repos, capsys):
    seed(repos, "0.14.2")
    blocker = project.root / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(Exit) as err:
        NS["sync"].body(Context(), origin=str(repos.origin), report=str(blocker / "sync.json"))
    assert err.value.code == ExitCode.USAGE
    assert str(err.value.message).startswith("error: --report")
    assert repos.origin_refs() == {}  # checked before anything was pushed


def test_a_full_disk_while_writing_the_ledger_keeps_the_old_one(project, repos):
    """A real short write: RLIMIT_FSIZE makes the new ledger's write fail with EFBIG."""
    # A ledger of many tags: larger than anything git writes for the next one-tag fetch (its
    # progress goes to files too), so the limit stops the ledger's write and nothing before it.
    seed(repos, *(f"0.14.{n}" for n in range(60)))
    assert project.invoke("sync", "--origin", str(repos.origin)).returncode == 0
    ledger = project.config().mirror_ledger
    old = ledger.read_bytes()
    repos.commit("more")
    repos.release("0.15.0")
    repos.push_all()
    limit = len(old) + 10  # git's objects here are far smaller; the grown ledger is not
    cp = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "sync",
         "--origin", str(repos.origin)],
        cwd=project.root, env=project.env, capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: __import__("resource").setrlimit(
            __import__("resource").RLIMIT_FSIZE, (limit, limit)
        ),
    )  # fmt: skip
    assert cp.returncode == ExitCode.LOCAL, cp.stderr
    errors = [ln for ln in cp.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "ledger" in errors[0] and "intact" in errors[0], cp.stderr
    assert "Traceback" not in cp.stderr
    assert ledger.read_bytes() == old
    assert not [p for p in ledger.parent.iterdir() if p.name.startswith(".")]  # no temp left
    # origin took the push; the next run records it
    assert project.invoke("sync", "--origin", str(repos.origin)).returncode == 0
    assert TAG.format("0.15.0") in ledger.read_text()


def test_ctrl_c_says_what_was_left_unchanged(project, repos):
    seed(repos, "0.14.2")
    # The child waits for our lock far longer than any load can delay the SIGINT: the
    # "waiting up to" line is the event the test waits on, never the clock.
    text = project.pyproject.read_text()
    assert "lock_timeout = 2.0" in text
    project.pyproject.write_text(text.replace("lock_timeout = 2.0", "lock_timeout = 3600.0"))
    with exclusive(project.config().work_dir, 5):
        p = subprocess.Popen(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "sync",
             "--origin", str(repos.origin)],
            cwd=project.root, env=project.env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert p.stderr is not None
        assert p.stderr.readline().startswith("waiting up to 3600 s")  # it waits for our lock
        p.send_signal(signal.SIGINT)
        rest = p.stderr.read()
        assert p.wait(timeout=30) == ExitCode.INTERRUPTED
    errors = [ln for ln in rest.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: interrupted; origin changes only in one atomic push and the ledger only after "
        "it; run `invoke sync` again, it converges"
    ]
    assert "Traceback" not in rest
    assert repos.origin_refs() == {}


def test_invokes_own_usage_errors_exit_2(project):
    unknown = project.invoke("sync", "--dryrun")
    assert unknown.returncode == ExitCode.USAGE
    assert unknown.stderr.strip().splitlines() == ["error: No idea what '--dryrun' is!"]
    missing = project.invoke("patch.new")
    assert missing.returncode == ExitCode.USAGE
    assert missing.stderr.strip().splitlines() == [
        "error: invoke patch.new needs --name, --base and --reason; see `invoke --help patch.new`"
    ]


def test_nox_list_on_a_broken_pyproject_is_one_line(tmp_path):
    (tmp_path / "noxfile.py").write_text((REPO_ROOT / "noxfile.py").read_text())
    (tmp_path / "scripts").symlink_to(REPO_ROOT / "scripts")
    for text in (
        "[tool.sdkmirror\n",
        '[tool.sdkmirror]\n[[tool.sdkmirror.toolchains]]\nnode = "24.19.0"\n',
        '[tool.sdkmirror]\n[[tool.sdkmirror.toolchains]]\nnode = "24"\npnpm = "10.33.0"\n',
    ):
        (tmp_path / "pyproject.toml").write_text(text)
        cp = subprocess.run(
            [sys.executable, "-m", "nox", "--list"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert cp.returncode == ExitCode.USAGE, cp.stderr
        assert next(ln for ln in cp.stderr.splitlines() if ln.strip()).startswith("error: ")
        assert "Traceback" not in cp.stderr


def test_exit_codes_are_distinct_and_shared_by_the_modules_that_raise_them():
    from sdkmirror.infra import toolchain
    from sdkmirror.mirror import sync
    from sdkmirror.ops import status

    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert sync.Diverged.exit_code == ExitCode.DIVERGED
    assert toolchain.ToolchainError.exit_code == ExitCode.TOOLCHAIN
    assert status.NeedsAttention.exit_code == ExitCode.ATTENTION
    assert publish_plan.RegistryConflict.exit_code == ExitCode.REGISTRY_CONFLICT


# --- property: any shape of report or ledger ends in a result or one error line ----------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
SYNC_KEYS = ["status", "alerts", "new_tags", "mirror_branch", "error", "changed", "origin"]
SYNC_REPORTS = st.fixed_dictionaries(
    {"kind": st.sampled_from(["sync", "sync", "smoke", 3])},
    optional={
        "status": st.sampled_from(["noop", "updated", "diverged", "failed", "zz"]) | JSON,
        "alerts": st.lists(
            st.fixed_dictionaries({"kind": st.text(max_size=8), "ref": JSON, "detail": JSON})
        )
        | JSON,
        **{k: JSON for k in SYNC_KEYS[2:]},
    },
)
SHA = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
TOML_SCALAR = st.booleans() | st.integers(-5, 5) | st.text(max_size=6) | SHA
LEDGERS = st.fixed_dictionaries(
    {},
    optional={
        "tags": st.dictionaries(
            st.sampled_from([TAG.format("0.14.2"), TAG.format("1.0.0"), "x"]),
            st.fixed_dictionaries(
                {},
                optional={"object": TOML_SCALAR, "commit": TOML_SCALAR, "mirrored_at": TOML_SCALAR},
            ),
            max_size=2,
        )
        | st.lists(st.integers(), max_size=2),
        "mirror_branches": st.dictionaries(
            st.just("upstream-main"),
            st.fixed_dictionaries({}, optional={"heads": st.lists(TOML_SCALAR, max_size=2)}),
        )
        | TOML_SCALAR,
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=SYNC_REPORTS)
def test_any_sync_report_shape_is_a_result_or_one_error_line(data, project, repos, capsys):
    (project.root / "sync.json").write_text(json.dumps(data))
    code, errors = run_task("report", project, repos, capsys)
    assert code in CODES
    assert len(errors) == (1 if code else 0), errors
    if code == ExitCode.USAGE:
        assert "sync.json" in errors[0]
    code, errors = run_task("ci.sync-outputs", project, repos, capsys)
    assert code in CODES and len(errors) == (1 if code else 0), errors


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=LEDGERS)
def test_any_ledger_shape_is_a_result_or_one_error_line(data, project, repos, capsys):
    import tomlkit

    from sdkmirror.core.errors import MirrorError
    from sdkmirror.infra.gitio import RemoteRefs
    from sdkmirror.mirror import verify
    from sdkmirror.mirror.ledger import MirrorLedger

    cfg = project.config()
    cfg.mirror_ledger.parent.mkdir(parents=True, exist_ok=True)
    cfg.mirror_ledger.write_text(tomlkit.dumps(data))
    try:
        ledger = MirrorLedger(cfg.mirror_ledger)
    except MirrorError as exc:
        assert exc.exit_code == ExitCode.USAGE
        assert "\n" not in str(exc) and str(cfg.mirror_ledger) in str(exc)
        return
    # Accepted: every reader downstream copes with it.
    ledger.tags, ledger.mirror_branches  # noqa: B018
    verify.audit(cfg, RemoteRefs({}), ledger, lambda a, b: True)


# --- errors that say what happened ----------------------------------------------------------------


def test_npm_reason_picks_the_code_line():
    from sdkmirror.infra.netlimits import npm_reason

    log = (
        "npm error code ECONNREFUSED\n"
        "npm error syscall connect\n"
        "npm error errno ECONNREFUSED\n"
        "npm error FetchError: request to http://127.0.0.1:9/x failed, reason: connect\n"
        "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log\n"
    )
    assert npm_reason(log) == (
        "npm error code ECONNREFUSED: FetchError: request to http://127.0.0.1:9/x failed, "
        "reason: connect"
    )


def test_an_unreachable_registry_fails_naming_why():
    import socket

    from sdkmirror.core.errors import RemoteError
    from sdkmirror.release.publish import pipeline as publish

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteError) as err:
        publish.registry_dist_tags("@botiverse/x", f"http://127.0.0.1:{port}/")
    assert str(err.value) == (
        f"cannot read the dist-tags of @botiverse/x from http://127.0.0.1:{port}/: "
        "Connection refused"
    )


def test_release_notes_refuse_a_reversed_range(project, capsys):
    with pytest.raises(Exit) as err:
        NS["release.notes"].body(Context(), from_=TAG.format("0.15.0"), to=TAG.format("0.14.2"))
    assert err.value.code == ExitCode.USAGE
    assert "is not older than --to" in str(err.value.message)


@pytest.mark.slow
def test_no_network_while_installing_a_toolchain_is_network(tmp_path, monkeypatch):
    import socket

    from sdkmirror.core import config
    from sdkmirror.core.errors import MirrorError
    from sdkmirror.infra import toolchain
    from sdkmirror.smoke import build as smoke

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("PIP_INDEX_URL", f"{dead}/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "1")  # one warning to classify, without the backoff
    monkeypatch.setenv("npm_config_registry", dead)
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(MirrorError) as err:
        toolchain.provision(config.ToolchainSpec("24.11.0", "10.33.0"), tmp_path / "cache")
    assert str(err.value).startswith("network: "), str(err.value)
    assert smoke.classify(str(err.value), phase="toolchain") == "network"


def test_python_m_sdkmirror_reports_a_broken_smoke_report_in_one_line(tmp_path):
    bad = tmp_path / "smoke-x.json"
    bad.write_text(json.dumps({"kind": "smoke", "results": [{"status": 3}]}))
    cp = subprocess.run(
        [sys.executable, "-m", "sdkmirror", "report", str(bad)],
        capture_output=True, text=True, timeout=60,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT / "scripts")},
    )  # fmt: skip
    assert cp.returncode == ExitCode.USAGE, cp.stderr
    assert [ln for ln in cp.stderr.splitlines() if ln.strip()] == [
        f"error: {bad}: results[0].status must be a string, not 3; pass the file "
        "`nox -s smoke` wrote"
    ]
