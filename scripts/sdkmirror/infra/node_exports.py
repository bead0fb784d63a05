"""Node's `exports` resolution (PACKAGE_EXPORTS_RESOLVE), so we check what consumers get.

Conditions are matched in the object's own key order, never in a preference order of ours:
`{"default": "./a.mjs", "import": "./b.mjs"}` gives `./a.mjs` to every consumer. `default`
always matches. Subpath keys (`"./feature"`) and `*` patterns are resolved as Node does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

# What `import()` in Node matches (besides `default`, which always matches).
IMPORT_CONDITIONS = ("import", "node")


class InvalidExports(ValueError):
    """An `exports` value Node itself rejects (mixed subpath and condition keys)."""


def _is_subpath_map(exports: Any) -> bool:
    if not isinstance(exports, dict) or not exports:
        return False
    dotted = {k.startswith(".") for k in exports}
    if len(dotted) > 1:
        raise InvalidExports(
            "exports mixes subpath keys ('./x') with condition keys; Node rejects it"
        )
    return dotted == {True}


def _target(target: Any, match: str | None, conditions: Collection[str]) -> str | None:
    """PACKAGE_TARGET_RESOLVE: a string, a fallback array, or a condition map in key order."""
    if isinstance(target, str):
        if not target.startswith("./"):
            return None  # bare or absolute targets are invalid in `exports`
        return target.replace("*", match) if match is not None else target
    if isinstance(target, list):
        for item in target:
            hit = _target(item, match, conditions)
            if hit is not None:
                return hit
        return None
    if isinstance(target, dict):
        for key, value in target.items():
            if key == "default" or key in conditions:
                hit = _target(value, match, conditions)
                if hit is not None:
                    return hit
        return None
    return None  # null (an explicit exclusion) or anything else


def _pattern_order(key: str) -> tuple[int, int]:
    """PATTERN_KEY_COMPARE: the longer prefix before `*` wins, then the longer key."""
    return (-key.index("*"), -len(key))


def resolve(
    exports: Any, subpath: str = ".", conditions: Collection[str] = IMPORT_CONDITIONS
) -> str | None:
    """The file `subpath` of the package resolves to under `conditions`, or None.

    Raises `InvalidExports` for an `exports` value Node would reject outright.
    """
    if not _is_subpath_map(exports):
        return _target(exports, None, conditions) if subpath == "." else None
    if subpath in exports and "*" not in subpath:
        return _target(exports[subpath], None, conditions)
    patterns = sorted((k for k in exports if k.count("*") == 1), key=_pattern_order)
    for key in patterns:
        base, trailer = key.split("*")
        if (
            subpath.startswith(base)
            and subpath != base
            and subpath.endswith(trailer)
            and len(subpath) >= len(key)
        ):
            match = subpath[len(base) : len(subpath) - len(trailer)]
            return _target(exports[key], match, conditions)
    return None
