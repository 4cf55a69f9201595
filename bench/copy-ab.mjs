/**
 * Paired, interleaved A/B runs of the loopback copy (bench/copy.mjs's data set: 3 images × 2 platforms × 5 layers ×
 * 10 MiB): `canvos-lite copy --all-platforms` of one or more CLI builds and `skopeo copy --all`, each round into fresh
 * registries, in the order A B … skopeo, A B … skopeo, …; prints the median and every run of client CPU (user+sys),
 * wall time and peak RSS (summed / max over the 3 images), with the load average. For decisions on a shared machine,
 * where a best-of-2 is noise.
 *
 *   node bench/copy-ab.mjs [--rounds N] [--quick] [--no-skopeo] [--wan] [NAME=path/to/bin/canvos-lite.js ...]
 *
 * `--wan`: the source registry behind lib/wan.mjs (BENCH_WAN_LATENCY_MS, default 30; BENCH_WAN_STREAM_MBPS, default 8),
 * as bench/copy.mjs's wan scenario.
 * `--warm`: the warm-destination copy (lib/warm.mjs): each side first copies the set into `bench/x/img<i>` of its fresh
 * registry (not measured; it warms canvos-lite's blob-location cache and skopeo's blob-info cache), then the measured
 * copies go into `bench/y/img<i>`, every blob mounted. Per-process start-up dominates it, so it is the A/B for that.
 *
 * Default build: `ours=bin/canvos-lite.js` of this checkout. Extra CLI arguments per build: env
 * BENCH_AB_ARGS_<NAME> (space separated); extra environment per build: BENCH_AB_ENV_<NAME> (`K=V K2=V2`).
 */
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { addImage } from './lib/layout.mjs';
import { runMeasured } from './lib/proc.mjs';
import { startRegistry } from './lib/registry.mjs';
import { startWan } from './lib/wan.mjs';
import { MiB, ROOT, round, tmp } from './lib/util.mjs';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const value = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const rounds = Number(value('--rounds', 5));
const quick = flag('--quick');
const builds = argv
  .filter((a) => /^[A-Za-z_]\w*=/.test(a))
  .map((a) => ({ name: a.slice(0, a.indexOf('=')), bin: a.slice(a.indexOf('=') + 1) }));
if (!builds.length) builds.push({ name: 'ours', bin: join(ROOT, 'bin', 'canvos-lite.js') });
const withSkopeo = !flag('--no-skopeo');
const warm = flag('--warm');

const images = 3;
const layers = quick ? 3 : 5;
const layerBytes = (quick ? 2 : 10) * MiB;
const work = await tmp('copy-ab');
const regs = [];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const envOf = (name) =>
  Object.fromEntries(
    (process.env[`BENCH_AB_ENV_${name}`] ?? '')
      .split(' ')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
try {
  const layout = join(work.path, 'layout');
  for (let i = 0; i < images; i++)
    await addImage(layout, { tag: `img${i}`, platforms: ['linux/amd64', 'linux/arm64'], layers, layerBytes });
  const origin = await startRegistry();
  regs.push(origin);
  for (let i = 0; i < images; i++)
    await runMeasured('skopeo', [
      'copy',
      '--all',
      '--quiet',
      '--dest-tls-verify=false',
      `oci:${layout}:img${i}`,
      `docker://${origin.host}/bench/img${i}:1`,
    ]);
  const wan = flag('--wan')
    ? await startWan(
        origin.host,
        Number(process.env.BENCH_WAN_LATENCY_MS ?? 30),
        Number(process.env.BENCH_WAN_STREAM_MBPS ?? 8) * MiB,
      )
    : undefined;
  if (wan) regs.push(wan);
  const srcHost = wan ? wan.host : origin.host;
  const sides = [
    ...builds.map((b) => ({
      name: b.name,
      argsFor: (i, dst) => [
        process.execPath,
        [
          b.bin,
          'copy',
          ...(process.env[`BENCH_AB_ARGS_${b.name}`] ?? '').split(' ').filter(Boolean),
          '--all-platforms',
          '--src-insecure',
          '--dest-insecure',
          `docker://${srcHost}/bench/img${i}:1`,
          `docker://${dst}/img${i}:1`,
        ],
      ],
      env: envOf(b.name),
    })),
    ...(withSkopeo
      ? [
          {
            name: 'skopeo',
            argsFor: (i, dst) => [
              'skopeo',
              [
                'copy',
                '--all',
                '--quiet',
                '--src-tls-verify=false',
                '--dest-tls-verify=false',
                `docker://${srcHost}/bench/img${i}:1`,
                `docker://${dst}/img${i}:1`,
              ],
            ],
            env: {},
          },
        ]
      : []),
  ];
  const runs = Object.fromEntries(sides.map((s) => [s.name, []]));
  const loads = [];
  for (let r = 0; r < rounds; r++) {
    loads.push(loadavg()[0]);
    for (const side of sides) {
      const dst = await startRegistry();
      try {
        let acc = { ms: 0, cpuS: 0, rss: 0 };
        const env = { ...process.env, HOME: work.path, ...side.env };
        for (let i = 0; warm && i < images; i++) await runMeasured(...side.argsFor(i, `${dst.host}/bench/x`), { env });
        for (let i = 0; i < images; i++) {
          const [cmd, args] = side.argsFor(i, `${dst.host}/bench${warm ? '/y' : ''}`);
          const m = await runMeasured(cmd, args, { env });
          acc = { ms: acc.ms + m.ms, cpuS: acc.cpuS + m.cpuS, rss: Math.max(acc.rss, m.peakRssMB) };
        }
        runs[side.name].push(acc);
      } finally {
        await dst.stop();
      }
    }
  }
  const total = images * 2 * layers * layerBytes;
  console.log(
    `copy A/B${wan ? ' (wan)' : ''}${warm ? ' (warm destination: every blob mounted)' : ''}: ${rounds} rounds, ${round(total / MiB, 0)} MiB per run, load average (1 min) at each round: ${loads.map((l) => round(l, 2)).join(' ')}`,
  );
  for (const s of sides) {
    const rs = runs[s.name];
    const f = (k, d) => `${round(median(rs.map((x) => x[k])), d)} [${rs.map((x) => round(x[k], d)).join(' ')}]`;
    console.log(`${s.name.padEnd(10)} cpu ${f('cpuS', 2)} s | wall ${f('ms', 0)} ms | peak RSS ${f('rss', 1)} MiB`);
  }
} finally {
  await Promise.all(regs.map((r) => r.stop()));
  await work.cleanup();
}
