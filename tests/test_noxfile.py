"""The noxfile's own behaviour: quiet sessions, and the stress runner behind `tests-stress`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sdkmirror.devtools import stress

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_a_session_does_not_log_the_uv_probe(tmp_path):
    # The project's noxfile plus a session without a virtualenv: nox still probes for uv.
    text = (REPO_ROOT / "noxfile.py").read_text().split('if __name__ == "__main__":')[0]
    probe = '\n@nox.session(python=False)\ndef probe(session):\n    session.log("probed")\n'
    (tmp_path / "noxfile.py").write_text(text + probe)
    (tmp_path / "pyproject.toml").write_text((REPO_ROOT / "pyproject.toml").read_text())
    (tmp_path / "scripts").symlink_to(REPO_ROOT / "scripts")
    cp = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "probe"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "probed" in cp.stderr
    assert "uv binary not found" not in cp.stderr + cp.stdout


def test_stress_returns_the_commands_exit_code_and_stops_its_load():
    code = stress.main(["--load", "1", "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert code == 3
    with stress.busy(2) as procs:
        assert all(p.poll() is None for p in procs)  # spinning while the command runs
    assert all(p.returncode is not None for p in procs)


def test_stress_runs_every_round_until_one_fails(tmp_path):
    count = tmp_path / "rounds"
    script = f"import pathlib; p = pathlib.Path({str(count)!r}); p.write_text(p.read_text() + 'x')"
    count.write_text("")
    assert stress.main(["--load", "0", "--rounds", "3", "--", sys.executable, "-c", script]) == 0
    assert count.read_text() == "xxx"
