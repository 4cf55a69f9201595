/**
 * Bench: the squashfs size and CPU of our writer at each gzip level against `mksquashfs -comp gzip -b 1024k`
 * (zlib level 9, CanvOS's rootfs.squashfs), on a directory tree you give (e.g. an image's extracted rootfs):
 *
 *   node bench/squashfs-levels.mjs DIR [--levels 1,2,...] [--js]
 *
 * Each level runs as its own process (`bench/squashfs.mjs --child`, so CPU is user+sys of the whole process,
 * thread pool included, and peak RSS from GNU time), then mksquashfs once with the same thread count. `--js` runs
 * ours on node:zlib (CANVOS_NO_NATIVE=1, levels 1..9). Prints a markdown table (size in bytes and relative to
 * mksquashfs, CPU, wall) and writes bench/results/squashfs-levels.json. Not in run.mjs's list. Run `npm run build`
 * first.
 */
import { availableParallelism, loadavg } from 'node:os';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasured } from './lib/proc.mjs';
import { round, saveResult, tmp } from './lib/util.mjs';

const SQUASHFS_BENCH = join(fileURLToPath(new URL('.', import.meta.url)), 'squashfs.mjs');
const argv = process.argv.slice(2);
const dir = argv.find((a, i) => !a.startsWith('--') && argv[i - 1] !== '--levels');
if (!dir) throw new Error('usage: node bench/squashfs-levels.mjs DIR [--levels 1,2,...] [--js]');
const js = argv.includes('--js');
const li = argv.indexOf('--levels');
const levels = li >= 0 ? argv[li + 1].split(',').map(Number) : Array.from({ length: js ? 9 : 12 }, (_, i) => i + 1);
const N = availableParallelism();
const { path: work, cleanup } = await tmp('sqfs-levels');
const env = js ? { ...process.env, CANVOS_NO_NATIVE: '1' } : process.env;
const load = () =>
  loadavg()
    .map((x) => round(x, 1))
    .join(' ');

const mkOut = join(work, 'mk.sqfs');
const mkLoad = load();
const mk = await runMeasured('mksquashfs', [
  dir,
  mkOut,
  '-comp',
  'gzip',
  '-b',
  '1024k',
  '-processors',
  String(N),
  '-noappend',
  '-quiet',
  '-no-progress',
]);
const { size: mkBytes } = await import('node:fs').then((fs) => fs.statSync(mkOut));
await rm(mkOut);
const rows = [
  {
    who: 'mksquashfs -comp gzip -b 1024k (zlib 9)',
    bytes: mkBytes,
    cpuS: mk.cpuS,
    wallS: mk.ms / 1000,
    rssMB: mk.peakRssMB,
    load: mkLoad,
  },
];
for (const level of levels) {
  const out = join(work, `l${level}.sqfs`);
  const l0 = load();
  const r = await runMeasured(process.execPath, [SQUASHFS_BENCH, '--child', dir, out, String(N), String(level)], {
    env,
  });
  const child = JSON.parse(r.stdout.trim().split('\n').pop());
  rows.push({
    who: `ours ${child.backend} level ${level}`,
    level,
    bytes: child.bytes,
    cpuS: r.cpuS,
    wallS: r.ms / 1000,
    rssMB: r.peakRssMB,
    load: l0,
  });
  await rm(out);
}
await cleanup();
console.log(`| ${dir} (${N} threads) | bytes | vs mksquashfs | CPU s | wall s | peak RSS MiB | load |`);
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const rel = round((r.bytes / mkBytes - 1) * 100, 2);
  console.log(
    `| ${r.who} | ${r.bytes} | ${rel >= 0 ? '+' : ''}${rel} % | ${round(r.cpuS ?? NaN, 1)} | ${round(r.wallS, 1)} | ${round(r.rssMB ?? NaN, 0)} | ${r.load} |`,
  );
}
await saveResult('squashfs-levels', { dir, threads: N, js, rows });
