"""`invoke ledger.commit`: only the ledger files reach main, in real repositories."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Project, write_project
from gitrepos import GitRepos, git

from sdkmirror.mirror.ledger import MirrorLedger


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
    return Project(
        root, pyproject, {**project.env, "SDKMIRROR_CONFIG": str(pyproject)}, project.server
    )


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
    assert "nothing to commit" in cp.stdout
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
    assert "run it again once origin accepts the push" in cp.stderr
    assert git("rev-parse", "HEAD", cwd=checkout.root) == git(
        "rev-parse", "refs/heads/main", cwd=repos.origin
    )
    assert "@moonshot-ai/kimi-code@0.14.2" in checkout.config().mirror_ledger.read_text()


def test_detached_head_is_refused(checkout: Project) -> None:
    git("checkout", "-q", "--detach", cwd=checkout.root)
    record_tag(checkout)
    cp = checkout.invoke("ledger.commit")
    assert cp.returncode == 2
    assert cp.stderr.strip().splitlines()[-1] == (
        "error: HEAD is detached; check out the branch to record the ledger on (main)"
    )


def second_checkout(checkout: Project, repos: GitRepos, where: Path) -> Project:
    git("clone", "-q", str(repos.origin), str(where))
    pyproject = where / "pyproject.toml"
    return Project(
        where, pyproject, {**checkout.env, "SDKMIRROR_CONFIG": str(pyproject)}, checkout.server
    )


def test_two_checkouts_recording_one_after_the_other_keep_both(
    checkout: Project, repos: GitRepos, tmp_path: Path
) -> None:
    """The second push used to replace the first one's ledger with its own whole file."""
    other = second_checkout(checkout, repos, tmp_path / "other")
    record_tag(checkout, "@moonshot-ai/kimi-code@0.14.2")
    assert checkout.invoke("ledger.commit", "--push").returncode == 0
    ledger = MirrorLedger(other.config().mirror_ledger)
    ledger.add_tag("@moonshot-ai/kimi-code@0.15.0", "c" * 40, "d" * 40)
    ledger.add_branch_head("upstream-main", "d" * 40)
    ledger.save()

    cp = other.invoke("ledger.commit", "--push")
    assert cp.returncode == 0, cp.stderr
    text = git("show", "refs/heads/main:ledger/mirror-tags.toml", cwd=repos.origin)
    assert "@moonshot-ai/kimi-code@0.14.2" in text and "@moonshot-ai/kimi-code@0.15.0" in text
    assert '"dddddddddddddddddddddddddddddddddddddddd"' in text
    head = git("rev-parse", "refs/heads/main", cwd=repos.origin)
    assert files_in(head, repos.origin) == ["ledger/mirror-tags.toml"]
    assert len(git("rev-list", "refs/heads/main", cwd=repos.origin).split()) == 3
    # This checkout was behind and its ledger is not what landed: it is told to catch up.
    assert "git pull --ff-only origin main" in cp.stderr


def test_a_tag_recorded_elsewhere_on_another_object_is_refused(
    checkout: Project, repos: GitRepos, tmp_path: Path
) -> None:
    other = second_checkout(checkout, repos, tmp_path / "other")
    record_tag(checkout, "@moonshot-ai/kimi-code@0.14.2")
    assert checkout.invoke("ledger.commit", "--push").returncode == 0
    before = git("rev-parse", "refs/heads/main", cwd=repos.origin)
    ledger = MirrorLedger(other.config().mirror_ledger)
    ledger.add_tag("@moonshot-ai/kimi-code@0.14.2", "f" * 40, "b" * 40)
    ledger.save()
    cp = other.invoke("ledger.commit", "--push")
    assert cp.returncode == 1
    assert "a mirror tag never moves" in cp.stderr.strip().splitlines()[-1]
    assert git("rev-parse", "refs/heads/main", cwd=repos.origin) == before
