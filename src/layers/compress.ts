/**
 * Parallel, deterministic layer compression (pigz-style): the uncompressed stream is cut into fixed-size chunks,
 * each compressed as an independent gzip member on the libuv thread pool, and the members are emitted in order.
 * Concatenated members are one valid gzip stream (RFC 1952 §2.2). Output depends only on the bytes, the chunk size,
 * the level and the backend (native libdeflate or node:zlib) — never on how the input happened to be chunked.
 * Memory is bounded by about twice (concurrency + 1) × chunkSize (inputs and outputs). `'zstd'` works the same way with independent zstd frames
 * (with content checksums): concatenated frames are one valid zstd stream (RFC 8878 §3).
 */
import { availableParallelism } from 'node:os';
import { CanvosError } from '../errors.js';
import { compressor, type ChunkCompressor } from '../native/load.js';
import { MediaType } from '../image/media-types.js';
import { throwIfAborted } from '../util/abort.js';
import { fixedChunks } from '../util/chunks.js';

/** Layer blob compression. `'zstd'` needs the native addon (or Node >= 22.15). */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/**
 * Chunk size: 1 MiB. Large enough that the per-member cost (18 header/trailer bytes, a fresh 32 KiB window) is
 * noise (<0.5% size), small enough that chunks spread across cores for layers of a few MiB.
 */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
/**
 * gzip level 1, chosen by measurement (bench/gzip-levels.mjs, bench/README.md): on libdeflate, level 1 compresses a
 * tar of /usr 1.5× and Go binaries 2.3× faster than level 6, for 1.2 % and 8 % more bytes, and compression is most of
 * a provider build's CPU. crane appends with level 1 too; Docker/BuildKit and umoci use Go's default (6), so sizes
 * and digests differ from theirs (`--compression-level 6` for their sizes).
 */
export const DEFAULT_GZIP_LEVEL = 1;
/** zstd level 3: zstd's own default (`zstd` CLI, containerd, buildkit), a good speed/ratio point for layers. */
export const DEFAULT_ZSTD_LEVEL = 3;

/** The levels {@link compressionLevel} accepts: gzip's 1 (fastest) to 9 (smallest), zstd's 1 to 19. */
const LEVEL_RANGE: Readonly<Record<'gzip' | 'zstd', readonly [number, number]>> = { gzip: [1, 9], zstd: [1, 19] };

/**
 * The effective level of `c` (`level` checked, or the default): ERR_CONFIG (exit 3) with a hint on anything but a
 * whole number in range. `what` names the option in the message (`--compression-level`, `compressionLevel`).
 * A different level gives different compressed bytes, so different layer digests (the diff_ids stay the same).
 */
export function compressionLevel(c: LayerCompression, level: unknown, what = 'compressionLevel'): number {
  if (c === 'none') return 0;
  const [min, max] = LEVEL_RANGE[c];
  const dflt = c === 'gzip' ? DEFAULT_GZIP_LEVEL : DEFAULT_ZSTD_LEVEL;
  if (level === undefined) return dflt;
  const n = typeof level === 'string' && /^\d+$/.test(level.trim()) ? Number(level) : level;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    throw new CanvosError('ERR_CONFIG', `${what} ${JSON.stringify(level)} is not a ${c} level from ${min} to ${max}`, {
      hint: `use ${min} (fastest) to ${max} (smallest); the default, ${dflt}, is chosen by measurement (bench/README.md)`,
    });
  return n;
}

/** Options of {@link compressChunks}. */
export interface CompressOptions {
  /** Compression level (see {@link compressionLevel}). Default: 1 for gzip, 3 for zstd. */
  level?: number | undefined;
  /** Bytes per independently compressed chunk. Default: 1 MiB. Changing it changes the digest. */
  chunkSize?: number | undefined;
  /** Chunks compressed at once. Default: {@link chunksInFlight} (cores + 1, at most the libuv pool's threads). */
  concurrency?: number | undefined;
  /** Backend. Default: the native addon when built, else node:zlib (digests differ between the two). */
  compressor?: ChunkCompressor | undefined;
  signal?: AbortSignal | undefined;
}

/** The OCI media type of a layer blob with this compression. */
export function layerMediaType(c: LayerCompression): string {
  return c === 'gzip' ? MediaType.OciLayerGzip : c === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayerTar;
}

/**
 * The chunks compressed at once: `opts.concurrency`, else one more than the cores, so that every core still has a
 * chunk while the main thread reads and hashes the next one (with one per core, a 2-core build had a single chunk
 * compressing ~40 % of the time: bench/README.md, "Build, round 3"), but no more than the libuv thread pool
 * (UV_THREADPOOL_SIZE, default 4), which also serves the file reads and writes; at least 2.
 */
export function chunksInFlight(opts: Pick<CompressOptions, 'concurrency'>): number {
  if (opts.concurrency !== undefined) return Math.max(1, opts.concurrency);
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(2, Math.min(availableParallelism() + 1, pool));
}

type ChunkCodec = (chunk: Buffer) => Promise<Buffer>;

function codecFor(c: LayerCompression, opts: CompressOptions): ChunkCodec {
  if (c === 'gzip') {
    const z = opts.compressor ?? compressor();
    const level = compressionLevel(c, opts.level);
    return (chunk) => z.gzip(chunk, level);
  }
  if (c === 'zstd') {
    const z = opts.compressor ?? compressor();
    const level = compressionLevel(c, opts.level);
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
  yield* compressFixedChunks(fixedChunks(source, opts.chunkSize ?? DEFAULT_CHUNK_SIZE), c, opts);
}

/** Options of {@link compressFixedChunks}. */
export interface CompressFixedOptions extends CompressOptions {
  /** Called with each input chunk once its member/frame is done and nothing reads it any more (buffer reuse). */
  onChunkDone?: ((chunk: Buffer) => void) | undefined;
}

/**
 * {@link compressChunks} of input already cut into chunks of `opts.chunkSize` (the last one shorter): gzip or zstd
 * only. The caller cuts them (e.g. straight from files, tar-chunks.ts) and may reuse each after `onChunkDone`.
 */
export async function* compressFixedChunks(
  chunks: AsyncIterable<Buffer>,
  c: LayerCompression,
  opts: CompressFixedOptions = {},
): AsyncGenerator<Buffer> {
  const codec = codecFor(c, opts);
  const concurrency = chunksInFlight(opts);
  const pending: Array<{ chunk: Buffer; out: Promise<Buffer> }> = [];
  let submitted = 0;
  const submit = (chunk: Buffer): void => {
    const out = codec(chunk);
    out.catch(() => undefined); // observed when awaited in order; avoid unhandled-rejection noise meanwhile
    pending.push({ chunk, out });
    submitted++;
  };
  const next = async (): Promise<Buffer> => {
    const p = pending.shift();
    if (!p) throw new Error('compress: nothing pending');
    const out = await p.out;
    opts.onChunkDone?.(p.chunk);
    return out;
  };
  try {
    for await (const chunk of chunks) {
      submit(chunk);
      while (pending.length >= concurrency) yield await next();
      throwIfAborted(opts.signal);
    }
    // An empty input still needs one member/frame: zero bytes are not a valid gzip or zstd file.
    if (submitted === 0) submit(Buffer.alloc(0));
    while (pending.length > 0) yield await next();
  } finally {
    pending.length = 0;
  }
}
