/**
 * Bench 6, memory flatness: our layer build + push (lib/append.mjs: buildLayer of one host file, appended to a tiny
 * base, pushed to a registry) with a small and a 4× larger input, each in its own child process; peak RSS of the two
 * must be within 10% (streams everywhere, nothing proportional to the blob held in memory).
 * Full: 1 GiB vs 4 GiB. Quick: 128 MiB vs 512 MiB.
 */
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { addImage, writeRandomFile } from './lib/layout.mjs';
import { runMeasured } from './lib/proc.mjs';
import { startRegistry } from './lib/registry.mjs';
import { BENCH_DIR, MiB, mbps, round, row, runIfMain, tmp } from './lib/util.mjs';

/** Run the memory bench. */
export async function benchMemory({ quick = false, log = () => {} } = {}) {
  const sizes = quick ? [128 * MiB, 512 * MiB] : [1024 * MiB, 4096 * MiB];
  const work = await tmp('memory');
  let reg;
  try {
    const layout = join(work.path, 'base');
    await addImage(layout, { tag: 'base', layers: 1, layerBytes: MiB });
    reg = await startRegistry();
    const env = { ...process.env, HOME: work.path };
    await runMeasured(
      'skopeo',
      ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${reg.host}/bench/base:1`],
      { env },
    );
    const runs = [];
    for (const size of sizes) {
      const payload = join(work.path, 'payload');
      log(`writing ${size / MiB} MiB payload`);
      await writeRandomFile(payload, size);
      log(`build + push ${size / MiB} MiB`);
      const out = join(work.path, 'out');
      const r = await runMeasured(
        process.execPath,
        [
          join(BENCH_DIR, 'lib', 'append.mjs'),
          `${reg.host}/bench/base:1`,
          `${reg.host}/bench/mem:${size / MiB}`,
          payload,
          out,
        ],
        { env },
      );
      const res = JSON.parse(r.stdout.trim().split('\n').pop());
      runs.push({
        size,
        ms: round(r.ms, 0),
        peakRssMB: round(r.peakRssMB, 1),
        buildMs: round(res.buildMs, 0),
        pushMs: round(res.pushMs, 0),
        mbps: mbps(size, r.ms),
      });
      await rm(payload, { force: true });
      await rm(out, { recursive: true, force: true });
    }
    const [small, large] = runs;
    const label = (n) => (n >= 1024 * MiB ? `${n / 1024 / MiB} GiB` : `${n / MiB} MiB`);
    return {
      params: { sizes },
      runs,
      rows: [
        row(
          'memory',
          `peak RSS build+push ${label(large.size)} vs ${label(small.size)}`,
          large.peakRssMB,
          small.peakRssMB,
          'MiB',
          'lower',
          '≤ 1.10',
        ),
        row(
          'memory',
          `build+push throughput ${label(large.size)} vs ${label(small.size)}`,
          large.mbps,
          small.mbps,
          'MB/s',
          'higher',
        ),
      ],
    };
  } finally {
    await reg?.stop();
    await work.cleanup();
  }
}

await runIfMain(import.meta.url, 'memory', benchMemory);
