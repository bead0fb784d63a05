"""`invoke smoke.bisect`: the culprit on a real history made from the sample upstream.

The search tests plug in a builder that decides from the candidate's real tree (the source
the build would compile), so they run without Node; one slow test builds with the real smoke.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Project
from gitrepos import git

from sdkmirror.devtools import sample
from sdkmirror.smoke import bisect
from sdkmirror.smoke.bisect import Commit, GitTree, Verdict
from sdkmirror.smoke.build_inputs import DirTree, build_input_paths

SDK = sample.SDK_DIR
INDEX = f"{SDK}/src/index.ts"


@dataclass(frozen=True)
class History:
    bare: Path
    good: str
    bad: str
    commits: dict[str, str]  # subject -> sha
    culprit: str
    inputs_touched: list[str]  # subjects of the commits that touch the build inputs


def _commit(work: Path, files: dict[str, str], message: str, when: int) -> str:
    sample.write_files(work, files)
    git("add", "-A", cwd=work)
    stamp = f"@{when} +0000"
    env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=work, env=env, check=True)
    return git("rev-parse", "HEAD", cwd=work)


def make_history(base: Path) -> History:
    """The sample's newest release, then ten commits: six touch the SDK's build inputs (its
    directory, workspace packages it reaches transitively, a root tsconfig) and the third of
    those breaks the build the way the sample's `upstream-build` variant does."""
    release = sample.DEFAULT_RELEASES[-1]
    files = sample.tree(release)
    broken = sample.tree(release, variant="upstream-build")
    work, bare = base / "work", base / "upstream.git"
    git("init", "-q", "-b", "main", str(work))
    when = 1_760_000_000
    commits: dict[str, str] = {}
    good = _commit(work, files, "release: the good base", when)
    git("tag", "good", cwd=work)

    def edit(path: str, text: str) -> Callable[[dict[str, str]], None]:
        return lambda f: f.__setitem__(path, f.get(path, "") + text)

    steps: list[tuple[str, Callable[[dict[str, str]], None], bool]] = [
        ("docs: readme wording", edit("README.md", "\nMore words.\n"), False),
        ("sdk: readme wording", edit(f"{SDK}/README.md", "\nSteer a running turn.\n"), True),
        ("cli: banner", edit(f"{sample.CLI_DIR}/src/cli.js", "// banner\n"), False),
        ("kaos: comment", edit("packages/kaos/src/index.js", "// platform probe\n"), True),
        ("sdk: run turns with tools", lambda f: f.__setitem__(INDEX, broken[INDEX]), True),
        ("docs: changelog", edit("CHANGELOG.md", "# Changelog\n"), False),
        ("protocol: doc comment", edit("packages/protocol/src/index.ts", "// wire\n"), True),
        ("root: shared tsconfig", edit("tsconfig.base.json", "{}\n"), True),
        ("cli: version flag", edit(f"{sample.CLI_DIR}/src/cli.js", "// --version\n"), False),
        ("sdk: readme again", edit(f"{SDK}/README.md", "\nAgain.\n"), True),
    ]
    for subject, change, _ in steps:
        when += 3600
        change(files)
        commits[subject] = _commit(work, files, subject, when)
    git("tag", "bad", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("push", "-q", str(bare), "main", "good", "bad", cwd=work)
    touched = [s for s, _, is_input in steps if is_input]
    return History(bare, good, commits[steps[-1][0]], commits, commits[steps[4][0]], touched)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return make_history(tmp_path_factory.mktemp("bisect"))


def tree_builder(calls: list[str], skip: frozenset[str] = frozenset()) -> bisect.BuilderFactory:
    """A build decided by the candidate's source: the call the real build fails on."""

    def factory(spec: object, git_dir: Path) -> bisect.Builder:
        def build(commit: Commit) -> Verdict:
            calls.append(commit.sha)
            if commit.sha in skip:
                return Verdict("skip", "cannot install (lockfile)")
            source = GitTree(git_dir, commit.sha).read(INDEX) or ""
            return Verdict("bad", "TS2305") if "runTurnWithTools" in source else Verdict("good")

        return build

    return factory


def test_build_inputs_are_the_sdk_closure(tmp_path: Path) -> None:
    root = sample.write_tree(tmp_path / "tree")
    (root / "tsconfig.json").write_text("{}\n")
    paths = build_input_paths(DirTree(root), SDK)
    assert paths == sorted(
        [
            ".npmrc",
            ".nvmrc",
            "package.json",
            "patches",  # listed even where absent, like the root files
            "pnpm-lock.yaml",
            "pnpm-workspace.yaml",
            "tsconfig.json",
            SDK,
            "packages/agent-core",
            "packages/kaos",
            "packages/protocol",
            "packages/transport-types",
        ]
    )
    assert sample.CLI_DIR not in paths  # a workspace package the SDK never depends on
    assert build_input_paths(root, SDK) == paths  # a plain Path reads the same


def test_transitive_workspace_dependency_counts(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    files = {
        "pnpm-workspace.yaml": "packages:\n  - libs/**\n  - '!libs/skip/**'\n",
        "sdk/package.json": json.dumps({"name": "sdk", "dependencies": {"a": "workspace:*"}}),
        "libs/a/package.json": json.dumps({"name": "a", "dependencies": {"b": "workspace:b@^"}}),
        "libs/deep/b/package.json": json.dumps({"name": "b", "devDependencies": {"c": "^1"}}),
        "libs/c/package.json": json.dumps({"name": "c"}),
        "libs/skip/d/package.json": json.dumps({"name": "d"}),
    }
    sample.write_files(root, files)
    # `sdk` itself is outside the workspace globs: it still roots the closure.
    paths = build_input_paths(root, "sdk")
    assert [p for p in paths if "/" in p or p == "sdk"] == ["libs/a", "libs/deep/b", "sdk"]


def test_finds_the_culprit_in_ceil_log2_n_builds(
    project: Project, history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    outcome = bisect.main(
        good="good", bad="bad", upstream=str(history.bare), builder=tree_builder(calls)
    )
    assert outcome.culprit is not None and outcome.culprit.sha == history.culprit
    n = len(outcome.candidates)
    assert [c.subject for c in outcome.candidates] == history.inputs_touched
    assert n == 6 and len(calls) == outcome.builds == 3 <= math.ceil(math.log2(n))
    # Only commits that touch the build inputs are ever built.
    assert set(calls) <= {c.sha for c in outcome.candidates}
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"first bad commit: {history.culprit} sdk: run turns with tools ({outcome.culprit.date})"
    )
    assert outcome.culprit.date.startswith("2025-10-")


def test_a_commit_that_cannot_install_is_skipped_and_said(
    project: Project, history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[str] = []
    first_try = history.culprit  # the search tries the middle candidate first
    outcome = bisect.main(
        good="good",
        bad="bad",
        upstream=str(history.bare),
        as_json=True,
        builder=tree_builder(calls, skip=frozenset({first_try})),
    )
    data = json.loads(capsys.readouterr().out)
    skipped = [t for t in data["tested"] if t["state"] == "skip"]
    assert [t["sha"] for t in skipped] == [first_try]
    assert "cannot install" in skipped[0]["reason"]
    assert data["builds"] == len(calls) <= data["bound"] == 3 + 1
    # The skipped commit is the first bad one or the one after the last good: both named.
    assert data["culprit"]["sha"] == history.commits["protocol: doc comment"]
    assert [p["sha"] for p in data["possible_culprits"]] == [history.culprit]
    assert outcome.culprit is not None


def test_bad_ref_that_builds_exits_1(project: Project, history: History) -> None:
    calls: list[str] = []

    def good_everywhere(spec: object, git_dir: Path) -> bisect.Builder:
        def build(commit: Commit) -> Verdict:
            calls.append(commit.sha)
            return Verdict("good")

        return build

    with pytest.raises(bisect.BadRefBuilds, match="builds with"):
        bisect.main(good="good", bad="bad", upstream=str(history.bare), builder=good_everywhere)
    assert len(calls) == math.ceil(math.log2(6 + 1))  # ends on the bad ref's own inputs
    assert calls[-1] == history.bad


BAD_INPUT = {
    "an unknown ref": (["--good", "nope", "--bad", "bad"], "has no branch or tag 'nope'"),
    "a reversed range": (["--good", "bad", "--bad", "good"], "reversed range"),
    "the same commit": (["--good", "bad", "--bad", "main"], "are the same commit"),
    "a toolchain outside engines": (
        ["--good", "good", "--bad", "bad", "--toolchain", "22.20.0/10.33.0"],
        "does not satisfy engines.node",
    ),
    "a malformed toolchain": (["--good", "good", "--bad", "bad", "--toolchain", "24"], "NODE/PNPM"),
}


@pytest.mark.parametrize("args,message", list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_is_one_error_line_exit_2_nothing_written(
    project: Project, history: History, tmp_path: Path, args: list[str], message: str
) -> None:
    report = tmp_path / "out" / "bisect.json"
    cp = project.invoke(
        "smoke.bisect", *args, "--upstream", str(history.bare), "--report", str(report)
    )
    assert cp.returncode == 2, cp.stderr
    errors = [ln for ln in cp.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], cp.stderr
    assert "Traceback" not in cp.stderr and cp.stdout == ""
    assert not report.parent.exists()  # not even the report's directory


def test_good_not_an_ancestor_is_refused(
    project: Project, history: History, tmp_path: Path
) -> None:
    side = tmp_path / "side"
    git("clone", "-q", str(history.bare), str(side))
    git("checkout", "-q", "-b", "side", "good~0", cwd=side)
    (side / "x.txt").write_text("x\n")
    git("add", "x.txt", cwd=side)
    git("commit", "-q", "-m", "side", cwd=side)
    git("push", "-q", "origin", "side", cwd=side)
    cp = project.invoke(
        "smoke.bisect", "--good", "side", "--bad", "bad", "--upstream", str(history.bare)
    )
    assert cp.returncode == 2 and "is not an ancestor of --bad" in cp.stderr


@pytest.mark.slow
def test_real_smoke_build_names_the_culprit(
    project: Project, history: History, tmp_path: Path
) -> None:
    report = tmp_path / "bisect.json"
    cp = project.invoke(
        "smoke.bisect",
        "--good",
        "good",
        "--bad",
        "bad",
        "--upstream",
        str(history.bare),
        "--toolchain",
        "24.19.0/10.33.0",
        "--report",
        str(report),
        env={"SDKMIRROR_CACHE": os.environ["SDKMIRROR_CACHE"]},
        timeout=900,
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert cp.stdout.startswith(f"first bad commit: {history.culprit} sdk: run turns with tools")
    data = json.loads(report.read_text())
    assert data["builds"] == 3 and data["candidates"] == 6
    assert [t["state"] for t in data["tested"]] == ["bad", "good", "good"]
    assert data["tested"][0]["reason"].startswith("upstream-build: ")


def test_the_alert_issue_names_the_culprit(
    project: Project, history: History, tmp_path: Path
) -> None:
    """The daily run: a smoke report with an upstream break and the bisect's report side by
    side in the downloaded artifacts; the new alert issue names the first bad commit."""
    from sdkmirror.alerts import alert as alerts

    reports = tmp_path / "reports"
    calls: list[str] = []
    bisect.main(
        good="good",
        bad="bad",
        upstream=str(history.bare),
        toolchain="24.19.0/10.33.0",
        report=str(reports / "bisect-report" / "bisect.json"),
        builder=tree_builder(calls),
    )
    smoke_dir = reports / "smoke-node-24.19.0-pnpm-10.33.0"
    smoke_dir.mkdir(parents=True)
    result = {
        "toolchain": {"node": "24.19.0", "pnpm": "10.33.0", "allow_failure": False},
        "status": "fail",
        "category": "upstream-build",
        "classification": "upstream-breaking",
        "reason": "pnpm build exited 2",
        "commit": history.bad,
    }
    (smoke_dir / "smoke.json").write_text(
        json.dumps({"kind": "smoke", "ref": "bad", "commit": history.bad, "results": [result]})
    )
    smokes = alerts.load_smoke_reports([reports])
    culprits = alerts.load_culprits([reports])
    [action] = alerts.plan_alerts({"status": "updated"}, smokes, [], "", culprits=culprits)
    assert action.verb == "open"
    assert (
        f"- Culprit (first bad commit, `invoke smoke.bisect`): `{history.culprit} " in action.body
    )
    assert "sdk: run turns with tools" in action.body


def test_search_bound_and_answer_for_every_size_and_culprit() -> None:
    """Pure search: for n candidates and every first-bad position (n: none is bad), the answer
    is right within ceil(log2(n + 1)) builds, and with a skip within one more."""
    for n in range(0, 40):
        commits = [Commit(f"{i:040x}", f"c{i}", "") for i in range(n)]
        for first_bad in range(n + 1):
            for skip in (None, first_bad - 1, first_bad, first_bad + 1, n // 2, (n - 1) // 2):
                built: list[int] = []

                def build(
                    c: Commit,
                    first_bad: int = first_bad,
                    skip: int | None = skip,
                    built: list[int] = built,
                ) -> Verdict:
                    i = int(c.sha, 16)
                    built.append(i)
                    if i == skip:
                        return Verdict("skip", "cannot install")
                    return Verdict("bad" if i >= first_bad else "good")

                found = bisect.search(commits, build)
                skips = sum(1 for i in built if i == skip)
                assert len(built) <= math.ceil(math.log2(n + 1)) + skips, (n, first_bad, skip)
                assert len(set(built)) == len(built)  # nothing is built twice
                if skip is None or skip < 0 or skip >= n or not skips:
                    assert found.culprit == (first_bad if first_bad < n else None)
                else:
                    # A skipped commit right before the answer leaves both possible.
                    possible = [*found.undecided, found.culprit]
                    assert first_bad in possible or (first_bad == n and found.culprit is None)
