// Audits published declaration files as a consumer receives them. argv: typescript dir, the
// job file (JSON: {files, allowed}). Prints the problems as JSON: code in an ambient context
// (an initializer or a body, which a consumer's compiler rejects: TS1039, TS1254, TS1183) and
// imports of packages the consumer does not get (neither a runtime dependency nor a builtin).
import { readFileSync } from "node:fs";
import { builtinModules, createRequire } from "node:module";

const [tsDir, jobFile] = process.argv.slice(2);
const ts = createRequire(import.meta.url)(tsDir);
const job = JSON.parse(readFileSync(jobFile, "utf8"));
const allowed = new Set(job.allowed);
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
for (const file of job.files) {
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
process.stdout.write(JSON.stringify({ problems }));
