/**
 * buildLayer: LayerSpec → compressed layer blob on disk, in one streaming pass
 * (tar → diffID sha256 → parallel gzip → blob sha256 → temp file → rename to `<dir>/<hex digest>`).
 * Same spec + same SOURCE_DATE_EPOCH (+ same compression settings and backend) ⇒ byte-identical blob.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DigestCounter, digestHex, type Digest } from '../image/digest.js';
import {
  chunksInFlight,
  compressFixedChunks,
  DEFAULT_CHUNK_SIZE,
  layerMediaType,
  type CompressOptions,
  type LayerCompression,
} from './compress.js';
import { ChunkPool, tarChunks } from './tar-chunks.js';
import { sourceDateEpochFromEnv } from '../util/source-date.js';

export { sourceDateEpochFromEnv };
import { planLayer } from './plan.js';
import type { HttpOptions } from '../http/dispatcher.js';
import type { PlannedEntry } from '../tar/header.js';
import type { EntryMeta, LayerSpec } from './spec.js';
import { encodeHeader, padding } from '../tar/header.js';
import { tarBytes } from '../tar/write.js';
import { mkdirs } from '../fs-util.js';
import { abortedOr } from '../util/abort.js';

/** Progress of a layer build, in uncompressed bytes. */
export interface LayerProgress {
  phase: 'layer';
  transferred: number;
  total: number;
  percent: number;
}

/** Options of {@link buildLayer}. */
export interface BuildLayerOptions extends Omit<CompressOptions, 'signal'> {
  /** Directory receiving the blob (named by its hex digest) and temp files; created if missing. */
  dir: string;
  /** Clamp for every mtime, and the mtime of entries that set none. Default: env SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number | undefined;
  /** Default: 'gzip'. */
  compression?: LayerCompression | undefined;
  /** Media type recorded in the result. Default: the OCI layer type for `compression`. */
  mediaType?: string | undefined;
  /**
   * Add missing parent directories (0755 root:root, mtime = epoch). They override the lower layers' metadata for
   * those directories when the image is unpacked, so list directories such as /tmp (1777) explicitly. Default: true.
   */
  impliedParents?: boolean | undefined;
  /**
   * Metadata for implied parent directories, e.g. looked up in the base image (`mergeLayers` directory entries) so
   * an appended layer does not reset /root to 0755. Unset fields use the defaults. Default: none (0755 root:root).
   */
  parentMeta?: ((path: string) => EntryMeta | undefined) | undefined;
  /**
   * HTTP options of `{url, sha256}` file sources: timeout, retry, proxy (the registry options fit). Default:
   * 30 s timeout, 5 attempts, proxies from the environment.
   */
  download?: HttpOptions | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: LayerProgress) => void) | undefined;
}

/** A layer blob written to disk, with everything a manifest and config need. */
export interface BuiltLayer {
  /** The compressed blob file, `<dir>/<hex of digest>`. */
  path: string;
  /** sha256 of the blob (manifest layer descriptor digest). */
  digest: Digest;
  /** Blob size in bytes. */
  size: number;
  /** sha256 of the uncompressed tar (config rootfs.diff_ids). */
  diffId: Digest;
  uncompressedSize: number;
  mediaType: string;
}

function tarSize(entries: readonly PlannedEntry[]): number {
  let n = 1024;
  for (const { data: _d, ...f } of entries)
    n += encodeHeader(f).length + (f.type === 'file' ? f.size + padding(f.size) : 0);
  return n;
}

/** Build one layer blob from a spec. */
export async function buildLayer(spec: LayerSpec, opts: BuildLayerOptions): Promise<BuiltLayer> {
  const compression = opts.compression ?? 'gzip';
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv();
  await mkdirs(opts.dir);
  const work = await mkdtemp(join(opts.dir, '.layer-'));
  const tmp = join(work, 'blob');
  try {
    const entries = await planLayer(spec, {
      sourceDateEpoch: epoch,
      spoolDir: work,
      impliedParents: opts.impliedParents ?? true,
      parentMeta: opts.parentMeta,
      download: opts.download,
      signal: opts.signal,
    });
    const total = tarSize(entries);
    const diff = new DigestCounter();
    const blob = new DigestCounter();
    const onProgress = opts.onProgress;
    let lastReport = 0;
    async function* hashed(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const b of src) {
        diff.update(b);
        if (onProgress && (diff.size - lastReport >= 4 << 20 || diff.size === total)) {
          lastReport = diff.size;
          onProgress({ phase: 'layer', transferred: diff.size, total, percent: Math.floor((100 * diff.size) / total) });
        }
        yield b;
      }
    }
    let compressed: AsyncIterable<Buffer>;
    if (compression === 'none') compressed = hashed(tarBytes(entries, opts.signal));
    else {
      // Tar bytes go straight into recycled chunk buffers (tar-chunks.ts): same chunks, far less garbage.
      const pool = new ChunkPool(opts.chunkSize ?? DEFAULT_CHUNK_SIZE, chunksInFlight(opts) + 2);
      const chunks = hashed(tarChunks(entries, pool, opts.signal));
      compressed = compressFixedChunks(chunks, compression, {
        ...opts,
        onChunkDone: (c) => {
          pool.give(c);
        },
      });
    }
    await pipeline(compressed, blob.transform(), createWriteStream(tmp), opts.signal ? { signal: opts.signal } : {});
    const d = blob.result();
    const u = diff.result();
    const path = join(opts.dir, digestHex(d.digest));
    await rename(tmp, path);
    return {
      path,
      digest: d.digest,
      size: d.size,
      diffId: u.digest,
      uncompressedSize: u.size,
      mediaType: opts.mediaType ?? layerMediaType(compression),
    };
  } catch (e) {
    throw abortedOr(opts.signal, e);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
