"""The sample's names, pins and release history: what each release ships and what its
interface notes must report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TAG = "@moonshot-ai/kimi-code@{}"
SDK_NAME = "@moonshot-ai/kimi-code-sdk"
SDK_DIR = "packages/node-sdk"
CLI_DIR = "apps/kimi-cli"
PROTOCOL_NAME = "@moonshot-ai/protocol"
VENDOR_TYPES_NAME = "@sample-vendor/transport-types"
NODE_PIN = "24.15.0"
PNPM_PIN = "10.33.0"
ENGINES = ">=24.15.0"

# The one third-party runtime dependency, as the registry serves it (it has no dependencies).
TOML_NAME = "smol-toml"
TOML_VERSION = "1.4.2"
TOML_RANGE = "^1.4.2"
TOML_INTEGRITY = (
    "sha512-rInDH6lCNiEyn3+hH8KVGFdbjc099j47+OSgbMrfDYX1CmXLfdKd7qi6IfcWj2wFxvSVkuI46M+"
    "wPGYfEOEj6g=="
)

# A closed loopback port: connections are refused at once, nothing is ever reached.
UNREACHABLE_REGISTRY = "http://127.0.0.1:9/"

VARIANTS = (
    "unsupported-toolchain",
    "lockfile",
    "layout",
    "network",
    "upstream-build",
    "missing-artifact",
)

# Severities the interface notes give each change (see `Release.changes`).
ADDITIVE = "additive"
BREAKING = "breaking"
IMPLEMENTERS = "breaking for implementers"


@dataclass(frozen=True)
class Release:
    """One upstream release: the CLI tag's version, the SDK version it ships, and its shapes.

    `exports` are the value exports the SDK's source declares, in order; `api` selects the
    declaration rollup (one per SDK version); `changes` is what the interface notes must
    report against the previous release: (subject, change, severity).
    """

    cli: str
    sdk: str
    exports: tuple[str, ...]
    note: str
    api: int = 0
    imports_form: str = "array"  # "#/*" as a fallback array or, later, a plain string
    catalog: bool = False  # pnpm-workspace.yaml has a catalog; agent-core uses it
    sdk_catalog: bool = False  # the SDK's own runtime dependency is `catalog:` too
    changes: tuple[tuple[str, str, str], ...] = ()


_BASE_EXPORTS = ("VERSION", "KimiClient", "createClient", "legacyPrompt")

DEFAULT_RELEASES: tuple[Release, ...] = (
    Release("0.14.2", "0.9.3", _BASE_EXPORTS, "first SDK release"),
    Release("0.14.3", "0.9.3", _BASE_EXPORTS, "CLI-only changes; the SDK is unchanged"),
    Release(
        "0.17.0",
        "0.9.4",
        (*_BASE_EXPORTS, "isTurnEvent"),
        "additive: KimiClient.steer added, cancel gains an optional reason, createClient gains "
        "a URL overload, isTurnEvent and SteerOptions exported; text-only changes the compiler "
        "finds compatible: an internal alias renamed (TurnPayload_2 -> TurnPayload), the "
        "protocol's enum members reordered, `?: T | undefined` -> `?: T`; a pnpm catalog "
        "appears and the imports map becomes a string",
        api=1,
        imports_form="string",
        catalog=True,
        changes=(
            ("KimiClient.steer", "member added", ADDITIVE),
            ("KimiClient.cancel", "optional parameter added", ADDITIVE),
            ("createClient", "overload added", ADDITIVE),
            ("default", "overload added", ADDITIVE),  # the default export is createClient
            ("isTurnEvent", "export added", ADDITIVE),
            ("SteerOptions", "export added", ADDITIVE),
            ("ClientEvents.turn", "signature changed", ADDITIVE),  # the alias rename
            ("ClientOptions.baseUrl", "signature changed", ADDITIVE),  # `| undefined` dropped
        ),
    ),
    Release(
        "0.19.0",
        "0.10.0",
        ("VERSION", "KimiClient", "createClient", "isTurnEvent"),
        "breaking: legacyPrompt removed, KimiClient.resumeSession removed, approve gains a "
        "required reason, listModels returns a page, PromptInput narrowed, the model setter "
        "removed, timeoutMs turned from a writable field into a getter, ClientOptions gains a "
        "required workspace, ToolHandler (which users implement) a required describe(); the "
        "SDK's smol-toml comes from the catalog",
        api=2,
        imports_form="string",
        catalog=True,
        sdk_catalog=True,
        changes=(
            ("legacyPrompt", "export removed", BREAKING),
            ("KimiClient.resumeSession", "member removed", BREAKING),
            ("KimiClient.approve", "required parameter added", BREAKING),
            ("KimiClient.listModels", "signature changed", BREAKING),
            ("KimiClient.model", "no longer writable", BREAKING),  # the setter removed
            ("KimiClient.timeoutMs", "no longer writable", BREAKING),  # field -> getter
            ("PromptInput", "signature changed", BREAKING),
            ("ClientOptions.workspace", "member added", BREAKING),  # required, on an input
            ("ToolHandler.describe", "member added", BREAKING),  # users implement it
            # what createClient returns no longer fits code written for the old KimiClient
            ("createClient", "no longer usable as before", BREAKING),
            ("default", "no longer usable as before", BREAKING),
        ),
    ),
)


@dataclass(frozen=True)
class SampleUpstream:
    bare: Path
    head: str
    tags: dict[str, str] = field(default_factory=dict)  # tag name -> commit it peels to
    releases: tuple[Release, ...] = DEFAULT_RELEASES
    variant: str | None = None
    sdk_dir: str = SDK_DIR

    @property
    def url(self) -> str:
        return str(self.bare)

    def tag(self, cli_version: str) -> str:
        return TAG.format(cli_version)
