"""A real Verdaccio on loopback: the npm registry tests and benchmarks publish to."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from sdkmirror.core.config import DEFAULTS
from sdkmirror.core.errors import MirrorError
from sdkmirror.infra import npmtool
from sdkmirror.infra.toolchain import Toolchain

VERDACCIO = "verdaccio"
VERDACCIO_VERSION = "6.10.4"
# The registry here does not serve the `node-fetch@cjs` dist-tag one of Verdaccio's
# dependencies asks for; 2.7.0 is the release that tag names.
VERDACCIO_OVERRIDES = {"node-fetch@cjs": "2.7.0"}
NODE_RANGE = ">=22"
USER = "sdkmirror"

CONFIG = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    max_users: 10
uplinks:{uplinks}
packages:
  '{own}':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated{proxy}
server:
  keepAliveTimeout: 5
log: {{ type: stdout, format: pretty, level: warn }}
"""
# The scope we publish under is never looked up upstream: a version on the public registry
# must not shadow, or block, what a test or a rehearsal publishes here.
OWN_SCOPE = str(DEFAULTS["npm_name"]).split("/")[0]


def _uplink(tc: Toolchain) -> tuple[str, str]:
    """The `uplinks` and `proxy` config lines for the registry the user's npm config names,
    so a package's third-party dependencies install through this registry too; none when
    that registry is itself on loopback or npm names none."""
    settings = ("registry", "proxy", "https-proxy")
    res = tc.run([tc.npm, "config", "get", *settings], check=False)  # one `key=value` a line
    pairs = (ln.partition("=") for ln in res.stdout.splitlines())
    found = {key.strip(): value.strip() for key, sep, value in pairs if sep}
    url = found.get("registry", "")
    host = urllib.parse.urlsplit(url).hostname or ""
    if not url.startswith(("http://", "https://")) or host in ("127.0.0.1", "localhost", "::1"):
        return " {}", ""
    lines = [f"\n  upstream:\n    url: {json.dumps(url)}\n    timeout: 60s"]
    for key, setting in (("http_proxy", "proxy"), ("https_proxy", "https-proxy")):
        value = found.get(setting, "")
        if value and value not in ("null", "undefined"):
            lines.append(f"\n    {key}: {json.dumps(value)}")
    return "".join(lines), "\n    proxy: upstream"


class RegistryDown(MirrorError):
    exit_code = 4


@dataclass(frozen=True)
class Registry:
    """A running registry: its URL and an npm user config holding a publish token for it."""

    url: str
    token: str
    npmrc: Path
    process: subprocess.Popen[bytes]
    log: Path

    def npm_env(self) -> dict[str, str]:
        """Environment that makes npm use this registry's credentials as the user's own: the
        user config (for the registry URL) and `NODE_AUTH_TOKEN`, the only token a credentialed
        npm call is given."""
        return {"NPM_CONFIG_USERCONFIG": str(self.npmrc), "NODE_AUTH_TOKEN": self.token}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def install(cache_dir: Path, tc: Toolchain) -> Path:
    """Verdaccio installed under `<cache_dir>/verdaccio` (once); returns its start script."""
    npmtool.require_node(tc, NODE_RANGE, f"Verdaccio {VERDACCIO_VERSION}")
    home = npmtool.install(
        cache_dir, VERDACCIO, VERDACCIO_VERSION, tc, overrides=VERDACCIO_OVERRIDES
    )
    return npmtool.bin_script(home, VERDACCIO)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback http only
        return int(resp.status)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    @retry(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.05),  # it listens about a second after its start: poll finely
        retry=retry_if_exception_type(OSError),
        reraise=True,
    )
    def ping() -> None:
        if process.poll() is not None:
            raise RegistryDown(
                f"Verdaccio exited with {process.returncode} on start: "
                f"{log.read_text(errors='replace').strip()[-300:]}"
            )
        _get(url + "-/ping")

    try:
        ping()
    except OSError as exc:
        raise RegistryDown(
            f"Verdaccio did not answer on {url} within {timeout:g}s ({exc})"
        ) from exc


def add_user(url: str, name: str, password: str) -> str:
    """Create a registry user the way `npm adduser` does; returns its token."""
    body = json.dumps({"name": name, "password": password}).encode()
    req = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{url}-/user/org.couchdb.user:{name}",
        data=body,
        method="PUT",
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return str(json.loads(resp.read())["token"])
    except (OSError, KeyError, ValueError) as exc:
        raise RegistryDown(f"could not create a user on {url}: {exc}") from exc


def _user_npmrc() -> str:
    path = Path(os.environ.get("NPM_CONFIG_USERCONFIG") or Path.home() / ".npmrc")
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return text if not text or text.endswith("\n") else text + "\n"


@contextmanager
def verdaccio(
    workdir: Path,
    toolchain: Toolchain,
    *,
    cache_dir: Path | None = None,
    timeout: float = 60,
    own_scope: str = OWN_SCOPE,
) -> Iterator[Registry]:
    """Start Verdaccio on a free loopback port with storage in `workdir`; stop it on exit.

    Packages of `own_scope` live here only; every other package is fetched through the
    registry the user's npm config names, as a consumer's dependencies would be.
    """
    from sdkmirror.core import config as config_mod

    cache = cache_dir or config_mod.load().cache_dir
    script = install(cache, toolchain)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "storage").mkdir(exist_ok=True)
    (workdir / "home").mkdir(exist_ok=True)
    # A fresh user every start: a token from an earlier instance must not be needed.
    (workdir / "htpasswd").unlink(missing_ok=True)
    cfg = workdir / "config.yaml"
    uplinks, proxy = _uplink(toolchain)
    cfg.write_text(
        CONFIG.format(
            storage=workdir / "storage",
            htpasswd=workdir / "htpasswd",
            own=f"{own_scope}/*",
            uplinks=uplinks,
            proxy=proxy,
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = workdir / "verdaccio.log"
    env = toolchain.env(home=workdir / "home")
    # Our own loopback server, started for every test and demo run: its compiled code is kept
    # beside its install (1.2 s of CPU a start without it).
    env.pop("NODE_DISABLE_COMPILE_CACHE", None)
    env["NODE_COMPILE_CACHE"] = str(cache / "verdaccio-compile-cache")
    with log.open("wb") as fh:
        process = subprocess.Popen(
            [toolchain.node, script, "--config", cfg, "--listen", f"127.0.0.1:{port}"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    registry: Registry | None = None
    try:
        _wait_ready(url, process, log, timeout)
        token = add_user(url, USER, secrets.token_hex(16))
        npmrc = workdir / "npmrc"
        # Keep the user's own settings (proxy, default registry) and add this registry's token.
        npmrc.write_text(_user_npmrc() + f"//127.0.0.1:{port}/:_authToken={token}\n")
        registry = Registry(url, token, npmrc, process, log)
        yield registry
    finally:
        if registry is not None:
            registry.stop()
        elif process.poll() is None:
            process.kill()
            process.wait(timeout=10)
