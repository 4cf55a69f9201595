/**
 * Disk used under a directory: allocated bytes (st_blocks × 512, so sparse files and holes count for what they
 * really occupy), split into output (files `isOutput(path)` accepts, e.g. the ISO being written) and temporary
 * (everything else). `sampleDisk` polls every `intervalMs` (default 100) and keeps the peaks.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** {total, output} allocated bytes under `dir` now (files vanishing during the walk are skipped). */
export async function diskUsage(dir, isOutput = () => false) {
  let total = 0;
  let output = 0;
  const walk = async (d) => {
    let names;
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      const bytes = st.blocks * 512;
      total += bytes;
      if (isOutput(p)) output += bytes;
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { total, output };
}

/** Starts sampling; `stop()` resolves {peakTotal, peakTemp, samples} (peakTemp: max of total − output). */
export function sampleDisk(dir, isOutput, intervalMs = 100) {
  let peakTotal = 0;
  let peakTemp = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const u = await diskUsage(dir, isOutput);
      peakTotal = Math.max(peakTotal, u.total);
      peakTemp = Math.max(peakTemp, u.total - u.output);
      samples++;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { peakTotal, peakTemp, samples };
    },
  };
}
