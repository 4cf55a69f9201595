/**
 * Block compressors for the squashfs writer. Only gzip (squashfs id 1, zlib-wrapped deflate, as mksquashfs
 * writes it) exists today; zstd/xz slot in by adding a Compressor with their squashfs id (6 / 4).
 * Async calls run on the libuv threadpool, so several data blocks compress in parallel.
 *
 * Data blocks go through libdeflate (the optional native addon, src/native) when it is loaded: at the same level it
 * deflates about 2.3x faster than zlib for output within ~0.1 % of zlib's size. The addon emits zlib streams
 * (header and adler32 computed on its thread); an addon from before its zlib() emits gzip members, whose deflate
 * stream is re-wrapped as zlib (2-byte header, adler32 trailer) in place: the same bytes. Without the addon (or with
 * CANVOS_NO_NATIVE=1) node:zlib does the work. Either way the image is reproducible per backend and level.
 */
import { promisify } from 'node:util';
import { deflate, deflateSync } from 'node:zlib';
import { CanvosError } from '../../errors.js';
import { compressor as chunkCompressor } from '../../native/load.js';

/** The compression algorithms the writer can emit. */
export type SquashfsCompression = 'gzip';

/** A squashfs compressor: its superblock id plus async (data blocks) and sync (metadata blocks) entry points. */
export interface Compressor {
  readonly id: number;
  /** 'native' (libdeflate) or 'js' (node:zlib) for the data blocks. */
  readonly backend: 'native' | 'js';
  compress(raw: Buffer): Promise<Buffer>;
  compressSync(raw: Buffer): Buffer;
}

const deflateAsync = promisify(deflate);

/** Adler-32 (RFC 1950) of `buf`: sums reduced every 5552 bytes, the longest run that cannot overflow 2^53. */
/* eslint-disable @typescript-eslint/no-non-null-assertion -- hot loop: every index is below buf.length by the loop
   bounds, and a per-byte fallback would cost throughput on every squashfs block. */
export function adler32(buf: Uint8Array): number {
  let a = 1;
  let b = 0;
  const n = buf.length;
  let i = 0;
  while (i < n) {
    const end = Math.min(i + 5552, n);
    // 8 bytes per step: the loop overhead, not the adds, dominates in V8.
    for (; i + 8 <= end; i += 8) {
      a += buf[i]!;
      b += a;
      a += buf[i + 1]!;
      b += a;
      a += buf[i + 2]!;
      b += a;
      a += buf[i + 3]!;
      b += a;
      a += buf[i + 4]!;
      b += a;
      a += buf[i + 5]!;
      b += a;
      a += buf[i + 6]!;
      b += a;
      a += buf[i + 7]!;
      b += a;
    }
    for (; i < end; i++) {
      a += buf[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return (b * 65536 + a) >>> 0;
}
/* eslint-enable @typescript-eslint/no-non-null-assertion */

/** zlib's header for `level` (CMF 0x78 = deflate, 32 KiB window; FLEVEL as zlib's deflate sets it). */
function zlibHeader(level: number): number {
  const flevel = level < 2 ? 0 : level < 6 ? 1 : level === 6 ? 2 : 3;
  const h = (0x78 << 8) | (flevel << 6);
  return h + 31 - (h % 31);
}

/**
 * Turns the gzip member `gz` (libdeflate's: a 10-byte header without optional fields, 8-byte trailer) of `raw`
 * into the zlib stream of the same deflate data, reusing gz's memory: header at bytes 8..9, adler32 over the
 * crc32. Throws when the member has optional header fields (never from libdeflate).
 */
export function gzipToZlib(gz: Buffer, raw: Uint8Array, level: number): Buffer {
  if (gz.length < 18 || gz[0] !== 0x1f || gz[1] !== 0x8b || gz[2] !== 8 || gz[3] !== 0) {
    throw new Error('squashfs: unexpected gzip member from the native compressor');
  }
  gz.writeUInt16BE(zlibHeader(level), 8);
  gz.writeUInt32BE(adler32(raw), gz.length - 8);
  return gz.subarray(8, gz.length - 4);
}

/** Highest gzip level of each backend: libdeflate's 10..12 search harder than any zlib level. */
export const MAX_SQUASHFS_LEVEL: Readonly<Record<'native' | 'js', number>> = { native: 12, js: 9 };

/**
 * Default gzip level of each backend. libdeflate (native): 6, the fastest level whose squashfs is no larger than
 * `mksquashfs -comp gzip -b 1024k` (zlib 9, CanvOS's) on the trees measured (bench/README.md "squashfs level": a
 * 727 MB Debian rootfs with a kernel, a 178 MB minbase, the boot test fixture): 2.5x less compression CPU than
 * libdeflate 9 for a 0.7 % larger image. node:zlib (js): 9, mksquashfs's own default (zlib's levels are not
 * libdeflate's, so the fallback keeps CanvOS's level).
 */
export const DEFAULT_SQUASHFS_LEVEL: Readonly<Record<'native' | 'js', number>> = { native: 6, js: 9 };

/**
 * `level` checked against the backend in use (1..12 on libdeflate, 1..9 on node:zlib; ERR_USAGE otherwise), or
 * that backend's default when undefined.
 */
export function squashfsLevel(level: number | undefined): number {
  const backend = chunkCompressor().backend;
  if (level === undefined) return DEFAULT_SQUASHFS_LEVEL[backend];
  const max = MAX_SQUASHFS_LEVEL[backend];
  if (!Number.isInteger(level) || level < 1 || level > max) {
    throw new CanvosError('ERR_USAGE', `squashfs: level ${String(level)} is invalid`, {
      hint:
        backend === 'native'
          ? 'use 1..12 (libdeflate)'
          : 'use 1..9 (node:zlib: the native addon is not loaded, so libdeflate levels 10..12 are not available)',
    });
  }
  return level;
}

/** The squashfs superblock's compression id of each supported compressor. */
const COMPRESSION_ID: Readonly<Record<SquashfsCompression, number>> = { gzip: 1 };

/** Returns the compressor for `name` at `level` (gzip: 1..9). Only gzip today: zstd/xz would branch on `name`. */
export function makeCompressor(name: SquashfsCompression, level: number): Compressor {
  const id = COMPRESSION_ID[name];
  // windowBits 15 / memLevel 8 = mksquashfs's default gzip options (no compressor-options block needed). Metadata
  // blocks (8 KiB, sync) stay on node:zlib, whose levels end at 9.
  const o = { level: Math.min(level, 9), windowBits: 15, memLevel: 8 };
  const compressSync = (raw: Buffer): Buffer => deflateSync(raw, o);
  const cc = chunkCompressor();
  if (cc.backend === 'native') {
    // The addon's zlib() computes the adler32 on its thread too (the same bytes as the re-wrapped gzip member).
    const zlib = cc.zlib;
    return {
      id,
      backend: 'native',
      compress: zlib ? (raw) => zlib(raw, level) : async (raw) => gzipToZlib(await cc.gzip(raw, level), raw, level),
      compressSync,
    };
  }
  return {
    id,
    backend: 'js',
    // One output chunk per block: the default 16 KiB chunkSize bounces every 16 KiB back to the main thread.
    compress: (raw) => deflateAsync(raw, { ...o, chunkSize: raw.length + (raw.length >> 6) + 1024 }),
    compressSync,
  };
}
