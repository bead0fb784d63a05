"""Exporting one ref of the upstream: the tree as committed, no link out of it, no hook run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from gitrepos import GitRepos, git

from sdkmirror.core.errors import CommandError, MirrorError
from sdkmirror.infra import proc
from sdkmirror.mirror import source

# Every hook git may run while a repository is made, fetched into or exported from.
HOOKS = (
    "reference-transaction",
    "post-checkout",
    "post-merge",
    "post-index-change",
    "pre-auto-gc",
    "post-rewrite",
    "fsmonitor-watchman",
)


def _commit_with_link(repos: GitRepos, link: str, target: str) -> None:
    repos.commit("files", {"packages/sdk/index.ts": "export {};\n", "README.md": "hi\n"})
    path = repos.work / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    git("add", link, cwd=repos.work)
    git("commit", "-q", "-m", f"link {link}", cwd=repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)


def test_export_writes_the_tree_with_its_in_tree_links(repos: GitRepos, tmp_path: Path) -> None:
    _commit_with_link(repos, "docs/README.md", "../README.md")
    dest = tmp_path / "tree"
    sha = source.materialize(str(repos.upstream), "main", dest)
    assert sha == git("rev-parse", "HEAD", cwd=repos.work)
    assert (dest / "packages/sdk/index.ts").read_text() == "export {};\n"
    link = dest / "docs/README.md"
    assert link.is_symlink() and os.readlink(link) == "../README.md"
    assert link.read_text() == "hi\n"


@pytest.mark.parametrize(
    ("link", "target"),
    [("packages/sdk/secrets", "/etc"), ("packages/sdk/up", "../../../outside")],
    ids=["absolute", "escaping"],
)
def test_a_link_out_of_the_tree_is_refused(
    repos: GitRepos, tmp_path: Path, link: str, target: str
) -> None:
    _commit_with_link(repos, link, target)
    dest = tmp_path / "tree"
    with pytest.raises(MirrorError, match=f"symbolic link {link} -> {target} that leads out"):
        source.materialize(str(repos.upstream), "main", dest)
    assert not dest.exists()  # nothing half-written is left to build


def test_a_git_directory_in_the_tree_is_refused(repos: GitRepos, tmp_path: Path) -> None:
    """A crafted tree with `.git/` would plant a repository (config, hooks) in the build."""
    repos.commit("base", {"README.md": "hi\n"})
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repos.work,
        input="[core]\n\tfsmonitor = touch /tmp/owned\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    inner = subprocess.run(
        ["git", "mktree"],
        cwd=repos.work,
        input=f"100644 blob {blob}\tconfig\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = subprocess.run(
        ["git", "mktree"],
        cwd=repos.work,
        input=f"040000 tree {inner}\t.git\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    commit = git("commit-tree", tree, "-m", "crafted", cwd=repos.work)
    git("update-ref", "refs/heads/crafted", commit, cwd=repos.work)
    dest = tmp_path / "tree"
    with pytest.raises(MirrorError, match=r"has the path '\.git/config'"):
        source.materialize(str(repos.work), "crafted", dest)
    assert not dest.exists()


def test_no_hook_runs_while_exporting(
    repos: GitRepos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos.commit("files", {"packages/sdk/index.ts": "export {};\n"})
    git("push", "-q", "origin", "main", cwd=repos.work)
    marker = tmp_path / "hook-ran"
    templates = tmp_path / "templates"
    for hooks in (templates / "hooks", repos.upstream / "hooks"):
        hooks.mkdir(parents=True, exist_ok=True)
        for name in HOOKS:
            (hooks / name).write_text(f"#!/bin/sh\necho {name} >> '{marker}'\n")
            (hooks / name).chmod(0o755)
    # A template directory from the environment or the user's config would plant hooks in the
    # scratch repository (a reference-transaction hook runs on every fetch).
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(templates))
    # This test's own user config: the shared one would plant these hooks in every later
    # test's repositories.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    git("config", "--global", "init.templateDir", str(templates))
    source.materialize(str(repos.upstream), "main", tmp_path / "tree")
    assert (tmp_path / "tree/packages/sdk/index.ts").is_file()
    assert not marker.exists(), marker.read_text()


def test_tar_options_from_the_environment_are_ignored(
    repos: GitRepos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos.commit("files", {"a.txt": "a\n"})
    git("push", "-q", "origin", "main", cwd=repos.work)
    monkeypatch.setenv("TAR_OPTIONS", f"--directory={tmp_path / 'elsewhere'}")
    (tmp_path / "elsewhere").mkdir()
    source.materialize(str(repos.upstream), "main", tmp_path / "tree")
    assert (tmp_path / "tree/a.txt").read_text() == "a\n"
    assert not any((tmp_path / "elsewhere").iterdir())


def test_pipe_names_the_process_that_failed(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    with pytest.raises(CommandError) as failed:
        proc.pipe(
            ["printf", "not a tar"], ["tar", "-x", "-C", tmp_path], first_env=env, second_env=env
        )
    assert failed.value.argv[0] == "tar" and failed.value.returncode != 0
    with pytest.raises(CommandError) as failed:
        proc.pipe(["false"], ["cat"], first_env=env, second_env=env)
    assert failed.value.argv == ["false"]
