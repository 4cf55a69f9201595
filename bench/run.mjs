/**
 * `npm run bench [-- --quick] [--only copy,build,...] [--repeat N]`: runs every bench as its own child process
 * (ours: copy, build, throughput, memory, iso; other engineers': squashfs.*, mirror.* when present), prints one table of
 * ours/theirs ratios and writes bench/results/latest.json. A bench that fails is reported and the others still run;
 * the exit code is then 1.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_DIR, RESULTS_DIR, isQuick, machine, printTable, row, saveResult } from './lib/util.mjs';

const OURS = ['copy', 'build', 'throughput', 'memory', 'iso'];
const EXTERNAL = ['squashfs', 'mirror'];

/** The script of bench `name` and how to start it, or undefined when absent. */
function locate(name) {
  for (const [ext, cmd] of [
    ['mjs', process.execPath],
    ['js', process.execPath],
    ['sh', 'bash'],
  ]) {
    const f = join(BENCH_DIR, `${name}.${ext}`);
    if (existsSync(f)) return { cmd, file: f };
  }
  return undefined;
}

function runChild(cmd, args, env) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: join(BENCH_DIR, '..'), env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      process.stderr.write(d);
    });
    child.once('error', (e) => resolve({ code: 127, stdout: String(e), ms: 0 }));
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, ms: performance.now() - t0 }));
  });
}

/**
 * Rows for an external bench's JSON that has no `rows`: known shapes are mapped (mirror: canvosLite vs skopeoSync
 * seconds, per scenario); anything else is kept in latest.json only.
 */
function adaptRows(name, res) {
  if (Array.isArray(res.rows)) return res.rows.filter((x) => x && typeof x === 'object' && 'metric' in x);
  // mirror.mjs shape: {canvosLite, skopeoSync} at the top or under scenario keys (e.g. loopback, wan).
  const pairs = [['', res], ...Object.entries(res).filter(([, v]) => v && typeof v === 'object')];
  const out = [];
  for (const [scenario, v] of pairs) {
    const ours = v.canvosLite;
    const theirs = v.skopeoSync;
    if (!ours || !theirs) continue;
    const tag = `${scenario ? `[${scenario}] ` : ''}`;
    const mb = res.totalMB ? ` (${res.totalMB} MB)` : '';
    out.push(row(name, `${tag}cold push wall time${mb} vs skopeo sync`, ours.coldSeconds, theirs.coldSeconds, 's'));
    if (ours.coldCpuSeconds !== undefined)
      out.push(row(name, `${tag}cold push client CPU`, ours.coldCpuSeconds, theirs.coldCpuSeconds, 's'));
    if (ours.noopSeconds !== undefined)
      out.push(row(name, `${tag}no-op re-run wall time`, ours.noopSeconds, theirs.noopSeconds, 's'));
  }
  if (out.length) return out;
  process.stderr.write(`[run] ${name}: result has no rows; kept in latest.json only\n`);
  return [];
}

/** The last line of `text` that parses as a JSON object, if any. */
function lastJsonLine(text) {
  for (const line of text.trim().split('\n').reverse()) {
    try {
      const v = JSON.parse(line);
      if (v && typeof v === 'object') return v;
    } catch {}
  }
  return undefined;
}

const argv = process.argv.slice(2);
const quick = isQuick(argv);
const onlyIdx = argv.indexOf('--only');
const only = onlyIdx >= 0 ? new Set(argv[onlyIdx + 1]?.split(',')) : undefined;
const passThrough = argv.filter((a, i) => a !== '--only' && argv[i - 1] !== '--only');

const t0 = performance.now();
const results = {};
const rows = [];
const failed = [];
for (const name of [...OURS, ...EXTERNAL]) {
  if (only && !only.has(name)) continue;
  const where = locate(name);
  if (!where) {
    process.stderr.write(`[run] ${name}: no bench/${name}.* yet, skipped\n`);
    continue;
  }
  process.stderr.write(`[run] ${name}${quick ? ' --quick' : ''}\n`);
  const resultFile = join(RESULTS_DIR, `${name}.json`);
  await rm(resultFile, { force: true });
  // Contract for every bench: `--quick` selects small sizes; results go to BENCH_RESULT_FILE (or bench/results/<name>.json),
  // or else as the last JSON line on stdout. `rows` in our row shape (lib/util.mjs row()) join the summary table.
  const env = { ...process.env, BENCH_RESULT_FILE: resultFile, ...(quick ? { BENCH_QUICK: '1' } : {}) };
  const r = await runChild(where.cmd, [where.file, ...passThrough], env);
  let res;
  try {
    res = JSON.parse(await readFile(resultFile, 'utf8'));
  } catch {
    res = lastJsonLine(r.stdout);
  }
  if (r.code !== 0 || !res) {
    failed.push(name);
    results[name] = { error: `exit ${r.code}${res ? '' : ', no JSON result'}` };
    continue;
  }
  results[name] = { ...res, wallMs: Math.round(r.ms) };
  rows.push(...adaptRows(name, res));
}
const totalS = Math.round((performance.now() - t0) / 100) / 10;
process.stdout.write(`\ncanvos-lite benches${quick ? ' (--quick)' : ''}, ${totalS} s\n`);
printTable(rows);
if (failed.length) process.stdout.write(`FAILED: ${failed.join(', ')}\n`);
const file = await saveResult('latest', { quick, machine: machine(), totalSeconds: totalS, rows, failed, results });
process.stdout.write(`wrote ${file}\n`);
process.exit(failed.length ? 1 : 0);
