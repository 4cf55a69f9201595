/**
 * Bench 1, registry → registry copy: a multi-platform image set seeded into registry A is copied by
 * `canvos-lite copy` into a fresh registry B and by `skopeo copy --all` into a fresh registry C; wall time, MB/s and
 * peak RSS side by side. Target: ours/skopeo time ≤ 0.7.
 *
 * Two scenarios on the same set: `loopback` (A, B, C and the clients share this machine's cores, so the registries'
 * own CPU, reported as its own row, sets a floor under both tools) and `wan`, where A sits behind a WAN stand-in
 * (lib/wan.mjs: latency per request and a per-connection throughput cap, env BENCH_WAN_LATENCY_MS / _STREAM_MBPS),
 * the case of pulling from a remote registry into a site's local one, and `warm` (lib/warm.mjs): the set copied
 * again into new repositories of a registry that already holds every blob (paired runs, medians; env
 * BENCH_WARM_REPEATS, default 5). BENCH_SCENARIO=loopback|wan|warm runs one;
 * BENCH_COPY_JOBS=N passes `--jobs N` to canvos-lite (default: its own default).
 */
import { join } from 'node:path';
import { addImage } from './lib/layout.mjs';
import { runMeasured } from './lib/proc.mjs';
import { startRegistry } from './lib/registry.mjs';
import { startWan } from './lib/wan.mjs';
import { warmScenario } from './lib/warm.mjs';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { MiB, ROOT, mbps, repeats, round, row, runIfMain, tmp } from './lib/util.mjs';

/** Run the copy bench. Full: 3 images × 2 platforms × 5 layers × 10 MiB (300 MiB). Quick: × 3 layers × 2 MiB. */
export async function benchCopy({ quick = false, log = () => {} } = {}) {
  const images = 3;
  const platforms = ['linux/amd64', 'linux/arm64'];
  const layers = quick ? 3 : 5;
  const layerBytes = (quick ? 2 : 10) * MiB;
  const work = await tmp('copy');
  const regs = [];
  try {
    log(`writing ${images}×${platforms.length}×${layers} layers of ${layerBytes / MiB} MiB`);
    const layout = join(work.path, 'layout');
    for (let i = 0; i < images; i++) await addImage(layout, { tag: `img${i}`, platforms, layers, layerBytes });
    const a = await startRegistry();
    regs.push(a);
    for (let i = 0; i < images; i++) {
      await runMeasured('skopeo', [
        'copy',
        '--all',
        '--quiet',
        '--dest-tls-verify=false',
        `oci:${layout}:img${i}`,
        `docker://${a.host}/bench/img${i}:1`,
      ]);
    }
    const totalBytes = images * platforms.length * layers * layerBytes;
    const env = { ...process.env, HOME: work.path };
    const cpuTicks = async (pid) => {
      const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
      return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks (1/100 s)
    };
    const copyAll = async (argsFor, watch) => {
      let acc = { ms: 0, peakRssMB: 0, cpuS: 0, registriesCpuS: 0 };
      for (let i = 0; i < images; i++) {
        const [cmd, args] = argsFor(i);
        const t0 = await Promise.all(watch.map(cpuTicks));
        const r = await runMeasured(cmd, args, { env });
        const t1 = await Promise.all(watch.map(cpuTicks));
        const regCpu = t1.reduce((n, t, k) => n + t - t0[k], 0) / 100;
        acc = {
          ms: acc.ms + r.ms,
          peakRssMB: Math.max(acc.peakRssMB, r.peakRssMB),
          cpuS: acc.cpuS + (r.cpuS ?? NaN),
          registriesCpuS: acc.registriesCpuS + regCpu,
        };
      }
      return acc;
    };
    const best = (xs) => xs.reduce((x, y) => (y.ms < x.ms ? y : x));
    // Repetitions alternate ours/skopeo into fresh destination registries; the best of each is kept (shared machine).
    const R = repeats(2);
    const scenario = async (name, srcHost) => {
      const runs = { ours: [], skopeo: [] };
      for (let rep = 0; rep < R; rep++) {
        const [b, c] = await Promise.all([startRegistry(), startRegistry()]);
        try {
          log(`[${name}] run ${rep + 1}/${R}: canvos-lite copy A → B`);
          runs.ours.push(
            await copyAll(
              (i) => [
                process.execPath,
                [
                  join(ROOT, 'bin', 'canvos-lite.js'),
                  'copy',
                  ...(process.env.BENCH_COPY_JOBS ? ['--jobs', process.env.BENCH_COPY_JOBS] : []),
                  '--all-platforms',
                  '--src-insecure',
                  '--dest-insecure',
                  `docker://${srcHost}/bench/img${i}:1`,
                  `docker://${b.host}/bench/img${i}:1`,
                ],
              ],
              [a.pid, b.pid],
            ),
          );
          log(`[${name}] run ${rep + 1}/${R}: skopeo copy --all A → C`);
          runs.skopeo.push(
            await copyAll(
              (i) => [
                'skopeo',
                [
                  'copy',
                  '--all',
                  '--quiet',
                  '--src-tls-verify=false',
                  '--dest-tls-verify=false',
                  `docker://${srcHost}/bench/img${i}:1`,
                  `docker://${c.host}/bench/img${i}:1`,
                ],
              ],
              [a.pid, c.pid],
            ),
          );
          // Both copies must hold the same root manifests (byte-exact copies).
          for (let i = 0; i < images; i++) {
            const inspect = (h) =>
              runMeasured('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${h}/bench/img${i}:1`]).then(
                (r) => r.stdout,
              );
            const [mb, mc] = await Promise.all([inspect(b.host), inspect(c.host)]);
            if (mb !== mc) throw new Error(`img${i}: canvos-lite and skopeo copies differ`);
          }
        } finally {
          await Promise.all([b.stop(), c.stop()]);
        }
      }
      // The table keeps the best run; the medians of the paired runs go into the JSON too (and the log).
      const med = (xs) => {
        const v = [...xs].sort((x, y) => x - y);
        return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
      };
      const medians = (rs) => ({
        ms: Math.round(med(rs.map((r) => r.ms))),
        cpuS: round(med(rs.map((r) => r.cpuS)), 2),
        peakRssMB: round(med(rs.map((r) => r.peakRssMB)), 1),
      });
      const ours = { ...best(runs.ours), runsMs: runs.ours.map((r) => Math.round(r.ms)), median: medians(runs.ours) };
      const theirs = {
        ...best(runs.skopeo),
        runsMs: runs.skopeo.map((r) => Math.round(r.ms)),
        median: medians(runs.skopeo),
      };
      log(
        `[${name}] medians of ${R}: ours ${ours.median.ms} ms (CPU ${ours.median.cpuS} s, RSS ${ours.median.peakRssMB} MiB), ` +
          `skopeo ${theirs.median.ms} ms (CPU ${theirs.median.cpuS} s, RSS ${theirs.median.peakRssMB} MiB), ` +
          `ratio ${round(ours.median.ms / theirs.median.ms, 3)}, load ${loadavg()[0].toFixed(1)}`,
      );
      const tag = name === 'loopback' ? '' : `[${name}] `;
      const rows = [
        row(
          'copy',
          `${tag}wall time (${round(totalBytes / MiB, 0)} MiB)`,
          ours.ms / 1000,
          theirs.ms / 1000,
          's',
          'lower',
          '≤ 0.7',
        ),
        row('copy', `${tag}throughput`, mbps(totalBytes, ours.ms), mbps(totalBytes, theirs.ms), 'MB/s', 'higher'),
        row('copy', `${tag}peak RSS`, ours.peakRssMB, theirs.peakRssMB, 'MiB', 'lower'),
        ...(Number.isNaN(ours.cpuS)
          ? []
          : [row('copy', `${tag}client CPU (user+sys)`, ours.cpuS, theirs.cpuS, 's', 'lower')]),
        row(
          'copy',
          `${tag}registries' CPU during the copy (A + dest)`,
          ours.registriesCpuS,
          theirs.registriesCpuS,
          's',
          'lower',
        ),
      ];
      return {
        ours: { ...ours, mbps: mbps(totalBytes, ours.ms) },
        skopeo: { ...theirs, mbps: mbps(totalBytes, theirs.ms) },
        rows,
      };
    };
    const only = process.env.BENCH_SCENARIO;
    const wanCfg = {
      latencyMs: Number(process.env.BENCH_WAN_LATENCY_MS ?? 30),
      bytesPerSec: Number(process.env.BENCH_WAN_STREAM_MBPS ?? 8) * MiB,
    };
    const out = { params: { images, platforms, layers, layerBytes, totalBytes, repeats: R, wan: wanCfg }, rows: [] };
    if (only !== 'wan' && only !== 'warm') {
      out.loopback = await scenario('loopback', a.host);
      out.rows.push(...out.loopback.rows);
    }
    if (!only || only === 'warm') {
      const repeatsWarm = Number(process.env.BENCH_WARM_REPEATS ?? 5);
      out.warm = await warmScenario({ srcHost: a.host, images, env, repeats: repeatsWarm, totalBytes, log });
      out.rows.push(...out.warm.rows);
    }
    if (only !== 'loopback' && only !== 'warm') {
      const wan = await startWan(a.host, wanCfg.latencyMs, wanCfg.bytesPerSec);
      try {
        out.wan = await scenario(
          `wan ${wanCfg.latencyMs} ms, ${wanCfg.bytesPerSec / MiB} MiB/s per connection`,
          wan.host,
        );
        out.rows.push(...out.wan.rows);
      } finally {
        await wan.stop();
      }
    }
    return out;
  } finally {
    await Promise.all(regs.map((r) => r.stop()));
    await work.cleanup();
  }
}

await runIfMain(import.meta.url, 'copy', benchCopy);
