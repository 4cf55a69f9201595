/**
 * gzip level sweep of the layer chunk compressor (`compressor()`, 1 MiB chunks, `chunksInFlight()` in flight: cores + 1), levels
 * 1..9, on three payloads a provider layer is made of: a tar of /usr (text, libraries), Go/ELF binaries (what k3s,
 * the agent and the registry tools are) and random bytes (already-compressed content). Per level: wall MB/s, client
 * CPU MB/s (user+sys, the thread pool included: steadier than wall on a shared machine) and the output size. Both
 * backends: native libdeflate and node:zlib (CANVOS_NO_NATIVE's path); their levels are not the same algorithms.
 * `node bench/gzip-levels.mjs [--quick] [--repeat N]`: 64 MiB per payload (quick: 16 MiB), best of N (default 2).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compressor, jsCompressor } from '../dist/native/load.js';
import { chunksInFlight, compressChunks } from '../dist/layers/compress.js';
import { writeRandomFile } from './lib/layout.mjs';
import { runShell } from './lib/proc.mjs';
import { MiB, bestOf, mbps, repeats, round, row, runIfMain, tmp } from './lib/util.mjs';

const LEVELS = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/** Compress `data` (already in memory: the sweep measures the compressor, not the disk) and time it. */
async function sweepOne(data, c, level) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let out = 0;
  async function* src() {
    for (let i = 0; i < data.length; i += MiB) yield data.subarray(i, i + MiB);
  }
  for await (const b of compressChunks(src(), 'gzip', { level, compressor: c })) out += b.length;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, out };
}

/** Run the sweep; rows compare each level with level 6 (the historical default) on the same backend and payload. */
export async function benchGzipLevels({ quick = false, log = () => {} } = {}) {
  const size = (quick ? 16 : 64) * MiB;
  const n = repeats(2);
  const work = await tmp('gzip-levels');
  try {
    const files = {
      usr: join(work.path, 'usr.tar'),
      binaries: join(work.path, 'binaries'),
      random: join(work.path, 'random'),
    };
    await runShell(
      `tar -cf - /usr/lib /usr/share /usr/bin 2>/dev/null | head -c ${size} > '${files.usr}'; test $(stat -c %s '${files.usr}') -eq ${size}`,
    );
    // Static Go binaries (k3s, the agent and kubectl are the same kind) padded with other ELF files.
    await runShell(
      `cat /usr/bin/docker-registry /usr/bin/skopeo /usr/bin/umoci /usr/bin/node /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1 2>/dev/null | head -c ${size} > '${files.binaries}'; test $(stat -c %s '${files.binaries}') -eq ${size}`,
    );
    await writeRandomFile(files.random, size);
    const backends = [['js', jsCompressor()]];
    const native = compressor();
    if (native.backend === 'native') backends.unshift(['native', native]);
    else log('native addon not built: js backend only');
    const results = {};
    const rows = [];
    for (const [payload, file] of Object.entries(files)) {
      const data = await readFile(file);
      for (const [name, c] of backends) {
        const per = {};
        for (const level of LEVELS) {
          const r = await bestOf(n, () => sweepOne(data, c, level));
          per[level] = {
            mbps: mbps(size, r.ms),
            cpuMbps: mbps(size, r.cpuMs),
            outMiB: round(r.out / MiB, 2),
            ratio: round(r.out / size, 4),
            runsMs: r.runsMs,
          };
          log(
            `${payload} ${name} -${level}: ${per[level].mbps} MB/s, CPU ${per[level].cpuMbps} MB/s, ${per[level].outMiB} MiB`,
          );
        }
        results[`${payload}/${name}`] = per;
        for (const level of LEVELS.filter((l) => l !== 6)) {
          const [a, b] = [per[level], per[6]];
          rows.push(
            row('gzip-levels', `${payload} ${name} -${level} vs -6, CPU MB/s`, a.cpuMbps, b.cpuMbps, 'MB/s', 'higher'),
          );
          rows.push(
            row('gzip-levels', `${payload} ${name} -${level} vs -6, output`, a.outMiB, b.outMiB, 'MiB', 'lower'),
          );
        }
      }
    }
    if (process.env.BENCH_LEVELS_MD) await writeFile(process.env.BENCH_LEVELS_MD, markdown(results, size));
    return { params: { size, repeats: n, concurrency: chunksInFlight({}) }, results, rows };
  } finally {
    await work.cleanup();
  }
}

/** The table bench/README.md carries: one line per payload × backend, `MB/s wall / MB/s CPU / output %` per level. */
function markdown(results, size) {
  const head = `| payload (${size / MiB} MiB) / backend | ${LEVELS.map((l) => `-${l}`).join(' | ')} |`;
  const sep = `|---|${LEVELS.map(() => '---').join('|')}|`;
  const lines = Object.entries(results).map(
    ([k, per]) =>
      `| ${k} | ${LEVELS.map((l) => `${per[l].mbps} / ${per[l].cpuMbps} / ${round(per[l].ratio * 100, 1)} %`).join(' | ')} |`,
  );
  return [head, sep, ...lines].join('\n') + '\n';
}

await runIfMain(import.meta.url, 'gzip-levels', benchGzipLevels);
