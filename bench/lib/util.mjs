/**
 * Shared bench plumbing: argv flags, temp dirs, result files (bench/results/<name>.json), the ratio table and the
 * "run this bench alone" entry point.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH_DIR);
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const MiB = 1 << 20;

/** `--quick` given on the command line (or BENCH_QUICK=1). */
export function isQuick(argv = process.argv) {
  return argv.includes('--quick') || process.env.BENCH_QUICK === '1';
}

/** A temp dir under os.tmpdir(); `cleanup()` removes it. */
export async function tmp(prefix) {
  const path = await mkdtemp(join(tmpdir(), `bench-${prefix}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Date, Node version and core count recorded with every result. */
export function machine() {
  return {
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? '?',
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadavg: loadavg().map((x) => round(x, 2)),
  };
}

/** `--repeat N` from the command line (or BENCH_REPEAT), else `dflt`. */
export function repeats(dflt, argv = process.argv) {
  const i = argv.indexOf('--repeat');
  const v = i >= 0 ? argv[i + 1] : process.env.BENCH_REPEAT;
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n > 0 ? n : dflt;
}

/**
 * Best (lowest `ms`) of `n` runs of `fn`: the machine is shared (other jobs, a 2-core VM), and noise only ever adds
 * time, so the minimum is the most repeatable estimate. Also returns every run's ms.
 */
export async function bestOf(n, fn) {
  let best;
  const all = [];
  for (let i = 0; i < n; i++) {
    const r = await fn(i);
    all.push(Math.round(r.ms));
    if (!best || r.ms < best.ms) best = r;
  }
  return { ...best, runsMs: all };
}

/** MB/s (10^6 bytes) of `bytes` processed in `ms`. */
export const mbps = (bytes, ms) => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;
export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * A row of the summary: `ours` vs `theirs` for one metric; ratio is always ours/theirs, and `better` says whether
 * a lower (time, RSS) or higher (throughput) value wins.
 */
export function row(bench, metric, ours, theirs, unit, better = 'lower', target) {
  const ratio = theirs ? round(ours / theirs, 3) : null;
  return {
    bench,
    metric,
    ours: round(ours, 1),
    theirs: theirs === null ? null : round(theirs, 1),
    unit,
    ratio,
    better,
    ...(target ? { target } : {}),
  };
}

/** Print rows as an aligned table. */
export function printTable(rows, out = process.stdout) {
  const head = ['bench', 'metric', 'ours', 'theirs', 'unit', 'ours/theirs', 'target'];
  const body = rows.map((r) => [
    r.bench,
    r.metric,
    String(r.ours),
    r.theirs === null ? '-' : String(r.theirs),
    r.unit,
    r.ratio === null ? '-' : String(r.ratio),
    r.target ?? '',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(w[i])).join('  ');
  out.write(line(head) + '\n' + w.map((n) => '-'.repeat(n)).join('  ') + '\n');
  for (const b of body) out.write(line(b) + '\n');
}

/** Write `obj` as bench/results/<name>.json. */
export async function saveResult(name, obj) {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  await writeFile(file, JSON.stringify(obj, null, 2) + '\n');
  return file;
}

/** When `metaUrl`'s file is the script node was started with, run `fn({quick})`, print its rows and save it. */
export async function runIfMain(metaUrl, name, fn) {
  if (!process.argv[1] || pathToFileURL(process.argv[1]).href !== metaUrl) return;
  try {
    const quick = isQuick();
    const res = await fn({ quick, log: (m) => process.stderr.write(`[${name}] ${m}\n`) });
    const out = { name, quick, machine: machine(), ...res };
    printTable(res.rows);
    const file = process.env.BENCH_RESULT_FILE
      ? (await mkdir(dirname(process.env.BENCH_RESULT_FILE), { recursive: true }),
        await writeFile(process.env.BENCH_RESULT_FILE, JSON.stringify(out, null, 2) + '\n'),
        process.env.BENCH_RESULT_FILE)
      : await saveResult(name, out);
    process.stderr.write(`[${name}] wrote ${file}\n`);
    process.exit(0);
  } catch (e) {
    process.stderr.write(`[${name}] FAILED: ${e?.stack ?? e}\n`);
    process.exit(1);
  }
}
