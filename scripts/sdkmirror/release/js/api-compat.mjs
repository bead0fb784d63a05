// Decides with the compiler whether code written against old declarations still compiles
// against new ones. argv: typescript dir, the job file (JSON: {dir}); `dir` holds `old.d.mts`
// and `new.d.mts`. For every export both declare it writes probes, compiles them once, and
// prints each probe's failure (JSON):
//   value  - the new value is usable where the old one was (callers: calls, constructions)
//   read   - what the new SDK hands out still fits code typed with the old type
//   write  - what old code builds, passes or implements is still accepted by the new type
//            (only decides "breaking" where the type is in an input position)
//   setter - a property old code could assign is still writable
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [tsDir, jobFile] = process.argv.slice(2);
const ts = createRequire(import.meta.url)(tsDir);
const job = JSON.parse(readFileSync(jobFile, "utf8"));
const oldFile = path.join(job.dir, "old.d.mts");
const newFile = path.join(job.dir, "new.d.mts");
const probeFile = path.join(job.dir, "probe.mts");
const options = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: [],
  // Parameters compare both ways, as methods' always do: a class the SDK hands out and takes
  // back (`legacyPrompt(client: KimiClient)`) may gain members without breaking its callers.
  // What callers pass is judged by the `write` probes of the input types instead.
  strictFunctionTypes: false,
  noErrorTruncation: true,
};

const hidden = (d) =>
  (ts.getCombinedModifierFlags(d) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !==
    0 || (d.name && ts.isPrivateIdentifier(d.name));
const readonly = (d) => (ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Readonly) !== 0;

function describeExports(program, file) {
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(file));
  const out = new Map();
  for (const symbol of module ? checker.getExportsOfModule(module) : []) {
    const target =
      symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    const decls = target.declarations ?? [];
    const typeDecl = decls.find(
      (d) =>
        ts.isClassDeclaration(d) || ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d),
    );
    const arity = typeDecl?.typeParameters?.filter((p) => !p.default).length ?? 0;
    const isClass = decls.some(ts.isClassDeclaration);
    const isEnum = decls.some(ts.isEnumDeclaration);
    const isType = Boolean(typeDecl) || isEnum;
    const typeOnly = (symbol.declarations ?? []).some((d) =>
      ts.isTypeOnlyImportOrExportDeclaration(d),
    );
    const isValue = (target.flags & ts.SymbolFlags.Value) !== 0 && !typeOnly;
    const members = [];
    if (typeDecl && !ts.isTypeAliasDeclaration(typeDecl)) {
      const type = checker.getDeclaredTypeOfSymbol(target);
      for (const p of checker.getPropertiesOfType(type)) {
        const pd = p.declarations ?? [];
        if (!pd.length || pd.some(hidden)) continue;
        const writable =
          pd.some((d) => (ts.isPropertySignature(d) || ts.isPropertyDeclaration(d)) && !readonly(d)) ||
          pd.some(ts.isSetAccessorDeclaration);
        members.push({ name: p.name, writable });
      }
    }
    out.set(symbol.name, {
      local: target.name,
      arity,
      isClass,
      isEnum,
      isType,
      isValue,
      isInterface: decls.some(ts.isInterfaceDeclaration),
      members,
      decls,
    });
  }
  return out;
}

// The names of types a caller hands to the SDK: referenced from the parameters of exported
// functions, constructors and methods, then from the properties of those types.
function inputTypes(exported, file, program) {
  const source = program.getSourceFile(file);
  const locals = new Map();
  for (const s of source.statements) {
    if ((ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) && s.name) {
      locals.set(s.name.text, s);
    }
  }
  const found = new Set();
  const queue = [];
  const refs = (node) => {
    if (!node) return;
    if (ts.isTypeReferenceNode(node)) {
      const name = ts.isIdentifier(node.typeName) ? node.typeName.text : node.typeName.right.text;
      if (!found.has(name)) {
        found.add(name);
        queue.push(name);
      }
    }
    ts.forEachChild(node, refs);
  };
  const params = (sig) => sig.parameters?.forEach((p) => refs(p.type));
  for (const info of exported.values()) {
    for (const d of info.decls) {
      if (ts.isFunctionDeclaration(d)) params(d);
      if (ts.isClassDeclaration(d)) {
        for (const m of d.members) {
          if (hidden(m)) continue;
          if (ts.isConstructorDeclaration(m) || ts.isMethodDeclaration(m)) params(m);
          if (ts.isSetAccessorDeclaration(m)) params(m);
        }
      }
    }
  }
  while (queue.length) {
    const decl = locals.get(queue.shift());
    if (!decl) continue;
    if (ts.isTypeAliasDeclaration(decl)) refs(decl.type);
    else decl.members.forEach((m) => ts.isPropertySignature(m) && refs(m.type));
  }
  return found;
}

const base = ts.createProgram([oldFile, newFile], options);
const before = describeExports(base, oldFile);
const after = describeExports(base, newFile);
const inputs = inputTypes(after, newFile, base);

const probes = [];
const lines = ['import type * as O from "./old.mjs";', 'import type * as N from "./new.mjs";'];
const add = (name, kind, member, text) => {
  probes.push({ name, kind, member, line: lines.length });
  lines.push(text);
};
for (const [name, a] of before) {
  const b = after.get(name);
  if (!b) continue;
  const id = probes.length;
  const args = a.arity ? `<${Array(a.arity).fill("any").join(", ")}>` : "";
  const ref = (ns) => `${ns}.${name}${args}`;
  if (a.isValue && b.isValue && !a.isEnum) {
    add(name, "value", null, `function p${id}v(n: typeof N.${name}) { const o: typeof O.${name} = n; }`);
  }
  if (a.isType && b.isType && a.arity === b.arity) {
    add(name, "read", null, `function p${id}r(n: ${ref("N")}) { const o: ${ref("O")} = n; }`);
    if (!a.isClass && !a.isEnum) {
      add(name, "write", null, `function p${id}w(o: ${ref("O")}) { const n: ${ref("N")} = o; }`);
    }
    const now = new Set(b.members.map((m) => m.name));
    a.members.forEach((m, k) => {
      if (!now.has(m.name)) return; // a member removed: old code that reads it fails anyway
      const key = JSON.stringify(m.name);
      add(
        name,
        "member",
        m.name,
        `function p${id}m${k}(n: ${ref("N")}) { const o: ${ref("O")}[${key}] = n[${key}]; }`,
      );
      if (!m.writable) return;
      add(
        name,
        "setter",
        m.name,
        `function p${id}s${k}(n: ${ref("N")}, v: ${ref("O")}[${key}]) { n[${key}] = v; }`,
      );
    });
  }
}
writeFileSync(probeFile, lines.join("\n") + "\n");

const program = ts.createProgram([probeFile], options, undefined, base);
const source = program.getSourceFile(probeFile);
const byLine = new Map(probes.map((p) => [p.line, p]));
const failures = new Map();
const deepest = (chain) => {
  if (typeof chain === "string") return chain;
  let node = chain;
  while (node.next?.length) node = node.next[0];
  return node.messageText;
};
for (const d of program.getSemanticDiagnostics(source)) {
  const { line } = source.getLineAndCharacterOfPosition(d.start ?? 0);
  const probe = byLine.get(line);
  if (!probe || failures.has(probe)) continue;
  const first = ts.flattenDiagnosticMessageText(
    typeof d.messageText === "string" ? d.messageText : d.messageText.messageText,
    " ",
  );
  const last = deepest(d.messageText);
  const message = (first === last ? first : `${first} ${last}`).replace(
    /import\("[^"]*\/(old|new)"(?:, \{ with: \{ "resolution-mode": "import" \} \})?\)/g,
    "$1",
  );
  failures.set(probe, { code: d.code, message });
}
const out = {};
for (const p of probes) {
  const f = failures.get(p);
  if (!f) continue;
  (out[p.name] ??= []).push({ probe: p.kind, member: p.member, code: f.code, message: f.message });
}
process.stdout.write(
  JSON.stringify({
    failures: out,
    inputs: [...inputs].sort(),
    probes: probes.length,
    local: Object.fromEntries([...after].map(([n, i]) => [n, i.local])),
  }),
);
