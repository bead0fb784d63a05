"""`[tool.sdkmirror]` in pyproject.toml: loaded once, validated, every problem naming its key."""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sdkmirror.core import git_url, identifiers
from sdkmirror.core.errors import ConfigError
from sdkmirror.core.mirror_tag import TagPattern, check_template
from sdkmirror.core.versions import exact_problem

CONFIG_ENV = "SDKMIRROR_CONFIG"
CACHE_ENV = "SDKMIRROR_CACHE"
BUILD_CACHE_ENV = "SDKMIRROR_BUILD_CACHE"
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")

DEFAULTS: dict[str, Any] = {
    "upstream": "https://github.com/MoonshotAI/kimi-code.git",
    "upstream_branch": "main",
    "mirror_branch": "upstream-main",
    "release_tag_pattern": "@moonshot-ai/kimi-code@{version}",
    "release_branch_template": "release/v{version}",
    "publish_tag_template": "publish-sdk/v{version}",
    "sdk_dir": "packages/node-sdk",
    "sdk_package": "@moonshot-ai/kimi-code-sdk",
    "npm_name": "@botiverse/kimi-code-sdk",
    "work_dir": ".sdkmirror",
    "pnpm_store": "",
    "mirror_ledger": "ledger/mirror-tags.toml",
    "release_ledger": "ledger/releases.toml",
    "patch_registry": "ledger/patches.toml",
    "release_notes": "RELEASES.md",
    "notes_dir": "notes",
    "lock_timeout": 10.0,
    "max_package_bytes": 50 * 1024 * 1024,
    "build_cache_max_bytes": 4 * 1024**3,
    "toolchains": [{"node": "24.19.0", "pnpm": "10.33.0"}],
}


@dataclass(frozen=True)
class ToolchainSpec:
    node: str
    pnpm: str
    allow_failure: bool = False

    @property
    def id(self) -> str:
        return f"node='{self.node}', pnpm='{self.pnpm}'"


@dataclass(frozen=True)
class Config:
    root: Path
    upstream: str
    upstream_branch: str
    mirror_branch: str
    release_tag_pattern: str
    release_branch_template: str
    publish_tag_template: str
    sdk_dir: str
    sdk_package: str
    npm_name: str
    work_dir: Path
    pnpm_store_setting: Path | None
    mirror_ledger: Path
    release_ledger: Path
    patch_registry: Path
    release_notes: Path
    notes_dir: Path
    lock_timeout: float
    toolchains: tuple[ToolchainSpec, ...] = field(default_factory=tuple)
    max_package_bytes: int = 50 * 1024 * 1024  # the build output's total size, at most
    build_cache_max_bytes: int = 4 * 1024**3  # the build cache's size before LRU eviction

    @cached_property  # one compiled pattern per config: status asks it for every tag
    def tags(self) -> TagPattern:
        return TagPattern(self.release_tag_pattern)

    @cached_property
    def release_branches(self) -> TagPattern:
        return TagPattern(self.release_branch_template)

    @property
    def publish_tags(self) -> TagPattern:
        return TagPattern(self.publish_tag_template)

    @property
    def pnpm_store(self) -> Path:
        """The content-addressed store every smoke session shares."""
        return self.pnpm_store_setting or self.cache_dir / "pnpm-store"

    @property
    def work_repo(self) -> Path:
        return self.work_dir / "mirror.git"

    @property
    def cache_dir(self) -> Path:
        """Downloaded toolchains and tools; `$SDKMIRROR_CACHE` shares one across projects."""
        env = os.environ.get(CACHE_ENV)
        return Path(env).resolve() if env else self.work_dir / "cache"

    @property
    def build_cache_dir(self) -> Path:
        """Built SDKs by key (`smoke.build_cache`); `$SDKMIRROR_BUILD_CACHE` moves it."""
        env = os.environ.get(BUILD_CACHE_ENV)
        return Path(env).resolve() if env else self.cache_dir / "builds"

    @property
    def reports_dir(self) -> Path:
        return self.work_dir / "reports"


def find_pyproject(start: Path | None = None) -> Path:
    """`$SDKMIRROR_CONFIG`, else the nearest pyproject.toml with a `[tool.sdkmirror]` table."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={env} does not name a file")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file() and "sdkmirror" in _read_toml(candidate).get("tool", {}):
            return candidate
    raise ConfigError(
        "no pyproject.toml with a [tool.sdkmirror] table here or above; "
        f"run from the project checkout or set {CONFIG_ENV}"
    )


def load(path: Path | None = None, **overrides: Any) -> Config:
    """Load and validate the configuration; `overrides` win over the file (used by flags)."""
    path = path or find_pyproject()
    tool = _read_toml(path).get("tool", {})
    raw = tool.get("sdkmirror", {}) if isinstance(tool, dict) else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [tool.sdkmirror] must be a table")
    return from_mapping(raw, root=path.parent, **overrides)


def _read_toml(path: Path) -> dict[str, Any]:
    """A TOML file, or one `ConfigError` naming it and the problem (syntax, bytes, access)."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def toolchain_matrix(pyproject: Path) -> list[tuple[str, str]]:
    """`(node, pnpm)` per smoke session, from the validated configuration (for `noxfile.py`).

    A broken `pyproject.toml` prints one `error:` line and exits 2: `nox --list` included.
    """
    try:
        return [(t.node, t.pnpm) for t in load(pyproject).toolchains]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(int(exc.exit_code)) from None


def from_mapping(raw: dict[str, Any], *, root: Path, **overrides: Any) -> Config:
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        near = difflib.get_close_matches(unknown[0], list(DEFAULTS), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(
            f"[tool.sdkmirror] unknown key {unknown[0]!r}; {hint}known keys: {', '.join(DEFAULTS)}"
        )
    values = {**DEFAULTS, **raw, **{k: v for k, v in overrides.items() if v is not None}}

    def text(key: str) -> str:
        v = values[key]
        if not isinstance(v, str) or not v.strip() or v != v.strip():
            raise ConfigError(f"[tool.sdkmirror] {key} must be a non-empty string, got {v!r}")
        return v

    def branch(key: str) -> str:
        v = text(key)
        if not _BRANCH.match(v) or ".." in v or "//" in v or v.endswith(("/", ".lock", ".")):
            raise ConfigError(f"[tool.sdkmirror] {key} is not a valid branch name: {v!r}")
        return v

    def template(key: str) -> str:
        v = text(key)
        problem = check_template(v)
        if problem:
            raise ConfigError(f"[tool.sdkmirror] {key} {problem}: {v!r}")
        return v

    def npm_name(key: str) -> str:
        v = text(key)
        if not identifiers.is_npm_name(v):
            raise ConfigError(f"[tool.sdkmirror] {key} is not a valid npm package name: {v!r}")
        return v

    def relpath(key: str) -> Path:
        v = text(key)
        p = Path(v)
        if p.is_absolute() and key not in ("work_dir", "pnpm_store"):
            raise ConfigError(f"[tool.sdkmirror] {key} must be relative to pyproject.toml: {v!r}")
        if ".." in p.parts:
            raise ConfigError(f"[tool.sdkmirror] {key} must not contain '..': {v!r}")
        return root / p

    upstream = text("upstream")
    why = git_url.problem(upstream)
    if why:
        raise ConfigError(
            f"[tool.sdkmirror] upstream is not a usable git URL ({why}): {upstream!r}"
        )

    sdk_dir = text("sdk_dir")
    if Path(sdk_dir).is_absolute() or ".." in Path(sdk_dir).parts:
        raise ConfigError(
            f"[tool.sdkmirror] sdk_dir must be a path inside the upstream: {sdk_dir!r}"
        )

    timeout = values["lock_timeout"]
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout < 0
    ):
        raise ConfigError(f"[tool.sdkmirror] lock_timeout must be seconds >= 0, got {timeout!r}")

    max_bytes = values["max_package_bytes"]
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(
            f"[tool.sdkmirror] max_package_bytes must be a whole number of bytes > 0, "
            f"got {max_bytes!r}"
        )

    cache_bytes = values["build_cache_max_bytes"]
    if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
        raise ConfigError(
            f"[tool.sdkmirror] build_cache_max_bytes must be a whole number of bytes >= 0 "
            f"(0 keeps nothing), got {cache_bytes!r}"
        )

    work_dir = relpath("work_dir")
    _check_work_dir(work_dir)
    store = None if values["pnpm_store"] == "" else relpath("pnpm_store")

    return Config(
        root=root,
        upstream=upstream,
        upstream_branch=branch("upstream_branch"),
        mirror_branch=branch("mirror_branch"),
        release_tag_pattern=template("release_tag_pattern"),
        release_branch_template=template("release_branch_template"),
        publish_tag_template=template("publish_tag_template"),
        sdk_dir=sdk_dir,
        sdk_package=npm_name("sdk_package"),
        npm_name=npm_name("npm_name"),
        work_dir=work_dir,
        pnpm_store_setting=store,
        mirror_ledger=relpath("mirror_ledger"),
        release_ledger=relpath("release_ledger"),
        patch_registry=relpath("patch_registry"),
        release_notes=relpath("release_notes"),
        notes_dir=relpath("notes_dir"),
        lock_timeout=float(timeout),
        toolchains=_toolchains(values["toolchains"]),
        max_package_bytes=max_bytes,
        build_cache_max_bytes=cache_bytes,
    )


def _check_work_dir(work_dir: Path) -> None:
    """A work_dir that is (or lies under) a file is refused before any run writes a thing."""
    for path in (work_dir, *work_dir.parents):
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                where = "" if path == work_dir else f" ({path} is a file)"
                raise ConfigError(
                    f"[tool.sdkmirror] work_dir {work_dir} is not a directory{where}; point "
                    "work_dir at a directory, or move the file away"
                )
            return


def _toolchains(raw: Any) -> tuple[ToolchainSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("[tool.sdkmirror] toolchains must be a non-empty array of tables")
    specs: list[ToolchainSpec] = []
    for i, entry in enumerate(raw):
        where = f"[tool.sdkmirror] toolchains[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with node and pnpm")
        extra = sorted(set(entry) - {"node", "pnpm", "allow_failure"})
        if extra:
            raise ConfigError(f"{where} unknown key {extra[0]!r} (node, pnpm, allow_failure)")
        for key in ("node", "pnpm"):
            if key not in entry:
                raise ConfigError(f"{where} has no {key!r} key; give node and pnpm versions")
            v = entry[key]
            problem = exact_problem(v, f"{where}.{key}") if isinstance(v, str) else None
            if not isinstance(v, str) or problem:
                raise ConfigError(problem or f"{where}.{key} must be an exact X.Y.Z string")
        allow = entry.get("allow_failure", False)
        if not isinstance(allow, bool):
            raise ConfigError(f"{where}.allow_failure must be true or false, got {allow!r}")
        spec = ToolchainSpec(entry["node"], entry["pnpm"], allow)
        if any(s.node == spec.node and s.pnpm == spec.pnpm for s in specs):
            raise ConfigError(f"{where} repeats node {spec.node} with pnpm {spec.pnpm}")
        specs.append(spec)
    return tuple(specs)
