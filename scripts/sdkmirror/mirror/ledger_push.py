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
from git.exc import InvalidGitRepositoryError, NoSuchPathError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from sdkmirror.core.config import Config
from sdkmirror.core.errors import GitError, PushRefused, RemoteError, UsageError
from sdkmirror.infra import console, gitio
from sdkmirror.infra.gitio import ls_remote, push_refusal

ATTEMPTS = 6
# Every git command here runs through `gitio.run`, hooks off: the checkout's hooks (shared with
# its worktrees) are not ours to run, and a reference-transaction hook would veto scratch refs.
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
    """The checkout as a model (its refs, branch and configuration); commands go to gitio."""
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
    ref = f"{SCRATCH_REFS}/{uuid.uuid4().hex}"
    try:
        gitio.run(
            "fetch",
            "--quiet",
            "--no-tags",
            "--",
            url,
            f"+refs/heads/{branch}:{ref}",
            cwd=top,
            url=url,
            auth=True,
            timeout=gitio.TRANSFER_TIMEOUT,
        )
    except GitError as exc:
        raise RemoteError(f"cannot fetch {branch} from origin {url}: {exc.reason}") from exc
    with tempfile.TemporaryDirectory(prefix="sdkmirror-landing-") as tmp:
        tree = Path(tmp) / "main"
        try:
            prepared = _prepare(repo, top, ref, tree, cfg, edit, message, branch)
            base, commit, changed, diff = prepared
            if commit is None or not push:
                return Landed(base, commit, changed, attempt, pushed=False, diff=diff)
            _push(tree, url, branch, commit, base)
            return Landed(base, commit, changed, attempt, pushed=True, diff=diff)
        finally:
            for args in (
                ["worktree", "remove", "--force", str(tree)],
                ["worktree", "prune"],
                ["update-ref", "-d", ref],
            ):
                # A scratch leftover is harmless; the next landing uses a new name.
                with contextlib.suppress(GitError):
                    gitio.run(*args, cwd=top)


def _prepare(
    repo: git.Repo,
    top: Path,
    ref: str,
    tree: Path,
    cfg: Config,
    edit: Edit,
    message: str,
    branch: str,
) -> tuple[str, str | None, tuple[str, ...], str]:
    """Check out `ref` at `tree`, apply `edit`, commit what it wrote (plumbing, no hooks).

    Returns the base commit, the new commit (None: nothing changed), the files and a diffstat.
    """
    what = f"preparing the commit on origin's {branch}"
    base = gitio.run("rev-parse", f"{ref}^{{commit}}", cwd=top, what=what).strip()
    gitio.run("worktree", "add", "--quiet", "--detach", str(tree), base, cwd=top, what=what)
    written = edit(rerooted(cfg, top, tree))
    rels = sorted({str(Path(p).resolve().relative_to(tree.resolve())) for p in written})
    if rels:
        gitio.run("add", "--", *rels, cwd=tree, what=what)
    changed = tuple(gitio.run("diff", "--cached", "--name-only", base, cwd=tree, what=what).split())
    if not changed:
        return base, None, (), ""
    diff = gitio.run("diff", "--cached", "--stat", base, cwd=tree, what=what).rstrip("\n")
    tree_sha = gitio.run("write-tree", cwd=tree, what=what).strip()
    commit = gitio.run(
        "commit-tree",
        tree_sha,
        "-p",
        base,
        "-m",
        message,
        cwd=tree,
        env_extra=gitio.identity(repo),
        what=what,
    ).strip()
    return base, commit, changed, diff


def _push(tree: Path, url: str, branch: str, commit: str, base: str) -> None:
    """Push `commit` as the new `branch`, never forced; `_BranchMoved` when origin moved."""
    try:
        gitio.run(
            "push",
            "--porcelain",
            "--",
            url,
            f"{commit}:refs/heads/{branch}",
            cwd=tree,
            url=url,
            auth=True,
            timeout=gitio.TRANSFER_TIMEOUT,
        )
    except GitError as exc:
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
    if repo.head.is_detached or repo.active_branch.name != branch:
        return False
    top = Path(str(repo.working_tree_dir)).resolve()
    head = gitio.run("rev-parse", "HEAD", cwd=top).strip()
    try:
        gitio.run("merge-base", "--is-ancestor", head, landed.commit, cwd=top)
    except GitError:
        return False
    rels = [str(p.resolve().relative_to(top)) for p in files]
    restore: list[str] = []
    for rel in rels:
        path = top / rel
        now = _read(path)
        at_head = _blob(top, f"{head}:{rel}")
        pushed = _blob(top, f"{landed.commit}:{rel}")
        if now == at_head and _blob(top, f":{rel}") == at_head:
            continue
        if now != pushed:
            return False  # local edits that are not on origin: leave them to the maintainer
        restore.append(rel)
    for rel in restore:
        if _blob(top, f"{head}:{rel}") is None:
            gitio.run("rm", "-q", "--cached", "--ignore-unmatch", "--", rel, cwd=top)
            (top / rel).unlink(missing_ok=True)
        else:
            gitio.run("checkout", "-q", head, "--", rel, cwd=top)
    try:
        gitio.run("merge", "--ff-only", "-q", landed.commit, cwd=top)
    except GitError:
        return False
    return True


def _read(path: Path) -> str | None:
    """A file's text decoded as `gitio.run` decodes git's output, so the two compare exactly."""
    if not path.is_file():
        return None
    return path.read_bytes().decode("utf-8", "surrogateescape")


def _blob(top: Path, spec: str) -> str | None:
    """`git show SPEC` (`COMMIT:PATH`, or `:PATH` for the index); None when it is not there."""
    try:
        return gitio.run("show", spec, cwd=top)
    except GitError:
        return None
