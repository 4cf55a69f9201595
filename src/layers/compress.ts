/**
 * Parallel, deterministic layer compression (pigz-style): the uncompressed stream is cut into fixed-size chunks,
 * each compressed as an independent gzip member on the libuv thread pool, and the members are emitted in order.
 * Concatenated members are one valid gzip stream (RFC 1952 §2.2). Output depends only on the bytes, the chunk size,
 * the level and the backend (native libdeflate or node:zlib) — never on how the input happened to be chunked.
 * Memory is bounded by (concurrency + 1) × chunkSize. `'zstd'` works the same way with independent zstd frames
 * (with content checksums): concatenated frames are one valid zstd stream (RFC 8878 §3).
 */
import { availableParallelism } from 'node:os';
import { CanvosError } from '../errors.js';
import { compressor, type ChunkCompressor } from '../native/load.js';
import { MediaType } from '../oci/media-types.js';

/** Layer blob compression. `'zstd'` needs the native addon (or Node >= 22.15). */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/**
 * Chunk size: 1 MiB. Large enough that the per-member cost (18 header/trailer bytes, a fresh 32 KiB window) is
 * noise (<0.5% size), small enough that chunks spread across cores for layers of a few MiB.
 */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
/** gzip level 6: the gzip/Go default, so sizes match what users get from docker/crane; libdeflate makes it cheap. */
export const DEFAULT_GZIP_LEVEL = 6;
/** zstd level 3: zstd's own default (`zstd` CLI, containerd, buildkit), a good speed/ratio point for layers. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** Options of {@link compressChunks}. */
export interface CompressOptions {
  /** Compression level. Default: 6 for gzip, 3 for zstd. */
  level?: number | undefined;
  /** Bytes per independently compressed chunk. Default: 1 MiB. Changing it changes the digest. */
  chunkSize?: number | undefined;
  /** Chunks compressed at once. Default: max(2, os.availableParallelism()). */
  concurrency?: number | undefined;
  /** Backend. Default: the native addon when built, else node:zlib (digests differ between the two). */
  compressor?: ChunkCompressor | undefined;
  signal?: AbortSignal | undefined;
}

/** The OCI media type of a layer blob with this compression. */
export function layerMediaType(c: LayerCompression): string {
  return c === 'gzip' ? MediaType.OciLayerGzip : c === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayerTar;
}

type ChunkCodec = (chunk: Buffer) => Promise<Buffer>;

function codecFor(c: LayerCompression, opts: CompressOptions): ChunkCodec {
  if (c === 'gzip') {
    const z = opts.compressor ?? compressor();
    const level = opts.level ?? DEFAULT_GZIP_LEVEL;
    return (chunk) => z.gzip(chunk, level);
  }
  if (c === 'zstd') {
    const z = opts.compressor ?? compressor();
    const level = opts.level ?? DEFAULT_ZSTD_LEVEL;
    // Rejects with ERR_CONFIG (and a hint) on the first chunk when no zstd implementation is available.
    return (chunk) => z.zstd(chunk, level);
  }
  throw new CanvosError('ERR_CONFIG', `unsupported layer compression ${JSON.stringify(c)}`, {
    hint: "use 'gzip', 'zstd' or 'none'",
  });
}

/** Compress an async byte stream into ordered gzip members or zstd frames. `'none'` passes bytes through unchanged. */
export async function* compressChunks(
  source: AsyncIterable<Buffer>,
  c: LayerCompression,
  opts: CompressOptions = {},
): AsyncGenerator<Buffer> {
  if (c === 'none') {
    yield* source;
    return;
  }
  const codec = codecFor(c, opts);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const concurrency = Math.max(1, opts.concurrency ?? Math.max(2, availableParallelism()));
  const pending: Array<Promise<Buffer>> = [];
  let parts: Buffer[] = [];
  let have = 0;
  let submitted = 0;
  const submit = (): void => {
    const p = codec(Buffer.concat(parts, have));
    p.catch(() => undefined); // observed when awaited in order; avoid unhandled-rejection noise meanwhile
    pending.push(p);
    parts = [];
    have = 0;
    submitted++;
  };
  try {
    for await (const buf of source) {
      let b = buf;
      while (b.length > 0) {
        const take = Math.min(chunkSize - have, b.length);
        parts.push(b.subarray(0, take));
        have += take;
        b = b.subarray(take);
        if (have === chunkSize) {
          submit();
          // The oldest results, in order, until fewer than `concurrency` are in flight.
          for (const p of pending.splice(0, pending.length - concurrency + 1)) yield await p;
          opts.signal?.throwIfAborted();
        }
      }
    }
    // An empty input still needs one member/frame: zero bytes are not a valid gzip or zstd file.
    if (have > 0 || submitted === 0) submit();
    for (const p of pending.splice(0)) yield await p;
  } finally {
    pending.length = 0;
  }
}
