/**
 * Paired, interleaved runs of the build bench's contenders on ONE setup (same 1 GiB base in the registry, same
 * 3 × 200 MiB payloads, changed a little every round, same counting proxy), for before/after comparisons on a shared machine: each round runs every
 * contender once, in turn (A B C D, A B C D, ...), and the table gives per-contender medians of wall time, client
 * CPU (user+sys), peak RSS and bytes uploaded, with the load average of every round.
 *   append-6     the earlier bench/library path: one process per version, buildLayer then push (lib/append.mjs), gzip 6
 *   provider-6   the provider build's path (lib/provider-append.mjs: upload-as-built, one process), gzip 6
 *   provider     the same at the default level
 *   umoci+skopeo `umoci insert` into a copy of the base layout + `skopeo copy` per version
 *   before       with BENCH_BUILD_BEFORE=DIR: `provider` as another checkout DIR runs it (its bench/lib and dist/, built;
 *                its native/ and node_modules/ in place): before/after pairs of two versions of the code
 * `node bench/build-pairs.mjs [--quick] [--repeat N] [--only a,b]` (default 5 rounds; quick: 64 MiB base, 16 MiB payloads).
 */
import { cp, mkdir, open, rm, stat } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { addImage } from './lib/layout.mjs';
import { runMeasured, runShell } from './lib/proc.mjs';
import { startCountingProxy } from './lib/proxy.mjs';
import { startRegistry } from './lib/registry.mjs';
import { BENCH_DIR, MiB, repeats, round, row, runIfMain, tmp } from './lib/util.mjs';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The contenders: each returns the measured child runs of one round. */
function contenders({ baseRef, baseLayout, proxy, payloads, work }) {
  const node = (script, args, env) => runMeasured(process.execPath, [resolve(BENCH_DIR, 'lib', script), ...args], env);
  const env = (level) => ({
    env: { ...process.env, HOME: dir('home'), ...(level ? { BENCH_BUILD_LEVEL: level } : {}) },
  });
  let turn = 0;
  const dir = (name) => join(work, `${name}-${turn}`);
  return {
    next: () => turn++,
    'append-6': async () => {
      const runs = [];
      for (const [i, p] of payloads.entries())
        runs.push(
          await node('append.mjs', [baseRef, `${proxy.host}/bench/a6-${turn}:v${i + 1}`, p, dir('a6')], env('6')),
        );
      return runs;
    },
    'provider-6': async () => [
      await node(
        'provider-append.mjs',
        [baseRef, `${proxy.host}/bench/p6-${turn}`, dir('p6'), '6', ...payloads],
        env(),
      ),
    ],
    before: async () => [
      await node(
        join(process.env.BENCH_BUILD_BEFORE ?? '', 'bench', 'lib', 'provider-append.mjs'),
        [baseRef, `${proxy.host}/bench/b-${turn}`, dir('b'), '-', ...payloads],
        env(),
      ),
    ],
    provider: async () => [
      await node('provider-append.mjs', [baseRef, `${proxy.host}/bench/p-${turn}`, dir('p'), '-', ...payloads], env()),
    ],
    'umoci+skopeo': async () => {
      // A fresh HOME per round: skopeo's blob-info cache would otherwise mount the layers of the previous round.
      const home = { env: { ...process.env, HOME: dir('home') } };
      await mkdir(home.env.HOME, { recursive: true });
      const runs = [];
      for (const [i, p] of payloads.entries()) {
        const layout = dir(`umoci-${i}`);
        await cp(baseLayout, layout, { recursive: true });
        runs.push(
          await runMeasured(
            'umoci',
            ['insert', '--image', `${layout}:base`, '--tag', 'v', p, '/opt/bench/payload.bin'],
            home,
          ),
        );
        const dest = `docker://${proxy.host}/bench/umoci-${turn}:v${i + 1}`;
        runs.push(
          await runMeasured('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v`, dest], home),
        );
        await rm(layout, { recursive: true, force: true });
      }
      return runs;
    },
  };
}

/** Run the paired build bench. */
export async function benchBuildPairs({ quick = false, log = () => {} } = {}) {
  const baseLayerBytes = (quick ? 16 : 256) * MiB;
  const payloadBytes = (quick ? 16 : 200) * MiB;
  const rounds = repeats(5);
  const i = process.argv.indexOf('--only');
  const work = await tmp('build-pairs');
  let reg;
  let proxy;
  try {
    const baseLayout = join(work.path, 'base');
    await addImage(baseLayout, { tag: 'base', layers: 4, layerBytes: baseLayerBytes });
    await runShell(
      `tar -cf - /usr 2>/dev/null | head -c ${3 * payloadBytes} | split -a 1 -d -b ${payloadBytes} - '${join(work.path, 'payload-')}'; true`,
    );
    const payloads = [0, 1, 2].map((n) => join(work.path, `payload-${n}`));
    for (const p of payloads) if ((await stat(p)).size !== payloadBytes) throw new Error(`${p}: /usr is too small`);
    reg = await startRegistry();
    proxy = await startCountingProxy(reg.url);
    const baseRef = `${proxy.host}/bench/base:1`;
    await runMeasured('skopeo', [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci:${baseLayout}:base`,
      `docker://${baseRef}`,
    ]);
    const c = contenders({ baseRef, baseLayout, proxy, payloads, work: work.path });
    const names = ['append-6', 'provider-6', 'before', 'provider', 'umoci+skopeo'].filter(
      (n) =>
        (i < 0 || process.argv[i + 1].split(',').includes(n)) && (n !== 'before' || process.env.BENCH_BUILD_BEFORE),
    );
    const res = Object.fromEntries(names.map((n) => [n, { ms: [], cpuS: [], rssMB: [], uploadedMiB: [], load: [] }]));
    for (let r = 0; r < rounds; r++) {
      c.next();
      // New payload bytes every round (the round number in the first bytes), the same for every contender: no side
      // finds a layer of an earlier round (skopeo's blob-info cache of root lives in /var/lib/containers, not HOME).
      for (const p of payloads) {
        const f = await open(p, 'r+');
        await f.write(Buffer.from(`round ${r} `.padEnd(16, '.')), 0, 16, 0);
        await f.close();
      }
      for (const n of names) {
        // Fresh repositories per round too (the base is mounted into them).
        proxy.reset();
        const runs = await c[n]();
        const x = res[n];
        x.ms.push(
          round(
            runs.reduce((s, q) => s + q.ms, 0),
            0,
          ),
        );
        x.cpuS.push(
          round(
            runs.reduce((s, q) => s + (q.cpuS ?? NaN), 0),
            2,
          ),
        );
        x.rssMB.push(round(Math.max(...runs.map((q) => q.peakRssMB)), 1));
        x.uploadedMiB.push(round(proxy.uploadedBytes() / MiB, 1));
        x.load.push(round(loadavg()[0], 1));
        for (const d of ['a6', 'p6', 'b', 'p', 'home'])
          await rm(join(work.path, `${d}-${r + 1}`), { recursive: true, force: true });
        log(
          `round ${r + 1} ${n}: ${x.ms.at(-1)} ms, CPU ${x.cpuS.at(-1)} s, ${x.rssMB.at(-1)} MiB, ${x.uploadedMiB.at(-1)} MiB up, load ${x.load.at(-1)}`,
        );
      }
    }
    const med = (n, k) => median(res[n][k]);
    const ref = names.includes('umoci+skopeo') ? 'umoci+skopeo' : names[0];
    const rows = names.flatMap((n) => [
      row('build-pairs', `${n} wall (median of ${rounds}) vs ${ref}`, med(n, 'ms') / 1000, med(ref, 'ms') / 1000, 's'),
      row('build-pairs', `${n} client CPU vs ${ref}`, med(n, 'cpuS'), med(ref, 'cpuS'), 's'),
      row('build-pairs', `${n} peak RSS vs ${ref}`, med(n, 'rssMB'), med(ref, 'rssMB'), 'MiB'),
      row('build-pairs', `${n} uploaded vs ${ref}`, med(n, 'uploadedMiB'), med(ref, 'uploadedMiB'), 'MiB'),
    ]);
    return { params: { baseLayerBytes, payloadBytes, rounds, contenders: names }, results: res, rows };
  } finally {
    await proxy?.stop();
    await reg?.stop();
    await work.cleanup();
  }
}

await runIfMain(import.meta.url, 'build-pairs', benchBuildPairs);
