"""`[tool.sdkmirror]` validation: every invalid value is one error naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdkmirror.core import config
from sdkmirror.core.errors import ConfigError
from sdkmirror.core.mirror_tag import TagPattern, Version

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_projects_own_configuration_loads():
    cfg = config.load(REPO_ROOT / "pyproject.toml")
    assert cfg.upstream == "https://github.com/MoonshotAI/kimi-code.git"
    assert cfg.mirror_branch == "upstream-main"
    assert cfg.tags.name_for("0.14.2") == "@moonshot-ai/kimi-code@0.14.2"
    assert cfg.release_branches.name_for("0.14.2") == "release/v0.14.2"
    assert cfg.npm_name == "@botiverse/kimi-code-sdk"
    assert cfg.toolchains[0].node == "24.15.0"  # the upstream's .nvmrc: the primary


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"upstream": ""}, "upstream"),
        ({"upstream": "--upload-pack=evil"}, "upstream"),
        ({"mirror_branch": "bad..name"}, "mirror_branch"),
        ({"upstream_branch": "main "}, "upstream_branch"),
        ({"release_tag_pattern": "@moonshot-ai/kimi-code@"}, "release_tag_pattern"),
        ({"release_branch_template": "release/$(id)/{version}"}, "release_branch_template"),
        ({"npm_name": "Not A Name"}, "npm_name"),
        ({"sdk_dir": "../outside"}, "sdk_dir"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"toolchains": []}, "toolchains"),
        ({"toolchains": [{"node": "24", "pnpm": "10.33.0"}]}, "toolchains[0].node"),
        (
            {"toolchains": [{"node": "24.19.0", "pnpm": "10.33.0", "allow_failure": "yes"}]},
            "toolchains[0].allow_failure",
        ),
        ({"upstrem": "x"}, "upstrem"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_invalid_values_name_their_key(raw, key, tmp_path):
    with pytest.raises(ConfigError) as info:
        config.from_mapping(raw, root=tmp_path)
    message = str(info.value)
    assert key in message
    assert "\n" not in message


def test_tag_pattern_round_trip_and_strictness():
    p = TagPattern("@moonshot-ai/kimi-code@{version}")
    assert p.version_of("@moonshot-ai/kimi-code@0.38.0") == Version(0, 38, 0)
    for bad in [
        "@moonshot-ai/kimi-code@0.38",
        "@moonshot-ai/kimi-code@0.38.0 ",
        "x@moonshot-ai/kimi-code@0.38.0",
        "@moonshot-ai/kimi-code@0.38.0;ls",
    ]:
        assert p.version_of(bad) is None
    assert Version.parse("0.10.0") > Version.parse("0.9.4")


def test_config_env_points_at_another_project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.sdkmirror]\nmirror_branch = "mirror"\n')
    monkeypatch.setenv("SDKMIRROR_CONFIG", str(tmp_path / "pyproject.toml"))
    cfg = config.load()
    assert cfg.mirror_branch == "mirror"
    assert cfg.work_dir == tmp_path / ".sdkmirror"
