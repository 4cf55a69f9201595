/**
 * `node bench/iso.mjs [--quick] [--repeat N]`: the installer ISO end to end from an image in a loopback registry.
 * Ours: `canvos-lite iso --base docker://HOST/bench/iso:base --insecure --output DIR --name bench` (the CLI bundle).
 * Reference: the usual pipeline as separate steps, each intermediate deleted as soon as the next step no longer
 * needs it: `skopeo copy docker://… oci:DIR:base` → `umoci raw unpack --rootless` → `mksquashfs ROOTFS -b 1024k
 * -comp gzip -processors N` (ours' compressor, block size and level 9) plus the kernel and initrd copied out of the
 * rootfs → `xorriso` with CanvOS's flags (dist/iso/xorriso-args.js) over the same ISO tree (our grub/EFI files,
 * extracted once from our first ISO). Both with SOURCE_DATE_EPOCH, TMPDIR and XDG_CACHE_HOME inside their work dir.
 * The image (lib/iso-image.mjs) is cached. Pairs run interleaved (ours first in even pairs, the reference first in
 * odd ones); rows are medians. Disk: ours is sampled every 100 ms (allocated bytes, lib/disk.mjs); the reference's
 * usage only grows within a step, so it is read at each step's end. "Temporary" is everything but the ISO (and its
 * .sha256), "peak disk" includes the ISO written so far. Ours' blob cache (compressed layers, kept for later
 * builds by design) is its own row. Fails unless both ISOs hold the same paths.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { diskUsage, sampleDisk } from './lib/disk.mjs';
import { isoImage } from './lib/iso-image.mjs';
import { runMeasured } from './lib/proc.mjs';
import { startRegistry } from './lib/registry.mjs';
import { ROOT, repeats, round, row, runIfMain, tmp } from './lib/util.mjs';

const EPOCH = '1700000000';
export const REPO = 'bench/iso:base';
const isIsoOutput = (p) => /\.iso(\.partial|\.sha256(\.partial)?)?$/.test(basename(p)) && !p.includes('.staging-');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const envFor = (dir) => ({
  ...process.env,
  SOURCE_DATE_EPOCH: EPOCH,
  TMPDIR: join(dir, 'tmp'),
  XDG_CACHE_HOME: join(dir, 'cache'),
});
const isoPaths = (iso) =>
  execFileSync('xorriso', ['-indev', iso, '-find', '/', '-exec', 'lsdl'], { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .split('\n')
    .map((l) => l.replace(/^.*?'(.*)'$/, '$1'))
    .sort();

/**
 * One run of `canvos-lite iso --base` into `dir` (exported for iso-ab.mjs): `o.cli` another CLI bundle, `o.args`
 * extra CLI arguments, `o.env` extra environment, `o.nodeArgs` arguments for node (e.g. --cpu-prof).
 */
export async function ours(dir, host, o = {}) {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const out = join(dir, 'out');
  const cli = o.cli ?? join(ROOT, 'bin', 'canvos-lite.js');
  // The blob cache persists by design (later builds reuse it): measured on its own, outside the sampled dir.
  const cache = `${dir}-blobs`;
  const disk = sampleDisk(dir, isIsoOutput);
  let r;
  try {
    const args = [cli, 'iso', '--base', `docker://${host}/${REPO}`, '--insecure', '--output', out, '--name', 'bench'];
    const env = { ...envFor(dir), CANVOS_CACHE_DIR: cache, ...o.env };
    r = await runMeasured(process.execPath, [...(o.nodeArgs ?? []), ...args, ...(o.args ?? [])], { env });
  } finally {
    r = { ...r, disk: await disk.stop(), cacheBytes: (await diskUsage(cache)).total };
    rmSync(cache, { recursive: true, force: true });
  }
  return { ...r, iso: join(out, 'bench.iso') };
}

/** Pushes the bench image (lib/iso-image.mjs) to the registry at `host` as REPO. */
export async function pushImage(img, host) {
  await runMeasured('skopeo', [
    'copy',
    '-q',
    '--dest-tls-verify=false',
    `oci:${img.layout}:base`,
    `docker://${host}/${REPO}`,
  ]);
}

/** The reference pipeline, step by step; the template tree holds our ISO's files minus squashfs/kernel/initrd. */
async function reference(dir, host, template, N) {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const env = envFor(dir);
  const [oci, rootfs, tree, out] = ['oci', 'rootfs', 'tree', 'out'].map((d) => join(dir, d));
  mkdirSync(out);
  const steps = [];
  let peakTotal = 0;
  let peakTemp = 0;
  const step = async (name, cmd, args) => {
    const r = await runMeasured(cmd, args, { env });
    const u = await diskUsage(dir, isIsoOutput);
    peakTotal = Math.max(peakTotal, u.total);
    peakTemp = Math.max(peakTemp, u.total - u.output);
    steps.push({ name, ms: Math.round(r.ms), cpuS: r.cpuS, peakRssMB: round(r.peakRssMB, 1) });
  };
  await step('skopeo copy', 'skopeo', [
    'copy',
    '-q',
    '--src-tls-verify=false',
    `docker://${host}/${REPO}`,
    `oci:${oci}:base`,
  ]);
  await step('umoci raw unpack', 'umoci', ['raw', 'unpack', '--rootless', '--image', `${oci}:base`, rootfs]);
  rmSync(oci, { recursive: true, force: true });
  cpSync(template, tree, { recursive: true });
  const mk = `mksquashfs '${rootfs}' '${tree}/rootfs.squashfs' -b 1024k -comp gzip -processors ${N} -noappend -quiet -no-progress`;
  const boot = `cp -L '${rootfs}/boot/vmlinuz' '${tree}/boot/kernel' && cp -L '${rootfs}/boot/initrd' '${tree}/boot/initrd'`;
  await step('mksquashfs', 'bash', ['-c', `set -e; ${boot}; ${mk}`]);
  rmSync(rootfs, { recursive: true, force: true });
  const { xorrisoArgs } = await import('../dist/iso/xorriso-args.js');
  const iso = join(out, 'bench.iso');
  await step('xorriso', 'xorriso', xorrisoArgs({ isoDir: tree, outPath: iso, sourceDateEpoch: Number(EPOCH) }));
  const sum = (k) => steps.reduce((a, s) => a + (s[k] ?? 0), 0);
  return {
    ms: sum('ms'),
    cpuS: steps.every((s) => s.cpuS !== undefined) ? sum('cpuS') : undefined,
    peakRssMB: Math.max(...steps.map((s) => s.peakRssMB)),
    steps,
    disk: { peakTotal, peakTemp },
    iso,
  };
}

/** Our ISO's tree without rootfs.squashfs, kernel and initrd: the files the reference's xorriso maps too. */
function templateFrom(iso, dir) {
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', dir], { stdio: 'ignore' });
  execFileSync('chmod', ['-R', 'u+w', dir]);
  for (const f of ['rootfs.squashfs', 'boot/kernel', 'boot/initrd']) rmSync(join(dir, f), { force: true });
}

await runIfMain(import.meta.url, 'iso', async ({ quick, log }) => {
  const N = availableParallelism();
  const R = repeats(quick ? 1 : 3);
  const img = await isoImage(quick, log);
  const reg = await startRegistry();
  const t = await tmp('iso');
  try {
    await pushImage(img, reg.host);
    const template = join(t.path, 'template');
    const runs = { ours: [], theirs: [] };
    let isoBytes = 0;
    for (let i = 0; i < R; i++) {
      const order = i % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
      for (const side of order) {
        const dir = join(t.path, `${side}-${i}`);
        mkdirSync(dir);
        const r = side === 'ours' ? await ours(dir, reg.host) : await reference(dir, reg.host, template, N);
        r.isoBytes = statSync(r.iso).size;
        if (side === 'ours' && i === 0) templateFrom(r.iso, template);
        if (side === 'theirs' && i === 0) {
          const [a, b] = [isoPaths(join(t.path, 'ours-0', 'out', 'bench.iso')), isoPaths(r.iso)];
          if (a.join('\n') !== b.join('\n'))
            throw new Error(`the ISOs hold different paths:\nours ${a}\nreference ${b}`);
        }
        if (side === 'ours') isoBytes = r.isoBytes;
        log(
          `${side} ${i + 1}/${R}: ${Math.round(r.ms)} ms, CPU ${round(r.cpuS ?? NaN, 1)} s, RSS ${round(r.peakRssMB, 0)} MiB, ` +
            `peak disk ${round(r.disk.peakTotal / 2 ** 20, 0)} MiB (temporary ${round(r.disk.peakTemp / 2 ** 20, 0)}), ISO ${round(r.isoBytes / 2 ** 20, 0)} MiB` +
            (r.steps ? ` [${r.steps.map((s) => `${s.name} ${s.ms} ms`).join(', ')}]` : ''),
        );
        runs[side].push({
          ms: Math.round(r.ms),
          cpuS: r.cpuS,
          peakRssMB: round(r.peakRssMB, 1),
          disk: r.disk,
          isoBytes: r.isoBytes,
          cacheBytes: r.cacheBytes,
          steps: r.steps,
        });
        if (i > 0 || side === 'theirs') rmSync(dir, { recursive: true, force: true });
      }
      if (i === 0) rmSync(join(t.path, 'ours-0'), { recursive: true, force: true });
    }
    const med = (side, f) => median(runs[side].map(f));
    const MiBf = (b) => b / 2 ** 20;
    const tag = `${round(img.rootfsBytes / 1e6, 0)} MB rootfs`;
    const rows = [
      row(
        'iso',
        `wall time, iso --base (${tag}) vs skopeo+umoci+mksquashfs+xorriso`,
        med('ours', (r) => r.ms) / 1000,
        med('theirs', (r) => r.ms) / 1000,
        's',
        'lower',
        '≤ 0.3',
      ),
      row(
        'iso',
        'client CPU (user+sys)',
        med('ours', (r) => r.cpuS),
        med('theirs', (r) => r.cpuS),
        's',
      ),
      row(
        'iso',
        'peak RSS',
        med('ours', (r) => r.peakRssMB),
        med('theirs', (r) => r.peakRssMB),
        'MiB',
      ),
      row(
        'iso',
        'peak disk (ISO included)',
        MiBf(med('ours', (r) => r.disk.peakTotal)),
        MiBf(med('theirs', (r) => r.disk.peakTotal)),
        'MiB',
      ),
      row(
        'iso',
        'peak temporary disk (all but the ISO)',
        MiBf(med('ours', (r) => r.disk.peakTemp)),
        MiBf(med('theirs', (r) => r.disk.peakTemp)),
        'MiB',
      ),
      row(
        'iso',
        'peak disk (ISO included) in % of the ISO size, ours',
        med('ours', (r) => (100 * r.disk.peakTotal) / r.isoBytes),
        null,
        '%',
        'lower',
        '≤ 110',
      ),
      row(
        'iso',
        'blob cache written (persistent; ours only)',
        MiBf(med('ours', (r) => r.cacheBytes ?? 0)),
        null,
        'MiB',
      ),
      row('iso', 'ISO size', MiBf(isoBytes), MiBf(med('theirs', (r) => r.isoBytes)), 'MiB'),
    ];
    return { repeats: R, threads: N, rootfsBytes: img.rootfsBytes, runs, rows };
  } finally {
    await reg.stop();
    await t.cleanup();
  }
});
