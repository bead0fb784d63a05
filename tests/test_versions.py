"""The one version grammar: ASCII digits, no leading zeros, nothing around the version."""

from __future__ import annotations

import pytest

from sdkmirror.core import versions
from sdkmirror.core.mirror_tag import TagPattern

HOSTILE = ["0.9.51\n", " 0.9.51", "1\uff13.2.3", "01.2.3", "1.2", "v1.2.3", "1.2.3.4", "", "1.2.3-"]


@pytest.mark.parametrize("text", HOSTILE, ids=repr)
def test_hostile_versions_are_refused_everywhere(text: str) -> None:
    assert not versions.is_exact(text)
    assert not versions.is_npm_version(text)
    assert TagPattern("@moonshot-ai/kimi-code@{version}").version_of(f"@x@{text}") is None
    problem = versions.npm_version_problem(text, "--version-override")
    assert problem and "\n" not in problem and problem.startswith("--version-override ")


@pytest.mark.parametrize("text", ["0.0.0", "0.9.3", "24.15.0", "999999999.0.1"])
def test_exact_versions_pass(text: str) -> None:
    assert versions.is_exact(text) and versions.is_npm_version(text)
    assert str(versions.Version.parse(text)) == text


def test_prereleases_are_npm_versions_but_not_exact() -> None:
    assert versions.is_npm_version("0.9.3-patch.1")
    assert not versions.is_exact("0.9.3-patch.1")
    assert not versions.is_npm_version("0.9.3-patch.01")


def test_sort_key_orders_like_semver() -> None:
    given = ["1.0.0", "1.0.0-rc.10", "0.9.3", "1.0.0-rc.2", "0.10.0"]
    assert sorted(given, key=versions.sort_key) == [
        "0.9.3",
        "0.10.0",
        "1.0.0-rc.2",
        "1.0.0-rc.10",
        "1.0.0",
    ]
