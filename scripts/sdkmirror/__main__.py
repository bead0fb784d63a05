"""`python -m sdkmirror`: the commands nox sessions call (smoke, report, demo)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sdkmirror.core import config, git_url
from sdkmirror.core.errors import ExitCode, MirrorError, UsageError, os_problem
from sdkmirror.infra import console


def _smoke(args: argparse.Namespace) -> int:
    from sdkmirror.core import versions
    from sdkmirror.infra import sandbox
    from sdkmirror.smoke import build as smoke

    for flag, value in (("--node", args.node), ("--pnpm", args.pnpm)):
        problem = versions.exact_problem(value, flag)
        if problem:  # a version, never a path: it names directories under the cache
            raise UsageError(problem)
    sandbox.require(no_sandbox=args.no_sandbox)
    cfg = config.load()
    known = next((s for s in cfg.toolchains if (s.node, s.pnpm) == (args.node, args.pnpm)), None)
    allow = args.allow_failure or bool(known and known.allow_failure)
    spec = config.ToolchainSpec(args.node, args.pnpm, allow)
    result = smoke.run_smoke(
        cfg,
        spec,
        upstream_url=args.upstream,
        ref=args.ref,
        report_dir=Path(args.report_dir) if args.report_dir else None,
        node_bin_dir=Path(args.node_bin_dir) if args.node_bin_dir else None,
    )
    console.info(f"report: {result.json_path}")
    if result.failed:
        e = result.entry
        console.error(f"{spec.id}: {e['category']} ({e['classification']}): {e['reason']}")
        console.info(f"next step: {e['next_step']}")
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from sdkmirror.smoke import build as smoke

    merged = smoke.load_reports(args.paths or [config.load().reports_dir])
    if args.json:
        print(json.dumps(merged, indent=2))
    else:
        console.result(smoke.summary_table(merged))
    return 1 if args.strict and smoke.any_failed(merged) else 0


def _demo(args: argparse.Namespace) -> int:
    from sdkmirror.devtools import demo

    return demo.main(Path(args.dir), project_root=Path(args.project).resolve())


def _sweep(args: argparse.Namespace) -> int:
    from sdkmirror.infra import sandbox
    from sdkmirror.ops import sweep

    cfg = config.load()
    sandbox.require(no_sandbox=args.no_sandbox)
    report = sweep.run(
        cfg,
        args.upstream or cfg.upstream,
        from_tag=args.from_tag,
        out_dir=Path(args.out) if args.out else None,
        jobs=args.jobs,
        force=args.force,
    )
    if args.json:
        console.result_json(report.as_json())
    else:
        console.result(sweep.table(report))
    green = sum(r.ok for r in report.rows)
    console.info(f"{green} of {len(report.rows)} releases green")
    return 0 if report.ok else 1


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


NO_SANDBOX = "run upstream code without bubblewrap (refused while credentials are reachable)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdkmirror")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("smoke", help="build the SDK with one toolchain and write its report")
    p.add_argument("--node", required=True, help="exact Node version, e.g. 24.19.0")
    p.add_argument("--pnpm", required=True, help="exact pnpm version, e.g. 10.33.0")
    p.add_argument("--upstream", help="git URL or path to build from (default: config upstream)")
    p.add_argument("--ref", help="branch, tag or commit (default: the mirror branch)")
    p.add_argument("--report-dir", help="where smoke-<node>-<pnpm>.json goes")
    p.add_argument("--node-bin-dir", help="use the node in this directory (a nox virtualenv)")
    p.add_argument(
        "--allow-failure",
        action="store_true",
        help="report a failure of this toolchain but exit 0 (a canary)",
    )
    p.add_argument("--no-sandbox", action="store_true", help=NO_SANDBOX)
    p.set_defaults(fn=_smoke)

    p = sub.add_parser("report", help="merge smoke reports and print them")
    p.add_argument("paths", nargs="*", help="report files or directories (default: reports dir)")
    p.add_argument("--json", action="store_true", help="print the merged report as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when a required toolchain failed")
    p.set_defaults(fn=_report)

    p = sub.add_parser(
        "demo",
        help="the whole job on the sample, in DIR: sync, smoke, publish to a loopback "
        "registry, consumer, notes, status (exit 1: a step failed, 130: interrupted)",
    )
    p.add_argument("--dir", required=True, help="an empty scratch directory")
    p.add_argument("--project", default=".", help="the checkout holding tasks.py/pyproject.toml")
    p.set_defaults(fn=_demo)

    p = sub.add_parser("sweep", help="every release through the publish dry run, one table")
    p.add_argument("--upstream", help="git URL or path (default: config upstream)")
    p.add_argument("--from", dest="from_tag", help="the oldest release tag to include")
    p.add_argument("--out", help="where sweep.json and sweep.md go (default: reports dir)")
    p.add_argument(
        "--jobs", type=_positive, help="releases at once (default: one per core, at most 4)"
    )
    p.add_argument(
        "--force", action="store_true", help="run releases whose result is already recorded"
    )
    p.add_argument("--json", action="store_true", help="print the sweep as JSON on stdout")
    p.add_argument("--no-sandbox", action="store_true", help=NO_SANDBOX)
    p.set_defaults(fn=_sweep)

    args = parser.parse_args(argv)  # usage errors: argparse's own line, exit 2
    try:
        upstream = getattr(args, "upstream", None)
        refused = git_url.refusal(upstream, "--upstream") if upstream else None
        if refused:  # before any report or tree is written
            raise UsageError(refused)
        return int(args.fn(args))
    except MirrorError as exc:
        console.error(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        console.error(
            f"interrupted; {args.command} writes its reports in one rename and never touches "
            "the mirror: run it again"
        )
        return int(ExitCode.INTERRUPTED)
    except OSError as exc:
        console.error(os_problem(exc))
        return int(ExitCode.LOCAL)
    except Exception as exc:  # a defect: still one line, with what to report
        console.error(
            f"unexpected {type(exc).__name__}: {exc}; please report this with the command "
            "that caused it"
        )
        return int(ExitCode.FAILED)


if __name__ == "__main__":
    sys.exit(main())
