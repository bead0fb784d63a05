"""`invoke ledger.commit`: only the ledger files reach main, in real repositories."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Project, write_project
from gitrepos import GitRepos, git

from sdkmirror.ledger import MirrorLedger


@pytest.fixture
def checkout(project: Project, repos: GitRepos, tmp_path: Path) -> Project:
    """A clone of the (bare) origin holding the project, with one commit on main."""
    root = tmp_path / "checkout"
    git("clone", "-q", str(repos.origin), str(root))
    git("checkout", "-q", "-b", "main", cwd=root)
    pyproject = write_project(root, str(repos.upstream))
    (root / "README.md").write_text("readme\n")
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "start", cwd=root)
    git("push", "-q", "origin", "main", cwd=root)
    return Project(root, pyproject, {**project.env, "SDKMIRROR_CONFIG": str(pyproject)})


def record_tag(checkout: Project, name: str = "@moonshot-ai/kimi-code@0.14.2") -> None:
    ledger = MirrorLedger(checkout.config().mirror_ledger)
    ledger.add_tag(name, "a" * 40, "b" * 40)
    ledger.save()


def files_in(commit: str, cwd: Path) -> list[str]:
    out = git("show", "--name-only", "--format=", commit, cwd=cwd)
    return sorted(out.split())


def test_commits_only_ledger_files_and_pushes(checkout: Project, repos: GitRepos) -> None:
    record_tag(checkout)
    (checkout.root / "RELEASES.md").write_text("# Releases\n")
    # Unrelated work in the checkout, staged and unstaged, must stay out of the commit.
    (checkout.root / "README.md").write_text("edited\n")
    (checkout.root / "other.txt").write_text("staged\n")
    git("add", "other.txt", cwd=checkout.root)

    cp = checkout.invoke("ledger.commit", "--push")
    assert cp.returncode == 0, cp.stderr

    head = git("rev-parse", "refs/heads/main", cwd=repos.origin)
    assert head == git("rev-parse", "HEAD", cwd=checkout.root)
    assert files_in(head, repos.origin) == ["RELEASES.md", "ledger/mirror-tags.toml"]
    assert git("log", "-1", "--format=%s", head, cwd=repos.origin) == (
        "ledger: record RELEASES.md, mirror-tags.toml"
    )
    assert git("diff", "--cached", "--name-only", cwd=checkout.root) == "other.txt"
    assert git("diff", "--name-only", cwd=checkout.root) == "README.md"


def test_nothing_changed_is_a_noop(checkout: Project, repos: GitRepos) -> None:
    before = git("rev-parse", "refs/heads/main", cwd=repos.origin)
    cp = checkout.invoke("ledger.commit", "--push")
    assert cp.returncode == 0, cp.stderr
    assert "nothing to commit" in cp.stderr
    assert git("rev-parse", "refs/heads/main", cwd=repos.origin) == before
    assert git("rev-parse", "HEAD", cwd=checkout.root) == before


def test_dry_run_changes_nothing(checkout: Project, repos: GitRepos) -> None:
    record_tag(checkout)
    before = git("rev-parse", "HEAD", cwd=checkout.root)
    cp = checkout.invoke("ledger.commit", "--push", "--dry-run")
    assert cp.returncode == 0, cp.stderr
    assert "ledger/mirror-tags.toml" in cp.stderr
    assert git("rev-parse", "HEAD", cwd=checkout.root) == before
    assert git("rev-parse", "refs/heads/main", cwd=repos.origin) == before
    assert git("status", "--porcelain", cwd=checkout.root) == "?? ledger/"


def test_a_refused_push_is_one_clear_error(checkout: Project, repos: GitRepos) -> None:
    repos.install_hook(repos.origin, "pre-receive", "echo 'main is protected' >&2\nexit 1\n")
    record_tag(checkout)
    cp = checkout.invoke("ledger.commit", "--push")
    assert cp.returncode == 5
    assert "main is protected" in cp.stderr and "Traceback" not in cp.stderr
    assert "git pull --rebase origin main" in cp.stderr


def test_detached_head_is_refused(checkout: Project) -> None:
    git("checkout", "-q", "--detach", cwd=checkout.root)
    record_tag(checkout)
    cp = checkout.invoke("ledger.commit")
    assert cp.returncode == 2
    assert cp.stderr.strip().splitlines()[-1] == (
        "error: HEAD is detached; check out the branch to record the ledger on (main)"
    )
