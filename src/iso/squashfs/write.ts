/**
 * writeSquashfs: turns an FsEntry stream (a merged image rootfs, any order) into a squashfs 4.0 image without
 * root and without unpacking: file data streams straight into compressed blocks, metadata is kept in memory and
 * appended at the end, then the superblock is written and the temp file renamed into place.
 */
import { availableParallelism } from 'node:os';
import { open, rename, rm } from 'node:fs/promises';
import { CanvosError } from '../../errors.js';
import type { FsEntry } from '../../tar/entry.js';
import { makeCompressor, squashfsLevel } from './compressor.js';
import type { SquashfsCompression } from './compressor.js';
import { DataWriter } from './data-writer.js';
import {
  FLAG_DUPLICATES,
  FLAG_NO_FRAGMENTS,
  FLAG_NO_XATTRS,
  INVALID_TABLE,
  SUPERBLOCK_SIZE,
  encodeSuperblock,
} from './format.js';
import { lookupTable } from './metadata.js';
import { buildTables } from './tables.js';
import { Tree } from './tree.js';
import { IdTable, XattrTable } from './xattrs.js';
import { abortedOr, throwIfAborted } from '../../util/abort.js';
import { tempPathFor } from '../../util/atomic-file.js';

/** Progress of writeSquashfs. */
export interface SquashfsProgress {
  /** 'data' while entries stream in, 'tables' while metadata is written, 'done' at the end. */
  phase: 'data' | 'tables' | 'done';
  /** Entries consumed so far. */
  entries: number;
  /** File content bytes consumed so far. */
  transferred: number;
}

/** Options of writeSquashfs. */
export interface SquashfsOptions {
  /** Data block size, a power of two from 4 KiB to 1 MiB. Default: 1 MiB (CanvOS: `mksquashfs -b 1024k`). */
  blockSize?: number | undefined;
  /** Compression algorithm. Default: 'gzip' (zlib, squashfs id 1). */
  compression?: SquashfsCompression | undefined;
  /**
   * gzip level: 1..12 on the native addon (libdeflate), 1..9 on node:zlib (ERR_USAGE otherwise). Default: the
   * backend's `DEFAULT_SQUASHFS_LEVEL`, 6 on libdeflate (no larger than mksquashfs's zlib 9 on the trees measured,
   * 2.5x faster than libdeflate 9) and 9 on node:zlib.
   */
  level?: number | undefined;
  /** Superblock mkfs time and mtime of implicit directories. Default: SOURCE_DATE_EPOCH, else 0 (reproducible). */
  mkfsTime?: number | undefined;
  /**
   * Pack files shorter than a block into shared fragment blocks. Default: true. The tail end of a longer file is
   * stored as its own short block, as mksquashfs does by default (so both lay out metadata identically).
   */
  fragments?: boolean | undefined;
  /** Also pack the tail ends of files of a block or more into fragments (mksquashfs -always-use-fragments). Default: false. */
  alwaysUseFragments?: boolean | undefined;
  /** Store files with identical content (sha256 + size) once. Default: true. */
  dedupe?: boolean | undefined;
  /**
   * Data blocks compressed at once on the libuv threadpool (like mksquashfs -processors; up to `2 × concurrency + 2`
   * blocks are read ahead, about twice that many block sizes of memory in flight). The threadpool
   * (UV_THREADPOOL_SIZE, 4 by default) caps real parallelism and also serves the file reads.
   * Default: min(os.availableParallelism(), UV_THREADPOOL_SIZE or 4).
   */
  concurrency?: number | undefined;
  /**
   * fsync the image before it is renamed into place. `false` for a staging file that is consumed right away (the ISO
   * moves it into the ISO file and deletes it): that sync only wrote it to disk once more. Default: true.
   */
  sync?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Called as entries are consumed (at most every 64 entries or 16 MiB) and at phase changes. */
  onProgress?: ((p: SquashfsProgress) => void) | undefined;
}

/** What writeSquashfs produced. */
export interface SquashfsResult {
  /** Image size on disk (padded to 4 KiB). */
  bytes: number;
  inodes: number;
  files: number;
  dirs: number;
}

function usage(msg: string, hint: string): CanvosError {
  return new CanvosError('ERR_USAGE', `squashfs: ${msg}`, { hint });
}

function defaultTime(): number {
  const env = process.env['SOURCE_DATE_EPOCH'];
  const n = env === undefined ? 0 : Number(env);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** Writes `entries` as a squashfs image at `outPath` (via a temp file renamed into place). */
export async function writeSquashfs(
  entries: AsyncIterable<FsEntry>,
  outPath: string,
  opts: SquashfsOptions = {},
): Promise<SquashfsResult> {
  const blockSize = opts.blockSize ?? 1 << 20;
  if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 4096 || blockSize > 1 << 20) {
    throw usage(`blockSize ${blockSize} is invalid`, 'use a power of two between 4096 and 1048576');
  }
  const level = squashfsLevel(opts.level);
  const pool = Number(process.env['UV_THREADPOOL_SIZE']) || 4;
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? Math.min(availableParallelism(), pool)));
  const mkfsTime = opts.mkfsTime ?? defaultTime();
  const fragments = opts.fragments ?? true;
  const dedupe = opts.dedupe ?? true;
  const { signal, onProgress } = opts;
  const c = makeCompressor(opts.compression ?? 'gzip', level);

  const tmp = tempPathFor(outPath);
  const fh = await open(tmp, 'w');
  try {
    const tree = new Tree(mkfsTime);
    let count = 0;
    let lastReport = 0;
    const report = (phase: SquashfsProgress['phase'], bytes: number): void =>
      onProgress?.({ phase, entries: count, transferred: bytes });
    const data = new DataWriter(fh, SUPERBLOCK_SIZE, c, {
      blockSize,
      concurrency,
      fragments,
      alwaysUseFragments: opts.alwaysUseFragments ?? false,
      dedupe,
      signal,
      onBytes: (b) => {
        if (b - lastReport >= 1 << 24) report('data', (lastReport = b));
      },
    });
    for await (const e of entries) {
      throwIfAborted(signal);
      if (e.type === 'file') tree.add(e, await data.writeFile(e.path, e.content, e.size));
      else {
        e.content?.resume();
        tree.add(e);
      }
      if (++count % 64 === 0) report('data', data.bytesIn);
    }
    const dataEnd = await data.finish();
    throwIfAborted(signal);
    report('tables', data.bytesIn);

    tree.resolveHardlinks();
    const ids = new IdTable();
    const xattrs = new XattrTable();
    const t = buildTables(tree.root, c, ids, xattrs);
    // Layout after the data: inode table, directory table, fragment table, id table, xattr table.
    const parts: Buffer[] = [...t.inodes];
    const inodeTable = dataEnd;
    const dirTable = inodeTable + t.inodes.reduce((n, b) => n + b.length, 0);
    parts.push(...t.dirs);
    let pos = dirTable + t.dirs.reduce((n, b) => n + b.length, 0);
    const frag = Buffer.alloc(16 * data.fragPos.length);
    data.fragPos.forEach((p, i) => {
      frag.writeBigUInt64LE(BigInt(p), 16 * i);
      frag.writeUInt32LE(data.fragWord[i] ?? 0, 16 * i + 8);
    });
    const ft = lookupTable(c, frag, pos);
    const fragTable = pos + ft.blocks.length;
    parts.push(ft.blocks, ft.index);
    pos = fragTable + ft.index.length;
    const it = ids.encode(c, pos);
    parts.push(it.bytes);
    pos += it.bytes.length;
    let xattrTable = INVALID_TABLE;
    if (xattrs.count > 0) {
      const xt = xattrs.encode(c, pos);
      parts.push(xt.bytes);
      xattrTable = BigInt(xt.start);
      pos += xt.bytes.length;
    }
    const bytesUsed = pos;
    const padded = Math.ceil(bytesUsed / 4096) * 4096;
    parts.push(Buffer.alloc(padded - bytesUsed));
    const tail = Buffer.concat(parts);
    await fh.write(tail, 0, tail.length, dataEnd);
    const sb = encodeSuperblock({
      inodes: t.inodeCount,
      mkfsTime,
      blockSize,
      fragments: data.fragPos.length,
      compression: c.id,
      flags:
        (fragments ? 0 : FLAG_NO_FRAGMENTS) | (dedupe ? FLAG_DUPLICATES : 0) | (xattrs.count > 0 ? 0 : FLAG_NO_XATTRS),
      ids: ids.count,
      rootInode: BigInt(t.rootRef),
      bytesUsed: BigInt(bytesUsed),
      idTable: BigInt(it.start),
      xattrTable,
      inodeTable: BigInt(inodeTable),
      dirTable: BigInt(dirTable),
      fragTable: BigInt(fragTable),
      exportTable: INVALID_TABLE,
    });
    await fh.write(sb, 0, sb.length, 0);
    // Dedupe rewinds may have left stale bytes past the end.
    await fh.truncate(padded);
    if (opts.sync ?? true) await fh.sync();
    await fh.close();
    await rename(tmp, outPath);
    report('done', data.bytesIn);
    return { bytes: padded, inodes: t.inodeCount, files: t.files, dirs: t.dirCount };
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw abortedOr(signal, err);
  }
}
