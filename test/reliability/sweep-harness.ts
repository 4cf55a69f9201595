/**
 * The black-box reliability sweep (issue #19): tables of cases, each one run of the built CLI
 * (`npx tsc -p tsconfig.json && node scripts/bundle.mjs` first) with its own $TMPDIR, checked as harness.ts's
 * expectCleanFailure does (exit code, one message line, a hint, no stack, no "internal error", no planted secret, an
 * end within the bound, $TMPDIR empty) plus: the destination looks exactly as before (absent stays absent, an existing
 * directory keeps every file byte for byte) and no `.NAME.*` sibling is left beside it.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { expectCleanFailure, runBin, type BinResult, type RunBinOptions } from './harness.js';

/** A password planted wherever a case can put one; it must never be printed. */
export const SECRET = 'Sw33pS3cretPw';

/** One row of a sweep table; `C` is the file's context (servers, fixture paths). */
export interface SweepCase<C> {
  name: string;
  args: (c: C) => string[];
  /** Expected exit code (several: any of them). */
  code: number | readonly number[];
  /** Time bound in ms. Default: 15 s. */
  withinMs?: number;
  /** The message line must match. */
  message?: RegExp;
  /** Require a hint line. Default: true. */
  hint?: boolean;
  /** A path that must look the same after the run as before it (and leave no `.NAME.*` sibling). */
  dest?: (c: C) => string;
  cwd?: (c: C) => string;
  env?: (c: C) => NodeJS.ProcessEnv;
  kill?: RunBinOptions['kill'];
  /** Prepare files the case needs (runs before the destination snapshot). */
  setup?: (c: C) => Promise<void>;
  /** Extra checks on the result. */
  check?: (r: BinResult, c: C) => void | Promise<void>;
  /** The run uses --debug: stack traces are allowed. */
  debug?: boolean;
  /** Skipped with this reason (work of another helper not merged yet). */
  skip?: string;
}

/** Every file below `p` with its sha256, or null when `p` does not exist. */
export async function snapshot(p: string): Promise<Record<string, string> | null> {
  const st = await readdir(p, { recursive: true, withFileTypes: true }).catch((e: unknown) =>
    (e as NodeJS.ErrnoException).code === 'ENOTDIR' ? [] : null,
  );
  if (st === null) return null;
  const out: Record<string, string> = {};
  if (st.length === 0) {
    const file = await readFile(p).catch(() => null);
    if (file) out['.'] = createHash('sha256').update(file).digest('hex');
  }
  for (const e of st) {
    const full = join(e.parentPath, e.name);
    out[full.slice(p.length)] = e.isFile()
      ? createHash('sha256')
          .update(await readFile(full))
          .digest('hex')
      : e.isDirectory()
        ? 'dir'
        : 'other';
  }
  return out;
}

/** Names beside `p` that start with `.NAME.` (partial outputs, temp files). */
async function siblings(p: string): Promise<string[]> {
  const name = basename(p);
  return (await readdir(dirname(p)).catch(() => [])).filter(
    (n) => n.startsWith(`.${name}.`) || n.startsWith(`${name}.tmp`),
  );
}

/** Define one `it` per case; `ctx()` returns the context the file's beforeAll built. */
export function sweep<C>(cases: readonly SweepCase<C>[], ctx: () => C): void {
  for (const k of cases) {
    const test = k.skip ? it.skip : it.concurrent;
    test(
      k.name,
      async () => {
        const c = ctx();
        await k.setup?.(c);
        const dest = k.dest?.(c);
        const before = dest ? await snapshot(dest) : null;
        const r = await runBin(k.args(c), {
          cwd: k.cwd?.(c),
          env: k.env?.(c),
          kill: k.kill,
          limitMs: (k.withinMs ?? 15_000) + 10_000,
        });
        const codes: readonly number[] = typeof k.code === 'number' ? [k.code] : k.code;
        const code = r.code !== null && codes.includes(r.code) ? r.code : codes[0]!;
        await k.check?.(r, c);
        await expectCleanFailure(r, {
          code,
          withinMs: k.withinMs ?? 15_000,
          message: k.message,
          hint: k.hint,
          secrets: [SECRET],
          debug: k.debug,
        });
        if (dest) {
          expect(await snapshot(dest), `${dest} changed`).toEqual(before);
          expect(await siblings(dest), `leftovers beside ${dest}`).toEqual([]);
        }
      },
      (k.withinMs ?? 15_000) + 30_000,
    );
  }
}

/** Write `files` (name → content) into a new directory `dir`; returns `dir`. */
export async function project(dir: string, files: Record<string, string | Buffer>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

/** A canvos.yaml whose every image is at `host` (a black hole, so a run that gets past validation ends with 10). */
export function canvosYaml(host: string, extra: string[] = []): string {
  return [
    'OS_DISTRIBUTION: ubuntu',
    'OS_VERSION: "22.04"',
    'K8S_DISTRIBUTION: k3s',
    'K8S_VERSION: 1.30.4',
    'PE_VERSION: v4.9.38',
    `IMAGE_REGISTRY: ${host}/edge`,
    `BASE_IMAGE: ${host}/base:v1`,
    `STYLUS_BASE: ${host}/stylus:v1`,
    `PROVIDER_BASE: ${host}/provider:v1`,
    `SPECTRO_THIRD_PARTY_IMAGE: ${host}/third:v1`,
    ...extra,
    '',
  ].join('\n');
}
