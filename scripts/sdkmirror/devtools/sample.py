"""The embedded sample upstream: a small pnpm workspace with the real upstream's shape.

Every shape of the real SDK package appears: a private package published through
`publishConfig`, an `imports` map into `src/` (fallback array, later a plain string), a
types-only private workspace package and a vendor types package the declarations import,
one real runtime dependency (`smol-toml`, later through a pnpm `catalog:`), a bundle that
re-exports bundler helpers under one-letter names, and a declaration rollup whose class,
interfaces, overloads and type-only exports change between releases. No real bundler: the
in-repo `build.mjs` writes `dist/`, so a build takes a fraction of a second. Installing needs
the npm registry for `smol-toml` only. Variants break it the way each smoke failure category
looks in the wild.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sdkmirror.core.errors import UsageError
from sdkmirror.infra import gitio

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


# --- file contents ------------------------------------------------------------------------------

_MIT = """MIT License

Copyright (c) 2025 Moonshot AI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# A bundler in miniature, with no dependency. Like tsdown: type-only imports and type blocks
# vanish (a type import must still resolve, as tsc would insist), workspace siblings are
# resolved through node_modules (so a build proves the install linked them) and inlined,
# runtime dependencies stay external imports, each local module becomes a chunk that imports
# the runtime helpers back from the entry, which re-exports them under one-letter names.
# Like api-extractor: the declaration rollup (`api/index.d.mts`) lands in dist/ once every
# package it imports types from resolves.
_BUILD_MJS = r"""import {
  existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const withDts = !process.argv.includes("--no-dts");
const own = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const external = new Set(Object.keys(own.dependencies ?? {}));
const IMPORT = /^import \{([^}]*)\} from "([^"]+)";[ \t]*$/gm;
const TYPE_IMPORT = /^import type \{[^}]*\} from "([^"]+)";[ \t]*\n?/gm;
const TYPE_BLOCK = /^export type \w+ = \{[\s\S]*?^\};[ \t]*\n?/gm;
const EXPORT = /^export (?:async )?(function|const|class) (\w+)/gm;

// Rolldown's runtime helpers. The letters they are exported under follow the chunk graph, so
// they move between releases; here they rotate with the package version.
const HELPERS = {
  __commonJSMin: "(cb, mod) => () => (mod || cb((mod = { exports: {} }).exports, mod), " +
    "mod.exports)",
  __export: "(target, all) => Object.defineProperties(target, Object.fromEntries(\n" +
    "  Object.entries(all).map(([k, get]) => [k, { get, enumerable: true }])))",
  __reExport: "(target, mod) => Object.assign(target, mod)",
  __require: "(id) => {\n  throw new Error(`require(${JSON.stringify(id)}) is not available`);\n}",
  __toESM: "(mod) => (mod && mod.__esModule ? mod : { ...mod, default: mod })",
};
const LETTERS = ["a", "i", "n", "r", "t"];
const [major, minor, patch] = own.version.split(/[.+-]/).map(Number);
const shift = (major * 100 + minor * 10 + patch) % LETTERS.length;
const letter = Object.fromEntries(
  Object.keys(HELPERS).map((h, k) => [h, LETTERS[(k + shift) % LETTERS.length]]),
);

const fail = (file, src, index, code, message) => {
  const line = src.slice(0, index).split("\n").length;
  console.error(`${relative(root, file)}(${line},1): error ${code}: ${message}`);
  process.exit(2);
};
const names = (list) => list.split(",").map((s) => s.trim()).filter(Boolean);
const exportsOf = (src) => [...src.matchAll(EXPORT)].map((m) => m[2]);

function resolvePackage(name, fromDir, file, src, index) {
  try {
    return realpathSync(join(fromDir, "node_modules", name));
  } catch {
    const why = `Cannot find module '${name}' or its corresponding type declarations.`;
    return fail(file, src, index, "TS2307", why);
  }
}

const inlined = [];
const seen = new Set();

function sibling(name, fromDir, file, src, index, wanted) {
  const dir = resolvePackage(name, fromDir, file, src, index);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const target = typeof pkg.exports === "string" ? pkg.exports : pkg.exports["."];
  const entry = join(dir, typeof target === "string" ? target : target.default);
  const code = readFileSync(entry, "utf8");
  for (const w of wanted) {
    if (!exportsOf(code).includes(w)) {
      fail(file, src, index, "TS2305", `Module '"${name}"' has no exported member '${w}'.`);
    }
  }
  if (seen.has(name)) return;
  seen.add(name);
  const body = transform(code, entry, dir).replace(/^export /gm, "");
  inlined.push(`//#region ${name}@${pkg.version} (inlined)\n${body.trim()}\n//#endregion\n`);
}

function transform(src, file, dir) {
  for (const m of src.matchAll(TYPE_IMPORT)) resolvePackage(m[1], dir, file, src, m.index);
  let out = src.replace(TYPE_BLOCK, "").replace(TYPE_IMPORT, "");
  for (const m of [...src.matchAll(IMPORT)]) {
    const [line, list, spec] = m;
    if (spec.startsWith("./") || spec.startsWith("#/")) {
      const name = spec.slice(2);
      const chunk = `chunk-${name.replace(/\W/g, "-")}.mjs`;
      const local = spec.startsWith("#/")
        ? join(root, "src", `${name}.ts`)
        : join(dirname(file), `${name}.ts`);
      const code = transform(readFileSync(local, "utf8"), local, dir);
      const helper = `import { ${letter.__export} as __export } from "./index.mjs";\n`;
      writeFileSync(join(dist, chunk), `${helper}${code}`);
      out = out.replace(line, `import {${list}} from "./${chunk}";`);
    } else if (external.has(spec)) {
      resolvePackage(spec, dir, file, src, m.index);
    } else {
      sibling(spec, dir, file, src, m.index, names(list));
      out = out.replace(line, "");
    }
  }
  return out.replace(/^\n+/, "");
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
const entryFile = join(root, "src", "index.ts");
const main = transform(readFileSync(entryFile, "utf8"), entryFile, root);
const imports = main.match(/^import .*$/gm) ?? [];
const body = main.replace(/^import .*\n+/gm, "");
const helpers = Object.entries(HELPERS).map(([name, fn]) => `var ${name} = ${fn};`);
const helperExports = Object.keys(HELPERS).map((h) => `${h} as ${letter[h]}`);
writeFileSync(
  join(dist, "index.mjs"),
  [
    ...imports, "", "//#region rolldown:runtime", ...helpers, "//#endregion", "", ...inlined,
    body, `export { ${helperExports.join(", ")} };`, "",
  ].join("\n"),
);

if (withDts) {
  const rollupFile = join(root, "api", "index.d.mts");
  const rollup = readFileSync(rollupFile, "utf8");
  for (const m of rollup.matchAll(TYPE_IMPORT)) {
    resolvePackage(m[1], root, rollupFile, rollup, m.index);
  }
  writeFileSync(join(dist, "index.d.mts"), rollup);
}
const built = readdirSync(dist).sort().filter((f) => existsSync(join(dist, f)));
console.log(`built ${built.join(", ")} with ${inlined.length} inlined workspace packages`);
"""

_KAOS = """export function kaosPlatform() {
  return { os: "sample", shell: "sh" };
}
"""

_AGENT_CORE = """import { kaosPlatform } from "@moonshot-ai/kaos";

export function runTurn(session, text) {
  const platform = kaosPlatform();
  return { session: session.id, text, platform: platform.os };
}

export function newSession(model) {
  return { id: `session-${model}`, model };
}
"""

# A private workspace package shaped like the real `@moonshot-ai/protocol`: its `exports` give
# TypeScript *source* as the types, never declarations; its schemas are un-annotated consts
# whose types a generic helper infers (a zod in miniature), with a type alias inferred from
# them; an enum, a class with `#private` and `private` fields, an overloaded function with a
# body, an `export * from` chain and a default export re-exported under a name. Only the
# compiler's own declaration emit turns this into declarations a consumer can read.
_PROTOCOL_SCHEMA = """/** A schema toolkit in miniature: generic helpers, inferred types. */
export interface Schema<T> {
  readonly _output: T;
  parse(value: unknown): T;
}

export type Infer<S extends Schema<unknown>> = S["_output"];

export interface ObjectSchema<Shape extends Record<string, Schema<unknown>>>
  extends Schema<{ [K in keyof Shape]: Infer<Shape[K]> }> {
  readonly shape: Shape;
}

export interface UnionSchema<K extends string, Options extends readonly ObjectSchema<any>[]>
  extends Schema<Infer<Options[number]>> {
  readonly discriminator: K;
  readonly options: Options;
}

function make<T>(ok: (value: unknown) => boolean, what: string): Schema<T> {
  return {
    _output: undefined as unknown as T,
    parse(value: unknown): T {
      if (!ok(value)) throw new TypeError(`expected ${what}`);
      return value as T;
    },
  };
}

export function string(): Schema<string> {
  return make<string>((v) => typeof v === "string", "a string");
}

export function number(): Schema<number> {
  return make<number>((v) => typeof v === "number", "a number");
}

export function literal<const V extends string>(value: V): Schema<V> {
  return make<V>((v) => v === value, JSON.stringify(value));
}

export function object<const Shape extends Record<string, Schema<unknown>>>(
  shape: Shape,
): ObjectSchema<Shape> {
  const fits = (v: unknown) =>
    typeof v === "object" &&
    v !== null &&
    Object.entries(shape).every(([key, schema]) => {
      try {
        schema.parse((v as Record<string, unknown>)[key]);
        return true;
      } catch {
        return false;
      }
    });
  return { ...make<{ [K in keyof Shape]: Infer<Shape[K]> }>(fits, "an object"), shape };
}

export function discriminatedUnion<
  K extends string,
  const Options extends readonly ObjectSchema<any>[],
>(discriminator: K, options: Options): UnionSchema<K, Options> {
  const fits = (v: unknown) =>
    options.some((o) => {
      try {
        o.parse(v);
        return true;
      } catch {
        return false;
      }
    });
  const base = make<Infer<Options[number]>>(fits, `one of the ${discriminator} kinds`);
  return { ...base, discriminator, options };
}
"""

_PROTOCOL_IDS = """/** Wire types shared by the agent and its clients. */
export type SessionId = string & { readonly __brand: "SessionId" };

export interface ModelInfo {
  id: string;
  contextWindow: number;
}

export interface TurnEvent<T = unknown> {
  type: "text" | "tool" | "done";
  turn: number;
  payload: T;
}

export type ApprovalDecision = "approve" | "reject";

export interface ApprovalRequest {
  id: string;
  tool: string;
  arguments: Record<string, unknown>;
}

export type Paginated<T> = {
  items: T[];
  next?: string;
};

export function sessionId(value: string): SessionId;
export function sessionId(value: number, prefix?: string): SessionId;
export function sessionId(value: string | number, prefix = "session"): SessionId {
  return (typeof value === "number" ? `${prefix}-${value}` : value) as SessionId;
}
"""


def _protocol_display(api: int) -> str:
    # The enum's members are reordered at api 1: same names, same values, nothing breaks.
    members = ["Read", "Write", "Shell"] if api < 1 else ["Shell", "Read", "Write"]
    enum = "".join(f'  {m} = "{m.lower()}",\n' for m in members)
    return f"""import * as s from "./schema";

export const ToolInputDisplaySchema = s.discriminatedUnion("kind", [
  s.object({{ kind: s.literal("text"), text: s.string() }}),
  s.object({{ kind: s.literal("diff"), path: s.string(), added: s.number(), removed: s.number() }}),
]);

export type ToolInputDisplay = s.Infer<typeof ToolInputDisplaySchema>;

export enum ToolKind {{
{enum}}}

export * from "./ids";
"""


_PROTOCOL_STORE = """/** Keeps the last events of a session. */
export default class EventLog<T = unknown> {
  #events: T[] = [];
  private readonly limit: number;
  private dropped = 0;

  constructor(limit = 100) {
    this.limit = limit;
  }

  push(event: T): number {
    this.#events.push(event);
    if (this.#events.length > this.limit) {
      this.#events.shift();
      this.dropped += 1;
    }
    return this.#events.length;
  }

  get size(): number {
    return this.#events.length;
  }
}
"""

_PROTOCOL_INDEX = """export * from "./display";
export { default as EventLog } from "./store";
"""

# What the protocol's own bundler would give the SDK's runtime bundle (plain JavaScript).
_PROTOCOL_RUNTIME = """export const ToolInputDisplaySchema = {
  discriminator: "kind",
  parse(value) {
    if (typeof value !== "object" || value === null || !["text", "diff"].includes(value.kind)) {
      throw new TypeError("expected one of the kind kinds");
    }
    return value;
  },
};
"""

# The package's own compiler options (the declaration emit uses them): extensionless relative
# imports, as upstream's, need bundler resolution.
_PROTOCOL_TSCONFIG = {
    "compilerOptions": {
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
        "lib": ["es2022"],
        "strict": True,
        "skipLibCheck": False,
        "noEmit": True,
        "types": [],
    },
    "include": ["src/**/*.ts"],
}


def protocol_files(api: int) -> dict[str, str]:
    """The private protocol package at `api` (relative to its directory)."""
    return {
        "package.json": _json(
            {
                "name": PROTOCOL_NAME,
                "version": "0.4.0",
                "private": True,
                "type": "module",
                "exports": {".": {"types": "./src/index.ts", "default": "./src/runtime.js"}},
            }
        ),
        "tsconfig.json": _json(_PROTOCOL_TSCONFIG),
        "src/index.ts": _PROTOCOL_INDEX,
        "src/display.ts": _protocol_display(api),
        "src/ids.ts": _PROTOCOL_IDS,
        "src/schema.ts": _PROTOCOL_SCHEMA,
        "src/store.ts": _PROTOCOL_STORE,
        "src/runtime.js": _PROTOCOL_RUNTIME,
    }


# Stands in for the published type sources the real declarations import (undici, the MCP SDK):
# published, but not a runtime dependency of the SDK.
_VENDOR_TYPES = """export interface TransportOptions {
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface Transport {
  send(body: string, options?: TransportOptions): Promise<string>;
  close(): Promise<void>;
}
"""


def _client_methods(api: int) -> dict[str, str]:
    """KimiClient's methods as declared at `api`: name -> declaration (multi-line for some)."""
    methods = {
        "connect": "connect(): Promise<void>;",
        "close": "close(): Promise<void>;",
        "newSession": "newSession(model?: string): Promise<SessionId>;",
        "resumeSession": "resumeSession(id: SessionId): Promise<SessionId>;",
        "listSessions": "listSessions(cursor?: string): Promise<Paginated<SessionId>>;",
        "listModels": "listModels(): Promise<ModelInfo[]>;",
        "prompt": "prompt(session: SessionId, input: PromptInput): AsyncIterable<TurnEvent>;",
        "steer": (
            "steer(session: SessionId, instruction: string, options?: SteerOptions): Promise<void>;"
        ),
        "cancel": "cancel(session: SessionId): Promise<void>;",
        "approve": "approve(request: ApprovalRequest, decision: ApprovalDecision): Promise<void>;",
        "registerTool": "registerTool(handler: ToolHandler): () => void;",
        "on": (
            "on<E extends keyof ClientEvents>(\n"
            "    event: E,\n"
            "    listener: (payload: ClientEvents[E]) => void,\n"
            "): () => void;"
        ),
        "request": (
            "request<TResult, TParams extends Record<string, unknown> = "
            "Record<string, unknown>>(\n"
            "    method: string,\n"
            "    params?: TParams,\n"
            "): Promise<TResult>;"
        ),
        "loadConfig": "loadConfig(text: string): TomlTable;",
    }
    if api < 1:
        del methods["steer"]
    else:
        methods["cancel"] = "cancel(session: SessionId, reason?: string): Promise<void>;"
    if api >= 2:
        del methods["resumeSession"]
        methods["listModels"] = "listModels(): Promise<Paginated<ModelInfo>>;"
        methods["approve"] = (
            "approve(\n"
            "    request: ApprovalRequest,\n"
            "    decision: ApprovalDecision,\n"
            "    reason: string,\n"
            "): Promise<void>;"
        )
    return methods


def _declarations(api: int) -> str:
    """The SDK's declaration rollup at `api`, as api-extractor would write it."""
    methods = "\n".join(
        "    " + decl.replace("\n", "\n    ") for decl in _client_methods(api).values()
    )
    prompt_input = (
        "string | {\n    text: string;\n    attachments?: string[];\n}"
        if api < 2
        else "{\n    text: string;\n    attachments?: string[];\n}"
    )
    # api 1, additive only: `?: T | undefined` becomes `?: T`, an internal alias loses its `_2`.
    # api 2, breaking: a new required method on an interface users implement, a new required
    # property on an input type, a setter removed, a writable field turned into a getter.
    description = "    describe(): string;\n" if api >= 2 else ""
    base_url = "string | undefined" if api < 1 else "string"
    workspace = "    workspace: string;\n" if api >= 2 else ""
    payload = "TurnPayload_2" if api < 1 else "TurnPayload"
    accessors = (
        "    get model(): string;\n    set model(value: string);\n    timeoutMs: number;\n"
        if api < 2
        else "    get model(): string;\n    get timeoutMs(): number;\n"
    )
    steer_options = (
        "/** How a steering instruction joins the running turn. */\n"
        "export interface SteerOptions {\n"
        '    priority?: "now" | "next-turn";\n'
        "}\n\n"
        if api >= 1
        else ""
    )
    url_overload = (
        "export declare function createClient(url: string, options?: TransportOptions): "
        "KimiClient;\n"
        if api >= 1
        else ""
    )
    legacy = (
        "/** @deprecated Use {@link KimiClient.prompt}. */\n"
        "export declare function legacyPrompt(client: KimiClient, text: string): "
        "Promise<string>;\n\n"
        if api < 2
        else ""
    )
    is_turn_event = (
        "export declare function isTurnEvent<T = unknown>(value: unknown): "
        "value is TurnEvent<T>;\n\n"
        if api >= 1
        else ""
    )
    return f"""import type {{ SessionId }} from "{PROTOCOL_NAME}";
import type {{ ModelInfo, Paginated }} from "{PROTOCOL_NAME}";
import type {{ ApprovalDecision, ApprovalRequest, TurnEvent }} from "{PROTOCOL_NAME}";
import type {{ EventLog, ToolInputDisplay, ToolKind, sessionId }} from "{PROTOCOL_NAME}";
import {{ ToolInputDisplaySchema }} from "{PROTOCOL_NAME}";
import type {{ Transport, TransportOptions }} from "{VENDOR_TYPES_NAME}";
import type {{ TomlTable }} from "{TOML_NAME}";

/** How the client reaches the service. */
export interface ClientOptions {{
    model?: string;
    baseUrl?: {base_url};
    transport?: Transport;
{workspace}}}

/** A tool the agent may call; the embedder implements it. */
export interface ToolHandler {{
    name: string;
    kind?: ToolKind;
{description}    run(input: unknown): Promise<unknown>;
}}

{steer_options}export type PromptInput = {prompt_input};

type {payload} = Record<string, unknown>;

export interface ClientEvents {{
    turn: TurnEvent<{payload}>;
    approval: ApprovalRequest;
    closed: {{
        code: number;
    }};
}}

type StreamMode = "text" | "events";

interface RetryPolicy {{
    attempts: number;
    backoffMs?: number;
}}

/** A connection to Kimi Code; one per process is enough. */
export declare class KimiClient {{
    readonly options: ClientOptions;
    readonly log: EventLog<TurnEvent>;
    readonly makeSessionId: typeof sessionId;
    constructor(options?: ClientOptions);
{accessors}    display(input: ToolInputDisplay): string;
{methods}
}}

export declare function createClient(options?: ClientOptions): KimiClient;
export declare function createClient(transport: Transport, options?: ClientOptions): KimiClient;
{url_overload}
{legacy}{is_turn_event}export declare const VERSION: string;

declare function parseConfig(text: string): TomlTable;

export {{ parseConfig as readConfig, ToolInputDisplaySchema }};
export type {{ RetryPolicy, StreamMode, ToolInputDisplay }};
export default createClient;
"""


def _sdk_index(release: Release, *, broken_import: bool = False) -> str:
    """The SDK's runtime source at `release`: plain JavaScript the mini bundler understands."""
    core = ["newSession", "runTurn"] + (["runTurnWithTools"] if broken_import else [])
    generic = [m for m in _client_methods(release.api) if m != "loadConfig"]
    methods = "".join(
        f"\n  {name}(...args) {{\n"
        f"    return Promise.resolve(runTurn(this.session, `{name}:${{args.length}}`));\n"
        "  }\n"
        for name in generic
    )
    parts = [
        f'import {{ {", ".join(core)} }} from "@moonshot-ai/agent-core";\n',
        f'import {{ parse }} from "{TOML_NAME}";\n',
        f'import {{ ToolInputDisplaySchema }} from "{PROTOCOL_NAME}";\n',
        f'import type {{ SessionId, TurnEvent }} from "{PROTOCOL_NAME}";\n',
        f'import type {{ Transport }} from "{VENDOR_TYPES_NAME}";\n',
        'import { SDK_VERSION } from "#/meta";\n',
        "\n",
        "export type ClientOptions = {\n  model?: string;\n  baseUrl?: string;\n};\n",
        "\nexport const VERSION = SDK_VERSION;\n",
        "\nexport class KimiClient {\n"
        "  constructor(options) {\n"
        '    this.options = { model: "kimi-latest", ...options };\n'
        "    this.session = newSession(this.options.model);\n"
        "  }\n\n"
        "  get model() {\n    return this.options.model;\n  }\n\n"
        "  loadConfig(text) {\n    return parse(text);\n  }\n" + methods + "}\n",
        "\nexport function createClient(target, options) {\n"
        '  const opts = typeof target === "object" && target && !("send" in target) ? target '
        ": options;\n"
        "  return new KimiClient(opts);\n}\n",
    ]
    if "legacyPrompt" in release.exports:
        parts.append(
            "\nexport function legacyPrompt(client, text) {\n"
            "  return Promise.resolve(runTurn(client.session, text).text);\n}\n"
        )
    if "isTurnEvent" in release.exports:
        parts.append(
            "\nexport function isTurnEvent(value) {\n"
            '  return typeof value === "object" && value !== null && "type" in value;\n}\n'
        )
    parts.append(
        "\nfunction parseConfig(text) {\n  return parse(text);\n}\n"
        "\nexport { parseConfig as readConfig, ToolInputDisplaySchema };\n"
        "export default createClient;\n"
    )
    return "".join(parts)


def _json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


def _workspace_yaml(release: Release) -> str:
    text = "packages:\n  - packages/*\n  - apps/*\n"
    if release.catalog:
        text += f"\ncatalog:\n  {TOML_NAME}: {TOML_VERSION}\n"
    return text


def _lockfile(release: Release, sdk_dir: str, *, network: bool) -> str:
    """The pnpm lockfile pnpm itself would write for this workspace (format 9.0)."""
    sdk_up = "/".join([".."] * len(Path(sdk_dir).parts))
    toml_spec = "'catalog:'" if release.sdk_catalog else TOML_RANGE

    def dep(name: str, specifier: str, version: str) -> list[str]:
        key = f"'{name}'" if name.startswith("@") else name
        return [f"      {key}:", f"        specifier: {specifier}", f"        version: {version}"]

    def link(name: str, path: str) -> list[str]:
        return dep(name, "workspace:^", f"link:{path}")

    agent_core = ["    dependencies:", *link("@moonshot-ai/kaos", "../kaos")]
    if release.catalog:
        agent_core += dep(TOML_NAME, "'catalog:'", TOML_VERSION)
    sdk = ["    dependencies:"]
    if network:
        sdk += dep("@sample-upstream/telemetry", "1.0.0", "1.0.0")
    sdk += dep(TOML_NAME, toml_spec, TOML_VERSION)
    sdk += ["    devDependencies:"]
    for name, path in (
        ("@moonshot-ai/agent-core", "packages/agent-core"),
        ("@moonshot-ai/kaos", "packages/kaos"),
        (PROTOCOL_NAME, "packages/protocol"),
        (VENDOR_TYPES_NAME, "packages/transport-types"),
    ):
        sdk += link(name, f"{sdk_up}/{path}")
    importers: dict[str, list[str]] = {
        ".": [],
        CLI_DIR: [],
        "packages/agent-core": agent_core,
        "packages/kaos": [],
        "packages/protocol": [],
        "packages/transport-types": [],
        sdk_dir: sdk,
    }
    lines = [
        "lockfileVersion: '9.0'",
        "",
        "settings:",
        "  autoInstallPeers: true",
        "  excludeLinksFromLockfile: false",
        "",
    ]
    if release.catalog:
        lines += [
            "catalogs:",
            "  default:",
            f"    {TOML_NAME}:",
            f"      specifier: {TOML_VERSION}",
            f"      version: {TOML_VERSION}",
            "",
        ]
    lines += ["importers:", ""]
    for path in sorted(importers):
        body = importers[path]
        lines += [f"  {path}:{'' if body else ' {}'}", *body, ""]
    packages = [
        f"  {TOML_NAME}@{TOML_VERSION}:",
        f"    resolution: {{integrity: {TOML_INTEGRITY}}}",
        "    engines: {node: '>= 18'}",
    ]
    snapshots = [f"  {TOML_NAME}@{TOML_VERSION}: {{}}"]
    if network:
        integrity = "sha512-" + "A" * 86 + "=="
        packages = [
            "  '@sample-upstream/telemetry@1.0.0':",
            f"    resolution: {{integrity: {integrity}}}",
            "",
            *packages,
        ]
        snapshots = ["  '@sample-upstream/telemetry@1.0.0': {}", "", *snapshots]
    lines += ["packages:", "", *packages, "", "snapshots:", "", *snapshots]
    return "\n".join(lines) + "\n"


def tree(release: Release, variant: str | None = None) -> dict[str, str]:
    """Every file of the sample workspace at `release`, as relative path -> text."""
    if variant is not None and variant not in VARIANTS:
        raise UsageError(f"unknown sample variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    sdk_dir = "packages/sdk" if variant == "layout" else SDK_DIR
    sdk_name = "@moonshot-ai/kimi-sdk" if variant == "layout" else SDK_NAME
    network = variant == "network"

    npmrc = "engine-strict=true\nauto-install-peers=true\nstrict-peer-dependencies=false\n"
    if network:
        npmrc += f"registry={UNREACHABLE_REGISTRY}\nfetch-retries=0\nfetch-timeout=3000\n"

    sdk_dev = {
        "@moonshot-ai/agent-core": "workspace:^",
        "@moonshot-ai/kaos": "workspace:^",
        PROTOCOL_NAME: "workspace:^",
        VENDOR_TYPES_NAME: "workspace:^",
    }
    if variant == "lockfile":  # a specifier changed in package.json, not in the lockfile
        sdk_dev["@moonshot-ai/kaos"] = "workspace:*"
    sdk_deps = {TOML_NAME: "catalog:" if release.sdk_catalog else TOML_RANGE}
    if network:
        sdk_deps = {"@sample-upstream/telemetry": "1.0.0", **sdk_deps}
    imports: str | list[str] = (
        ["./src/*.ts", "./src/*/index.ts"] if release.imports_form == "array" else "./src/*.ts"
    )
    sdk_pkg: dict[str, object] = {
        "name": sdk_name,
        "version": release.sdk,
        "description": "Node SDK for Kimi Code",
        "license": "MIT",
        "private": True,
        "type": "module",
        "imports": {"#/*": imports},
        "exports": {".": "./src/index.ts"},
        "files": ["dist", "README.md"],
        "scripts": {
            "build": "node build.mjs --no-dts"
            if variant == "missing-artifact"
            else "node build.mjs"
        },
        "dependencies": sdk_deps,
        "devDependencies": sdk_dev,
        "publishConfig": {
            "exports": {
                ".": {
                    "types": "./dist/index.d.mts",
                    "import": "./dist/index.mjs",
                    "default": "./dist/index.mjs",
                }
            },
            "provenance": True,
        },
    }

    root_pkg = {
        "name": "kimi-code-monorepo",
        "private": True,
        "packageManager": f"pnpm@{PNPM_PIN}",
        "engines": {"node": ">=99" if variant == "unsupported-toolchain" else ENGINES},
        "scripts": {"prepare": "node -e \"console.log('git hooks: nothing to install')\""},
    }

    def pkg(name: str, version: str, entry: str = "./src/index.js", **extra: object) -> str:
        return _json(
            {
                "name": name,
                "version": version,
                "private": True,
                "type": "module",
                "exports": {".": entry},
                **extra,
            }
        )

    agent_deps = {"@moonshot-ai/kaos": "workspace:^"}
    if release.catalog:
        agent_deps[TOML_NAME] = "catalog:"
    files = {
        "package.json": _json(root_pkg),
        ".npmrc": npmrc,
        ".nvmrc": NODE_PIN + "\n",
        "LICENSE": _MIT,
        "README.md": "# Kimi Code (sample upstream)\n\nShaped like the real workspace.\n",
        "pnpm-workspace.yaml": _workspace_yaml(release),
        "pnpm-lock.yaml": _lockfile(release, sdk_dir, network=network),
        f"{CLI_DIR}/package.json": _json(
            {
                "name": "@moonshot-ai/kimi-code",
                "version": release.cli,
                "private": True,
                "bin": {"kimi": "./src/cli.js"},
            }
        ),
        f"{CLI_DIR}/src/cli.js": f'console.log("kimi {release.cli}: {release.note}");\n',
        "packages/kaos/package.json": pkg("@moonshot-ai/kaos", "0.3.0"),
        "packages/kaos/src/index.js": _KAOS,
        "packages/agent-core/package.json": pkg(
            "@moonshot-ai/agent-core", "0.5.0", dependencies=agent_deps
        ),
        "packages/agent-core/src/index.js": _AGENT_CORE,
        **{f"packages/protocol/{k}": v for k, v in protocol_files(release.api).items()},
        "packages/transport-types/package.json": _json(
            {
                "name": VENDOR_TYPES_NAME,
                "version": "1.2.0",
                "description": "Transport interfaces (types only)",
                "license": "MIT",
                "type": "module",
                "types": "./index.d.ts",
                "exports": {".": {"types": "./index.d.ts"}},
                "files": ["index.d.ts"],
            }
        ),
        "packages/transport-types/index.d.ts": _VENDOR_TYPES,
        f"{sdk_dir}/package.json": _json(sdk_pkg),
        f"{sdk_dir}/README.md": f"# {SDK_NAME}\n\nThe Kimi Code Node SDK, version {release.sdk}.\n",
        f"{sdk_dir}/build.mjs": _BUILD_MJS,
        f"{sdk_dir}/api/index.d.mts": _declarations(release.api),
        f"{sdk_dir}/src/index.ts": _sdk_index(release, broken_import=variant == "upstream-build"),
        f"{sdk_dir}/src/meta.ts": f'export const SDK_VERSION = "{release.sdk}";\n',
    }
    return files


def write_tree(dest: Path, release: Release | None = None, variant: str | None = None) -> Path:
    """Write the workspace at `release` (default: the newest) into `dest`, no git involved."""
    write_files(dest, tree(release or DEFAULT_RELEASES[-1], variant))
    return dest


# --- history ------------------------------------------------------------------------------------

# Fixed identity and dates: the same sample has the same commit and tag ids on every machine.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Sample Upstream",
    "GIT_AUTHOR_EMAIL": "sample-upstream@example.invalid",
    "GIT_COMMITTER_NAME": "Sample Upstream",
    "GIT_COMMITTER_EMAIL": "sample-upstream@example.invalid",
}
_EPOCH = 1_760_000_000


def _git(work: Path, *args: str, when: int) -> str:
    stamp = f"@{when} +0000"
    dated = {**_IDENTITY, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return gitio.run(*args, cwd=work, env_extra=dated).strip()


def create_upstream(
    dest_bare: Path,
    *,
    variant: str | None = None,
    releases: Sequence[Release] = DEFAULT_RELEASES,
    unreleased_commit: bool = True,
) -> SampleUpstream:
    """Create a bare repository at `dest_bare` holding the sample's history and release tags.

    Each release is a commit plus an annotated tag `@moonshot-ai/kimi-code@X.Y.Z`; `main` ends
    one unreleased commit past the last release. A `variant` adds a final commit on `main`
    that breaks the build in that category's way; the release tags stay good.
    """
    if not releases:
        raise UsageError("the sample upstream needs at least one release")
    if variant is not None and variant not in VARIANTS:
        raise UsageError(f"unknown sample variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if dest_bare.exists() and any(dest_bare.iterdir()):
        raise UsageError(f"{dest_bare} already exists and is not empty; choose a new path")
    dest_bare.parent.mkdir(parents=True, exist_ok=True)
    gitio.run("init", "-q", "--bare", "-b", "main", dest_bare)

    tags: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sample-upstream-") as tmp:
        work = Path(tmp) / "work"
        gitio.run("init", "-q", "-b", "main", work)
        when = _EPOCH

        def commit(files: dict[str, str], message: str) -> str:
            nonlocal when
            when += 3600
            for old in [p for p in work.iterdir() if p.name != ".git"]:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            write_files(work, files)
            _git(work, "add", "-A", when=when)
            _git(work, "commit", "-q", "--allow-empty", "-m", message, when=when)
            return _git(work, "rev-parse", "HEAD", when=when)

        for rel in releases:
            sha = commit(
                tree(rel), f"release: kimi-code {rel.cli} (node-sdk {rel.sdk}): {rel.note}"
            )
            name = TAG.format(rel.cli)
            _git(work, "tag", "-a", "-m", f"Release {rel.cli}", "--", name, sha, when=when)
            tags[name] = sha
        last = releases[-1]
        files = tree(last)
        if unreleased_commit:
            files["README.md"] += "\nUnreleased: work in progress on main.\n"
            commit(files, "docs: note unreleased work")
        if variant:
            broken = tree(last, variant)
            broken["README.md"] = files["README.md"]
            commit(broken, f"sample: break the build ({variant})")
        head = _git(work, "rev-parse", "HEAD", when=when)
        _git(
            work,
            "push",
            "-q",
            str(dest_bare),
            "refs/heads/main:refs/heads/main",
            "refs/tags/*:refs/tags/*",
            when=when,
        )
    return SampleUpstream(
        bare=dest_bare,
        head=head,
        tags=tags,
        releases=tuple(releases),
        variant=variant,
        sdk_dir="packages/sdk" if variant == "layout" else SDK_DIR,
    )


def write_files(dest: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def exports_of(index_source: str) -> list[str]:
    """The value exports of an SDK source or built module, in order (for tests and notes)."""
    return re.findall(
        r"^export (?:declare )?(?:async )?(?:function|const|class) (\w+)", index_source, re.M
    )
