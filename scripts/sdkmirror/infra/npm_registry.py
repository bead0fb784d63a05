"""The only npm calls that carry the publisher's registry credentials: `npm view` and
`npm publish FILE`. They run our pinned npm with `sandbox.registry_environment`; no upstream
code, no install and no script ever runs with that environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from sdkmirror.core.errors import RemoteError
from sdkmirror.infra import proc, registry_url, sandbox
from sdkmirror.infra.netlimits import NPM_READ_FLAGS, npm_reason
from sdkmirror.infra.toolchain import Toolchain

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
    full = sandbox.registry_environment(os.environ if env is None else env, bin_dirs=[tc.bin_dir])
    return proc.run([tc.npm, *args], env=full, check=check, echo=echo, what=what)


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
