"""The no-op sync imports only what it uses: a fresh interpreter loads `tasks.py` and runs a
no-op sync, and none of the heavy modules the no-op never needs may be loaded."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO_ROOT, do_sync
from gitrepos import seed

# GitPython, PyGithub, tomlkit, rich (piped output is plain), the release layer, semver
# ranges, templates, and filelock (a run with nothing to write takes no lock). (YAML is not
# listed: Invoke itself loads it to read its configuration.)
HEAVY = [
    "git", "github", "tomlkit", "rich", "sdkmirror.release", "nodesemver", "jinja2", "filelock"
]  # fmt: skip

SCRIPT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("tasks", {tasks!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
at_load = sorted(m for m in {heavy!r} if m in sys.modules)
from sdkmirror.mirror import sync
sync.main(upstream={upstream!r}, origin={origin!r}, dry_run=False, report=None)
after = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"at_load": at_load, "after_noop": after}}))
"""


def test_a_noop_sync_loads_no_heavy_module(project, repos):
    seed(repos, "0.14.2", "0.14.3")
    do_sync(project, repos)
    script = SCRIPT.format(
        tasks=str(REPO_ROOT / "tasks.py"),
        heavy=HEAVY,
        upstream=str(repos.upstream),
        origin=str(repos.origin),
    )
    cp = subprocess.run(
        [sys.executable, "-c", script], env=project.env, capture_output=True, text=True, check=False
    )
    assert cp.returncode == 0, cp.stderr
    loaded = json.loads(cp.stdout.strip().splitlines()[-1])
    assert loaded == {"at_load": [], "after_noop": []}
    assert "sync: noop" in cp.stdout
