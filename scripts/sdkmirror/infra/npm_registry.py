"""The only npm calls that carry the publisher's registry credentials: `npm view` and
`npm publish FILE`.

They run pristine code only: the separate Node/npm of `pristine`, hashed again before every
call, started in an empty private directory with a user and a global config we write (the
registry's auth line refers to `$NODE_AUTH_TOKEN`), the registry given explicitly, and
`sandbox.registry_environment`. No `.npmrc` of a checkout or a home directory is read, and no
upstream code, install or script ever runs with that environment."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sdkmirror.core.errors import RemoteError
from sdkmirror.infra import pristine, proc, registry_url, sandbox
from sdkmirror.infra.netlimits import NPM_READ_FLAGS, npm_reason
from sdkmirror.infra.toolchain import Toolchain, ToolchainError

ALLOWED = ("view", "publish")


def run(
    tc: Toolchain,
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    echo: bool = False,
    what: str | None = None,
) -> proc.Result:
    """`npm view ...` or `npm publish FILE ...` with the user's npm config and OIDC variables."""
    if not args or args[0] not in ALLOWED:
        raise ValueError(f"only npm {' and '.join(ALLOWED)} get registry credentials, not {args}")
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


def reading(registry: str) -> list[str]:
    return ["--registry", registry, "--prefer-online", *NPM_READ_FLAGS]


def integrity(
    tc: Toolchain, name: str, version: str, registry: str, *, env: Mapping[str, str] | None = None
) -> str | None:
    """`dist.integrity` of name@version on the registry, or None when it is not there."""
    res = run(
        tc,
        ["view", f"{name}@{version}", "dist.integrity", "--json", *reading(registry)],
        env=env,
        check=False,
    )
    text = res.stdout.strip()
    if res.returncode == 0:
        value = json.loads(text) if text else None
        return str(value) if isinstance(value, str) else None
    if "E404" in res.output:
        return None
    raise RemoteError(f"cannot read {name}@{version} from {registry}: {npm_reason(res.output)}")


def dist_tags(
    tc: Toolchain, name: str, registry: str, *, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The package's dist-tags on the registry (`{}` when the package is not there yet)."""
    res = run(
        tc,
        ["view", name, "dist-tags", "--json", *reading(registry)],
        env=env,
        check=False,
    )
    text = res.stdout.strip()
    if res.returncode == 0:
        tags = json.loads(text) if text else {}
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
    if "E404" in res.output:
        return {}
    raise RemoteError(
        f"cannot read the dist-tags of {name} from {registry}: {npm_reason(res.output)}"
    )


def default_registry(tc: Toolchain, env: Mapping[str, str] | None = None) -> str:
    """The registry the user's npm config names, else npm's own default (asked in the sandbox,
    so no host is written in this project)."""
    found = sandbox.npm_settings(os.environ if env is None else env).get("registry")
    if found is None:
        found = tc.run([tc.npm, "config", "get", "registry"], env=env).stdout.strip()
    return registry_url.parse(found, "the npm config's registry")
