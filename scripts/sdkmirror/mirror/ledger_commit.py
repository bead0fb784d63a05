"""`invoke ledger.commit`: record the checkout's ledger changes on main, merged, never copied.

The sync and publish steps write the ledgers in the checkout; this step records them on main.
Nothing else the checkout holds (staged or not) is ever part of that commit. With `--push` the
changes (the entries added since HEAD) are applied to origin's *current* main with the ledger
APIs (`ledger_push.land`), so a record someone else pushed meanwhile is kept, not overwritten.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from sdkmirror.core import config as config_mod
from sdkmirror.core.config import Config
from sdkmirror.core.errors import GitError, MirrorError, PushRefused, UsageError
from sdkmirror.infra import console, gitio, tomlstore
from sdkmirror.mirror import ledger_push
from sdkmirror.mirror.ledger import MirrorLedger
from sdkmirror.mirror.patch_registry import PatchRegistry
from sdkmirror.mirror.releases import ReleaseLedger, render_file, sync_file


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


def plan(cfg: Config, *, push: bool, remote: str = "origin") -> LedgerCommitPlan:
    """What would be committed: the ledger files that differ from HEAD or are new."""
    repo = ledger_push.open_checkout(cfg.root)
    if repo.head.is_detached:
        raise UsageError("HEAD is detached; check out the branch to record the ledger on (main)")
    top = Path(str(repo.working_tree_dir)).resolve()
    rel = [str(p.resolve().relative_to(top)) for p in ledger_files(cfg)]
    status = gitio.run("status", "--porcelain", "-z", "--untracked-files=all", "--", *rel, cwd=top)
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


def apply(cfg: Config, p: LedgerCommitPlan) -> str | None:
    """Commit the planned files on this checkout's branch; the new commit, or None for a no-op."""
    if p.noop:
        return None
    repo = ledger_push.open_checkout(cfg.root)
    top = Path(str(repo.working_tree_dir))
    what = "committing the ledger files"
    gitio.run("add", "--", *p.files, cwd=top, what=what)
    # `--only` with paths: whatever else is staged stays out of this commit.
    gitio.run(
        "commit",
        "--only",
        "-q",
        "-m",
        p.message,
        "--",
        *p.files,
        cwd=top,
        env_extra=gitio.identity(repo),
        what=what,
    )
    # Asked of git: GitPython would start a `cat-file` child of its own to name the object.
    return gitio.run("rev-parse", "HEAD", cwd=top, what=what).strip()


# --- merging onto origin's main ----------------------------------------------------------


def _at_head(top: Path, rel: str) -> str | None:
    try:
        return gitio.run("show", f"HEAD:{rel}", cwd=top)
    except GitError:
        return None


class _Ledger(Protocol):
    def save(self) -> None: ...


_L = TypeVar("_L", bound=_Ledger)


def _loaded(kind: Callable[[Path], _L], text: str | None) -> _L:
    """A ledger object over `text` (HEAD's version of the file; None: not there yet)."""
    with tempfile.TemporaryDirectory(prefix="sdkmirror-base-") as tmp:
        path = Path(tmp) / "base.toml"
        if text is not None:
            path.write_text(text, encoding="utf-8")
        return kind(path)


def _merge_into(
    kind: Callable[[Path], _L],
    merge: Callable[[_L, _L, _L], None],
    base: str | None,
    ours: Path,
    theirs: Path,
) -> None:
    """Apply to `theirs` what `ours` added since `base` (HEAD's text), and save it."""
    target = kind(theirs)
    merge(_loaded(kind, base), kind(ours), target)
    target.save()


def _merge_mirror(base: MirrorLedger, ours: MirrorLedger, theirs: MirrorLedger) -> None:
    for name, rec in ours.tags.items():
        if name in base.tags:
            continue
        there = theirs.tags.get(name)
        if there is not None and (there.object, there.commit) != (rec.object, rec.commit):
            raise MirrorError(
                f"origin's mirror ledger records {name} on {there.object[:12]}, this checkout on "
                f"{rec.object[:12]}; a mirror tag never moves: run `invoke verify`"
            )
        theirs.add_tag(name, rec.object, rec.commit, rec.mirrored_at)
    for branch, heads in ours.mirror_branches.items():
        for sha in heads:
            if sha not in base.heads(branch):
                theirs.add_branch_head(branch, sha)


def _merge_releases(base: ReleaseLedger, ours: ReleaseLedger, theirs: ReleaseLedger) -> None:
    for version, release in ours.releases.items():
        if version not in base.releases:
            theirs.add(release)  # identical: a no-op; different: refused (versions are immutable)


def _merge_patches(base: PatchRegistry, ours: PatchRegistry, theirs: PatchRegistry) -> None:
    for name, patch in ours.patches.items():
        before = base.patches.get(name)
        if patch == before:
            continue
        there = theirs.patches.get(name)
        if there not in (before, patch):
            raise MirrorError(
                f"patch {name!r} changed both here and on origin's main; bring main in "
                "(`git pull`) and record it again"
            )
        tomlstore.section(theirs.doc, "patches")[name] = ours.doc["patches"][name]


def merge_edit(cfg: Config, files: tuple[str, ...]) -> ledger_push.Edit:
    """The edit that applies this checkout's ledger changes (relative to HEAD) to a main."""
    repo = ledger_push.open_checkout(cfg.root)
    top = Path(str(repo.working_tree_dir)).resolve()

    def rel(p: Path) -> str:
        return str(p.resolve().relative_to(top))

    kinds: dict[str, Callable[[str | None, Path, Path], None]] = {
        rel(cfg.mirror_ledger): partial(_merge_into, MirrorLedger, _merge_mirror),
        rel(cfg.release_ledger): partial(_merge_into, ReleaseLedger, _merge_releases),
        rel(cfg.patch_registry): partial(_merge_into, PatchRegistry, _merge_patches),
    }
    heads = {f: _at_head(top, f) for f in files}

    def edit(main: Config) -> list[Path]:
        written: list[Path] = []
        merged_releases = notes_moved = False
        for f in files:
            ours, theirs = top / f, _moved(cfg, main, top, f)
            now = theirs.read_text(encoding="utf-8") if theirs.exists() else None
            if now == heads[f] or f not in kinds:
                if f == rel(cfg.release_notes) and now != heads[f]:
                    notes_moved = True
                    continue  # generated: rendered below from the merged ledger
                # Origin's file is still what this checkout started from: ours is the merge.
                if ours.exists():
                    theirs.parent.mkdir(parents=True, exist_ok=True)
                    theirs.write_bytes(ours.read_bytes())
                else:
                    theirs.unlink(missing_ok=True)
                written.append(theirs)
                continue
            kinds[f](heads[f], ours, theirs)
            written.append(theirs)
            merged_releases |= f == rel(cfg.release_ledger)
        if merged_releases or notes_moved:
            text = render_file(main.release_ledger, main.notes_dir, main.root)
            sync_file(main.release_notes, text, check=False)
            written.append(main.release_notes)
        return written

    return edit


def _moved(cfg: Config, main: Config, top: Path, rel: str) -> Path:
    """The path in `main`'s worktree of the checkout's repository-relative `rel`."""
    depth = len(cfg.root.resolve().relative_to(top).parts)
    tree = main.root
    for _ in range(depth):
        tree = tree.parent
    return tree / rel


def main(*, push: bool = False, dry_run: bool = False) -> None:
    cfg = config_mod.load()
    p = plan(cfg, push=push)
    rows = [[line] for line in p.describe()]
    if p.noop or (dry_run and not push):
        console.result(
            console.table("Ledger commit" + (" (dry run)" if dry_run else ""), ["plan"], rows)
        )
        return
    if not push:
        with console.step(f"committing {len(p.files)} ledger file(s) on {p.branch}"):
            sha = apply(cfg, p)
        console.result(
            console.table(
                "Ledger commit", ["done", "commit"], [[r[0], (sha or "")[:12]] for r in rows]
            )
        )
        console.manual(
            ["git", "push", "origin", f"HEAD:refs/heads/{p.branch}"], "publish the ledger commit"
        )
        return
    try:
        with console.step(f"recording {len(p.files)} ledger file(s) on origin's {p.branch}"):
            landed = ledger_push.land(
                cfg,
                merge_edit(cfg, p.files),
                p.message,
                url=p.push_to or "",
                branch=p.branch,
                push=not dry_run,
            )
    except PushRefused:
        console.manual(
            ["invoke", "ledger.commit", "--push"],
            "nothing was recorded and the ledger files here are unchanged; run it again once "
            "origin accepts the push",
        )
        raise
    title = "Ledger commit" + (" (dry run)" if dry_run else "")
    if landed.commit is None:
        done = [["origin's main has these records already"]]
        console.result(console.table(title, ["plan"], done))
    elif dry_run:
        console.result(console.table(title, ["plan"], rows))
        console.info(f"would commit on origin's {p.branch} ({landed.base[:12]}):\n{landed.diff}")
    else:
        console.result(
            console.table(
                title,
                ["done", "commit"],
                [[f"commit {f} on origin's {p.branch}", landed.commit[:12]] for f in landed.files],
            )
        )
        top = Path(str(ledger_push.open_checkout(cfg.root).working_tree_dir)).resolve()
        if not ledger_push.follow(cfg, landed, p.branch, [top / f for f in p.files]):
            console.manual(
                ["git", "pull", "--ff-only", "origin", p.branch],
                "origin's main holds the records now; discard the ledger edits here "
                "(`git checkout -- ledger RELEASES.md`) and bring main in",
            )
