"""The sweep: every release of the sample upstream through the publish dry run, one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepos import git

from sdkmirror.core.errors import UsageError
from sdkmirror.ops import sweep

# The sweep's table is the subject here: releases other tests built are reused.
pytestmark = pytest.mark.usefixtures("shared_build_cache")

BROKEN = "@moonshot-ai/kimi-code@99.0.0"


def add_broken_release(bare: Path, work: Path) -> None:
    """One more release tag on a commit without the SDK: the sweep's red row."""
    git("clone", "-q", str(bare), str(work))
    git("rm", "-q", "-r", "packages/node-sdk", cwd=work)
    git("commit", "-q", "-m", "drop the SDK", cwd=work)
    git("tag", "-a", "-m", "broken release", BROKEN, cwd=work)
    git("push", "-q", "origin", f"refs/tags/{BROKEN}", cwd=work)


def test_release_tags_are_ordered_and_start_at_from(
    project, tmp_path: Path, sample_upstream
) -> None:
    up = sample_upstream(tmp_path / "upstream.git")
    cfg = project.config()
    names = [r.name for r in sweep.release_tags(cfg, up.url)]
    assert names == [up.tag(r.cli) for r in up.releases]
    assert [r.commit for r in sweep.release_tags(cfg, up.url)] == [up.tags[n] for n in names]
    later = sweep.release_tags(cfg, up.url, from_tag=names[1])
    assert [r.name for r in later] == names[1:]
    with pytest.raises(UsageError, match="--from 'v1' is not a release tag"):
        sweep.release_tags(cfg, up.url, from_tag="v1")
    with pytest.raises(UsageError, match="no release tags"):
        sweep.release_tags(cfg, up.url, from_tag=up.tag("999.0.0"))


def test_markdown_marks_red_rows() -> None:
    report = sweep.SweepReport("up.git", None)
    report.rows = [
        sweep.Row("t1", "0.9.3", "pass", "pass", "pass", "pass", "pass", "first", 3.0),
        sweep.Row("t2", "", "fail: no package.json", seconds=0.5),
        sweep.Row("t3", "0.9.4", "pass", "pass", "pass", "fail: TS2307: x", "pass", "additive"),
    ]
    md = sweep.markdown(report)
    assert sweep.COLUMNS == [
        "tag", "SDK version", "build", "package checks", "tsc nodenext", "tsc bundler", "attw",
        "seconds", "first error",
    ]  # fmt: skip
    assert "| ✅ `t1` | 0.9.3 | pass | pass | pass | pass | pass | 3.0 |  |" in md
    assert (
        "| ❌ `t2` |  | fail | skipped | skipped | skipped | skipped | 0.5 | no package.json |"
    ) in md
    assert "| ❌ `t3` | 0.9.4 | pass | pass | pass | fail | pass | 0.0 | TS2307: x |" in md
    assert md.rstrip().endswith("1 of 3 releases green.")
    rows = report.as_json()["rows"]
    assert [r["first_error"] for r in rows] == ["", "no package.json", "TS2307: x"]
    assert rows[2]["tsc_bundler"] == "fail: TS2307: x" and rows[2]["notes"] == "additive"
    assert not report.ok


@pytest.mark.slow
def test_sweep_gives_one_row_per_release(
    project, tmp_path: Path, toolchain_primary, sample_upstream, capsys
) -> None:
    up = sample_upstream(tmp_path / "upstream.git")
    add_broken_release(up.bare, tmp_path / "work")
    out = tmp_path / "out"
    report = sweep.run(project.config(), up.url, out_dir=out, jobs=2)
    progress = capsys.readouterr().err
    assert f"[{len(up.releases) + 1}/{len(up.releases) + 1}]" in progress and "ETA" in progress

    tags = [up.tag(r.cli) for r in up.releases]
    assert [r.tag for r in report.rows] == [*tags, BROKEN]
    good, broken = report.rows[:-1], report.rows[-1]
    for row in good:
        assert row.checks == ("pass",) * 5, row
        assert row.ok and row.seconds > 0
    assert [r.sdk_version for r in good] == [r.sdk for r in up.releases]
    assert good[0].notes == "first"
    assert {r.notes for r in good[1:]} <= {"unchanged", "additive", "breaking"}
    assert broken.build.startswith("fail: ") and "package.json" in broken.build
    assert broken.checks[1:] == ("skipped",) * 4 and broken.first_error == broken.build[6:]
    assert not report.ok

    data = json.loads((out / "sweep.json").read_text())
    assert [r["tag"] for r in data["rows"]] == [*tags, BROKEN]
    assert [r["ok"] for r in data["rows"]] == [True] * len(tags) + [False]
    md = (out / "sweep.md").read_text()
    assert md.count("| ✅ ") == len(tags) and md.count("| ❌ ") == 1

    # Once more over the same history: every recorded result is reused, nothing is built; the
    # broken release has no build key, so it runs again.
    again = sweep.run(project.config(), up.url, out_dir=out, jobs=2)
    assert [r.cells() for r in again.rows] == [
        *(r.cells() for r in good),
        again.rows[-1].cells(),
    ]
    assert [r.recorded for r in again.rows] == [True] * len(tags) + [False]
    assert "pnpm build" not in capsys.readouterr().err
    # --force runs them again (their builds come from the build cache); from the newest on.
    forced = sweep.run(project.config(), up.url, out_dir=out, jobs=2, force=True, from_tag=tags[-1])
    assert [r.tag for r in forced.rows] == [tags[-1], BROKEN]
    assert not any(r.recorded for r in forced.rows)
    assert [r.checks for r in forced.rows] == [r.checks for r in report.rows[-2:]]
    assert forced.rows[0].notes == "first"  # nothing before it in this sweep
    err = capsys.readouterr().err
    assert "build cache hit" in err
    # Its bytes passed every check in the first sweep: none runs again.
    assert "tsc nodenext, tsc bundler, attw: passed for these bytes" in err
    assert "strict consumer type-check" not in err


def test_recorded_results_round_trip_and_a_damaged_record_reruns(tmp_path: Path) -> None:
    row = sweep.Row(
        "t1",
        "0.9.3",
        build="pass",
        package_checks="pass",
        tsc_nodenext="pass",
        tsc_bundler="fail: TS2307 x",
        attw="pass",
        notes="first",
        seconds=12.5,
        commit="c" * 40,
        key="k" * 64,
    )
    sweep._record(tmp_path, row)
    back = sweep._recorded(tmp_path, "k" * 64)
    assert back is not None and back.recorded and back.cells() == row.cells()
    assert sweep._recorded(tmp_path, "x" * 64) is None  # nothing recorded: it runs
    (tmp_path / f"{'k' * 64}.json").write_text('{"tag": "t1", "unknown_field": 1}')
    assert sweep._recorded(tmp_path, "k" * 64) is None  # unreadable: it runs again
    assert sweep._recorded(tmp_path, None) is None  # no key: always runs


def test_the_result_key_follows_the_previous_release_and_the_eta_the_median() -> None:
    assert sweep._result_key(None, "p") is None
    assert sweep._result_key("a", "p") != sweep._result_key("a", "q")  # notes compare with p
    assert sweep._result_key("a", None) == sweep._result_key("a", None)
    assert sweep._eta([10.0, 30.0, 20.0], 6, 2) == "1m00s"  # median 20 s x 6 left / 2 jobs
    assert sweep._eta([], 3, 1) == "0s" and sweep._eta([5.0], 0, 1) == "0s"
