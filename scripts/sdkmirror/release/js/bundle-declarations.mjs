// Bundles one declaration file with rollup-plugin-dts. argv: the job file (JSON).
// Prints what it did as JSON: the imports kept, the modules read, and `needs`, the workspace
// packages whose TypeScript source it reached and that must be compiled to declarations first
// (it never bundles source: only what the compiler emitted).
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";
import path from "node:path";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const need = createRequire(job.home + "/package.json");
const { rollup } = need("rollup");
const ts = need("typescript");
const plugin = need("rollup-plugin-dts");
const dts = plugin.dts ?? plugin.default;

const builtins = new Set(builtinModules);
const external = (id) =>
  id.startsWith("node:") ||
  builtins.has(id) ||
  job.external.some((dep) => id === dep || id.startsWith(dep + "/"));

const resolution = {
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  skipLibCheck: true,
};
const SOURCE = /\.(m|c)?tsx?$/;
const DECLARATION = /\.d(\.[\w-]+)?\.(m|c)?ts$/;
const isSource = (file) => SOURCE.test(file) && !DECLARATION.test(file);
const within = (file, dir) => file === dir || file.startsWith(dir + path.sep);
const real = (file) => {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
};

// TypeScript source a workspace package exports as its types becomes the declarations the
// compiler emitted for that file; source nobody compiled is reported, never bundled.
const needs = new Set();
const strays = new Set();
const compiled = {
  name: "sdkmirror-compiled-declarations",
  async resolveId(source, importer, options) {
    if (external(source)) return null;
    const found = await this.resolve(source, importer, { ...options, skipSelf: true });
    if (!found || found.external || !isSource(found.id)) return found;
    const file = real(found.id);
    const emitted = job.emitted.find((e) => within(file, e.package));
    if (emitted) {
      const rel = path.relative(job.root, file);
      const name = path.basename(rel).replace(SOURCE, (_, m) => `.d.${m ?? ""}ts`);
      return path.join(emitted.out, path.dirname(rel), name);
    }
    const owner = job.workspaces
      .filter((dir) => within(file, dir))
      .sort((a, b) => b.length - a.length)[0];
    (owner ? needs : strays).add(owner ?? file);
    return { id: file, external: true };
  },
};
// The rolled-up declarations import what the sibling packages they came from import; pnpm
// links a package only into its dependents' node_modules, so try from each workspace package.
const siblings = {
  name: "sdkmirror-workspace-packages",
  resolveId(source, importer) {
    if (!importer || source.startsWith(".") || path.isAbsolute(source) || external(source)) {
      return null;
    }
    for (const dir of job.workspaces) {
      const from = path.join(dir, "index.ts");
      const { resolvedModule } = ts.resolveModuleName(source, from, resolution, ts.sys);
      if (resolvedModule) return path.resolve(resolvedModule.resolvedFileName);
    }
    return null;
  },
};

async function main() {
  const warnings = [];
  const bundle = await rollup({
    input: job.input,
    external,
    onwarn: (w) => warnings.push(w.message),
    plugins: [
      compiled,
      // `exports` maps decide how workspace packages resolve, as for their own bundler.
      dts({ respectExternal: true, tsconfig: job.tsconfig, compilerOptions: resolution }),
      siblings, // only asked when the plugin could not resolve an import
    ],
  });
  if (needs.size || strays.size) {
    await bundle.close();
    return { needs: [...needs].sort(), strays: [...strays].sort() };
  }
  const { output } = await bundle.generate({ format: "es" });
  await bundle.close();
  const chunk = output.find((o) => o.type === "chunk" && o.isEntry);
  writeFileSync(job.output, chunk.code);
  return {
    needs: [],
    strays: [],
    imports: chunk.imports,
    unexpected: chunk.imports.filter((id) => !external(id)),
    modules: Object.keys(chunk.modules),
    warnings,
  };
}

try {
  process.stdout.write(JSON.stringify(await main()));
} catch (e) {
  process.stderr.write(`error: ${String(e?.message ?? e).split("\n")[0]}\n`);
  process.exit(1);
}
