"""`invoke publish.check`: install a published version from the registry into an empty consumer
(sandboxed, `--ignore-scripts`), import it, and compare the registry's integrity with the one
the build's manifest fixed. Holds no credential beyond a registry read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdkmirror.core import versions
from sdkmirror.core.errors import UsageError, VerificationFailed
from sdkmirror.infra import console, npm_registry, registry_url
from sdkmirror.infra.toolchain import Toolchain
from sdkmirror.release.publish.build import consumer_import
from sdkmirror.release.publish.manifest import Manifest


@dataclass(frozen=True)
class CheckResult:
    npm_name: str
    npm_version: str
    integrity: str
    exports: list[str]


def scope_route(name: str, registry: str) -> list[str]:
    """npm flags that fetch only this package's scope from `registry` (its dependencies come
    from the registry the user's npm config names)."""
    if name.startswith("@"):
        return [f"--{name.split('/')[0]}:registry={registry}"]
    return ["--registry", registry]


def check(
    tc: Toolchain,
    version: str,
    *,
    npm_name: str,
    registry: str,
    workdir: Path,
    manifest: Manifest | None = None,
) -> CheckResult:
    problem = versions.npm_version_problem(version, "--version")
    if problem:
        raise UsageError(problem)
    registry = registry_url.parse(registry)
    if manifest is not None and (manifest.npm_name, manifest.npm_version) != (npm_name, version):
        raise UsageError(
            f"the manifest is for {manifest.npm_name}@{manifest.npm_version}, not "
            f"{npm_name}@{version}; pass the manifest of that build"
        )
    remote = npm_registry.integrity(npm_name, version, registry)
    if remote is None:
        raise VerificationFailed(f"{npm_name}@{version} is not on {registry}; upload it first")
    if manifest is not None and remote != manifest.integrity:
        raise VerificationFailed(
            f"{registry} serves {npm_name}@{version} with {remote[:24]}..., not the built "
            f"{manifest.integrity[:24]}...; the registry holds other bytes than the build made"
        )
    with console.step(f"installing {npm_name}@{version} from the registry and importing it"):
        exports = consumer_import(
            tc,
            workdir / "consumer-registry",
            npm_name,
            [*scope_route(npm_name, registry), f"{npm_name}@{version}"],
        )
    console.result(f"{npm_name}@{version}: {remote[:32]}..., exports {', '.join(exports)}")
    return CheckResult(npm_name, version, remote, exports)
