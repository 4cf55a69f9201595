/**
 * Chooses the chunk compressor backend: the optional N-API addon in native/ (libdeflate + libzstd) when it loads
 * (node-gyp-build: a build from source in native/build/Release, else the committed prebuild for linux x64/arm64 in
 * native/prebuilds), else the pure-JS path over node:zlib. Both expose the same interface; decompressed output
 * is identical, compressed bytes differ between backends (so digests are reproducible per backend).
 * `CANVOS_NO_NATIVE=1` (or true/on/yes; util/env-switch.ts) forces the JS path; a value that is not on or off throws
 * ERR_CONFIG.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { envSwitch } from '../util/env-switch.js';
import { jsCompressor } from './fallback.js';
import type { ChunkCompressor, NativeBinding } from './types.js';

export type { ChunkCompressor, ZstdDecoder } from './types.js';

function loadBinding(): NativeBinding | undefined {
  if (envSwitch('CANVOS_NO_NATIVE')) return undefined;
  try {
    const require = createRequire(import.meta.url);
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
    // src/native/load.ts, dist/native/load.js and the CLI bundle's chunks (dist/bundle/*.mjs) are all two levels
    // below the package root.
    return nodeGypBuild(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native'));
  } catch {
    return undefined;
  }
}

function nativeCompressor(b: NativeBinding): ChunkCompressor {
  const { zlib } = b; // absent from addons built before it
  const call = (fn: NativeBinding['gzip'], chunk: Buffer, level: number) =>
    new Promise<Buffer>((resolve, reject) => {
      fn(chunk, level, (err, out) => {
        if (err) reject(err);
        else if (out) resolve(out);
        else reject(new Error('the native compressor returned no output'));
      });
    });
  return {
    backend: 'native',
    versions: { libdeflate: b.libdeflateVersion, zstd: b.zstdVersion },
    gzip: (chunk, level) => call(b.gzip, chunk, Math.min(Math.max(level, 1), 12)),
    zlib: zlib ? (chunk, level) => call(zlib, chunk, Math.min(Math.max(level, 1), 12)) : undefined,
    zstd: (chunk, level) => call(b.zstd, chunk, level),
    zstdDecoder: () => new b.ZstdDecoder(),
  };
}

let cached: ChunkCompressor | undefined;

/** The compressor in use (native when available). Resolved once per process. */
export function compressor(): ChunkCompressor {
  if (!cached) {
    const b = loadBinding();
    cached = b ? nativeCompressor(b) : jsCompressor();
  }
  return cached;
}

/** True when the native addon is loaded (and not disabled by CANVOS_NO_NATIVE). */
export function nativeAvailable(): boolean {
  return compressor().backend === 'native';
}

/** The JS fallback regardless of the addon (tests compare both). */
export { jsCompressor } from './fallback.js';
