"""`invoke smoke.bisect`: the first commit between a good and a bad ref that breaks the smoke.

Only commits that touch the SDK's build inputs (`build_inputs.build_input_paths`) are
candidates: any other commit builds exactly as its parent does. The search is a binary search
over the candidates plus one more outcome, "the bad ref builds"; the last candidate has the
bad ref's build inputs, so building it is building the bad ref. A candidate that cannot be
installed (lockfile, network, layout, a toolchain outside its engines) is skipped, said so,
and a neighbour is built instead. The build of one candidate is a plain function, so the
search runs with any builder; the real one is the smoke build (`build.run_smoke`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sdkmirror.core import config as config_mod
from sdkmirror.core import reports, versions
from sdkmirror.core.config import Config, ToolchainSpec
from sdkmirror.core.errors import ExitCode, GitError, MirrorError, UsageError
from sdkmirror.infra import console, gitio
from sdkmirror.infra.toolchain import declarations_from, support
from sdkmirror.mirror.source import resolve
from sdkmirror.smoke import build as smoke_build
from sdkmirror.smoke.build_inputs import build_input_paths

State = Literal["good", "bad", "skip"]


class BadRefBuilds(MirrorError):
    """The bad ref builds (or no candidate could be built): there is no culprit to name."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    date: str  # committer date, ISO 8601


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str = ""


Builder = Callable[[Commit], Verdict]
# Makes the per-candidate build from the toolchain and the scratch repository holding them.
BuilderFactory = Callable[[ToolchainSpec, Path], Builder]


@dataclass(frozen=True)
class Tested:
    commit: Commit
    verdict: Verdict


@dataclass
class Search:
    """What the search decided: `culprit` is an index into the candidates, or None when the
    last candidate (the bad ref's build inputs) built green."""

    culprit: int | None
    tested: list[Tested] = field(default_factory=list)
    # Candidates that may be the first bad one because they could not be built.
    undecided: list[int] = field(default_factory=list)


def search(candidates: Sequence[Commit], build: Builder) -> Search:
    """Binary search for the first bad candidate; the good ref before them is presumed good.

    Outcomes are the n candidates plus "none is bad": at most ceil(log2(n + 1)) builds, plus
    one per skipped candidate.
    """
    n = len(candidates)
    lo, hi = -1, n  # lo: last known good (-1: the good ref); hi: first known bad (n: none yet)
    skipped: set[int] = set()
    tested: list[Tested] = []
    while hi - lo > 1:
        pick = _next(lo, hi, skipped)
        if pick is None:
            break
        verdict = build(candidates[pick])
        tested.append(Tested(candidates[pick], verdict))
        if verdict.state == "good":
            lo = pick
        elif verdict.state == "bad":
            hi = pick
        else:
            skipped.add(pick)
    undecided = sorted(i for i in skipped if lo < i < hi)
    return Search(hi if hi < n else None, tested, undecided)


def _next(lo: int, hi: int, skipped: set[int]) -> int | None:
    """The candidate in (lo, hi) whose verdict splits the remaining outcomes most evenly.

    A skipped candidate cannot be told apart from the next one, so it is no outcome of its
    own: the outcomes are the unskipped positions in (lo, hi) plus `hi` itself.
    """
    pool = [i for i in range(lo + 1, hi) if i not in skipped]
    if not pool:
        return None
    total = len(pool) + 1
    mid = (lo + hi) // 2
    best, best_key = pool[0], (total, 0, 0)
    for rank, i in enumerate(pool):  # `rank + 1` outcomes if i is bad, the rest if good
        key = (max(rank + 1, total - rank - 1), abs(i - mid), i)
        if key < best_key:
            best, best_key = i, key
    return best


# --- the history between the two refs -------------------------------------------------------------


class GitTree:
    """One commit's tree in a repository, read through git (for `build_input_paths`)."""

    def __init__(self, git_dir: Path, commit: str) -> None:
        self.git_dir, self.commit = git_dir, commit
        self._files: list[str] | None = None

    def read(self, rel: str) -> str | None:
        try:
            return gitio.run(f"--git-dir={self.git_dir}", "cat-file", "-p", f"{self.commit}:{rel}")
        except GitError:
            return None

    def files(self) -> Iterable[str]:
        if self._files is None:
            out = gitio.run(
                f"--git-dir={self.git_dir}", "ls-tree", "-r", "-z", "--name-only", self.commit
            )
            self._files = [f for f in out.split("\0") if f and "/node_modules/" not in f]
        return self._files


@dataclass(frozen=True)
class History:
    """The good and bad commits fetched into a scratch repository, and the candidates."""

    git_dir: Path
    good: str
    bad: str
    inputs: list[str]
    candidates: list[Commit]


def _git(git_dir: Path, *args: str, url: str | None = None) -> str:
    return gitio.run(f"--git-dir={git_dir}", *args, url=url)


def fetch_history(url: str, good: str, bad: str, git_dir: Path, sdk_dir: str) -> History:
    """Fetch both refs with their history; refuse unknown refs and a range that is not one."""
    full = {"good": resolve(url, good), "bad": resolve(url, bad)}
    gitio.run("init", "--quiet", "--bare", "--template=", "-b", "main", git_dir)
    shas = {}
    for side, ref in full.items():
        try:
            _git(git_dir, "fetch", "--quiet", "--no-tags", "--", url, f"+{ref}:refs/bisect/{side}")
            shas[side] = _git(git_dir, "rev-parse", f"refs/bisect/{side}^{{commit}}").strip()
        except GitError as exc:
            given = good if side == "good" else bad
            raise UsageError(
                f"--{side} {given!r} is not a commit in {url} ({exc.reason}); pass a branch, "
                "tag or commit that exists there"
            ) from None
    g, b = shas["good"], shas["bad"]
    if g == b:
        raise UsageError(f"--good {good!r} and --bad {bad!r} are the same commit {g[:12]}")
    if not _is_ancestor(git_dir, g, b):
        if _is_ancestor(git_dir, b, g):
            raise UsageError(
                f"reversed range: --bad {bad!r} is an ancestor of --good {good!r}; swap them"
            )
        raise UsageError(
            f"--good {good!r} is not an ancestor of --bad {bad!r}; pass a good ref the bad one "
            "descends from (the last green mirror tag before it)"
        )
    inputs = sorted(
        set(build_input_paths(GitTree(git_dir, g), sdk_dir))
        | set(build_input_paths(GitTree(git_dir, b), sdk_dir))
    )
    out = _git(
        git_dir,
        "log",
        "--reverse",
        "--topo-order",
        "--format=%H%x1f%s%x1f%cI",
        f"{g}..{b}",
        "--",
        *inputs,
    )
    candidates = []
    for line in out.splitlines():
        if line:
            sha, subject, date = line.split("\x1f", 2)
            # Upstream writes the subject: no control character reaches a terminal or an issue.
            candidates.append(
                Commit(sha, "".join(c if c.isprintable() else "?" for c in subject), date)
            )
    return History(git_dir, g, b, inputs, candidates)


def _is_ancestor(git_dir: Path, a: str, b: str) -> bool:
    try:
        _git(git_dir, "merge-base", "--is-ancestor", a, b)
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True


# --- the toolchain ------------------------------------------------------------------------------


def parse_toolchain(text: str) -> ToolchainSpec:
    """`NODE/PNPM`, both exact versions (`24.15.0/10.33.0`)."""
    node, sep, pnpm = text.partition("/")
    if not sep:
        raise UsageError(f"--toolchain {text!r} is not NODE/PNPM; pass e.g. 24.15.0/10.33.0")
    for what, value in (("node", node), ("pnpm", pnpm)):
        problem = versions.exact_problem(value, f"--toolchain {what}")
        if problem:
            raise UsageError(problem)
    return ToolchainSpec(node, pnpm)


def choose_toolchain(cfg: Config, tree: GitTree, given: str | None) -> ToolchainSpec:
    """The given toolchain, refused outside the bad ref's engines; else the first configured
    toolchain inside them."""
    pkg = json.loads(tree.read("package.json") or "{}")
    decl = declarations_from(pkg if isinstance(pkg, dict) else {}, tree.read(".nvmrc"))
    if given:
        spec = parse_toolchain(given)
        ok, why = support(spec, decl)
        if not ok:
            raise UsageError(
                f"--toolchain {given}: {why} at the bad ref; pass a toolchain the upstream "
                "declares (see `invoke toolchains.update`)"
            )
        return spec
    for spec in cfg.toolchains:
        if support(spec, decl)[0]:
            return ToolchainSpec(spec.node, spec.pnpm)
    raise UsageError(
        "no configured toolchain is inside the bad ref's engines; pass --toolchain NODE/PNPM"
    )


# --- the real build -----------------------------------------------------------------------------


@contextmanager
def _no_step_summary() -> Iterator[None]:
    # Each candidate's smoke table would land in the job's summary; the bisect's result does.
    saved = os.environ.pop("GITHUB_STEP_SUMMARY", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["GITHUB_STEP_SUMMARY"] = saved


def smoke_builder(cfg: Config, spec: ToolchainSpec, git_dir: Path, report_dir: Path) -> Builder:
    """Build a candidate with the smoke build; what cannot be installed is a skip."""

    def build(commit: Commit) -> Verdict:
        with _no_step_summary():
            result = smoke_build.run_smoke(
                cfg, spec, upstream_url=str(git_dir), ref=commit.sha, report_dir=report_dir,
                keep=False, as_result=False,
            )  # fmt: skip
        e = result.entry
        if e["status"] == smoke_build.PASS:
            return Verdict("good", "built")
        if e["status"] == smoke_build.UNSUPPORTED:
            return Verdict("skip", f"toolchain unsupported here: {e['reason']}")
        if e["category"] == "toolchain":  # would skip every candidate: stop instead
            raise MirrorError(f"toolchain {spec.id}: {e['reason']}", exit_code=ExitCode.TOOLCHAIN)
        if e["classification"] == smoke_build.UPSTREAM:
            return Verdict("bad", f"{e['category']}: {e['reason']}")
        return Verdict("skip", f"cannot install ({e['category']}): {e['reason']}")

    return build


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    good: str
    bad: str
    good_commit: str
    bad_commit: str
    toolchain: str
    inputs: list[str]
    candidates: list[Commit]
    search: Search

    @property
    def culprit(self) -> Commit | None:
        i = self.search.culprit
        return self.candidates[i] if i is not None else None

    @property
    def builds(self) -> int:
        return len(self.search.tested)

    @property
    def skipped(self) -> list[Tested]:
        return [t for t in self.search.tested if t.verdict.state == "skip"]

    @property
    def bound(self) -> int:
        """ceil(log2(n + 1)) + skips: the n candidates and "none is bad" are the outcomes."""
        n = len(self.candidates)
        return math.ceil(math.log2(n + 1)) + len(self.skipped)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "bisect",
            "schema": 1,
            "good": self.good,
            "bad": self.bad,
            "good_commit": self.good_commit,
            "bad_commit": self.bad_commit,
            "toolchain": self.toolchain,
            "inputs": self.inputs,
            "candidates": len(self.candidates),
            "builds": self.builds,
            "bound": self.bound,
            "culprit": asdict(self.culprit) if self.culprit else None,
            "possible_culprits": [asdict(self.candidates[i]) for i in self.search.undecided],
            "tested": [asdict(t.commit) | asdict(t.verdict) for t in self.search.tested],
        }


def bisect(
    cfg: Config,
    *,
    good: str,
    bad: str,
    toolchain: str | None = None,
    upstream: str | None = None,
    builder: BuilderFactory | None = None,
) -> Outcome:
    """Fetch, check, and search. `builder(spec, git_dir)` makes the per-candidate build
    (default: the smoke build with `spec`)."""
    url = upstream or cfg.upstream
    with tempfile.TemporaryDirectory(prefix="sdkmirror-bisect-") as tmp:
        git_dir = Path(tmp) / "history.git"
        with console.step(f"fetching {good} and {bad} from {url}"):
            history = fetch_history(url, good, bad, git_dir, cfg.sdk_dir)
        spec = choose_toolchain(cfg, GitTree(git_dir, history.bad), toolchain)
        n = len(history.candidates)
        console.info(
            f"{n} commit(s) between {good} and {bad} touch the SDK's build inputs; at most "
            f"{math.ceil(math.log2(n + 1))} build(s) with node {spec.node} + pnpm {spec.pnpm}, "
            "plus one per skipped commit"
        )
        make = builder or (lambda s, d: smoke_builder(cfg, s, d, Path(tmp) / "reports"))
        build = make(spec, git_dir)
        count = 0

        def announced(commit: Commit) -> Verdict:
            nonlocal count
            count += 1
            console.info(f"build {count}: {commit.sha[:12]} {commit.subject}")
            verdict = build(commit)
            said = {"good": "builds", "bad": "BREAKS", "skip": "SKIPPED"}[verdict.state]
            why = f": {verdict.reason}" if verdict.reason else ""
            console.info(f"    {commit.sha[:12]} {said}{why}")
            return verdict

        found = search(history.candidates, announced)
    return Outcome(
        good, bad, history.good, history.bad, f"{spec.node}/{spec.pnpm}", history.inputs,
        history.candidates, found,
    )  # fmt: skip


def text(outcome: Outcome) -> str:
    """The result as plain lines for stdout."""
    c = outcome.culprit
    lines = []
    if c is not None:
        lines.append(f"first bad commit: {c.sha} {c.subject} ({c.date})")
        others = [outcome.candidates[i] for i in outcome.search.undecided]
        if others:
            lines.append(
                "or one of these commits that could not be built before it: "
                + ", ".join(f"{o.sha[:12]} {o.subject}" for o in others)
            )
    lines.append(
        f"{len(outcome.candidates)} candidate(s), {outcome.builds} build(s) "
        f"(at most {outcome.bound}), {len(outcome.skipped)} skipped, toolchain {outcome.toolchain}"
    )
    return "\n".join(lines) + "\n"


def check_report_path(report: str | None) -> None:
    """Refuse a `--report` that could not be written, without creating anything (bad input
    leaves no trace, not even a directory)."""
    if not report:
        return
    path = Path(report)
    if path.is_dir():
        raise UsageError(f"--report {report} is a directory; pass a file path")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(
            f"--report {report} cannot be written under {parent}; pass a writable path"
        )


def main(
    *,
    good: str,
    bad: str,
    toolchain: str | None = None,
    upstream: str | None = None,
    as_json: bool = False,
    report: str | None = None,
    builder: BuilderFactory | None = None,
) -> Outcome:
    """`invoke smoke.bisect`: exit 0 with the culprit, 1 when the bad ref builds, 2 bad input."""
    cfg = config_mod.load()
    if toolchain:
        parse_toolchain(toolchain)  # a malformed flag is refused before anything is fetched
    check_report_path(report)
    outcome = bisect(
        cfg, good=good, bad=bad, toolchain=toolchain, upstream=upstream, builder=builder
    )
    data = outcome.to_json()
    reports.write_json(report, data, what="the bisect report")
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(text(outcome), end="")
    if outcome.culprit is None:
        if not outcome.candidates:
            raise BadRefBuilds(
                f"no commit between {good} and {bad} touches the SDK's build inputs: the bad "
                "ref builds as the good one does"
            )
        if outcome.search.undecided:
            raise BadRefBuilds(
                f"no culprit: the {len(outcome.search.undecided)} candidate(s) after the last "
                f"good build could not be built; see the skipped commits above"
            )
        raise BadRefBuilds(
            f"the bad ref {bad} builds with {outcome.toolchain}: nothing to bisect "
            "(the break is in our environment, or gone)"
        )
    return outcome
