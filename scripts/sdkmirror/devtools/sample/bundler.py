"""The in-repo `build.mjs`: a bundler and a declaration rollup in miniature."""

from __future__ import annotations

# A bundler in miniature, with no dependency. Like tsdown: type-only imports and type blocks
# vanish (a type import must still resolve, as tsc would insist), workspace siblings are
# resolved through node_modules (so a build proves the install linked them) and inlined,
# runtime dependencies stay external imports, each local module becomes a chunk that imports
# the runtime helpers back from the entry, which re-exports them under one-letter names.
# Like api-extractor: the declaration rollup (`api/index.d.mts`) lands in dist/ once every
# package it imports types from resolves.
BUILD_MJS = r"""import {
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
