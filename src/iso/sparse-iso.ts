/**
 * Keeps the ISO's temporary disk near the ISO's own size: xorriso builds the image from sparse placeholders of the
 * big files the build wrote (squashfs, kernel, initrd: same size and mode, no blocks), its output (stdout) is
 * written with every all-zero 4 KiB block left as a hole, and each real file is then moved into its placeholder's
 * extents from its end backwards, truncated behind each chunk. Peak: the ISO plus one chunk, instead of the ISO
 * plus the squashfs. Nothing in the ISO checksums file content (no `-md5`; the boot info table patches only the El
 * Torito image; the GPT CRCs cover the partition tables), so the result is the same bytes as an ISO written from
 * the real files (test/iso/sparse-iso.test.ts compares them).
 *
 * The placeholders live on a tmpfs (/dev/shm, else the temp dir when it is one) when there is one, mapped into the
 * ISO with `-map`: xorriso reads their holes as the shared zero page there, while on a disk filesystem every hole
 * page read allocates and zeroes page cache (as much as the squashfs), which cost ~1.5–3 s of CPU on the ISO bench
 * (bench/README.md "ISO, round 4"). The ISO bytes are the same either way.
 */
import { chmod, mkdtemp, open, rename, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import { throwIfAborted } from '../util/abort.js';
import { runXorriso, type RunXorrisoOptions } from './run-xorriso.js';
import { writeAll } from './sparse-write.js';
import { xorrisoArgs } from './xorriso-args.js';

/** Bytes moved per step; also the extra disk at the peak. */
const MOVE_CHUNK = 8 << 20;

/** One extent of a file in an ISO: `bytes` of the file starting at byte `fileOffset`, at ISO byte `isoOffset`. */
export interface IsoExtent {
  isoOffset: number;
  fileOffset: number;
  bytes: number;
}

/**
 * The extents of the files `paths` (ISO paths, e.g. `/rootfs.squashfs`) of `sizes` bytes in the ISO `iso`, from
 * one `xorriso -find / -type f -exec report_lba` (a line per extent; files of 4 GiB and more have several).
 */
export async function isoFileExtents(
  iso: string,
  sizes: ReadonlyMap<string, number>,
  opts: RunXorrisoOptions = {},
): Promise<Map<string, IsoExtent[]>> {
  const out = await runXorriso(['-indev', iso, '-find', '/', '-type', 'f', '-exec', 'report_lba'], opts);
  const rows = [...out.matchAll(/^File data lba:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*\d+\s*,\s*'(.*)'$/gm)]
    .map((m) => ({ xt: Number(m[1]), lba: Number(m[2]), blocks: Number(m[3]), path: m[4] ?? '' }))
    .sort((x, y) => x.xt - y.xt);
  const result = new Map<string, IsoExtent[]>();
  for (const [path, size] of sizes) {
    const extents: IsoExtent[] = [];
    let fileOffset = 0;
    for (const r of rows.filter((x) => x.path === path)) {
      const bytes = Math.min(r.blocks * 2048, size - fileOffset);
      if (bytes <= 0) break;
      extents.push({ isoOffset: r.lba * 2048, fileOffset, bytes });
      fileOffset += bytes;
    }
    if (fileOffset !== size) {
      throw new CanvosError('ERR_ISO', `xorriso reports ${fileOffset} of ${size} bytes of ${path} in ${iso}`, {
        hint: 'a bug in canvos-lite or an unexpected xorriso version: please report it with `xorriso -version`',
      });
    }
    result.set(path, extents);
  }
  return result;
}

/**
 * Moves `file` into its extents in `iso` (zeros there so far), from its end backwards, truncating `file` behind
 * every chunk, and removes it. The ISO's size does not change.
 */
export async function moveIntoExtents(
  file: string,
  iso: string,
  extents: readonly IsoExtent[],
  signal?: AbortSignal,
): Promise<void> {
  const size = (await stat(file)).size;
  const end = extents.reduce((n, e) => n + e.bytes, 0);
  if (end !== size) throw new CanvosError('ERR_ISO', `${file} has ${size} bytes, its ISO extents ${end}`);
  const src = await open(file, 'r+');
  const dst = await open(iso, 'r+');
  try {
    const buf = Buffer.allocUnsafe(Math.min(MOVE_CHUNK, Math.max(size, 1)));
    for (const e of [...extents].reverse()) {
      for (let left = e.bytes; left > 0;) {
        throwIfAborted(signal);
        const n = Math.min(buf.length, left);
        left -= n;
        const { bytesRead } = await src.read(buf, 0, n, e.fileOffset + left);
        if (bytesRead !== n) throw new CanvosError('ERR_ISO', `${file}: short read at ${e.fileOffset + left}`);
        await writeAll(dst, buf.subarray(0, n), e.isoOffset + left);
        await src.truncate(e.fileOffset + left);
      }
    }
  } finally {
    await src.close();
    await dst.close();
  }
  await rm(file, { force: true });
}

/** Inputs of {@link writeIso}. */
export interface WriteIsoInput {
  /** Staging tree mapped to the ISO root (see xorrisoArgs). */
  isoDir: string;
  /** Output file (e.g. `<name>.iso.partial`). */
  outPath: string;
  sourceDateEpoch?: number | undefined;
  /**
   * Files of the tree (relative paths, e.g. `rootfs.squashfs`) the build owns: each is set aside, replaced by a
   * sparse placeholder of its size and mode, and moved (consumed) into the ISO after xorriso ran. Never a file
   * the caller gave (it would be truncated). Default: none.
   */
  moveIn?: readonly string[] | undefined;
  /**
   * Where the placeholders of `moveIn` go: 'auto' a tmpfs when there is one (see the file header), else the tree;
   * 'tree' always in the tree, in place of the file. The ISO bytes are the same. Default: 'auto'.
   */
  placeholders?: 'auto' | 'tree' | undefined;
}

/** statfs(2) type of tmpfs. */
const TMPFS_MAGIC = 0x01021994;

/** A new directory on a tmpfs (/dev/shm, else the temp dir when it is a tmpfs), or undefined when there is none. */
async function tmpfsDir(): Promise<string | undefined> {
  for (const base of ['/dev/shm', tmpdir()]) {
    try {
      if ((await statfs(base)).type === TMPFS_MAGIC) return await mkdtemp(join(base, 'canvos-iso-'));
    } catch {
      // missing or not writable: try the next one
    }
  }
  return undefined;
}

/** Runs xorriso over `isoDir` into `outPath` (sparse), then moves the `moveIn` files into their placeholders. */
export async function writeIso(input: WriteIsoInput, opts: RunXorrisoOptions = {}): Promise<void> {
  const aside = await mkdtemp(join(input.isoDir, '..', '.aside-'));
  const shm = input.moveIn?.length && input.placeholders !== 'tree' ? await tmpfsDir() : undefined;
  try {
    const moved = new Map<string, { host: string; size: number }>();
    const extraMaps: { disk: string; iso: string }[] = [];
    for (const [i, rel] of (input.moveIn ?? []).entries()) {
      const path = join(input.isoDir, rel);
      const host = join(aside, String(i));
      const st = await stat(path);
      await rename(path, host);
      // Off the tree on a tmpfs (mapped to the same ISO path), else in its place.
      const placeholderPath = shm ? join(shm, String(i)) : path;
      const placeholder = await open(placeholderPath, 'w');
      await placeholder.truncate(st.size).finally(() => placeholder.close());
      await chmod(placeholderPath, st.mode & 0o7777);
      if (shm) extraMaps.push({ disk: placeholderPath, iso: `/${rel}` });
      moved.set(`/${rel}`, { host, size: st.size });
    }
    await rm(input.outPath, { force: true });
    const { isoDir, sourceDateEpoch } = input;
    await runXorriso(xorrisoArgs({ isoDir, outPath: 'stdio:/dev/fd/1', sourceDateEpoch, extraMaps }), {
      ...opts,
      stdoutTo: input.outPath,
    });
    if (shm) await rm(shm, { recursive: true, force: true });
    if (moved.size === 0) return;
    const sizes = new Map([...moved].map(([p, m]) => [p, m.size]));
    const extents = await isoFileExtents(input.outPath, sizes, { ...opts, onProgress: undefined });
    for (const [p, m] of moved) await moveIntoExtents(m.host, input.outPath, extents.get(p) ?? [], opts.signal);
  } finally {
    await rm(aside, { recursive: true, force: true });
    if (shm) await rm(shm, { recursive: true, force: true });
  }
}
