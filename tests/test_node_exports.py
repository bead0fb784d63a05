"""One `exports` resolver, following Node: what smoke checks is what consumers import."""

from __future__ import annotations

import pytest

from sdkmirror.infra import node_exports
from sdkmirror.infra.node_exports import InvalidExports, resolve
from sdkmirror.release.package import repackage
from sdkmirror.smoke import build as smoke


@pytest.mark.parametrize(
    ("exports", "expected"),
    [
        # Object order decides, not a preference order of ours: `default` first wins.
        ({".": {"default": "./dist/a.mjs", "import": "./dist/b.mjs"}}, "./dist/a.mjs"),
        ({".": {"import": "./dist/b.mjs", "default": "./dist/a.mjs"}}, "./dist/b.mjs"),
        ({".": {"require": "./dist/a.cjs", "node": "./dist/n.mjs"}}, "./dist/n.mjs"),
        ({".": {"types": "./dist/a.d.mts", "import": "./dist/a.mjs"}}, "./dist/a.mjs"),
        # Sugar: a string or a condition map is the `.` export itself.
        ("./dist/index.mjs", "./dist/index.mjs"),
        ({"import": "./dist/i.mjs", "require": "./dist/r.cjs"}, "./dist/i.mjs"),
        # Nested conditions, and a branch that matches but resolves to nothing falls through.
        ({".": {"node": {"require": "./r.cjs", "import": "./n.mjs"}}}, "./n.mjs"),
        ({".": {"node": {"require": "./r.cjs"}, "default": "./d.mjs"}}, "./d.mjs"),
        ({".": {"browser": "./b.mjs", "deno": "./d.mjs"}}, None),
        # Fallback arrays, null exclusions, targets that are not relative.
        ({".": ["bad-bare", "./dist/ok.mjs"]}, "./dist/ok.mjs"),
        ({".": None}, None),
        ({".": "dist/no-dot-slash.mjs"}, None),
        (None, None),
    ],
)
def test_root_resolution_follows_node(exports, expected):
    assert resolve(exports) == expected


def test_subpaths_and_patterns():
    exports = {
        ".": "./dist/index.mjs",
        "./feature": {"import": "./dist/feature.mjs"},
        "./utils/*": "./dist/utils/*.mjs",
        "./utils/*.js": "./dist/utils-js/*.mjs",
        "./utils/private/*": None,
        "./assets/*": {"import": "./dist/assets/*/index.mjs"},
    }
    assert resolve(exports, "./feature") == "./dist/feature.mjs"
    assert resolve(exports, "./utils/a") == "./dist/utils/a.mjs"
    assert resolve(exports, "./utils/deep/b") == "./dist/utils/deep/b.mjs"
    # The longest prefix before `*` wins; then the longer key.
    assert resolve(exports, "./utils/private/x") is None
    assert resolve(exports, "./utils/c.js") == "./dist/utils-js/c.mjs"
    assert resolve(exports, "./assets/icons") == "./dist/assets/icons/index.mjs"
    assert resolve(exports, "./missing") is None
    assert resolve(exports, "./utils/") is None  # the `*` must match something
    assert resolve("./dist/index.mjs", "./feature") is None


def test_mixed_subpath_and_condition_keys_are_rejected():
    with pytest.raises(InvalidExports):
        resolve({".": "./a.mjs", "import": "./b.mjs"})


def test_smoke_and_repackage_agree_with_node():
    exports = {".": {"default": "./dist/a.mjs", "import": "./dist/b.mjs"}}
    assert smoke.entry_point({"publishConfig": {"exports": exports}}) == "./dist/a.mjs"
    assert repackage.entry_points(exports)["module"] == "./dist/a.mjs"
    assert repackage.entry_points(exports)["main"] == "./dist/a.mjs"

    real = {".": {"types": "./dist/index.d.mts", "import": "./dist/index.mjs"}}
    points = repackage.entry_points(real)
    assert points == {
        "main": "./dist/index.mjs",
        "module": "./dist/index.mjs",
        "types": "./dist/index.d.mts",
    }
    assert smoke.entry_point({"publishConfig": {"exports": real}}) == "./dist/index.mjs"
    assert node_exports.resolve(real) == smoke.entry_point({"publishConfig": {"exports": real}})
