"""The environments processes run in: an allow-list for anything that runs upstream code, and a
separate, explicit one for the npm calls that need the publisher's registry credentials.

Upstream code (its build scripts, its dependencies' install scripts, the bundle we import) is
untrusted. It gets the toolchain's PATH, a fresh HOME (no `~/.npmrc`, no `~/.ssh`), the cache
and store directories, locale, proxy and CA settings, the registry URL the user's npm config
names, and `CI`. Nothing else: no token of any kind reaches it. Only `npm publish FILE` and
`npm view` (see `npm_registry`) run with the user's npm config and OIDC variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sdkmirror.infra import registry_url

SYSTEM_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")  # `sh`, `git`, `env` for scripts
PASSED = frozenset({"LANG", "LANGUAGE", "TZ", "CI"})
# CA bundles are public files; a proxy that re-signs TLS needs them to reach the registry.
TRUST = frozenset({"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR"})
PROXIES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})
# The only settings taken from the user's npm config, all without credentials.
NPM_SETTINGS = ("registry", "cafile", "proxy", "https-proxy", "noproxy", "strict-ssl")
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


def registry_environment(base: Mapping[str, str], *, bin_dirs: Iterable[Path]) -> dict[str, str]:
    """The environment for `npm publish FILE` and `npm view` only: the user's npm config
    (HOME, `NPM_CONFIG_USERCONFIG`, `npm_config_*`), `NODE_AUTH_TOKEN` and the OIDC variables.
    Never given to anything that runs upstream code."""
    home = Path(base.get("HOME") or Path.home())
    env = passed_through(base)
    env["PATH"] = os.pathsep.join([*(str(d) for d in bin_dirs), *SYSTEM_DIRS])
    env["HOME"] = str(home)
    for key, value in base.items():
        if key in NEVER_FOR_NPM:
            continue
        if (
            key.lower().startswith("npm_config_")
            or key == "NODE_AUTH_TOKEN"
            or key.startswith(OIDC_PREFIXES)
        ):
            env[key] = value
    for key in ("npm_config_prefix", "NPM_CONFIG_PREFIX"):
        env.pop(key, None)
    return env
