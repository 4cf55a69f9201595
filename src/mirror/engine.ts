/**
 * The mirror run loop: copy many images with bounded image concurrency over one shared CopyPool (one blob limit
 * for the run, a blob needed by several images in flight moves once), keep going when an image fails (its error
 * goes to the failure list), let a finished job add follow-up jobs (referrers), and aggregate progress into one
 * view (bytes and images done) instead of tangled per-image bars.
 */
import { CanvosError } from '../errors.js';
import { toCanvosError } from '../error-map.js';
import { copyImage, CopyPool, type CopyResult } from '../copy/copy.js';
import type { ImageDestination, ImageSource, ProgressFn } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import type { Platform } from '../image/platform.js';
import type { MirrorFailure, MirrorImageResult } from './types.js';
import { abortError } from '../util/abort.js';

/** One copy of the run. */
export interface CopyJob {
  /** Source as shown to the user (full reference). */
  source: string;
  destination: string;
  referrer: boolean;
  platforms?: Platform[] | undefined;
  /** Tag the root gets at the destination (undefined: untagged / by digest). */
  tag: string | undefined;
  /** Blobs are shared between jobs with the same scope (same destination storage). */
  scope: string;
  openSource(): ImageSource;
  openDestination(): ImageDestination;
  /**
   * Cheap check that the destination already holds exactly this image (e.g. source HEAD digest = destination tag
   * digest): the copy is skipped without reading the graph. Only HEAD requests, which Docker Hub does not count.
   */
  upToDate?(signal?: AbortSignal): Promise<{ digest: Digest; mediaType: string } | undefined>;
  /** Called after a successful copy, before the result counts; may return follow-up jobs (referrers). */
  after?(
    result: CopyResult,
    src: ImageSource,
    dst: ImageDestination,
    signal?: AbortSignal,
  ): Promise<CopyJob[] | undefined>;
}

/** Options of {@link runJobs}. */
export interface RunJobsOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ProgressFn | undefined;
  /** Images at once. Default: 4. */
  images?: number | undefined;
  /** Blobs at once across all images. Default: 8. */
  blobs?: number | undefined;
}

/** Run every job (and the jobs they add); never throws for a single image, only for an abort. */
export async function runJobs(
  initial: CopyJob[],
  opts: RunJobsOptions = {},
): Promise<{ images: MirrorImageResult[]; failures: MirrorFailure[] }> {
  const pool = new CopyPool(opts.blobs ?? 8);
  const images: MirrorImageResult[] = [];
  const failures: MirrorFailure[] = [];
  const seen = new Set<string>();
  const perJob = new Map<CopyJob, number>();
  let total = 0;
  let done = 0;
  let bytesTotal = 0;
  const bytes = (): number => [...perJob.values()].reduce((a, b) => a + b, 0);
  const emit = (item?: string, status?: string): void =>
    opts.onProgress?.({
      phase: 'mirror',
      item,
      transferred: bytes(),
      total: bytesTotal || undefined,
      itemsDone: done,
      itemsTotal: total,
      ...(status ? { status } : {}),
    });

  const runOne = async (job: CopyJob): Promise<void> => {
    // The job's own signal: its requests listen there; AbortSignal.any adds no listener to the caller's signal.
    const signal = opts.signal ? AbortSignal.any([opts.signal]) : undefined;
    let src: ImageSource | undefined;
    let dst: ImageDestination | undefined;
    let knownTotal = 0;
    try {
      src = job.openSource();
      dst = job.openDestination();
      const hit = await job.upToDate?.(signal);
      const r: CopyResult = hit
        ? upToDateResult(hit, job.tag)
        : await copyImage(src, dst, {
            signal,
            platforms: job.platforms,
            tag: job.tag,
            pool,
            poolScope: job.scope,
            onProgress: (e) => {
              if (e.total !== undefined && e.total !== knownTotal) {
                bytesTotal += e.total - knownTotal;
                knownTotal = e.total;
              }
              perJob.set(job, e.transferred);
              // Per-blob completions pass through (non-TTY renderers print them; callers count them).
              if (e.status === undefined) emit();
              else
                opts.onProgress?.({
                  phase: 'mirror',
                  item: e.item,
                  status: e.status,
                  itemSize: e.itemSize,
                  transferred: bytes(),
                  total: bytesTotal || undefined,
                  itemsDone: done,
                  itemsTotal: total,
                });
            },
          });
      const more = (await job.after?.(r, src, dst, signal)) ?? [];
      images.push({
        source: job.source,
        destination: job.destination,
        digest: r.rootDigest,
        mediaType: r.mediaType,
        platforms: r.platforms,
        referrer: job.referrer,
        blobs: { copied: r.blobs.copied, skipped: r.blobs.skipped, mounted: r.blobs.mounted, bytes: r.blobs.bytes },
      });
      done++;
      emit(job.source, job.referrer ? 'referrer' : 'mirrored');
      schedule(more);
    } catch (e) {
      // An abort, and a local filesystem error (a full disk, a read-only target: every other image would hit it
      // too), stop the batch; anything else fails only this image.
      if (opts.signal?.aborted || toCanvosError(e)?.code === 'ERR_FILESYSTEM') throw e;
      failures.push(toFailure(job, e));
      done++;
      emit(job.source, 'failed');
    } finally {
      await Promise.allSettled([src?.close(), dst?.close()]);
    }
  };

  const queue = limitedQueue(opts.images ?? 4, runOne, opts.signal);
  const schedule = (jobs: CopyJob[]): void => {
    for (const j of jobs) {
      const key = `${j.source}\0${j.destination}`;
      if (seen.has(key)) continue;
      seen.add(key);
      total++;
      queue.push(j);
    }
  };
  schedule(initial);
  await queue.run();
  return { images, failures };
}

/** The result of a job whose destination already holds the image (nothing copied). */
function upToDateResult(hit: { digest: Digest; mediaType: string }, tag: string | undefined): CopyResult {
  return {
    rootDigest: hit.digest,
    sourceDigest: hit.digest,
    mediaType: hit.mediaType,
    rewritten: false,
    manifests: 0,
    blobs: { copied: 0, skipped: 0, mounted: 0, bytes: 0, foreignSkipped: 0 },
    platforms: [],
    tag,
  };
}

/**
 * A queue drained by at most `limit` runs at once: waiting jobs are plain array entries, not pending promises each
 * holding an abort listener on the caller's signal (which made Node warn about a listener leak). `push` may be
 * called while it runs; `run` resolves when the queue is empty and nothing runs, and rejects with the first error
 * (after the running jobs end; no new job starts once one failed or `signal` aborted).
 */
function limitedQueue<T>(
  limit: number,
  runOne: (job: T) => Promise<void>,
  signal: AbortSignal | undefined,
): { push(job: T): void; run(): Promise<void> } {
  const queue: T[] = [];
  let active = 0;
  let stopped: { reason: Error } | undefined;
  return {
    push: (job) => queue.push(job),
    run: () =>
      new Promise<void>((settle, reject) => {
        const pump = (): void => {
          while (!stopped && active < limit) {
            const job = queue.shift();
            if (job === undefined) break;
            active++;
            const started = signal?.aborted ? Promise.reject(abortError(signal)) : runOne(job);
            started
              .catch((e: unknown) => {
                stopped ??= { reason: e instanceof Error ? e : new Error(String(e)) };
              })
              .finally(() => {
                active--;
                pump();
              });
          }
          if (active === 0 && (stopped || queue.length === 0)) {
            if (stopped) reject(stopped.reason);
            else settle();
          }
        };
        pump();
      }),
  };
}

/**
 * `fn` over `list`, at most `limit` at once, in order of start. Workers take the next entry when done, so entries
 * waiting their turn hold nothing (a semaphore would park one promise and one abort listener per entry). Rejects
 * with the first error (the others still run to their end).
 */
export async function eachLimited<T>(
  list: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  // One iterator shared by the workers: each takes the next entry from it.
  const entries = list.entries();
  const worker = async (): Promise<void> => {
    for (const [i, item] of entries) await fn(item, i);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), list.length) }, worker));
}

/** A failure record from any error (CanvosError fields kept; secrets never reach messages). */
export function toFailure(job: Pick<CopyJob, 'source' | 'destination'>, e: unknown): MirrorFailure {
  if (CanvosError.is(e))
    return { source: job.source, destination: job.destination, code: e.code, message: e.message, hint: e.hint };
  return {
    source: job.source,
    destination: job.destination,
    code: 'ERR_INTERNAL',
    message: e instanceof Error ? e.message : String(e),
  };
}
