"""Mirror and release operations. Each task maps flags onto one call into `sdkmirror`.

Run `invoke --list` for the tasks and `invoke --help TASK` for a task's flags.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))

from invoke import Collection, task  # noqa: E402

from sdkmirror.taskutil import guarded  # noqa: E402

ns = Collection()

REMOTE_HELP = {
    "upstream": "upstream git URL (default: [tool.sdkmirror] upstream)",
    "origin": "mirror git URL (default: this checkout's `origin` remote)",
}


# --- mirror: sync and verify ----------------------------------------------------------------


@task(
    help={
        **REMOTE_HELP,
        "dry_run": "print the plan; push nothing and write no ledger",
        "report": "write the run's report as JSON to this path",
    }
)
@guarded
def sync(c, upstream=None, origin=None, dry_run=False, report=None):
    """Fast-forward the mirror branch and mirror new release tags, atomically."""
    from sdkmirror import sync as sync_mod

    sync_mod.main(upstream=upstream, origin=origin, dry_run=dry_run, report=report)


@task(help={"origin": REMOTE_HELP["origin"]})
@guarded
def verify(c, origin=None):
    """Audit the mirror against the ledger: tags unmoved, release branches on their tags."""
    from sdkmirror import verify as verify_mod

    verify_mod.main(origin=origin)


ns.add_task(sync)
ns.add_task(verify)

# --- toolchains -------------------------------------------------------------------------------

# --- publish and release ----------------------------------------------------------------------

# --- GitHub: alerts, releases, ledger commits -------------------------------------------------

# --- operations: status and patch branches ----------------------------------------------------
