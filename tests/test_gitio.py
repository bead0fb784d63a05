"""The one way to run git: one environment, hooks off, one error type carrying git's words."""

from __future__ import annotations

from pathlib import Path

import git as gitpython
import pytest
from gitrepos import GitRepos, git

from sdkmirror.core.errors import ExitCode, GitError, PushRefused, RemoteError
from sdkmirror.infra import gitio
from sdkmirror.infra.gitio import WorkRepo

HOOKS = ("pre-commit", "commit-msg", "post-commit", "reference-transaction", "pre-push")


def _hook_marker(repo: Path, hooks_dir: Path, marker: Path) -> None:
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        hook = hooks_dir / name
        hook.write_text(f'#!/bin/sh\necho "{name}" >> "{marker}"\n')
        hook.chmod(0o755)


def _child_env(cwd: Path, **env_extra: str) -> dict[str, str]:
    """The environment a git child really sees, printed by a shell alias it runs (outside any
    repository: inside one, git itself sets GIT_DIR for the alias)."""
    out = gitio.run("-c", "alias.env=!env", "env", cwd=cwd, env_extra=env_extra)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_a_failing_command_raises_git_error_with_gits_fatal_line(tmp_path):
    missing = tmp_path / "no-such.git"
    with pytest.raises(GitError) as err:
        gitio.run("ls-remote", "--", str(missing))
    exc = err.value
    assert exc.reason.startswith("fatal: ")
    assert "does not appear to be a git repository" in exc.reason
    assert exc.returncode == 128
    assert "ls-remote" in exc.argv and str(missing) in exc.argv
    assert exc.exit_code == ExitCode.FAILED
    assert str(exc) == f"`git ls-remote` failed (exit 128): {exc.reason}"
    assert not exc.timed_out


def test_a_fetch_from_a_missing_path_is_a_remote_error_exit_4(tmp_path):
    repo = WorkRepo(tmp_path / "work.git")
    missing = tmp_path / "no-such.git"
    with pytest.raises(RemoteError) as err:
        repo.fetch(str(missing), ["+refs/heads/main:refs/x"], name="upstream")
    assert err.value.exit_code == ExitCode.REMOTE == 4
    cause = err.value.__cause__
    assert isinstance(cause, GitError) and cause.reason.startswith("fatal: ")
    assert str(err.value) == f"cannot fetch from upstream {missing}: {cause.reason}"


def test_a_push_refused_by_origins_pre_receive_hook_is_exit_5(repos: GitRepos, tmp_path):
    sha = repos.commit("first")
    repos.push()
    repos.install_hook(repos.origin, "pre-receive", 'echo "policy: no pushes today" >&2\nexit 1\n')
    work = WorkRepo(tmp_path / "work.git")
    work.fetch(str(repos.upstream), ["+refs/heads/main:refs/upstream/main"], name="upstream")
    with pytest.raises(PushRefused) as err:
        work.push_atomic(str(repos.origin), {"refs/heads/main": sha})
    assert err.value.exit_code == ExitCode.PUSH_REFUSED == 5
    assert err.value.reason == "policy: no pushes today"
    assert isinstance(err.value.__cause__, GitError)
    assert repos.origin_refs() == {}  # nothing on origin changed


def test_hooks_in_a_checkout_never_run(repos: GitRepos, tmp_path):
    marker = tmp_path / "hook-ran"
    _hook_marker(repos.work, repos.work / ".git" / "hooks", marker)
    (repos.work / "a.txt").write_text("a\n")
    gitio.run("add", "a.txt", cwd=repos.work)
    gitio.run("commit", "-q", "-m", "through the one runner", cwd=repos.work)
    assert git("log", "-1", "--format=%s", cwd=repos.work) == "through the one runner"
    assert not marker.exists()
    # The same commit made by a plain git does run them: the hooks are real.
    git("commit", "-q", "--allow-empty", "-m", "plain git", cwd=repos.work)
    assert "post-commit" in marker.read_text()


def test_hooks_planted_in_the_work_repository_never_run(tmp_path):
    repo = WorkRepo(tmp_path / "work.git")
    marker = tmp_path / "hook-ran"
    _hook_marker(repo.path, repo.path / "hooks", marker)
    blob = gitio.run("hash-object", "-w", "--stdin", cwd=repo.path, input="x\n").strip()
    tree = gitio.run("mktree", cwd=repo.path, input=f"100644 blob {blob}\tx\n").strip()
    commit = gitio.run("commit-tree", "-m", "m", tree, cwd=repo.path).strip()
    repo.update_refs({"refs/heads/main": commit})
    assert gitio.run("rev-parse", "refs/heads/main", cwd=repo.path).strip() == commit
    assert not marker.exists()


def test_one_environment_whatever_the_callers(monkeypatch, tmp_path):
    # What a task started from a hook, or a translated shell, would hand down.
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "index"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'url.x.insteadof'='y'")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("PAGER", "less")
    env = _child_env(tmp_path)
    assert env["LC_ALL"] == "C"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_PAGER"] == "cat"
    for dropped in ("GIT_DIR", "GIT_INDEX_FILE", "LANG", "PAGER"):
        assert dropped not in env, dropped
    # Only our own `-c` settings reach git (hooks off, the alias that printed this).
    assert "core.hookspath" in env["GIT_CONFIG_PARAMETERS"].lower()
    assert "insteadof" not in env["GIT_CONFIG_PARAMETERS"].lower()
    assert env["GIT_AUTHOR_NAME"] == "Mirror Tests"  # identity passes through


def test_extra_env_adds_but_never_loosens_the_safety_settings(tmp_path):
    env = _child_env(
        tmp_path,
        GIT_AUTHOR_DATE="@1760000000 +0000",
        LC_ALL="de_DE.UTF-8",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="core.hooksPath",
        GIT_CONFIG_VALUE_0="hooks",
    )
    assert env["GIT_AUTHOR_DATE"] == "@1760000000 +0000"
    assert env["LC_ALL"] == "C"
    assert "GIT_CONFIG_COUNT" not in env


def test_the_push_header_goes_only_to_an_origin_https_url(monkeypatch):
    monkeypatch.setenv(gitio.PUSH_TOKEN_ENV, "s3cret")
    url = "https://git.example.invalid/mirror.git"
    assert "GIT_CONFIG_COUNT" not in gitio.git_env(url)
    assert gitio.git_env(url, auth=True)["GIT_CONFIG_KEY_0"] == f"http.{url}.extraheader"
    # An inherited GIT_CONFIG_* can never add to it.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "url.https://evil.invalid/.insteadOf")
    assert "GIT_CONFIG_COUNT" not in gitio.git_env(url)
    assert gitio.git_env(url, auth=True)["GIT_CONFIG_COUNT"] == "1"


def test_output_round_trips_to_the_bytes_git_holds(tmp_path):
    repo = tmp_path / "r.git"
    gitio.run("init", "-q", "--bare", repo)
    data = b"caf\xc3\xa9 \xff\xfe not utf-8\r\nline two\r\n"
    src = tmp_path / "blob"
    src.write_bytes(data)
    blob = gitio.run("hash-object", "-w", src, cwd=repo).strip()
    shown = gitio.run("cat-file", "blob", blob, cwd=repo)
    assert shown.encode("utf-8", "surrogateescape") == data


def test_a_checkout_commit_takes_the_identity_from_its_config(repos: GitRepos, monkeypatch):
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var)
    git("config", "user.name", "Checkout Owner", cwd=repos.work)
    git("config", "user.email", "owner@example.invalid", cwd=repos.work)
    who = gitio.identity(gitpython.Repo(repos.work))
    assert who["GIT_AUTHOR_NAME"] == who["GIT_COMMITTER_NAME"] == "Checkout Owner"
    gitio.run("commit", "-q", "--allow-empty", "-m", "m", cwd=repos.work, env_extra=who)
    assert git("log", "-1", "--format=%an <%ae>", cwd=repos.work) == (
        "Checkout Owner <owner@example.invalid>"
    )


def test_git_missing_from_path_is_one_git_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GitError) as err:
        gitio.run("--version")
    assert err.value.returncode == 127
