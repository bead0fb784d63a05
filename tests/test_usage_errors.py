"""Usage errors: refused before anything is read or recorded, in one `error:` line, exit 2."""

from __future__ import annotations

import pytest
from conftest import load_tasks
from invoke.util import helpline

from sdkmirror.core import git_url
from sdkmirror.core.errors import ExitCode


def error_lines(cp) -> list[str]:
    return [ln for ln in cp.stderr.splitlines() if ln.strip()]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ht tp://example.invalid/x.git", "whitespace"),
        ("http://[::1/x.git", "does not parse"),
        ("https://example.invalid:99999/x.git", "does not parse"),
        ("gopher://example.invalid/x.git", "git does not speak gopher://"),
        ("-uoops", "starts with '-'"),
        ("https:///x.git", "names no host"),
    ],
)
def test_an_unparsable_url_is_refused_before_anything_is_recorded(project, repos, url, why):
    cp = project.invoke("sync", "--upstream", url, "--origin", str(repos.origin))
    assert cp.returncode == ExitCode.USAGE
    [line] = error_lines(cp)
    assert line.startswith(f"error: --upstream {url!r} is not a git URL (") and why in line
    assert not project.config().work_dir.exists()  # no report, no lock, no ledger
    cp = project.invoke("sync", "--origin", url)
    assert cp.returncode == ExitCode.USAGE and len(error_lines(cp)) == 1
    assert error_lines(cp)[0].startswith("error: --origin ")


@pytest.mark.parametrize(
    "url",
    ["https://example.invalid/o/r.git", "git@example.invalid:o/r.git", "/srv/git/r.git", "r.git"],
)
def test_git_urls_and_paths_are_accepted(url):
    assert git_url.problem(url) is None


@pytest.mark.parametrize("layout", ["work dir is a file", "work dir under a file"])
def test_a_work_dir_that_is_not_a_directory_is_one_error(project, repos, layout):
    state = project.root / "state"
    state.write_text("not a directory\n")
    if layout == "work dir under a file":
        text = project.pyproject.read_text().replace('work_dir = "state"', 'work_dir = "state/x"')
        project.pyproject.write_text(text)
    cp = project.invoke("sync", "--origin", str(repos.origin))
    assert cp.returncode == ExitCode.USAGE
    [line] = error_lines(cp)  # no warning beside it, and no OS wording that varies by path
    assert line.startswith("error: [tool.sdkmirror] work_dir ") and " is not a directory" in line
    assert line.endswith("point work_dir at a directory, or move the file away")
    assert state.read_text() == "not a directory\n"


def test_a_missing_flag_names_the_flags(project):
    cp = project.invoke("release.notes", "--to", "x")
    assert cp.returncode == ExitCode.USAGE
    assert error_lines(cp) == [
        "error: invoke release.notes needs --from; see `invoke --help release.notes`"
    ]


def test_every_task_lists_a_whole_sentence():
    """`invoke --list` shows a docstring's first line: it must be the whole summary."""
    ns = load_tasks()
    for name in ns.task_names:
        task = ns[name]
        doc = (task.__doc__ or "").strip()
        first_paragraph = " ".join(doc.split("\n\n")[0].split())
        assert helpline(task) == first_paragraph, name
        assert first_paragraph.endswith("."), name


def test_the_sessions_refuse_an_unparsable_upstream_too(project, tmp_path):
    from sdkmirror.__main__ import main

    out = tmp_path / "out"
    code = main(["sweep", "--upstream", "ht tp://x", "--out", str(out)])
    assert code == ExitCode.USAGE
    assert not out.exists() and not project.config().work_dir.exists()
