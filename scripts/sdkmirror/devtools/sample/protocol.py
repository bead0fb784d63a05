"""The private `@moonshot-ai/protocol` package, as rough as the real one."""

from __future__ import annotations

import json

from sdkmirror.devtools.sample.releases import PROTOCOL_NAME


def to_json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


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
        "package.json": to_json(
            {
                "name": PROTOCOL_NAME,
                "version": "0.4.0",
                "private": True,
                "type": "module",
                "exports": {".": {"types": "./src/index.ts", "default": "./src/runtime.js"}},
            }
        ),
        "tsconfig.json": to_json(_PROTOCOL_TSCONFIG),
        "src/index.ts": _PROTOCOL_INDEX,
        "src/display.ts": _protocol_display(api),
        "src/ids.ts": _PROTOCOL_IDS,
        "src/schema.ts": _PROTOCOL_SCHEMA,
        "src/store.ts": _PROTOCOL_STORE,
        "src/runtime.js": _PROTOCOL_RUNTIME,
    }
