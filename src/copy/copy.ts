/**
 * The copy engine: walk an image's manifest graph at the source, move every blob once (deduplicated by digest,
 * skipped when present, mounted when possible, bounded concurrency, never recompressed), then write manifests
 * bottom-up as their exact bytes, the root (with its tag) last, and commit. Any failure aborts the rest and leaves
 * the tag untouched.
 */
import { setMaxListeners } from 'node:events';
import { pipeline, Transform, type Readable } from 'node:stream';
import { CanvosError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { formatPlatform, hostPlatform, type Platform } from '../oci/platform.js';
import type { Descriptor } from '../oci/schemas.js';
import { DEFAULT_CONCURRENCY, Semaphore } from '../util/semaphore.js';
import { bottomUp, childPlatforms, loadGraph, selectPlatforms, type ManifestNode } from './graph.js';
import type { ImageDestination, ImageSource, OpOptions } from './types.js';
import { abortedOr } from '../util/abort.js';

/** Options of {@link copyImage}. */
export interface CopyOptions extends OpOptions {
  /**
   * Copy every platform of an index, byte-exact (the root digest is preserved). Ignored when `platforms` is
   * non-empty; `false` without `platforms` selects the host platform. Default: true.
   */
  allPlatforms?: boolean | undefined;
  /**
   * Platforms to keep from an index. One: that child manifest becomes the root (its digest is kept). Several: a new
   * index of just those children (its digest differs from the source's; `CopyResult.rewritten` says so). Default: [].
   */
  platforms?: Platform[] | undefined;
  /** Blobs transferred at once (registries also limit requests per host). Default: 8 (DEFAULT_CONCURRENCY). */
  concurrency?: number | undefined;
  /** Also copy layers that carry `urls` (foreign / non-distributable). Default: false. */
  includeForeign?: boolean | undefined;
  /** Tag for the root manifest. Default: the destination's own tag (`dst.tag`), else untagged. */
  tag?: string | undefined;
  /** Copy the blobs of manifests the destination already has (normally skipped as a whole). Default: false. */
  force?: boolean | undefined;
  /** Share one concurrency limit and in-flight blob transfers between concurrent copies (mirror). Default: none. */
  pool?: CopyPool | undefined;
  /** Blobs are shared through `pool` only between copies with the same scope (same storage). Default: dst.description. */
  poolScope?: string | undefined;
}

type BlobStatus = 'copied' | 'skipped' | 'mounted';

/**
 * Limits shared by several {@link copyImage} calls: one blob semaphore for all of them, and a map of blobs in
 * flight so a blob needed by several images copied at once into the same place moves only once.
 */
export class CopyPool {
  /** The shared blob concurrency limit. */
  readonly semaphore: Semaphore;
  /** In-flight transfers by `scope\0digest`. */
  readonly inflight: Map<string, Promise<BlobStatus>> = new Map();
  /**
   * Untagged (child) manifest writes by `scope\0digest`, kept once they succeed: each is written once per
   * destination however many copies need it. Two copies writing the same manifest into one repository at once is
   * not harmless: distribution rewrites the revision link in place, and a concurrent index PUT that verifies its
   * children can read it half-written and fail with MANIFEST_BLOB_UNKNOWN.
   */
  readonly manifests: Map<string, Promise<void>> = new Map();
  /** `concurrency`: blobs moved at once across all copies. Default: 8 (DEFAULT_CONCURRENCY). */
  constructor(concurrency = DEFAULT_CONCURRENCY) {
    this.semaphore = new Semaphore(concurrency);
  }
}

/** What {@link copyImage} did. */
export interface CopyResult {
  /** Digest of the manifest written as root (tagged). */
  rootDigest: Digest;
  mediaType: string;
  /** Digest of the source's root manifest (equal to rootDigest unless a platform was picked or an index rewritten). */
  sourceDigest: Digest;
  /** True when the root is a new index of selected platforms, so its digest differs from any source manifest. */
  rewritten: boolean;
  /** Manifests written (children and root). */
  manifests: number;
  blobs: { copied: number; skipped: number; mounted: number; bytes: number; foreignSkipped: number };
  /** Platforms copied (`linux/arm64`), from the index descriptors; empty when unknown. */
  platforms: string[];
  tag: string | undefined;
}

/** Copy one image (or index) from `src` to `dst`. See the file header for the guarantees. */
export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  const failed = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failed.signal]) : failed.signal;
  // Every request in flight listens on this signal: many at once is expected, not a leak.
  setMaxListeners(0, signal);
  const o: OpOptions = { signal };
  const onProgress = opts.onProgress;
  const tag = opts.tag ?? dst.tag;

  const full = await loadGraph(src, undefined, o);
  let wanted = opts.platforms ?? [];
  if (wanted.length === 0 && full.kind === 'index' && (opts.allPlatforms === false || dst.singleImage))
    wanted = [hostPlatform()];
  const { root, rewritten } = selectPlatforms(full, wanted, src.description);
  if (dst.singleImage && root.kind === 'index') {
    throw new CanvosError(
      'ERR_USAGE',
      `${dst.description} holds a single image, but ${wanted.length} platforms were selected`,
      { hint: 'select exactly one platform with --platform' },
    );
  }
  const nodes = bottomUp(root);

  // Blobs under manifests the destination already has are complete there (manifests are written last).
  const present = new Set<string>();
  if (!opts.force) {
    await Promise.all(
      nodes
        .filter((n) => n.kind === 'image')
        .map(async (n) => {
          if (await dst.hasManifest(n.raw.digest, o)) present.add(n.raw.digest);
        }),
    );
  }
  const blobs = new Map<string, Descriptor>();
  const presentBlobs = new Set<string>();
  let foreignSkipped = 0;
  for (const n of nodes) {
    for (const b of n.blobs) {
      if (b.urls?.length && !opts.includeForeign) {
        foreignSkipped++;
        continue;
      }
      // A manifest copied earlier without its foreign layers is "present" but lacks them: check those one by one.
      if (present.has(n.raw.digest) && !b.urls?.length) presentBlobs.add(b.digest);
      else blobs.set(b.digest, b);
    }
  }
  const stats = {
    copied: 0,
    skipped: [...presentBlobs].filter((d) => !blobs.has(d)).length,
    mounted: 0,
    bytes: 0,
    foreignSkipped,
  };
  const itemsTotal = blobs.size;
  const bytesTotal = [...blobs.values()].reduce((a, b) => a + b.size, 0);
  let itemsDone = 0;
  let bytesDone = 0;
  const emit = (item: string | undefined, status?: string, itemSize?: number): void =>
    onProgress?.({
      phase: 'copy',
      item,
      transferred: bytesDone,
      total: bytesTotal,
      itemsDone,
      itemsTotal,
      ...(status ? { status, itemSize } : {}),
    });
  emit(undefined);

  const sem = opts.pool?.semaphore ?? new Semaphore(opts.concurrency ?? DEFAULT_CONCURRENCY);
  const scope = opts.poolScope ?? dst.description;
  let firstError: unknown;
  const fail = (e: unknown): void => {
    if (firstError === undefined) firstError = e;
    failed.abort(e);
  };
  const own = async (desc: Descriptor): Promise<BlobStatus> => {
    const release = await sem.acquire(signal);
    try {
      // The slot goes to the next blob as soon as this one's source has been read to the end: finishing the upload
      // (the registry's answer, the confirming HEAD) does not hold up the next download.
      return await copyBlob(
        src,
        dst,
        desc,
        signal,
        () => sem.waiting === 0,
        (delta) => {
          bytesDone += delta;
          emit(desc.digest);
        },
        release,
      );
    } finally {
      release();
    }
  };
  // Largest first (the semaphore is FIFO): small blobs fill the gaps at the end instead of a big one starting last
  // and running alone while the other connections sit idle.
  const order = [...blobs.values()].sort((a, b) => b.size - a.size);
  await Promise.allSettled(
    order.map(async (desc) => {
      try {
        let status: BlobStatus;
        const key = `${scope}\0${desc.digest}`;
        const other = opts.pool?.inflight.get(key);
        if (other) {
          // Another copy sharing the pool is moving this blob to the same place: wait for it (redo it if it failed).
          status = await other.then(
            () => 'skipped' as const,
            () => own(desc),
          );
        } else {
          const p = own(desc);
          if (opts.pool) {
            const pool = opts.pool;
            pool.inflight.set(key, p);
            p.finally(() => pool.inflight.delete(key)).catch(() => {});
          }
          status = await p;
        }
        if (status === 'copied') stats.copied++;
        else if (status === 'mounted') stats.mounted++;
        else stats.skipped++;
        if (status === 'copied') stats.bytes += desc.size;
        itemsDone++;
        emit(desc.digest, status, desc.size);
      } catch (e) {
        fail(e);
      }
    }),
  );
  if (firstError !== undefined) throw toError(firstError, opts.signal);

  // Children before parents; siblings in parallel. The root is written last, with the tag.
  let manifests = 0;
  const done = new Map<string, Promise<void>>();
  const put = (n: ManifestNode): Promise<void> => {
    let p = done.get(n.raw.digest);
    if (!p) {
      p = (async () => {
        await Promise.all(n.children.map(put));
        if (n === root) return;
        if (present.has(n.raw.digest) && n.kind === 'image') return;
        const pool = opts.pool;
        if (!pool) {
          await dst.putManifest(n.raw, undefined, o);
          manifests++;
          return;
        }
        const key = `${scope}\0${n.raw.digest}`;
        const other = pool.manifests.get(key);
        // Another copy writes (or wrote) it to the same place: wait for that write, or do our own if it failed.
        if (
          other &&
          (await other.then(
            () => true,
            () => false,
          ))
        )
          return;
        const mine = dst.putManifest(n.raw, undefined, o);
        pool.manifests.set(key, mine);
        mine.catch(() => {
          if (pool.manifests.get(key) === mine) pool.manifests.delete(key);
        });
        await mine;
        manifests++;
      })();
      done.set(n.raw.digest, p);
    }
    return p;
  };
  try {
    await put(root);
    await dst.putManifest(root.raw, tag, o);
    manifests++;
    await dst.commit(o);
  } catch (e) {
    throw toError(e, opts.signal);
  }
  const platforms = root.kind === 'index' ? childPlatforms(root) : root.platform ? [formatPlatform(root.platform)] : [];
  return {
    rootDigest: root.raw.digest,
    mediaType: root.raw.mediaType,
    sourceDigest: full.raw.digest,
    rewritten,
    manifests,
    blobs: stats,
    platforms,
    tag,
  };
}

/** Copy one blob; reports byte deltas (a retried upload counts its bytes again from zero). */
async function copyBlob(
  src: ImageSource,
  dst: ImageDestination,
  desc: Descriptor,
  signal: AbortSignal,
  widen: () => boolean,
  onBytes: (delta: number) => void,
  onSourceRead: () => void,
): Promise<BlobStatus> {
  if (await dst.hasBlob(desc, { signal })) return 'skipped';
  let counted = 0;
  const open = async (): Promise<Readable> => {
    onBytes(-counted);
    counted = 0;
    const s = await src.getBlob(desc, { signal, widen });
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        counted += chunk.length;
        onBytes(chunk.length);
        cb(null, chunk);
      },
    });
    s.once('end', onSourceRead);
    // pipeline, not pipe: when the upload drops `counter` (early answer, reset), the source stream and the
    // connection it reads from are released too.
    pipeline(s, counter, () => {});
    return counter;
  };
  // hasBlob just said no, and getBlob streams verify themselves: spare the destination a second HEAD and hash.
  const r = await dst.putBlob(desc, open, {
    signal,
    mountFrom: src.mountOrigin,
    knownAbsent: true,
    sourceVerified: true,
  });
  if (r === 'uploaded') return 'copied';
  // The bytes of a blob that turned out to exist or was mounted did not really move.
  onBytes(-counted);
  return r === 'mounted' ? 'mounted' : 'skipped';
}

/** The user's abort wins over whatever error it caused downstream. */
function toError(e: unknown, userSignal: AbortSignal | undefined): unknown {
  return abortedOr(userSignal, e, false);
}
