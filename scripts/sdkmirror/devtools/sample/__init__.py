"""The embedded sample upstream: a small pnpm workspace with the real upstream's shape.

Every shape of the real SDK package appears: a private package published through
`publishConfig`, an `imports` map into `src/` (fallback array, later a plain string), a
private workspace package whose types are TypeScript source (un-annotated schema consts,
an enum, a class with private fields, overloads with a body, `export *` chains) and a vendor
types package the declarations import (types and a value),
one real runtime dependency (`smol-toml`, later through a pnpm `catalog:`), a bundle that
re-exports bundler helpers under one-letter names, and a declaration rollup whose class,
interfaces, overloads and type-only exports change between releases. No real bundler: the
in-repo `build.mjs` writes `dist/`, so a build takes a fraction of a second. Installing needs
the npm registry for `smol-toml` only. Variants break it the way each smoke failure category
looks in the wild.

One module per shape family: `releases` (names, pins, history), `bundler` (build.mjs),
`siblings`, `protocol` (the private package), `api` (the declaration rollup), `sdk` (its
runtime source), `workspace` (every file at a release), `history` (the git repository).
"""

from __future__ import annotations

from sdkmirror.devtools.sample.history import create_upstream
from sdkmirror.devtools.sample.protocol import protocol_files
from sdkmirror.devtools.sample.releases import (
    ADDITIVE,
    BREAKING,
    CLI_DIR,
    DEFAULT_RELEASES,
    ENGINES,
    IMPLEMENTERS,
    NODE_PIN,
    PNPM_PIN,
    PROTOCOL_NAME,
    SDK_DIR,
    SDK_NAME,
    TAG,
    TOML_INTEGRITY,
    TOML_NAME,
    TOML_RANGE,
    TOML_VERSION,
    UNREACHABLE_REGISTRY,
    VARIANTS,
    VENDOR_TYPES_NAME,
    Release,
    SampleUpstream,
)
from sdkmirror.devtools.sample.workspace import exports_of, tree, write_files, write_tree

__all__ = [
    "ADDITIVE",
    "BREAKING",
    "CLI_DIR",
    "DEFAULT_RELEASES",
    "ENGINES",
    "IMPLEMENTERS",
    "NODE_PIN",
    "PNPM_PIN",
    "PROTOCOL_NAME",
    "SDK_DIR",
    "SDK_NAME",
    "TAG",
    "TOML_INTEGRITY",
    "TOML_NAME",
    "TOML_RANGE",
    "TOML_VERSION",
    "UNREACHABLE_REGISTRY",
    "VARIANTS",
    "VENDOR_TYPES_NAME",
    "Release",
    "SampleUpstream",
    "create_upstream",
    "exports_of",
    "protocol_files",
    "tree",
    "write_files",
    "write_tree",
]
