/**
 * Paired, interleaved A/B runs of `canvos-lite iso --base` (bench/iso.mjs's image and loopback registry, without the
 * reference pipeline): one or more CLI builds or flag sets in the order A B …, A B …; prints the median and every
 * run of wall time, client CPU (user+sys), peak RSS, peak disk and ISO size, with the load average of each run.
 *
 *   node bench/iso-ab.mjs [--rounds N] [--quick] [NAME=path/to/bin/canvos-lite.js ...]
 *
 * Default build: `ours=bin/canvos-lite.js` of this checkout. Extra CLI arguments per build: env BENCH_AB_ARGS_<NAME>
 * (space separated, e.g. `BENCH_AB_ARGS_l9="--squashfs-level 9"`); extra environment: BENCH_AB_ENV_<NAME>
 * (`K=V K2=V2`). `BENCH_CPU_PROF=DIR`: every run writes a V8 CPU profile (node --cpu-prof) into DIR/<NAME>-<round>.
 * Not in run.mjs's list.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ours, pushImage } from './iso.mjs';
import { isoImage } from './lib/iso-image.mjs';
import { startRegistry } from './lib/registry.mjs';
import { ROOT, round, tmp } from './lib/util.mjs';

const argv = process.argv.slice(2);
const i = argv.indexOf('--rounds');
const rounds = i >= 0 ? Number(argv[i + 1]) : 3;
const quick = argv.includes('--quick');
const builds = argv
  .filter((a) => /^[A-Za-z_]\w*=/.test(a))
  .map((a) => ({ name: a.slice(0, a.indexOf('=')), cli: a.slice(a.indexOf('=') + 1) }));
if (!builds.length) builds.push({ name: 'ours', cli: join(ROOT, 'bin', 'canvos-lite.js') });
const words = (s) => (s ?? '').split(' ').filter(Boolean);
const envOf = (name) =>
  Object.fromEntries(
    words(process.env[`BENCH_AB_ENV_${name}`]).map((kv) => [
      kv.slice(0, kv.indexOf('=')),
      kv.slice(kv.indexOf('=') + 1),
    ]),
  );
const prof = process.env.BENCH_CPU_PROF;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const log = (m) => process.stderr.write(`[iso-ab] ${m}\n`);

const img = await isoImage(quick, log);
const reg = await startRegistry();
const t = await tmp('iso-ab');
const runs = Object.fromEntries(builds.map((b) => [b.name, []]));
try {
  await pushImage(img, reg.host);
  for (let r = 0; r < rounds; r++) {
    for (const b of builds) {
      const dir = join(t.path, `${b.name}-${r}`);
      mkdirSync(dir);
      const load = round(loadavg()[0], 1);
      const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', join(prof, `${b.name}-${r}`)] : [];
      const x = await ours(dir, reg.host, {
        cli: b.cli,
        args: words(process.env[`BENCH_AB_ARGS_${b.name}`]),
        env: envOf(b.name),
        nodeArgs,
      });
      const run = {
        wallS: round(x.ms / 1000, 1),
        cpuS: round(x.cpuS ?? NaN, 1),
        rssMiB: round(x.peakRssMB, 0),
        diskMiB: round(x.disk.peakTotal / 2 ** 20, 0),
        isoMiB: round(statSync(x.iso).size / 2 ** 20, 1),
        load,
      };
      runs[b.name].push(run);
      log(`${b.name} ${r + 1}/${rounds}: ${JSON.stringify(run)}`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await reg.stop();
  await t.cleanup();
}
console.log('| build | wall s | CPU s | peak RSS MiB | peak disk MiB | ISO MiB | load (1 min) |');
console.log('|---|---|---|---|---|---|---|');
for (const b of builds) {
  const rs = runs[b.name];
  const cell = (k) => `${round(median(rs.map((x) => x[k])), 1)} [${rs.map((x) => x[k]).join(' ')}]`;
  console.log(
    `| ${b.name} | ${cell('wallS')} | ${cell('cpuS')} | ${cell('rssMiB')} | ${cell('diskMiB')} | ${cell('isoMiB')} | ${rs.map((x) => x.load).join(' ')} |`,
  );
}
