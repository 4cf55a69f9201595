/**
 * Block compressors for the squashfs writer. Only gzip (squashfs id 1, zlib-wrapped deflate, as mksquashfs
 * writes it) exists today; zstd/xz slot in by adding a Compressor with their squashfs id (6 / 4).
 * Async calls run on the libuv threadpool, so several data blocks compress in parallel.
 */
import { promisify } from 'node:util';
import { deflate, deflateSync } from 'node:zlib';

/** The compression algorithms the writer can emit. */
export type SquashfsCompression = 'gzip';

/** A squashfs compressor: its superblock id plus async (data blocks) and sync (metadata blocks) entry points. */
export interface Compressor {
  readonly id: number;
  compress(raw: Buffer): Promise<Buffer>;
  compressSync(raw: Buffer): Buffer;
}

const deflateAsync = promisify(deflate);

/** Returns the compressor for `name` at `level` (gzip: 1..9). */
export function makeCompressor(name: SquashfsCompression, level: number): Compressor {
  // Only 'gzip' today; a switch keeps the seam for zstd/xz obvious.
  switch (name) {
    case 'gzip': {
      // windowBits 15 / memLevel 8 = mksquashfs's default gzip options (no compressor-options block needed).
      const o = { level, windowBits: 15, memLevel: 8 };
      return {
        id: 1,
        // One output chunk per block: the default 16 KiB chunkSize bounces every 16 KiB back to the main thread.
        compress: (raw) => deflateAsync(raw, { ...o, chunkSize: raw.length + (raw.length >> 6) + 1024 }),
        compressSync: (raw) => deflateSync(raw, o),
      };
    }
  }
}
