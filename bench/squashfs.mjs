/**
 * Bench: our pure-TS squashfs writer (writeSquashfs over walkDirectory, run from dist/ after `npx tsc`) against
 * `mksquashfs DIR out -b 1M -comp gzip -processors N -noappend` and squashfs-tools-ng's `tar2sqfs -j N` (fed by
 * `tar -cf -`), all gzip level 9 with N = available cores, on a generated ~300 MB tree (compressible text, random
 * data, duplicates, thousands of small files). Prints wall time, CPU time (user+sys), image size and peak RSS;
 * writes bench/results/squashfs.json. `--quick` uses ~40 MB; `--repeat N` runs the tools N times interleaved and
 * keeps each one's best. Each tool runs as its own process (CPU and peak RSS via GNU time). Also times our writer at
 * level 6 (the speed/size trade-off) and on the pure-JS backend (CANVOS_NO_NATIVE=1: node:zlib, not libdeflate).
 * Fails unless our image lists exactly like mksquashfs's (`unsquashfs -lln`) and sqfsdiff finds no difference.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, writeFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasured } from './lib/proc.mjs';
import { MiB, repeats, round, row, runIfMain, tmp } from './lib/util.mjs';

const SELF = fileURLToPath(import.meta.url);

// Child mode: `node bench/squashfs.mjs --child <dir> <out> <concurrency> [level]` runs only our writer.
if (process.argv[2] === '--child') {
  const { writeSquashfs, walkDirectory } = await import('../dist/iso/squashfs/index.js');
  const { compressor } = await import('../dist/native/load.js');
  const [dir, out, conc, level] = process.argv.slice(3);
  const r = await writeSquashfs(walkDirectory(dir), out, { concurrency: Number(conc), level: Number(level ?? 9) });
  const c = compressor();
  process.stdout.write(JSON.stringify({ ...r, backend: c.backend, versions: c.versions }) + '\n');
  process.exit(0);
}

const WORDS = 'the of and to in is was for on that with as by at from his her an which are be this had not but are'
  .split(' ')
  .concat(Array.from({ length: 400 }, (_, i) => `word${(i * 7919) % 1000}x`));

/** Deterministic-enough pseudo text (compresses ~3-4x with gzip, like config files and scripts). */
function text(bytes) {
  const parts = [];
  let n = 0;
  const rnd = randomBytes(Math.ceil(bytes / 4));
  for (let i = 0; n < bytes; i++) {
    const w = WORDS[rnd[i % rnd.length] % WORDS.length] + (i % 13 === 12 ? '\n' : ' ');
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

async function writeRandomFile(path, size) {
  const fh = await open(path, 'w');
  for (let left = size; left > 0; left -= MiB) await fh.write(randomBytes(Math.min(MiB, left)));
  await fh.close();
}

/** Builds the input tree; returns its content size in bytes and the file count. */
export async function buildTree(root, scale) {
  let bytes = 0;
  let files = 0;
  const smallDirs = Math.round(40 * scale);
  for (let d = 0; d < smallDirs; d++) {
    const dir = join(root, 'usr', 'share', `pkg${d}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < 250; f++) {
      const size = 200 + ((d * 251 + f * 977) % 8000); // 0.2..8 KB, mostly fragment tails
      await writeFile(join(dir, `file${f}.txt`), text(size));
      bytes += size;
      files++;
    }
  }
  await mkdir(join(root, 'usr', 'lib'), { recursive: true });
  for (let i = 0; i < Math.round(30 * scale); i++) {
    const size = Math.round((1 + (i % 7)) * 0.9 * MiB) + i;
    await writeFile(join(root, 'usr', 'lib', `lib${i}.so`), text(size));
    bytes += size;
    files++;
  }
  await mkdir(join(root, 'opt', 'blobs'), { recursive: true });
  for (let i = 0; i < Math.round(12 * scale); i++) {
    const size = Math.round((2 + (i % 5) * 3) * MiB) + 333;
    await writeRandomFile(join(root, 'opt', 'blobs', `blob${i}.bin`), size);
    bytes += size;
    files++;
  }
  // Duplicates (squashfs dedupes them): a copied blob and copied text libraries.
  for (const [from, to] of [
    ['opt/blobs/blob0.bin', 'opt/blob0.copy'],
    ['usr/lib/lib1.so', 'usr/lib/lib1.copy.so'],
  ]) {
    const s = (await stat(join(root, from))).size;
    await writeFile(join(root, to), await (await import('node:fs/promises')).readFile(join(root, from)));
    bytes += s;
    files++;
  }
  return { bytes, files };
}

/** Keeps, per tool, the run with the lowest wall time (and the lowest CPU time seen) over interleaved repeats. */
function keeper(label, out) {
  const k = { label, out, best: undefined, runsMs: [], runsCpuS: [] };
  k.add = (r) => {
    k.runsMs.push(Math.round(r.ms));
    if (r.cpuS !== undefined) k.runsCpuS.push(round(r.cpuS, 2));
    if (!k.best || r.ms < k.best.ms) k.best = r;
  };
  k.result = async () => ({
    label,
    ms: Math.round(k.best.ms),
    runsMs: k.runsMs,
    cpuS: k.runsCpuS.length ? Math.min(...k.runsCpuS) : null,
    runsCpuS: k.runsCpuS,
    peakRssMB: round(k.best.peakRssMB, 1),
    bytes: (await stat(out)).size,
    ...(k.best.stdout.trim().startsWith('{') ? { child: JSON.parse(k.best.stdout.trim().split('\n').pop()) } : {}),
  });
  return k;
}

await runIfMain(import.meta.url, 'squashfs', async ({ quick, log }) => {
  const N = availableParallelism();
  const R = repeats(1);
  const t = await tmp('squashfs');
  try {
    const src = join(t.path, 'src');
    await mkdir(src);
    log(`building ${quick ? '~40' : '~300'} MB tree`);
    const input = await buildTree(src, quick ? 0.13 : 1);
    log(`tree: ${(input.bytes / 1e6).toFixed(1)} MB in ${input.files} files; ${N} threads, best of ${R}`);
    await runMeasured('sync', []);

    const oursOut = join(t.path, 'ours.sqfs');
    const mkOut = join(t.path, 'mk.sqfs');
    const tsOut = join(t.path, 'tar2sqfs.sqfs');
    const o6Out = join(t.path, 'ours6.sqfs');
    const jsOut = join(t.path, 'oursjs.sqfs');
    const child = (out, level, env) => () =>
      runMeasured(
        process.execPath,
        [SELF, '--child', src, out, String(N), String(level)],
        env ? { env: { ...process.env, ...env } } : {},
      );
    // All gzip level 9 (mksquashfs's default), N threads, 1 MiB blocks. Ours at level 6 and ours on the pure-JS
    // backend (node:zlib instead of libdeflate) are for information.
    const tools = [
      [keeper('canvos-lite writeSquashfs', oursOut), child(oursOut, 9)],
      [
        keeper('mksquashfs', mkOut),
        () =>
          runMeasured('mksquashfs', [
            src,
            mkOut,
            '-b',
            '1M',
            '-comp',
            'gzip',
            '-processors',
            String(N),
            '-noappend',
            '-quiet',
            '-no-progress',
          ]),
      ],
      [
        keeper('tar2sqfs', tsOut),
        () =>
          runMeasured('sh', ['-c', `tar -C '${src}' -cf - . | tar2sqfs -q -f -c gzip -b 1048576 -j ${N} '${tsOut}'`]),
      ],
      [keeper('canvos-lite writeSquashfs level 6', o6Out), child(o6Out, 6)],
      [keeper('canvos-lite writeSquashfs, CANVOS_NO_NATIVE=1', jsOut), child(jsOut, 9, { CANVOS_NO_NATIVE: '1' })],
    ];
    // Interleaved (ours, mksquashfs, tar2sqfs, ... then again): load from other jobs hits every tool alike.
    for (let r = 0; r < R; r++) {
      for (const [k, fn] of tools) {
        const res = await fn();
        k.add(res);
        log(
          `${k.label}: ${Math.round(res.ms)} ms wall, ${res.cpuS === undefined ? '?' : round(res.cpuS, 2)} s CPU, ${round(res.peakRssMB, 1)} MB RSS`,
        );
      }
    }
    const [ours, mk, ts, ours6, oursJs] = await Promise.all(tools.map(([k]) => k.result()));
    log(
      `ours ${ours.bytes} bytes (${ours.child?.backend ?? '?'} backend), mksquashfs ${mk.bytes}, tar2sqfs ${ts.bytes}`,
    );

    // Same content check: both images must list identically, every field (guards the bench against measuring a
    // broken writer). Directory sizes count run headers, which split at inode-table block boundaries: they match
    // because our writer lays out inodes exactly as mksquashfs does (tail ends of files >= 1 block are blocks, not
    // fragments; before that, 2 directories of this tree differed by one 12-byte header).
    const list = async (img) => (await runMeasured('unsquashfs', ['-lln', img])).stdout;
    const [lo, lm] = [await list(oursOut), await list(mkOut)];
    if (lo !== lm) {
      const a = lo.split('\n');
      const b = lm.split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      throw new Error(
        `our image lists differently from mksquashfs at line ${i + 1}:\n  ours: ${a[i]}\n  mksquashfs: ${b[i]}`,
      );
    }
    const diff = await runMeasured('sqfsdiff', ['-T', '-a', mkOut, '-b', oursOut], { allowFail: true });
    if (diff.code !== 0) throw new Error(`sqfsdiff finds differences: ${diff.stdout.slice(0, 500)}`);

    const rows = [
      // Our default run uses libdeflate when the native addon is built (npm ci), else node:zlib: say which.
      row(
        'squashfs',
        `wall time, ${round(input.bytes / 1e6, 0)} MB tree vs mksquashfs -processors ${N}${ours.child?.backend === 'native' ? '' : ' (node:zlib: no native addon)'}`,
        ours.ms / 1000,
        mk.ms / 1000,
        's',
        'lower',
        '≤ 1.2',
      ),
      ...(ours.cpuS !== null && mk.cpuS !== null
        ? [row('squashfs', 'CPU time (user+sys) vs mksquashfs', ours.cpuS, mk.cpuS, 's')]
        : []),
      row('squashfs', 'wall time vs tar2sqfs', ours.ms / 1000, ts.ms / 1000, 's'),
      row('squashfs', 'image size vs mksquashfs', ours.bytes / 1e6, mk.bytes / 1e6, 'MB'),
      row('squashfs', 'peak RSS vs mksquashfs', ours.peakRssMB, mk.peakRssMB, 'MB'),
      row('squashfs', 'peak RSS vs tar2sqfs', ours.peakRssMB, ts.peakRssMB, 'MB'),
      row('squashfs', 'wall time, ours at level 6 vs mksquashfs (level 9)', ours6.ms / 1000, mk.ms / 1000, 's'),
      row('squashfs', 'image size, ours at level 6 vs mksquashfs (level 9)', ours6.bytes / 1e6, mk.bytes / 1e6, 'MB'),
      row(
        'squashfs',
        'wall time, ours on node:zlib (CANVOS_NO_NATIVE=1) vs mksquashfs',
        oursJs.ms / 1000,
        mk.ms / 1000,
        's',
      ),
      ...(oursJs.cpuS !== null && mk.cpuS !== null
        ? [row('squashfs', 'CPU time, ours on node:zlib (CANVOS_NO_NATIVE=1) vs mksquashfs', oursJs.cpuS, mk.cpuS, 's')]
        : []),
    ];
    return {
      threads: N,
      repeats: R,
      inputBytes: input.bytes,
      inputFiles: input.files,
      ours,
      mksquashfs: mk,
      tar2sqfs: ts,
      oursLevel6: ours6,
      oursJs,
      ratioWallVsMksquashfs: round(ours.ms / mk.ms, 3),
      ratioCpuVsMksquashfs: ours.cpuS && mk.cpuS ? round(ours.cpuS / mk.cpuS, 3) : null,
      ratioSizeVsMksquashfs: round(ours.bytes / mk.bytes, 4),
      rows,
    };
  } finally {
    await t.cleanup();
  }
});
