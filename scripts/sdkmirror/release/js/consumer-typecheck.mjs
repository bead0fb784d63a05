// The strict consumer's compilations, every resolution in one process. argv: typescript dir,
// the job file (JSON: {configs: {resolution: tsconfig path}, pinned: [dirs]}). Prints JSON:
// {resolution: {output, errors}}, `output` formatted as `tsc --pretty false` prints it.
//
// It reports what `tsc -p CONFIG` reports, with one saving: the files under `pinned` (the
// pinned TypeScript's libraries and `@types/node`) are not checked again when nothing else in
// the program can change what they mean: no script file, no `declare global`, no module
// augmentation, no `export as namespace`, no triple-slash directive but `types="node"`. Their
// diagnostics are then those of the pinned pair alone. When anything can, every file is
// checked, as tsc does.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [tsDir, jobFile] = process.argv.slice(2);
const ts = createRequire(import.meta.url)(tsDir);
const job = JSON.parse(readFileSync(jobFile, "utf8"));
const pinned = job.pinned.map((d) => path.resolve(d) + path.sep);
const isPinned = (file) => pinned.some((d) => path.resolve(file).startsWith(d));

const formatHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => process.cwd(),
  getNewLine: () => "\n",
};

// How a file the consumer installed can change what the pinned files mean, or null.
function globalEffect(sf) {
  if (!ts.isExternalModule(sf)) return "a script file (its declarations are global)";
  if (sf.libReferenceDirectives.length) return "a `/// <reference lib>` directive";
  if (sf.referencedFiles.length) return "a `/// <reference path>` directive";
  if (sf.typeReferenceDirectives.some((r) => r.fileName !== "node")) {
    return "a `/// <reference types>` directive";
  }
  if (sf.moduleAugmentations?.length) return "a module augmentation or `declare global`";
  for (const st of sf.statements) {
    if (ts.isNamespaceExportDeclaration(st)) return "`export as namespace`";
    if (ts.isModuleDeclaration(st) && (ts.isStringLiteral(st.name) || st.name.text === "global")) {
      return "a `declare module` or `declare global` block";
    }
  }
  return null;
}

function compile(configPath) {
  const diagnostics = [];
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => diagnostics.push(d),
  });
  if (!parsed) return diagnostics;
  diagnostics.push(...parsed.errors);
  const program = ts.createProgram({
    rootNames: parsed.fileNames,
    options: parsed.options,
    configFileParsingDiagnostics: parsed.errors,
  });
  const files = program.getSourceFiles();
  const full = files.some((sf) => !isPinned(sf.fileName) && globalEffect(sf));
  const checked = files.filter((sf) => full || !isPinned(sf.fileName));
  diagnostics.push(...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics());
  for (const sf of files) diagnostics.push(...program.getSyntacticDiagnostics(sf));
  for (const sf of checked) diagnostics.push(...program.getSemanticDiagnostics(sf));
  return diagnostics;
}

const out = {};
for (const [resolution, configPath] of Object.entries(job.configs)) {
  const errors = ts.sortAndDeduplicateDiagnostics(
    compile(configPath).filter((d) => d.category === ts.DiagnosticCategory.Error),
  );
  out[resolution] = { output: ts.formatDiagnostics(errors, formatHost), errors: errors.length };
}
process.stdout.write(JSON.stringify(out));
