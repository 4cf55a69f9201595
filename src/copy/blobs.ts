/**
 * The blob half of a copy: which blobs must move (deduplicated by digest; those under manifests the destination
 * already has, and foreign layers unless asked, are left out), and moving them: existence check, cross-repository
 * mount when the source offers one, largest first under one concurrency limit, shared in-flight transfers with
 * concurrent copies (pool), and byte/item progress. Bytes are never recompressed: the source's verified stream goes
 * to the destination as it is.
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import type { ManifestNode } from '../image/graph.js';
import { VerifyingStream } from '../image/digest.js';
import type { Descriptor } from '../image/schemas.js';
import type { ImageDestination, ImageSource, OpOptions, ProgressFn } from '../image/types.js';
import { DEFAULT_CONCURRENCY, Semaphore } from '../util/semaphore.js';
import {
  blobMountOrigin,
  type RegistryPutBlobHints,
  type RegistryReadOptions,
} from '../transports/registry/registry-image.js';
import type { BlobStatus, CopyPool } from './pool.js';

/** Counts of a copy's blobs. */
export interface BlobStats {
  copied: number;
  skipped: number;
  mounted: number;
  /** Bytes actually transferred (copied blobs only). */
  bytes: number;
  foreignSkipped: number;
}

/** The blobs a copy must move. */
export interface BlobPlan {
  /** By digest, each once. */
  blobs: Map<string, Descriptor>;
  /** Blobs under manifests the destination already has (complete there, since manifests are written last). */
  presentBlobs: Set<string>;
  /** Layers with `urls` (foreign) left out. */
  foreignSkipped: number;
}

/** Collect the blobs of `nodes` that must move (see the file header). */
export function planBlobs(
  nodes: readonly ManifestNode[],
  present: ReadonlySet<string>,
  includeForeign: boolean,
): BlobPlan {
  const blobs = new Map<string, Descriptor>();
  const presentBlobs = new Set<string>();
  let foreignSkipped = 0;
  for (const n of nodes) {
    for (const b of n.blobs) {
      if (b.urls?.length && !includeForeign) {
        foreignSkipped++;
        continue;
      }
      // A manifest copied earlier without its foreign layers is "present" but lacks them: check those one by one.
      if (present.has(n.raw.digest) && !b.urls?.length) presentBlobs.add(b.digest);
      else blobs.set(b.digest, b);
    }
  }
  return { blobs, presentBlobs, foreignSkipped };
}

/** How {@link copyBlobs} runs. */
export interface BlobCopyContext {
  src: ImageSource;
  dst: ImageDestination;
  /** Aborts every transfer (the user's signal, or the first failure). */
  signal: AbortSignal;
  /** Called with the first failure (and any later ones): must abort `signal`. */
  fail: (e: unknown) => void;
  onProgress?: ProgressFn | undefined;
  /** Blobs moved at once when there is no pool. Default: 8 (DEFAULT_CONCURRENCY). */
  concurrency?: number | undefined;
  pool?: CopyPool | undefined;
  /** Transfers are shared through `pool` only within one scope (one storage). */
  scope: string;
}

/** Move the planned blobs. Failures are reported to `ctx.fail`; the caller throws the first one. */
export async function copyBlobs(plan: BlobPlan, ctx: BlobCopyContext): Promise<BlobStats> {
  const { blobs, presentBlobs } = plan;
  const stats: BlobStats = {
    copied: 0,
    skipped: [...presentBlobs].filter((d) => !blobs.has(d)).length,
    mounted: 0,
    bytes: 0,
    foreignSkipped: plan.foreignSkipped,
  };
  const itemsTotal = blobs.size;
  const bytesTotal = [...blobs.values()].reduce((a, b) => a + b.size, 0);
  let itemsDone = 0;
  let bytesDone = 0;
  const emit = (item: string | undefined, status?: string, itemSize?: number): void =>
    ctx.onProgress?.({
      phase: 'copy',
      item,
      transferred: bytesDone,
      total: bytesTotal,
      itemsDone,
      itemsTotal,
      ...(status ? { status, itemSize } : {}),
    });
  emit(undefined);

  const sem = ctx.pool?.semaphore ?? new Semaphore(ctx.concurrency ?? DEFAULT_CONCURRENCY);
  const own = async (desc: Descriptor): Promise<BlobStatus> => {
    const release = await sem.acquire(ctx.signal);
    try {
      // The slot goes to the next blob as soon as this one's source has been read to the end: finishing the upload
      // (the registry's answer, the confirming HEAD) does not hold up the next download.
      return await copyBlob(ctx, desc, {
        widen: () => sem.waiting === 0,
        onBytes: (delta) => {
          bytesDone += delta;
          emit(desc.digest);
        },
        onSourceRead: release,
      });
    } finally {
      release();
    }
  };
  const one = async (desc: Descriptor): Promise<BlobStatus> => {
    const key = `${ctx.scope}\0${desc.digest}`;
    const pool = ctx.pool;
    const other = pool?.inflight.get(key);
    // Another copy sharing the pool is moving this blob to the same place: wait for it (redo it if it failed).
    if (other)
      return other.then(
        () => 'skipped' as const,
        () => own(desc),
      );
    const p = own(desc);
    if (pool) {
      pool.inflight.set(key, p);
      p.finally(() => pool.inflight.delete(key)).catch(() => {});
    }
    return p;
  };
  // Largest first (the semaphore is FIFO): small blobs fill the gaps at the end instead of a big one starting last
  // and running alone while the other connections sit idle.
  const order = [...blobs.values()].sort((a, b) => b.size - a.size);
  await Promise.allSettled(
    order.map(async (desc) => {
      try {
        const status = await one(desc);
        if (status === 'copied') stats.copied++;
        else if (status === 'mounted') stats.mounted++;
        else stats.skipped++;
        if (status === 'copied') stats.bytes += desc.size;
        itemsDone++;
        emit(desc.digest, status, desc.size);
      } catch (e) {
        ctx.fail(e);
      }
    }),
  );
  return stats;
}

/** Callbacks of one blob transfer. */
interface BlobTransfer {
  /** Whether the source may spread this blob over more connections now (registry sources). */
  widen: () => boolean;
  /** Byte deltas (a retried upload counts its bytes again from zero). */
  onBytes: (delta: number) => void;
  /** The source stream was read to its end. */
  onSourceRead: () => void;
}

/** Copy one blob: skip it when present, else mount or upload it. */
async function copyBlob(ctx: BlobCopyContext, desc: Descriptor, t: BlobTransfer): Promise<BlobStatus> {
  const { src, dst, signal } = ctx;
  // A destination that checks on put (a registry) is spared the separate check: its mount or HEAD answers it.
  const checked = dst.checksOnPut !== true;
  if (checked && (await dst.hasBlob(desc, { signal }))) return 'skipped';
  let counted = 0;
  let opened = 0;
  const open = async (): Promise<Readable> => {
    const gen = ++opened;
    t.onBytes(-counted);
    counted = 0;
    const readOpts: RegistryReadOptions = { signal, widen: t.widen };
    const s = await src.getBlob(desc, readOpts);
    s.once('end', t.onSourceRead);
    const count = (n: number): void => {
      // A stream of an earlier attempt that still moves a chunk or two before it is destroyed counts for nothing.
      if (gen !== opened) return;
      counted += n;
      t.onBytes(n);
    };
    // Every source of the house verifies in a VerifyingStream: count in its pass, with no stream hop of our own.
    if (s instanceof VerifyingStream) {
      s.onBytes = count;
      // Its consumer (the upload) sees its errors; one raised after the upload gave up on it must not go unhandled.
      s.on('error', () => {});
      return s;
    }
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        count(chunk.length);
        cb(null, chunk);
      },
    });
    // pipeline, not pipe: when the upload drops `counter` (early answer, reset), the source stream and the
    // connection it reads from are released too.
    pipeline(s, counter, () => {});
    return counter;
  };
  // hasBlob just said no (if asked), and getBlob streams verify themselves: spare a second check and hash.
  const hints: OpOptions & RegistryPutBlobHints = {
    signal,
    mountFrom: blobMountOrigin(src, desc),
    knownAbsent: checked,
    sourceVerified: true,
  };
  const r = await dst.putBlob(desc, open, hints);
  if (r === 'uploaded') return 'copied';
  // The bytes of a blob that turned out to exist or was mounted did not really move.
  t.onBytes(-counted);
  return r === 'mounted' ? 'mounted' : 'skipped';
}
