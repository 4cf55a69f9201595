/**
 * The warm-destination copy (bench/copy.mjs scenario `warm`): each tool first copies the image set from A into
 * `bench/x/img<i>` of its own fresh registry (which warms its blob-location memory: canvos-lite's
 * `~/.cache/canvos-lite/blobs/locations`, skopeo's containers/image blob-info cache, `/var/lib/containers/cache` for
 * root and `~/.local/share/containers/cache` otherwise), then copies the same set into the new repositories
 * `bench/y/img<i>` of that registry: that second copy is timed. Every blob is already in the registry, so both tools
 * should mount everything and upload nothing; the bytes the destination registry read while it ran (its rchar:
 * request bodies and files) show it. Runs are paired (ours, skopeo, ours, skopeo …); medians are reported.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMeasured } from './proc.mjs';
import { startRegistry } from './registry.mjs';
import { ROOT, round, row } from './util.mjs';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function rchar(pid) {
  const m = /rchar: (\d+)/.exec(await readFile(`/proc/${pid}/io`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const ours = (src, dst) => [
  process.execPath,
  [join(ROOT, 'bin', 'canvos-lite.js'), 'copy', '--all-platforms', '--src-insecure', '--dest-insecure', src, dst],
];
const skopeo = (src, dst) => [
  'skopeo',
  ['copy', '--all', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', src, dst],
];

/** One tool's warm run: warm `bench/x`, then the measured copies into `bench/y` (summed over the images). */
async function warmRun(tool, srcHost, images, env) {
  const reg = await startRegistry();
  try {
    for (let i = 0; i < images; i++) {
      const [cmd, args] = tool(`docker://${srcHost}/bench/img${i}:1`, `docker://${reg.host}/bench/x/img${i}:1`);
      await runMeasured(cmd, args, { env });
    }
    const acc = { ms: 0, cpuS: 0, peakRssMB: 0, destReadKiB: 0 };
    for (let i = 0; i < images; i++) {
      const [cmd, args] = tool(`docker://${srcHost}/bench/img${i}:1`, `docker://${reg.host}/bench/y/img${i}:1`);
      const r0 = await rchar(reg.pid);
      const r = await runMeasured(cmd, args, { env });
      acc.destReadKiB += ((await rchar(reg.pid)) - r0) / 1024;
      acc.ms += r.ms;
      acc.cpuS += r.cpuS ?? NaN;
      acc.peakRssMB = Math.max(acc.peakRssMB, r.peakRssMB);
    }
    return acc;
  } finally {
    await reg.stop();
  }
}

/** Paired warm-destination runs; returns { ours, skopeo, rows } with the medians. */
export async function warmScenario({ srcHost, images, env, repeats, totalBytes, log = () => {} }) {
  // BENCH_WARM_NOCACHE=1 adds canvos-lite without its blob-location cache to each round (the behaviour before it).
  const noCache = process.env.BENCH_WARM_NOCACHE === '1';
  const runs = { ours: [], skopeo: [], off: [] };
  for (let rep = 0; rep < repeats; rep++) {
    log(
      `[warm] round ${rep + 1}/${repeats}: canvos-lite, then skopeo${noCache ? ', then canvos-lite without cache' : ''}`,
    );
    runs.ours.push(await warmRun(ours, srcHost, images, env));
    runs.skopeo.push(await warmRun(skopeo, srcHost, images, env));
    if (noCache) runs.off.push(await warmRun(ours, srcHost, images, { ...env, CANVOS_BLOB_LOCATIONS: '0' }));
  }
  const med = (xs, k) => median(xs.map((x) => x[k]));
  const summary = (xs) => ({
    ms: med(xs, 'ms'),
    cpuS: med(xs, 'cpuS'),
    peakRssMB: med(xs, 'peakRssMB'),
    destReadKiB: med(xs, 'destReadKiB'),
    runsMs: xs.map((x) => Math.round(x.ms)),
  });
  const o = summary(runs.ours);
  const s = summary(runs.skopeo);
  const what = `${images} images, ${round(totalBytes / 2 ** 20, 0)} MiB already in the registry`;
  const rows = [
    row('copy', `[warm] wall time (${what}), median`, o.ms / 1000, s.ms / 1000, 's', 'lower', '≤ 1.0'),
    ...(Number.isNaN(o.cpuS)
      ? []
      : [row('copy', '[warm] client CPU (user+sys), median', o.cpuS, s.cpuS, 's', 'lower')]),
    row('copy', '[warm] peak RSS, median', o.peakRssMB, s.peakRssMB, 'MiB', 'lower'),
    row('copy', '[warm] bytes the destination registry read', o.destReadKiB, s.destReadKiB, 'KiB', 'lower'),
  ];
  const off = noCache ? summary(runs.off) : undefined;
  if (off)
    rows.push(
      row('copy', '[warm] wall time without the blob-location cache, median', off.ms / 1000, s.ms / 1000, 's', 'lower'),
    );
  return { ours: o, skopeo: s, ...(off ? { oursWithoutCache: off } : {}), rows };
}
