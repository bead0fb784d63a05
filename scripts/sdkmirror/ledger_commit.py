"""`invoke ledger.commit`: commit only the ledger files to the checkout's branch, and push it.

The sync and publish steps write the ledgers in the checkout; this step records them on main.
Nothing else the checkout holds (staged or not) is ever part of that commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from . import console, taskutil
from .config import Config
from .errors import UsageError
from .gitio import git_env, push_refusal, wrap


@dataclass(frozen=True)
class LedgerCommitPlan:
    branch: str
    files: tuple[str, ...]  # relative to the work tree
    message: str
    push_to: str | None  # the remote's URL, when pushing

    @property
    def noop(self) -> bool:
        return not self.files

    def describe(self) -> list[str]:
        if self.noop:
            return ["ledger files unchanged: nothing to commit"]
        lines = [f"commit {f} on {self.branch}" for f in self.files]
        if self.push_to:
            lines.append(f"push {self.branch} to {self.push_to}")
        return lines


def ledger_files(cfg: Config) -> list[Path]:
    return [cfg.mirror_ledger, cfg.release_ledger, cfg.patch_registry, cfg.release_notes]


def _open(root: Path) -> git.Repo:
    try:
        return git.Repo(root, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise UsageError(
            f"{root} is not inside a git checkout; run from the project's clone"
        ) from exc


def plan(cfg: Config, *, push: bool, remote: str = "origin") -> LedgerCommitPlan:
    """What would be committed: the ledger files that differ from HEAD or are new."""
    repo = _open(cfg.root)
    if repo.head.is_detached:
        raise UsageError("HEAD is detached; check out the branch to record the ledger on (main)")
    top = Path(str(repo.working_tree_dir)).resolve()
    rel = [str(p.resolve().relative_to(top)) for p in ledger_files(cfg)]
    status = repo.git.status("--porcelain", "-z", "--untracked-files=all", "--", *rel)
    changed = sorted({entry[3:] for entry in status.split("\0") if len(entry) > 3} & set(rel))
    branch = repo.active_branch.name
    url = None
    if push:
        try:
            url = repo.remote(remote).url
        except ValueError:
            raise UsageError(f"the checkout has no remote {remote!r} to push to") from None
    names = ", ".join(Path(f).name for f in changed)
    return LedgerCommitPlan(branch, tuple(changed), f"ledger: record {names}", url)


def apply(cfg: Config, p: LedgerCommitPlan, *, remote: str = "origin") -> str | None:
    """Commit the planned files and push; returns the new commit, or None for a no-op."""
    if p.noop:
        return None
    repo = _open(cfg.root)
    g = repo.git
    try:
        g.add("--", *p.files)
        # `--only` with paths: whatever else is staged stays out of this commit.
        g.commit("--only", "--no-verify", "-q", "-m", p.message, "--", *p.files)
    except GitCommandError as exc:
        raise wrap(exc, "committing the ledger files") from exc
    sha = repo.head.commit.hexsha
    if p.push_to:
        argv = ["git", "push", "--porcelain", remote, f"HEAD:refs/heads/{p.branch}"]
        try:
            g.execute(argv, env=git_env(p.push_to, auth=True))
        except GitCommandError as exc:
            err = push_refusal(exc, remote, p.push_to)
            console.manual(
                ["git", "pull", "--rebase", remote, p.branch],
                "the ledger commit is made locally; bring in the remote branch, then push again",
            )
            raise err from exc
    return sha


def main(*, push: bool = False, dry_run: bool = False) -> None:
    cfg = taskutil.load_config()
    p = plan(cfg, push=push)
    rows = [[line] for line in p.describe()]
    if dry_run or p.noop:
        console.show(
            console.table("Ledger commit" + (" (dry run)" if dry_run else ""), ["plan"], rows)
        )
        return
    with console.step(f"committing {len(p.files)} ledger file(s) on {p.branch}"):
        sha = apply(cfg, p)
    console.show(
        console.table("Ledger commit", ["done", "commit"], [[r[0], (sha or "")[:12]] for r in rows])
    )
    if not p.push_to:
        console.manual(
            ["git", "push", "origin", f"HEAD:refs/heads/{p.branch}"], "publish the ledger commit"
        )
