/**
 * Pure-JS chunk compressor over node:zlib (async, so chunks compress in parallel on the libuv pool).
 * zstd uses node:zlib's zstd when the running Node has it (22.15+); otherwise it needs the native addon.
 */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { CanvosError } from '../errors.js';
import type { ChunkCompressor, ZstdDecoder } from './types.js';

const gzipAsync = promisify(zlib.gzip);

type ZstdZlib = {
  zstdCompress?: (b: Buffer, o: object, cb: (e: Error | null, r: Buffer) => void) => void;
  zstdDecompressSync?: (b: Buffer) => Buffer;
  constants: Record<string, number>;
};

function zstdUnavailable(): CanvosError {
  return new CanvosError('ERR_CONFIG', 'zstd needs the native addon (libzstd) or Node.js >= 22.15', {
    hint: "unset CANVOS_NO_NATIVE; off linux x64/arm64 install libdeflate-dev libzstd-dev and run canvos-lite's scripts/install-native.mjs; or use gzip layers",
  });
}

/** The node:zlib backend. */
export function jsCompressor(): ChunkCompressor {
  const z = zlib as unknown as ZstdZlib;
  return {
    backend: 'js',
    versions: { zlib: process.versions.zlib },
    gzip: (chunk, level) => gzipAsync(chunk, { level: Math.min(Math.max(level, 1), 9) }),
    zstd: (chunk, level) => {
      const fn = z.zstdCompress;
      if (!fn) return Promise.reject(zstdUnavailable());
      const params = {
        [z.constants.ZSTD_c_compressionLevel ?? 100]: level,
        [z.constants.ZSTD_c_checksumFlag ?? 201]: 1,
      };
      return new Promise((resolve, reject) => {
        fn(chunk, { params }, (e, r) => {
          if (e) reject(e);
          else resolve(r);
        });
      });
    },
    zstdDecoder: (): ZstdDecoder => {
      throw zstdUnavailable();
    },
  };
}
