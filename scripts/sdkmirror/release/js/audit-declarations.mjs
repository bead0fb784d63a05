// Audits published declaration files as a consumer receives them, and lists the exports of
// entry declaration files, in one process. argv: typescript dir, the job file (JSON: {files,
// allowed, names}). Prints JSON {problems, names}:
// - problems: code in an ambient context of `files` (an initializer or a body, which a
//   consumer's compiler rejects: TS1039, TS1254, TS1183) and imports of packages the consumer
//   does not get (neither a runtime dependency in `allowed` nor a builtin);
// - names: for each file of `names`, its exports read by the compiler ({values, types, found}),
//   a type-only export (`export type`, `import type` re-exported) among the types.
import { readFileSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";

const [tsDir, jobFile] = process.argv.slice(2);
const ts = createRequire(import.meta.url)(tsDir);
const job = JSON.parse(readFileSync(jobFile, "utf8"));
const allowed = new Set(job.allowed ?? []);
const builtins = new Set(builtinModules);

const packageOf = (spec) =>
  spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
const consumerGets = (spec) =>
  spec.startsWith(".") ||
  spec.startsWith("node:") ||
  builtins.has(spec) ||
  builtins.has(spec.split("/")[0]) ||
  allowed.has(packageOf(spec));

const problems = [];
for (const file of job.files ?? []) {
  const text = readFileSync(file, "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const report = (node, kind, detail) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
    const snippet = node.getText(source).split("\n")[0].slice(0, 120);
    problems.push({ file, line: line + 1, kind, detail, snippet });
  };
  const specifier = (node, spec) => {
    if (!consumerGets(spec)) report(node, "import", spec);
  };
  for (const ref of source.typeReferenceDirectives) {
    if (ref.fileName !== "node" && !allowed.has(ref.fileName)) {
      problems.push({ file, line: 1, kind: "import", detail: ref.fileName, snippet: "" });
    }
  }
  const visit = (node) => {
    if ((ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node)) && node.initializer) {
      report(node, "initializer", node.name.getText(source));
    } else if (ts.isParameter(node) && node.initializer) {
      report(node, "initializer", node.name.getText(source));
    } else if (
      (ts.isFunctionDeclaration(node) ||
        ts.isMethodDeclaration(node) ||
        ts.isConstructorDeclaration(node) ||
        ts.isGetAccessorDeclaration(node) ||
        ts.isSetAccessorDeclaration(node)) &&
      node.body
    ) {
      report(node, "body", node.name ? node.name.getText(source) : "constructor");
    } else if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      specifier(node, node.moduleSpecifier.text);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      specifier(node, node.argument.literal.text);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      specifier(node, node.moduleReference.expression.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
function exportNames(files) {
  if (!files.length) return {};
  const program = ts.createProgram(files, {
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    // Names need no DOM: the default library of a target would parse it for every call.
    lib: ["lib.es2023.d.ts"],
    types: [],
  });
  const checker = program.getTypeChecker();
  const typeOnly = (s) =>
    (s.declarations ?? []).some((d) => ts.isTypeOnlyImportOrExportDeclaration(d));
  const out = {};
  for (const file of files) {
    const source = program.getSourceFile(file);
    const module = source && checker.getSymbolAtLocation(source);
    const values = [];
    const types = [];
    for (const symbol of module ? checker.getExportsOfModule(module) : []) {
      if (symbol.name === "export=") continue;
      const target =
        symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      const isValue = (target.flags & ts.SymbolFlags.Value) !== 0 && !typeOnly(symbol);
      (isValue ? values : types).push(symbol.name);
    }
    out[file] = { values: values.sort(), types: types.sort(), found: Boolean(module) };
  }
  return out;
}

process.stdout.write(JSON.stringify({ problems, names: exportNames(job.names ?? []) }));
