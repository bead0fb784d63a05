"""Where upstream code runs: a bubblewrap sandbox (the `Profile`), an allow-listed environment
inside it, and a separate, explicit environment for the npm calls that need the publisher's
registry credentials.

The profile is a small pure value: what is mounted read-only, what is writable, whether the
network is shared. `argv` turns it into one `bwrap` command line; `PROFILE_VERSION` changes
whenever what a profile allows changes (a build cache keys on it).

Upstream code (its build scripts, its dependencies' install scripts, the bundle we import) is
untrusted. It gets the toolchain's PATH, a fresh HOME (no `~/.npmrc`, no `~/.ssh`), the cache
and store directories, locale, proxy and CA settings, the registry URL the user's npm config
names, and `CI`. Nothing else: no token of any kind reaches it. Only `npm publish FILE` and
`npm view` (see `npm_registry`) run with the user's npm config and OIDC variables.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sdkmirror.core.errors import ExitCode, MirrorError
from sdkmirror.infra import registry_url

SYSTEM_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")  # `sh`, `git`, `env` for scripts
PASSED = frozenset({"LANG", "LANGUAGE", "TZ", "CI"})
# CA bundles are public files; a proxy that re-signs TLS needs them to reach the registry.
TRUST = frozenset({"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR"})
PROXIES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})
# The only settings taken from the user's npm config, all without credentials.
NPM_SETTINGS = (
    "registry",
    "cafile",
    "proxy",
    "https-proxy",
    "noproxy",
    "strict-ssl",
    "fetch-retries",
    "fetch-timeout",
)
# What `npm publish --provenance` reads under OIDC, besides the user's npm config.
OIDC_PREFIXES = ("ACTIONS_ID_TOKEN_", "GITHUB_", "RUNNER_")
NEVER_FOR_NPM = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "SDKMIRROR_PUSH_TOKEN"})


def passed_through(base: Mapping[str, str]) -> dict[str, str]:
    """Locale, proxy, CA and CI variables of `base`: the only ones upstream code sees."""
    out: dict[str, str] = {}
    for key, value in base.items():
        if key in PASSED or key in TRUST or key.startswith("LC_") or key.lower() in PROXIES:
            out[key] = value
    return out


def user_npmrc(base: Mapping[str, str]) -> Path:
    """The user config file npm would read for this environment."""
    for key in ("NPM_CONFIG_USERCONFIG", "npm_config_userconfig"):
        if base.get(key):
            return Path(base[key])
    return Path(base.get("HOME") or Path.home()) / ".npmrc"


def _ini(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip().strip("\"'")
        found[key] = value
    return found


def npm_settings(base: Mapping[str, str]) -> dict[str, str]:
    """`NPM_SETTINGS` from the user's npm config (file, then environment), credentials never.

    Scoped and auth keys (`//host/:_authToken`, `_auth`) are not read at all; a registry URL
    with user information, or any value that expands a variable, is dropped."""
    path = user_npmrc(base)
    try:
        values = _ini(path.read_text(encoding="utf-8", errors="replace")) if path.is_file() else {}
    except OSError:
        values = {}
    for key, setting in base.items():
        low = key.lower()
        if low.startswith("npm_config_"):
            values[low[len("npm_config_") :].replace("_", "-")] = setting
    out: dict[str, str] = {}
    for key in NPM_SETTINGS:
        value = values.get(key)
        if not value or "${" in value:
            continue
        if key == "registry" and not registry_url.is_valid(value):
            continue
        out[key] = value
    return out


def environment(base: Mapping[str, str], *, bin_dirs: Iterable[Path], home: Path) -> dict[str, str]:
    """The allow-listed environment for a process that may run upstream code."""
    env = passed_through(base)
    env["PATH"] = os.pathsep.join([*(str(d) for d in bin_dirs), *SYSTEM_DIRS])
    env["HOME"] = str(home)
    for key, value in npm_settings(base).items():
        env[f"npm_config_{key.replace('-', '_')}"] = value
    # npm's default user config is `$HOME/.npmrc`; point it at the fresh HOME explicitly.
    env["npm_config_userconfig"] = str(home / ".npmrc")
    return env


def registry_environment(
    base: Mapping[str, str], *, bin_dirs: Iterable[Path], home: Path
) -> dict[str, str]:
    """The environment for `npm publish FILE` and `npm view` only: `NODE_AUTH_TOKEN` (which
    the config we write refers to), the OIDC variables, locale, proxy and CA settings, and a
    private HOME. No `npm_config_*` of the caller: the config files we write say everything.
    Never given to anything that runs upstream code."""
    env = passed_through(base)
    env["PATH"] = os.pathsep.join([*(str(d) for d in bin_dirs), *SYSTEM_DIRS])
    env["HOME"] = str(home)
    env["npm_config_cache"] = str(home / "cache")
    env["npm_config_update_notifier"] = "false"
    # npm would load compiled code from Node's compile cache in the shared temp dir, where
    # anyone can plant it: the credentialed npm runs only the files of its verified install.
    env["NODE_DISABLE_COMPILE_CACHE"] = "1"
    env["TMPDIR"] = str(home)
    for key, value in base.items():
        if key in NEVER_FOR_NPM:
            continue
        if key == "NODE_AUTH_TOKEN" or key.startswith(OIDC_PREFIXES):
            env[key] = value
    return env


# --- the bubblewrap sandbox -------------------------------------------------------------------

INSTALL_HINT = "install bubblewrap (`apt-get install -y bubblewrap`)"
# The system a toolchain needs, read-only: programs and libraries, name resolution, CA
# certificates, users. Not /etc as a whole: /etc/npmrc and /etc/gitconfig stay invisible.
SYSTEM_RO = ("/usr",)
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_RO = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
)
# Inside the sandbox, git and npm read no system or user configuration of the host.
CONFIG_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "npm_config_globalconfig": "/dev/null",
}


NAMESPACES = (
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
)
BASE = (
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    "--hostname",
    "sandbox",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",  # noqa: S108 - a fresh tmpfs inside the sandbox, not the host's /tmp
)
# Bump when the rules of `Toolchain.profile` change (which paths are writable or read-only,
# when the network is there); everything `argv` itself uses is hashed in automatically.
RULES_REVISION = 1
PROFILE_VERSION = (
    "bwrap-"
    + hashlib.sha256(
        json.dumps(
            [RULES_REVISION, NAMESPACES, BASE, SYSTEM_RO, SYSTEM_LINKS, ETC_RO, CONFIG_ENV]
        ).encode()
    ).hexdigest()[:12]
)
"""Changes whenever the profile changes: a build cache keys on it."""


class SandboxUnavailable(MirrorError):
    """bubblewrap cannot run here, and `--no-sandbox` was not given (or credentials are
    reachable without it)."""

    exit_code = ExitCode.TOOLCHAIN


@dataclass(frozen=True)
class Profile:
    """What one sandboxed command may touch. Paths are absolute host paths, mounted at the
    same place inside; anything not named is absent (a fresh tmpfs `/tmp` and `home`)."""

    network: bool
    writable: tuple[str, ...]
    readonly: tuple[str, ...]
    home: str
    cwd: str

    def describe(self) -> str:
        """One line for a plan: the profile version and what the command may touch."""
        net = "network" if self.network else "no network"
        rw = ", ".join(self.writable) or "nothing"
        return (
            f"sandbox {PROFILE_VERSION}: bwrap, new user/pid/ipc/uts/mount namespaces, {net}, "
            f"tmpfs /tmp and HOME, writable: {rw}; read-only: {len(self.readonly)} paths"
        )


def profile(
    *,
    network: bool,
    writable: Iterable[Path],
    readonly: Iterable[Path],
    home: Path,
    cwd: Path,
) -> Profile:
    """The profile for one command: `writable` wins over `readonly` for the same path; paths
    that do not exist are dropped (bwrap would fail on them)."""
    rw = _unique(p for p in writable if p.exists())
    ro = _unique(p for p in readonly if p.exists() and str(p) not in rw)
    return Profile(network, tuple(sorted(rw)), tuple(sorted(ro)), str(home), str(cwd))


def _unique(paths: Iterable[Path]) -> list[str]:
    out: list[str] = []
    for p in paths:
        text = os.path.abspath(p)
        if text not in out and text != "/":
            out.append(text)
    return out


def argv(prof: Profile, command: Sequence[str], *, bwrap: str = "bwrap") -> list[str]:
    """The bwrap command line that runs `command` under `prof`. Mounts go parents first, so a
    writable directory inside a read-only one stays writable."""
    out = [
        bwrap,
        *NAMESPACES,
        *([] if prof.network else ["--unshare-net"]),
        *BASE,
    ]
    for sys_dir in SYSTEM_RO:
        if os.path.isdir(sys_dir):
            out += ["--ro-bind", sys_dir, sys_dir]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            out += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            out += ["--ro-bind", link, link]
    for etc in ETC_RO:
        if os.path.exists(etc):
            out += ["--ro-bind", etc, etc]
    binds = [(p, "--ro-bind") for p in prof.readonly] + [(p, "--bind") for p in prof.writable]
    for path, flag in sorted(binds, key=lambda b: (b[0].count("/"), b[0])):
        out += [flag, path, path]
    out += ["--tmpfs", prof.home, "--chdir", prof.cwd, "--", *command]
    return out


# --- is it usable ------------------------------------------------------------------------------

_enabled = True


def enabled() -> bool:
    """Whether toolchain commands run in bwrap (False only after `--no-sandbox` was allowed)."""
    return _enabled


@contextmanager
def unsandboxed() -> Iterator[None]:
    """Run toolchain commands without bwrap inside the block (`--no-sandbox`, benchmarks)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def problem() -> str | None:
    """Why bwrap cannot sandbox a command here, or None when it can (asked once a process)."""
    exe = bwrap_path()
    if exe is None:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    home = "/tmp/home"  # noqa: S108 - a tmpfs inside the sandbox
    trial = argv(Profile(False, (), (), home, "/"), ["/usr/bin/env", "true"], bwrap=exe)
    try:
        cp = subprocess.run(
            trial, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap does not run ({exc}); {INSTALL_HINT}"
    if cp.returncode == 0:
        return None
    said = (cp.stderr.strip().splitlines() or [f"exit {cp.returncode}"])[-1][:200]
    if apparmor_restricts_userns():
        return (
            f"bwrap cannot create a user namespace ({said}): AppArmor restricts unprivileged "
            "user namespaces; run `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
            " or give /usr/bin/bwrap an AppArmor profile that allows `userns`"
        )
    return f"bwrap fails here ({said}); check that user namespaces are enabled"


def apparmor_restricts_userns() -> bool:
    try:
        text = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").read_text()
    except OSError:
        return False
    return text.strip() == "1"


# --- credentials a build without the sandbox could reach ----------------------------------------

TOKEN_VARIABLE = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|_AUTH|^NPM_CONFIG_.*AUTH", re.I)
AUTH_KEY = re.compile(r"(^|:)(_authtoken|_auth|_password|username|certfile|keyfile)$", re.I)


def npmrc_files(base: Mapping[str, str], *, prefixes: Iterable[Path] = ()) -> list[Path]:
    """The npm config files npm would read here besides a project's own: the user config, the
    global config (given, or under each Node prefix), and the usual system ones."""
    files = [user_npmrc(base)]
    for key in ("NPM_CONFIG_GLOBALCONFIG", "npm_config_globalconfig"):
        if base.get(key):
            files.append(Path(base[key]))
    files += [Path(p) / "etc" / "npmrc" for p in prefixes]
    files += [Path("/etc/npmrc"), Path("/usr/local/etc/npmrc")]
    return list(dict.fromkeys(files))


def reachable_credentials(base: Mapping[str, str], *, prefixes: Iterable[Path] = ()) -> list[str]:
    """Every credential a process started from `base` could read without the sandbox: token
    variables (by name, never the value) and auth lines in the npm configs npm would read."""
    found = [
        f"${key}" for key, value in sorted(base.items()) if value and TOKEN_VARIABLE.search(key)
    ]
    for path in npmrc_files(base, prefixes=prefixes):
        try:
            text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        except OSError:
            continue
        keys = [k for k in _ini(text) if AUTH_KEY.search(k)]
        if keys:
            found.append(f"{path} ({', '.join(sorted(set(keys)))})")
    return found


def require(*, no_sandbox: bool, base: Mapping[str, str] | None = None) -> None:
    """The gate in front of every command that runs upstream code.

    With a working bwrap: nothing to do. Without one: refuse (exit 9) with how to install it,
    unless `no_sandbox`; then still refuse while any credential is reachable, naming each.
    `no_sandbox` with a working bwrap turns it off too (benchmarks, comparisons)."""
    base = os.environ if base is None else base
    why = None if no_sandbox else problem()
    if why is not None:
        raise SandboxUnavailable(f"{why}, or pass --no-sandbox on a machine without credentials")
    if not no_sandbox:
        return
    creds = reachable_credentials(base)
    if creds:
        raise SandboxUnavailable(
            "--no-sandbox refused: upstream code could read these credentials: "
            + "; ".join(creds)
            + "; unset them (and move those npmrc files away) or install bubblewrap"
        )
    global _enabled
    _enabled = False
