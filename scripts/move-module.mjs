#!/usr/bin/env node
// Move TypeScript modules and rewrite every relative import of them (src/, test/, bench/, scripts/).
// Usage: node scripts/move-module.mjs OLD.ts NEW.ts [OLD2.ts NEW2.ts ...]
// Paths are relative to the repository root. The move is done with `git mv`; import specifiers keep the `.js`
// extension convention (`./x.js` for `x.ts`). Imports *inside* a moved file are rewritten too. A refactor that is
// recorded as a list of these calls can be replayed on another branch, which is how parallel refactors merge.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0) {
  console.error('usage: node scripts/move-module.mjs OLD.ts NEW.ts [OLD2.ts NEW2.ts ...]');
  process.exit(2);
}
/** old absolute path → new absolute path */
const moves = new Map();
for (let i = 0; i < args.length; i += 2) moves.set(path.resolve(root, args[i]), path.resolve(root, args[i + 1]));

function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}
const files = ['src', 'test', 'bench', 'scripts'].flatMap((d) =>
  fs.existsSync(path.join(root, d)) ? walk(path.join(root, d), []) : [],
);

const specRe = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)(['"])/g;
const toTs = (abs) => abs.replace(/\.js$/, '.ts');
const rel = (fromFile, target) => {
  let r = path.relative(path.dirname(fromFile), target).replace(/\.ts$/, '.js');
  if (!r.startsWith('.')) r = './' + r;
  return r;
};

let changed = 0;
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const newFile = moves.get(file) ?? file;
  const out = text.replace(specRe, (m, pre, spec, post) => {
    const targetTs = toTs(path.resolve(path.dirname(file), spec));
    const movedTarget = moves.get(targetTs);
    if (!movedTarget && newFile === file) return m;
    if (!spec.endsWith('.js')) return m; // not a module import we manage (e.g. a directory)
    return pre + rel(newFile, movedTarget ?? targetTs) + post;
  });
  if (out !== text) {
    fs.writeFileSync(file, out);
    changed++;
  }
}
for (const [from, to] of moves) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  execFileSync('git', ['mv', from, to], { cwd: root, stdio: 'inherit' });
}
console.log(`moved ${moves.size} module(s), rewrote imports in ${changed} file(s)`);
