/**
 * The build context (the project directory) as COPY/ADD see it: one walk listing every path with its type, mode and
 * symlink target, minus what `.dockerignore` excludes (moby/patternmatcher rules: `#` comments, `!` re-includes,
 * `*`, `?`, `[…]`, `**` across directories, a match on a directory excludes what is under it; the last matching
 * line wins), plus Go `filepath.Match` globbing of COPY sources.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { globToRegex } from './words.js';

/** One path of the context. */
export interface ContextEntry {
  /** Context-relative path without leading `/` (`overlay/files/x`). */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  /** Symlink target as stored. */
  link?: string | undefined;
}

/** The walked context. */
export interface BuildContext {
  dir: string;
  /** Entries by relative path, parents before children. */
  entries: Map<string, ContextEntry>;
}

interface Rule {
  re: RegExp;
  negate: boolean;
}

/** Parse `.dockerignore` text into rules. */
export function parseDockerignore(text: string): Rule[] {
  const rules: Rule[] = [];
  for (let line of text.split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (!line) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1).trim();
    const clean = posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '');
    if (clean === '' || clean === '.') continue;
    const src = clean
      .split('/')
      .map((seg) => (seg === '**' ? '\u0000' : globToRegex(seg, '[^/]*')))
      .join('/')
      .replaceAll('\u0000/', '(?:.*/)?')
      .replaceAll('/\u0000', '(?:/.*)?')
      .replaceAll('\u0000', '.*');
    rules.push({ re: new RegExp(`^${src}$`), negate });
  }
  return rules;
}

/** True when `rel` (or one of its parent directories) is excluded by `rules`. */
export function isIgnored(rules: readonly Rule[], rel: string): boolean {
  let ignored = false;
  const parts = rel.split('/');
  for (const r of rules) {
    // A pattern matching a parent directory matches everything below it.
    const hit = parts.some((_, i) => r.re.test(parts.slice(0, i + 1).join('/')));
    if (hit) ignored = !r.negate;
  }
  return ignored;
}

/** Walk `dir` (symlinks are not followed), applying `<dir>/.dockerignore`. */
export async function walkContext(dir: string): Promise<BuildContext> {
  let rules: Rule[] = [];
  try {
    rules = parseDockerignore(await readFile(join(dir, '.dockerignore'), 'utf8'));
  } catch {
    // no .dockerignore
  }
  const entries = new Map<string, ContextEntry>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel ? join(dir, rel) : dir)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (isIgnored(rules, r)) continue;
      const st = await lstat(join(dir, r));
      if (st.isDirectory()) {
        entries.set(r, { rel: r, type: 'dir', mode: st.mode & 0o7777, size: 0 });
        await walk(r);
      } else if (st.isFile()) {
        entries.set(r, { rel: r, type: 'file', mode: st.mode & 0o7777, size: st.size });
      } else if (st.isSymbolicLink()) {
        entries.set(r, { rel: r, type: 'symlink', mode: 0o777, size: 0, link: await readlink(join(dir, r)) });
      }
    }
  };
  await walk('');
  return { dir, entries };
}

/** True when a COPY source has glob characters. */
export function hasGlob(p: string): boolean {
  return /[*?[]/.test(p);
}

/** Context entries matching a Go `filepath.Match` pattern (segment-wise; `*` does not cross `/`). */
export function globContext(ctx: BuildContext, pattern: string): ContextEntry[] {
  const re = new RegExp(
    `^${pattern
      .split('/')
      .map((s) => globToRegex(s, '[^/]*'))
      .join('/')}$`,
  );
  return [...ctx.entries.values()].filter((e) => re.test(e.rel));
}

/** The entries under a context directory (its contents, recursively), in walk order. */
export function contextChildren(ctx: BuildContext, rel: string): ContextEntry[] {
  const prefix = rel === '' ? '' : `${rel}/`;
  return [...ctx.entries.values()].filter((e) => e.rel.startsWith(prefix) && e.rel !== rel);
}
