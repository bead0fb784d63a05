"""The registry with the publisher's credentials: `npm publish FILE`, and the two reads a
publish needs (a version's integrity, the dist-tags).

`npm publish` runs pristine code only: the separate Node/npm of `pristine`, checked again
before every call, started in an empty private directory with a user and a global config we
write (the registry's auth line refers to `$NODE_AUTH_TOKEN`), the registry given explicitly,
and `sandbox.registry_environment`. No `.npmrc` of a checkout or a home directory is read, and
no upstream code, install or script ever runs with that environment.

The reads are one HTTP GET each, made by this process: the package document `npm view`
fetches, with the token as a bearer header for that registry only, the user's npm proxy and CA
settings, and npm's read timeout. A Node process per read cost 0.4 s; this costs milliseconds.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sdkmirror.core.errors import RemoteError
from sdkmirror.infra import pristine, proc, registry_url, sandbox
from sdkmirror.infra.netlimits import NPM_FETCH_TIMEOUT_MS
from sdkmirror.infra.toolchain import Toolchain, ToolchainError

ALLOWED = ("publish",)


def run(
    tc: Toolchain,
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    echo: bool = False,
    what: str | None = None,
) -> proc.Result:
    """`npm publish FILE ...` with the user's npm config and OIDC variables."""
    if not args or args[0] not in ALLOWED:
        raise ValueError(f"only npm {' and '.join(ALLOWED)} gets registry credentials, not {args}")
    if args[0] == "publish" and (len(args) < 2 or not Path(args[1]).is_file()):
        raise ValueError("npm publish gets credentials only for a tarball file")
    registry = _registry_of(args)
    if tc.home is None:
        raise ToolchainError("the credentialed npm needs a provisioned toolchain's cache")
    npm = pristine.verified(tc.home.parent.parent)  # <cache>/toolchains/<name>
    base = os.environ if env is None else env
    with tempfile.TemporaryDirectory(prefix="sdkmirror-npm-") as private:  # mode 0700
        where = Path(private)
        userconfig, globalconfig = where / "userconfig", where / "globalconfig"
        userconfig.write_text(npmrc(registry, base), encoding="utf-8")
        globalconfig.write_text("", encoding="utf-8")
        # A package.json here ends npm's search for a project (and its `.npmrc`) upwards.
        (where / "package.json").write_text('{"private": true}\n', encoding="utf-8")
        full = sandbox.registry_environment(base, bin_dirs=[npm.bin_dir], home=where)
        argv: list[str | Path] = [npm.node, npm.npm_cli, *args]
        argv += ["--userconfig", userconfig, "--globalconfig", globalconfig]
        return proc.run(argv, cwd=where, env=full, check=check, echo=echo, what=what)


def npm_version(tc: Toolchain) -> str:
    """The version of the npm that credentialed calls run (read from its package.json)."""
    if tc.home is None:
        raise ToolchainError("the credentialed npm needs a provisioned toolchain's cache")
    npm = pristine.verified(tc.home.parent.parent)
    manifest = npm.npm_cli.parent.parent / "package.json"
    return str(json.loads(manifest.read_text(encoding="utf-8")).get("version", ""))


def _registry_of(args: list[str]) -> str:
    """The registry an allowed call names with `--registry URL`; there is no default."""
    for i, arg in enumerate(args[:-1]):
        if arg == "--registry":
            return registry_url.parse(args[i + 1])
    raise ValueError("credentialed npm calls name their registry with --registry URL")


def npmrc(registry: str, base: Mapping[str, str]) -> str:
    """The user config we write: the registry, the user's non-credential settings (CA,
    proxy), and an auth line for that registry only, referring to `$NODE_AUTH_TOKEN`."""
    lines = [f"registry={registry}"]
    lines += [f"{k}={v}" for k, v in sandbox.npm_settings(base).items() if k != "registry"]
    if base.get("NODE_AUTH_TOKEN"):
        parts = urlsplit(registry)
        lines.append(f"//{parts.netloc}{parts.path}:_authToken=${{NODE_AUTH_TOKEN}}")
    return "\n".join(lines) + "\n"


def integrity(
    name: str, version: str, registry: str, *, env: Mapping[str, str] | None = None
) -> str | None:
    """`dist.integrity` of name@version on the registry, or None when it is not there."""
    doc = _document(name, registry, os.environ if env is None else env, f"{name}@{version}")
    entry = ((doc or {}).get("versions") or {}).get(version) or {}
    value = (entry.get("dist") or {}).get("integrity") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


def dist_tags(name: str, registry: str, *, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The package's dist-tags on the registry (`{}` when the package is not there yet)."""
    what = f"the dist-tags of {name}"
    doc = _document(name, registry, os.environ if env is None else env, what)
    tags = (doc or {}).get("dist-tags")
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def _document(name: str, registry: str, env: Mapping[str, str], what: str) -> dict[str, Any] | None:
    """The registry's document of `name` (what `npm view` reads), or None on a 404."""
    registry = registry_url.parse(registry)
    url = registry.rstrip("/") + "/" + name.replace("/", "%2f")  # @scope%2fname, as npm asks
    headers = {
        "Accept": "application/json",
        "Cache-Control": "no-cache",  # npm's --prefer-online: never an older cached answer
        "User-Agent": "sdkmirror (npm registry read)",
    }
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - parse(): http(s) only
    if env.get("NODE_AUTH_TOKEN"):  # unredirected: a redirect never carries the token along
        request.add_unredirected_header("Authorization", f"Bearer {env['NODE_AUTH_TOKEN']}")
    try:
        with _opener(registry, env).open(request, timeout=NPM_FETCH_TIMEOUT_MS / 1000) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise RemoteError(
            f"cannot read {what} from {registry}: HTTP {exc.code} {exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise RemoteError(f"cannot read {what} from {registry}: {text}") from None
    return doc if isinstance(doc, dict) else None


def _opener(registry: str, env: Mapping[str, str]) -> urllib.request.OpenerDirector:
    """HTTP(S) with npm's settings of the user: `proxy`/`https-proxy`/`noproxy` (or the
    proxy variables), `cafile`, `strict-ssl`, and Node's `NODE_EXTRA_CA_CERTS`."""
    settings = sandbox.npm_settings(env)
    parts = urlsplit(registry)

    def first(*keys: str) -> str:
        return next((v for k in keys if (v := settings.get(k) or env.get(k))), "")

    if parts.scheme == "https":
        proxy = first("https-proxy", "HTTPS_PROXY", "https_proxy", "proxy")
    else:
        proxy = first("proxy", "HTTP_PROXY", "http_proxy")
    bypass = [h.strip().lstrip(".") for h in first("noproxy", "NO_PROXY", "no_proxy").split(",")]
    host = parts.hostname or ""
    if any(b and (b == "*" or host == b or host.endswith("." + b)) for b in bypass):
        proxy = ""
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({parts.scheme: proxy} if proxy else {})
    ]
    if parts.scheme == "https":  # loading the system's CAs takes 20 ms: only when needed
        context = ssl.create_default_context(cafile=settings.get("cafile") or None)
        if env.get("NODE_EXTRA_CA_CERTS"):
            context.load_verify_locations(cafile=env["NODE_EXTRA_CA_CERTS"])
        if settings.get("strict-ssl", "").lower() == "false":
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def default_registry(tc: Toolchain, env: Mapping[str, str] | None = None) -> str:
    """The registry the user's npm config names, else npm's own default (asked in the sandbox,
    so no host is written in this project)."""
    found = sandbox.npm_settings(os.environ if env is None else env).get("registry")
    if found is None:
        found = tc.run([tc.npm, "config", "get", "registry"], env=env).stdout.strip()
    return registry_url.parse(found, "the npm config's registry")
