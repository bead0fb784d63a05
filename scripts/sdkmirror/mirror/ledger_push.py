"""Land an edit of the committed records on origin's *current* main, never over it.

Whoever records something (a release, the mirror ledger after a sync) may be working from a
checkout that is already behind. So the edit is never a whole-file copy: origin's main is
fetched into a temporary worktree of the checkout's repository, the edit is applied there with
the ledger APIs, only the files it names are committed (plumbing: no hooks run), and the
commit is pushed without force. When main moved meanwhile, the push is refused as a
non-fast-forward: fetch again, re-apply the same edit, push again; a bounded number of times.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from sdkmirror.core.config import Config
from sdkmirror.core.errors import PushRefused, RemoteError, UsageError
from sdkmirror.infra import console
from sdkmirror.infra.gitio import git_env, git_reason, ls_remote, push_refusal, wrap

ATTEMPTS = 6
# Every git command on the checkout's repository: its hooks (shared with its worktrees) are
# not ours to run, and a reference-transaction hook would even veto our scratch refs.
GIT = ["git", "-c", "core.hooksPath=/dev/null"]
# The scratch ref a landing fetches origin's branch into; unique per run, deleted afterwards.
SCRATCH_REFS = "refs/sdkmirror/landing"

# An edit gets the configuration re-rooted in the worktree of origin's branch and returns the
# files it wrote (only those are committed). It raises to refuse; nothing is pushed then.
Edit = Callable[[Config], Sequence[Path]]


@dataclass(frozen=True)
class Landed:
    base: str  # origin's branch head the edit was applied to
    commit: str | None  # the commit pushed (or planned); None when the edit changed nothing
    files: tuple[str, ...]  # repository-relative paths the commit changes
    attempts: int
    pushed: bool
    diff: str = ""  # what the commit changes, for a dry run's plan


class _BranchMoved(Exception):
    """Origin's branch moved between our fetch and our push: apply the edit again."""

    def __init__(self, refusal: PushRefused) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def open_checkout(root: Path) -> git.Repo:
    try:
        return git.Repo(root, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise UsageError(
            f"{root} is not inside a git checkout; run from the project's clone"
        ) from exc


def rerooted(cfg: Config, top: Path, tree: Path) -> Config:
    """`cfg` with every committed path moved from the checkout `top` into `tree`."""

    def move(p: Path) -> Path:
        try:
            return tree / p.resolve().relative_to(top)
        except ValueError:
            raise UsageError(
                f"{p} is outside the git checkout {top}; keep the ledgers in the repository"
            ) from None

    return dataclasses.replace(
        cfg,
        root=move(cfg.root),
        mirror_ledger=move(cfg.mirror_ledger),
        release_ledger=move(cfg.release_ledger),
        patch_registry=move(cfg.patch_registry),
        release_notes=move(cfg.release_notes),
        notes_dir=move(cfg.notes_dir),
    )


def land(
    cfg: Config,
    edit: Edit,
    message: str,
    *,
    url: str,
    branch: str = "main",
    push: bool = True,
    attempts: int = ATTEMPTS,
) -> Landed:
    """Apply `edit` to origin's `branch` as it is now and push it; retry when it moves."""
    repo = open_checkout(cfg.root)
    top = Path(str(repo.working_tree_dir)).resolve()
    tries = 0

    def once() -> Landed:
        nonlocal tries
        tries += 1
        return _land_once(
            repo, top, cfg, edit, message, url=url, branch=branch, push=push, attempt=tries
        )

    def before_sleep(state: RetryCallState) -> None:
        console.warn(f"origin's {branch} moved while recording; applying the change again")

    try:
        for attempt in Retrying(
            stop=stop_after_attempt(max(1, attempts)),
            wait=wait_random_exponential(multiplier=0.2, max=3),
            retry=retry_if_exception_type(_BranchMoved),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                return once()
    except _BranchMoved as exc:
        raise PushRefused(
            f"{exc.refusal} (origin's {branch} kept moving: gave up after {tries} attempts; "
            "run the same command again)",
            reason=exc.refusal.reason,
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _land_once(
    repo: git.Repo,
    top: Path,
    cfg: Config,
    edit: Edit,
    message: str,
    *,
    url: str,
    branch: str,
    push: bool,
    attempt: int,
) -> Landed:
    g = repo.git
    ref = f"{SCRATCH_REFS}/{uuid.uuid4().hex}"
    env = git_env(url, auth=True)
    try:
        g.execute(
            [*GIT, "fetch", "--quiet", "--no-tags", "--", url, f"+refs/heads/{branch}:{ref}"],
            env=env,
        )
    except GitCommandError as exc:
        raise RemoteError(f"cannot fetch {branch} from origin {url}: {git_reason(exc)}") from exc
    with tempfile.TemporaryDirectory(prefix="sdkmirror-landing-") as tmp:
        tree = Path(tmp) / "main"
        try:
            try:
                prepared = _prepare(g, ref, tree, top, cfg, edit, message)
            except GitCommandError as exc:
                raise wrap(exc, f"preparing the commit on origin's {branch}") from exc
            base, commit, changed, diff = prepared
            if commit is None or not push:
                return Landed(base, commit, changed, attempt, pushed=False, diff=diff)
            _push(git.Repo(tree), url, branch, commit, base, env)
            return Landed(base, commit, changed, attempt, pushed=True, diff=diff)
        finally:
            for argv in (
                [*GIT, "worktree", "remove", "--force", str(tree)],
                [*GIT, "worktree", "prune"],
                [*GIT, "update-ref", "-d", ref],
            ):
                # A scratch leftover is harmless; the next landing uses a new name.
                with contextlib.suppress(GitCommandError):
                    g.execute(argv)


def _prepare(
    g: git.Git, ref: str, tree: Path, top: Path, cfg: Config, edit: Edit, message: str
) -> tuple[str, str | None, tuple[str, ...], str]:
    """Check out `ref` at `tree`, apply `edit`, commit what it wrote (plumbing, no hooks).

    Returns the base commit, the new commit (None: nothing changed), the files and a diffstat.
    """
    base = g.rev_parse(f"{ref}^{{commit}}").strip()
    g.execute([*GIT, "worktree", "add", "--quiet", "--detach", str(tree), base])
    wt = git.Repo(tree)
    written = edit(rerooted(cfg, top, tree))
    rels = sorted({str(Path(p).resolve().relative_to(tree.resolve())) for p in written})
    if rels:
        wt.git.add("--", *rels)
    changed = tuple(wt.git.diff("--cached", "--name-only", base).split())
    if not changed:
        return base, None, (), ""
    diff = wt.git.diff("--cached", "--stat", base)
    tree_sha = wt.git.write_tree().strip()
    commit = wt.git.commit_tree(tree_sha, "-p", base, "-m", message).strip()
    return base, commit, changed, diff


def _push(wt: git.Repo, url: str, branch: str, commit: str, base: str, env: dict[str, str]) -> None:
    """Push `commit` as the new `branch`, never forced; `_BranchMoved` when origin moved."""
    try:
        wt.git.execute(
            [*GIT, "push", "--porcelain", "--", url, f"{commit}:refs/heads/{branch}"],
            env=env,
        )
    except GitCommandError as exc:
        refusal = push_refusal(exc, "origin", url)
        now = ls_remote(url, [f"refs/heads/{branch}"], name="origin").head(branch)
        # A refusal with the branch where we left it is the server's policy: not ours to retry.
        if now != base or "lock" in refusal.reason:
            raise _BranchMoved(refusal) from exc
        raise refusal from exc


def follow(cfg: Config, landed: Landed, branch: str, files: Sequence[Path]) -> bool:
    """Bring the checkout onto the landed commit when that loses nothing; True when done.

    Only a checkout on `branch` whose HEAD the commit descends from is moved, and only after
    each recorded file there is either unmodified or already holds what was pushed.
    """
    if not landed.pushed or landed.commit is None:
        return False
    repo = open_checkout(cfg.root)
    g = repo.git
    if repo.head.is_detached or repo.active_branch.name != branch:
        return False
    head = repo.head.commit.hexsha
    try:
        g.merge_base("--is-ancestor", head, landed.commit)
    except GitCommandError:
        return False
    top = Path(str(repo.working_tree_dir)).resolve()
    rels = [str(p.resolve().relative_to(top)) for p in files]
    restore: list[str] = []
    for rel in rels:
        path = top / rel
        now = path.read_bytes() if path.is_file() else None
        at_head = _blob(g, head, rel)
        pushed = _blob(g, landed.commit, rel)
        if now == at_head and _staged(g, rel) == at_head:
            continue
        if now != pushed:
            return False  # local edits that are not on origin: leave them to the maintainer
        restore.append(rel)
    for rel in restore:
        if _blob(g, head, rel) is None:
            g.execute([*GIT, "rm", "-q", "--cached", "--ignore-unmatch", "--", rel])
            (top / rel).unlink(missing_ok=True)
        else:
            g.execute([*GIT, "checkout", "-q", head, "--", rel])
    try:
        g.execute([*GIT, "merge", "--ff-only", "-q", landed.commit])
    except GitCommandError:
        return False
    return True


def _blob(g: git.Git, commit: str, rel: str) -> bytes | None:
    try:
        return g.execute(
            ["git", "show", f"{commit}:{rel}"],
            strip_newline_in_stdout=False,
            stdout_as_string=False,
        )
    except GitCommandError:
        return None


def _staged(g: git.Git, rel: str) -> bytes | None:
    try:
        return g.execute(
            ["git", "show", f":{rel}"], strip_newline_in_stdout=False, stdout_as_string=False
        )
    except GitCommandError:
        return None
