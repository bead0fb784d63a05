"""The task server runs a task exactly as a fresh `python -m invoke` does: the same exit code,
stdout and stderr, from the caller's directory and environment."""

from __future__ import annotations

import dataclasses

import pytest
from gitrepos import seed


@pytest.mark.parametrize(
    "args",
    [
        ("--list",),
        ("sync", "--bogus"),  # invoke's own parse error
        ("status", "--json"),  # a project with nothing synced yet
        ("verify",),
        ("publish.upload", "--tarball", "missing.tgz", "--integrity", "sha512-x"),
    ],
    ids=lambda a: " ".join(a),
)
def test_a_task_run_is_the_same_as_a_fresh_interpreter(project, args) -> None:
    assert project.server is not None
    fresh = dataclasses.replace(project, server=None)
    served, alone = project.invoke(*args), fresh.invoke(*args)
    assert (served.returncode, served.stdout, served.stderr) == (
        alone.returncode,
        alone.stdout,
        alone.stderr,
    )


def test_the_callers_environment_and_directory_reach_the_task(project, tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('[tool.sdkmirror]\nupstream = "x"\nlock_timeout = "soon"\n')
    cp = project.invoke("status", env={"SDKMIRROR_CONFIG": str(elsewhere)})
    assert cp.returncode == 2 and "lock_timeout" in cp.stderr  # that file was read


def test_a_run_killed_by_a_signal_says_so_the_same_way(project, repos) -> None:
    seed(repos, "0.14.2")
    env = {"SDKMIRROR_FAILPOINTS": "after-fetch"}  # the run SIGKILLs itself there
    argv = ("sync", "--upstream", str(repos.upstream), "--origin", str(repos.origin))
    served = project.invoke(*argv, env=env)
    alone = dataclasses.replace(project, server=None).invoke(*argv, env=env)
    assert served.returncode == alone.returncode == -9
