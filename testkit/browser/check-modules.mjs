// Checks the shape of the dashboard's modules (crates/baton-server/assets), as
// scripts/test runs it:
//   - no function is longer than 100 lines (nested functions count in their parent);
//   - nothing is parsed as HTML (`innerHTML`, `outerHTML`, `insertAdjacentHTML`,
//     `document.write`);
//   - only state/store.js changes the state: no other module assigns to `state.…`
//     or calls `set`, `delete` or `clear` on one of its maps.
//
//   node testkit/browser/check-modules.mjs
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const assets = join(root, "crates/baton-server/assets");
const MAX_LINES = 100;
const STORE = "state/store.js";

function* modules(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* modules(path);
    else if (entry.name.endsWith(".js")) yield path;
  }
}

const problems = [];
for (const path of modules(assets)) {
  const name = relative(assets, path);
  const text = readFileSync(path, "utf8");
  const file = ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const line = (pos) => file.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const lines = line(node.getEnd()) - line(node.getStart(file)) + 1;
      if (lines > MAX_LINES) problems.push(`${name}:${line(node.getStart(file))}: a function of ${lines} lines (at most ${MAX_LINES})`);
    }
    if (ts.isIdentifier(node) && ["innerHTML", "outerHTML", "insertAdjacentHTML"].includes(node.text)) {
      problems.push(`${name}:${line(node.getStart(file))}: ${node.text} parses text as HTML; build elements with h()`);
    }
    if (ts.isPropertyAccessExpression(node) && node.expression.getText(file) === "document" && node.name.text === "write") {
      problems.push(`${name}:${line(node.getStart(file))}: document.write`);
    }
    if (name !== STORE && writesState(node, file)) {
      problems.push(`${name}:${line(node.getStart(file))}: changes the state outside ${STORE}: ${node.getText(file).slice(0, 80)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
}

/** Whether `node` is `state.x = …`, `state.x.y = …`, `state.x++` or `state.x.set/delete/clear(…)`. */
function writesState(node, file) {
  const onState = (e) => ts.isPropertyAccessExpression(e) && (e.expression.getText(file) === "state" || onState(e.expression));
  if (ts.isBinaryExpression(node) && node.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && node.operatorToken.kind <= ts.SyntaxKind.LastAssignment) {
    return onState(node.left);
  }
  if ((ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) && [ts.SyntaxKind.PlusPlusToken, ts.SyntaxKind.MinusMinusToken].includes(node.operator)) {
    return onState(node.operand);
  }
  if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
    return ["set", "delete", "clear"].includes(node.expression.name.text) && onState(node.expression.expression);
  }
  return false;
}

if (problems.length) {
  console.error("The dashboard's modules:\n  " + problems.join("\n  "));
  process.exit(1);
}
console.log("dashboard modules: functions at most 100 lines, no HTML parsing, the state changed only in state/store.js");
