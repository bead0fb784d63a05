"""Benchmark the sync against the raw git commands it stands in for; prints medians and ratios.

A no-op sync is compared with the two `git ls-remote` calls it cannot avoid; an incremental
sync (new commits and a new release tag) with a raw `git fetch` + `git push` of the same refs.
Repositories are local, shaped like the upstream (one commit per release, 68 release tags).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sdkmirror.core import config
from sdkmirror.infra import gitio, proc
from sdkmirror.mirror import sync

TAG = "@moonshot-ai/kimi-code@0.{}.0"
RELEASES = 68
TRIALS = 7
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def _git(*args: str | Path, cwd: Path | None = None) -> str:
    return gitio.run(*args, cwd=cwd, env_extra=IDENTITY)


def median_time(
    fn: Callable[[], object], trials: int = TRIALS, setup: Callable[[], object] | None = None
) -> float:
    """Median wall time of `trials` calls of `fn`, in seconds; `setup` runs untimed before each."""
    times = []
    for _ in range(trials):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _upstream(base: Path, releases: int) -> tuple[Path, Path]:
    bare, work = base / "upstream.git", base / "work"
    _git("init", "-q", "--bare", "-b", "main", bare)
    _git("init", "-q", "-b", "main", work)
    for i in range(releases):
        (work / "VERSION").write_text(f"0.{i}.0\n")
        (work / f"src-{i % 7}.txt").write_text(f"change {i}\n" * 50)
        _git("add", "-A", cwd=work)
        _git("commit", "-q", "-m", f"release 0.{i}.0", cwd=work)
        _git("tag", "-a", "-m", "release", TAG.format(i), cwd=work)
    _git("push", "-q", bare, "refs/heads/main", "refs/tags/*", cwd=work)
    return bare, work


def _project(base: Path, upstream: Path) -> config.Config:
    root = base / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f'[tool.sdkmirror]\nupstream = "{upstream}"\nwork_dir = "state"\n'
    )
    return config.load(root / "pyproject.toml")


def run(releases: int = RELEASES) -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sdkmirror-bench-") as tmp:
        base = Path(tmp)
        upstream, work = _upstream(base, releases)
        origin = base / "origin.git"
        _git("init", "-q", "--bare", "-b", "main", origin)
        cfg = _project(base, upstream)
        start = time.perf_counter()
        sync.run(cfg, upstream=str(upstream), origin=str(origin))
        lines.append(f"initial sync of {releases} releases: {time.perf_counter() - start:.2f}s")

        # No-op: what the daily run costs on a quiet day.
        noop = median_time(lambda: sync.run(cfg, upstream=str(upstream), origin=str(origin)))
        raw = median_time(lambda: (_git("ls-remote", upstream), _git("ls-remote", origin)))
        lines.append(
            f"no-op sync: median {noop * 1000:.0f} ms vs two ls-remote {raw * 1000:.0f} ms "
            f"(ratio {noop / raw:.2f}, overhead {(noop - raw) * 1000:+.0f} ms; target < +500 ms)"
        )

        tasks_root = Path(__file__).resolve().parents[3]
        if (tasks_root / "tasks.py").exists():
            env = {**os.environ, "SDKMIRROR_CONFIG": str(cfg.root / "pyproject.toml"), "CI": "1"}
            argv = [
                sys.executable,
                "-m",
                "invoke",
                "--search-root",
                str(tasks_root),
                "sync",
                "--upstream",
                str(upstream),
                "--origin",
                str(origin),
            ]
            cli = median_time(lambda: proc.run(argv, env=env))
            lines.append(
                f"no-op `invoke sync` as a process: median {cli * 1000:.0f} ms "
                f"(overhead over two ls-remote {(cli - raw) * 1000:+.0f} ms, Python start included)"
            )

        # Incremental: 3 commits and 1 release, from the same starting state every trial.
        (work / "VERSION").write_text("1.0.0\n")
        for i in range(3):
            (work / f"new-{i}.txt").write_text(f"new {i}\n")
            _git("add", "-A", cwd=work)
            _git("commit", "-q", "-m", f"work {i}", cwd=work)
        new_tag = "@moonshot-ai/kimi-code@1.0.0"
        _git("tag", "-a", "-m", "release", new_tag, cwd=work)
        _git("push", "-q", upstream, "refs/heads/main", f"refs/tags/{new_tag}", cwd=work)
        snapshot = base / "origin-snapshot.git"
        shutil.copytree(origin, snapshot)
        state_snapshot = base / "state-snapshot"
        shutil.copytree(cfg.work_dir, state_snapshot)

        def reset() -> None:
            shutil.rmtree(origin)
            shutil.copytree(snapshot, origin)
            shutil.rmtree(cfg.work_dir)
            shutil.copytree(state_snapshot, cfg.work_dir)
            ledger = cfg.mirror_ledger
            if ledger.exists():
                ledger.unlink()

        def ours() -> None:
            sync.run(cfg, upstream=str(upstream), origin=str(origin))

        raw_repo = base / "raw.git"

        def raw_setup() -> None:
            reset()
            shutil.rmtree(raw_repo, ignore_errors=True)
            shutil.copytree(cfg.work_repo, raw_repo)

        def raw_git() -> None:
            _git(
                "fetch",
                "-q",
                "--no-tags",
                upstream,
                "+refs/heads/main:refs/heads/upstream-main",
                f"+refs/tags/{new_tag}:refs/tags/{new_tag}",
                cwd=raw_repo,
            )
            _git(
                "push",
                "-q",
                "--atomic",
                origin,
                "refs/heads/upstream-main",
                f"refs/tags/{new_tag}",
                "refs/heads/upstream-main:refs/heads/release/v1.0.0",
                cwd=raw_repo,
            )

        # Each trial starts from the same state; only the sync or the raw commands are timed.
        inc = median_time(ours, setup=reset)
        raw_inc = median_time(raw_git, setup=raw_setup)
        lines.append(
            f"incremental sync (3 commits, 1 release): median {inc * 1000:.0f} ms vs raw "
            f"fetch+push {raw_inc * 1000:.0f} ms (ratio {inc / raw_inc:.2f})"
        )
    return lines


# --- scale: 100 / 1,000 / 5,000 release tags ----------------------------------------------------

SCALE_TAG = "@moonshot-ai/kimi-code@0.{}.0"
SCALE_SIZES = (100, 1000, 5000)


def _fast_import(bare: Path, first: int, count: int) -> None:
    """`count` commits on main, each an annotated release tag, in one `git fast-import`."""
    lines: list[str] = []
    for i in range(first, first + count):
        body = f"0.{i}.0\n"
        msg = f"release 0.{i}.0\n"
        lines += [
            "commit refs/heads/main",
            f"mark :{i + 1}",
            f"committer Bench <bench@example.invalid> {1700000000 + i} +0000",
            f"data {len(msg)}",
            msg.rstrip("\n"),
        ]
        if i == first and first > 0:
            lines.append("from refs/heads/main^0")
        lines += ["M 100644 inline VERSION", f"data {len(body)}", body.rstrip("\n")]
        tag = "release\n"
        lines += [
            f"tag {SCALE_TAG.format(i)}",
            f"from :{i + 1}",
            f"tagger Bench <bench@example.invalid> {1700000000 + i} +0000",
            f"data {len(tag)}",
            tag.rstrip("\n"),
        ]
    gitio.run(
        f"--git-dir={bare}", "fast-import", "--quiet", "--force", input="\n".join(lines) + "\n"
    )


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _raw_mirror(raw: Path, upstream: Path, origin: Path) -> None:
    """What raw git does for a sync: one glob fetch, one `update-ref --stdin`, one atomic push."""
    _git(
        "--git-dir", raw, "fetch", "-q", "--no-tags", upstream,
        "+refs/heads/main:refs/heads/main", "+refs/tags/*:refs/tags/*",
    )  # fmt: skip
    out = _git("--git-dir", raw, "for-each-ref", "--format=%(refname:strip=2) %(*objectname)",
               "refs/tags/")  # fmt: skip
    script = ""
    for line in out.splitlines():
        name, commit = line.split(" ", 1)
        script += f"update refs/heads/release/v{name.rsplit('@', 1)[1]} {commit}\n"
    gitio.run("--git-dir", raw, "update-ref", "--stdin", input=script)
    _git(
        "--git-dir", raw, "push", "-q", "--atomic", origin,
        "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*",
    )  # fmt: skip


def _scale_row(n: int, noop_base: float | None) -> tuple[str, float]:
    """One size: every figure timed once, in one temp directory; returns the row and the no-op."""
    from sdkmirror.mirror import verify
    from sdkmirror.ops import status

    with tempfile.TemporaryDirectory(prefix="sdkmirror-bench-scale-") as tmp:
        base = Path(tmp)
        upstream, origin = base / "upstream.git", base / "origin.git"
        raw_origin, raw = base / "raw-origin.git", base / "raw.git"
        for bare in (upstream, origin, raw_origin, raw):
            _git("init", "-q", "--bare", "-b", "main", bare)
        _fast_import(upstream, 0, n)
        cfg = _project(base, upstream)
        up, org = str(upstream), str(origin)

        def ours() -> None:
            sync.run(cfg, upstream=up, origin=org)

        def rawgit() -> None:
            _raw_mirror(raw, upstream, raw_origin)

        initial, raw_initial = _timed(ours), _timed(rawgit)
        noop = _timed(ours)
        raw_noop = _timed(lambda: (_git("ls-remote", upstream), _git("ls-remote", origin)))
        process = _timed(lambda: _invoke_sync(cfg, up, org))
        st = _timed(lambda: status.gather(cfg, upstream=up, origin=org))
        ve = _timed(lambda: verify.examine(cfg, origin=org, upstream=up))
        _fast_import(upstream, n, 10)
        inc, raw_inc = _timed(ours), _timed(rawgit)
    base_noop = noop_base or process
    row = (
        f"| {n:,} | {initial:.2f} s / {raw_initial:.2f} s ({initial / raw_initial:.1f}x) "
        f"| {process:.2f} s ({process / base_noop:.2f}x; in-process {noop:.2f} s, "
        f"two ls-remote {raw_noop:.2f} s) "
        f"| {inc:.2f} s / {raw_inc:.2f} s ({inc / raw_inc:.1f}x) "
        f"| {st:.2f} s | {ve:.2f} s |"
    )
    return row, process


def _invoke_sync(cfg: config.Config, upstream: str, origin: str) -> None:
    """`invoke sync` as a whole process, Python start and imports included."""
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "SDKMIRROR_CONFIG": str(cfg.root / "pyproject.toml"), "CI": "1"}
    argv = [sys.executable, "-m", "invoke", "--search-root", str(root), "sync"]
    proc.run([*argv, "--upstream", upstream, "--origin", origin], env=env)


def scale(sizes: tuple[int, ...] = SCALE_SIZES) -> list[str]:
    """One run per size (no repeats: minutes at 5,000), each figure with its raw-git ratio.

    Raw git does the same work: one glob fetch, the release branches in one
    `update-ref --stdin`, one atomic push with globs. The no-op is compared with the no-op at
    the first size as a whole `invoke sync` process; status and verify are in-process.
    """
    lines = [
        "| tags | initial (tool / raw) | no-op process (vs first size) | "
        "incremental +10 (tool / raw) | "
        "status | verify |",
        "|---|---|---|---|---|---|",
    ]
    noop_base: float | None = None
    for n in sizes:
        row, noop = _scale_row(n, noop_base)
        noop_base = noop_base or noop
        lines.append(row)
    return lines


def main() -> None:
    """`python -m sdkmirror.devtools.bench_sync [--scale 100,1000,5000]`."""
    args = sys.argv[1:]
    if args[:1] == ["--scale"]:
        sizes = tuple(int(x) for x in (args[1] if len(args) > 1 else "100,1000,5000").split(","))
        for line in scale(sizes):
            print(line, flush=True)
        return
    for line in run():
        print(line)
    for line in scale():
        print(line, flush=True)


if __name__ == "__main__":
    main()
