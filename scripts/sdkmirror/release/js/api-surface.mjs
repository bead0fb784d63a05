// The public surface of one declaration file, read with the TypeScript compiler API.
//
// Usage: node api-surface.mjs TYPESCRIPT_JS DECLARATION_FILE
// Prints JSON: every name the file exports (through `export *`, `export { a as b }`,
// `export type { ... }` and `export default`), its kind, its signatures (overloads, parameters
// with optional/rest flags, return type) and, for classes and interfaces, their members.
// The compiler reads only files inside the declaration file's own directory and follows no
// link: imports of other packages stay unresolved, their names are kept as written.
import { lstatSync } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

const [tsPath, file] = process.argv.slice(2);
const ts = (await import(pathToFileURL(tsPath).href)).default;
const entry = resolve(file);
const root = dirname(entry);

// Inside the declarations' directory and reached without any link.
function inside(path) {
  const abs = resolve(path);
  if (abs !== root && !abs.startsWith(root + sep)) return false;
  try {
    let p = abs;
    while (p !== root) {
      if (lstatSync(p).isSymbolicLink()) return false;
      p = dirname(p);
    }
    return true;
  } catch {
    return false;
  }
}

const options = {
  noLib: true,
  noEmit: true,
  types: [],
  skipLibCheck: true,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  target: ts.ScriptTarget.ES2022,
};
const host = ts.createCompilerHost(options, true);
const { readFile, getSourceFile } = host;
host.fileExists = (p) => inside(p) && ts.sys.fileExists(p);
host.directoryExists = (p) => inside(p) && ts.sys.directoryExists(p);
host.readFile = (p) => (inside(p) ? readFile.call(host, p) : undefined);
host.getSourceFile = (p, ...rest) => (inside(p) ? getSourceFile.call(host, p, ...rest) : undefined);
host.realpath = (p) => p;
host.getDirectories = () => [];

const program = ts.createProgram({ rootNames: [entry], options, host });
const checker = program.getTypeChecker();
const source = program.getSourceFile(entry);
if (!source) {
  console.error(`cannot read ${file}`);
  process.exit(2);
}
const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });
const MODIFIERS = /^(?:export |declare |default )+/;

// One line per declaration, whatever its layout: whitespace collapsed, no trailing commas.
function norm(text) {
  return text
    .replace(/\s+/g, " ")
    .replace(/([([<{]) /g, "$1")
    .replace(/,? ([)\]>}])/g, "$1")
    .replace(/ ;/g, ";")
    .trim();
}
function print(node) {
  if (!node) return "";
  return norm(printer.printNode(ts.EmitHint.Unspecified, node, node.getSourceFile?.() ?? source));
}
function text(node) {
  return print(node).replace(MODIFIERS, "").replace(/;$/, "");
}

function params(node) {
  return node.parameters.map((p) => ({
    name: p.name.getText(),
    type: print(p.type),
    optional: Boolean(p.questionToken || p.initializer || p.dotDotDotToken),
    rest: Boolean(p.dotDotDotToken),
  }));
}
function signature(node) {
  const sig = { text: text(node) };
  if (node.parameters) {
    sig.params = params(node);
    sig.returns = print(node.type);
    sig.type_params = (node.typeParameters ?? []).map((t) => print(t)).join(", ");
  }
  return sig;
}

const MEMBER_KINDS = {
  [ts.SyntaxKind.MethodDeclaration]: "method",
  [ts.SyntaxKind.MethodSignature]: "method",
  [ts.SyntaxKind.PropertyDeclaration]: "property",
  [ts.SyntaxKind.PropertySignature]: "property",
  [ts.SyntaxKind.Constructor]: "constructor",
  [ts.SyntaxKind.ConstructSignature]: "constructor",
  [ts.SyntaxKind.GetAccessor]: "accessor",
  [ts.SyntaxKind.SetAccessor]: "accessor",
  [ts.SyntaxKind.IndexSignature]: "index",
  [ts.SyntaxKind.CallSignature]: "call",
};
function memberName(m) {
  if (ts.isConstructorDeclaration(m) || ts.isConstructSignatureDeclaration(m)) return "constructor";
  if (ts.isIndexSignatureDeclaration(m)) return `[${print(m.parameters[0]?.type)}]`;
  if (ts.isCallSignatureDeclaration(m)) return "()";
  const name = m.name ? m.name.getText() : "?";
  const isStatic = (ts.getCombinedModifierFlags(m) & ts.ModifierFlags.Static) !== 0;
  return isStatic ? `static ${name}` : name;
}
function members(decl) {
  const byName = new Map();
  for (const m of decl.members) {
    const flags = ts.getCombinedModifierFlags(m);
    if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
    if (m.name && ts.isPrivateIdentifier(m.name)) continue;
    const name = memberName(m);
    const entry = byName.get(name) ?? {
      name,
      kind: MEMBER_KINDS[m.kind] ?? ts.SyntaxKind[m.kind],
      optional: Boolean(m.questionToken),
      signatures: [],
    };
    entry.signatures.push(signature(m));
    byName.set(name, entry);
  }
  return [...byName.values()];
}

function kindOf(decl) {
  if (ts.isFunctionDeclaration(decl)) return "function";
  if (ts.isClassDeclaration(decl)) return "class";
  if (ts.isInterfaceDeclaration(decl)) return "interface";
  if (ts.isTypeAliasDeclaration(decl)) return "type";
  if (ts.isEnumDeclaration(decl)) return "enum";
  if (ts.isModuleDeclaration(decl) || ts.isSourceFile(decl)) return "namespace";
  if (ts.isVariableDeclaration(decl)) {
    const flags = decl.parent.flags;
    return flags & ts.NodeFlags.Const ? "const" : flags & ts.NodeFlags.Let ? "let" : "var";
  }
  return ts.SyntaxKind[decl.kind];
}

// A class or interface printed without its members: its name, type parameters, heritage.
function heading(decl) {
  const mods = (decl.modifiers ?? []).filter((m) => m.kind === ts.SyntaxKind.AbstractKeyword);
  const bare = ts.isClassDeclaration(decl)
    ? ts.factory.createClassDeclaration(mods, decl.name, decl.typeParameters, decl.heritageClauses, [])
    : ts.factory.createInterfaceDeclaration(mods, decl.name, decl.typeParameters, decl.heritageClauses, []);
  return norm(printer.printNode(ts.EmitHint.Unspecified, bare, decl.getSourceFile())).replace(/ ?\{\}$/, "");
}

function describe(name, sym, typeOnly) {
  const out = { name, kind: "", type_only: typeOnly, signatures: [], members: null };
  const decls = sym.declarations ?? [];
  if (decls.length === 0) {
    out.kind = "unresolved";
    return out;
  }
  const kinds = [];
  for (const decl of decls) {
    const kind = kindOf(decl);
    if (!kinds.includes(kind)) kinds.push(kind);
    if (ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl)) {
      out.signatures.push({ text: heading(decl) });
      out.members = [...(out.members ?? []), ...members(decl)];
    } else if (ts.isSourceFile(decl)) {
      const names = checker.getExportsOfModule(sym).map((s) => s.name).sort();
      out.signatures.push({ text: `namespace { ${names.join(", ")} }` });
    } else if (ts.isVariableDeclaration(decl)) {
      out.signatures.push({ text: `${kindOf(decl)} ${norm(print(decl))}` });
    } else if (ts.isFunctionDeclaration(decl) && decl.body) {
      continue; // an implementation signature is not part of the declared surface
    } else {
      out.signatures.push(signature(decl));
    }
  }
  out.kind = kinds.join("+");
  return out;
}

// `export type { X }`, `export { type X }` or an `import type` re-exported.
function isTypeOnly(sym) {
  return (sym.declarations ?? []).some(
    (d) =>
      (ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly)) ||
      (ts.isImportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly)),
  );
}

const moduleSymbol = checker.getSymbolAtLocation(source);
const exported = moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : [];
const result = [];
for (const sym of exported) {
  const name = sym.escapedName === "default" ? "default" : sym.name;
  let target = sym;
  if (sym.flags & ts.SymbolFlags.Alias) {
    target = checker.getAliasedSymbol(sym);
    if (target === checker.getUnknownSymbol?.() || !target.declarations?.length) {
      // Re-exported from a package this file does not carry: keep it as written.
      const spec = sym.declarations?.[0];
      const from = spec && spec.parent?.parent?.moduleSpecifier;
      const original = spec?.propertyName?.getText() ?? spec?.name?.getText() ?? name;
      result.push({
        name,
        kind: "re-export",
        type_only: isTypeOnly(sym),
        signatures: [{ text: `${original}${from ? ` from ${from.getText()}` : ""}` }],
        members: null,
      });
      continue;
    }
  }
  result.push(describe(name, target, isTypeOnly(sym)));
}
result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
process.stdout.write(`${JSON.stringify({ file: file, exports: result }, null, 1)}\n`);
