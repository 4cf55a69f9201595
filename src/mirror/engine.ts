/**
 * The mirror run loop: copy many images with bounded image concurrency over one shared CopyPool (one blob limit
 * for the run, a blob needed by several images in flight moves once), keep going when an image fails (its error
 * goes to the failure list), let a finished job add follow-up jobs (referrers), and aggregate progress into one
 * view (bytes and images done) instead of tangled per-image bars.
 */
import { CanvosError } from '../errors.js';
import { copyImage, CopyPool, type CopyResult } from '../copy/copy.js';
import type { ImageDestination, ImageSource, ProgressFn } from '../copy/types.js';
import type { Digest } from '../oci/digest.js';
import type { Platform } from '../oci/platform.js';
import { Semaphore } from '../registry/semaphore.js';
import type { MirrorFailure, MirrorImageResult } from './types.js';

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
  upToDate?(): Promise<{ digest: Digest; mediaType: string } | undefined>;
  /** Called after a successful copy, before the result counts; may return follow-up jobs (referrers). */
  after?(result: CopyResult, src: ImageSource, dst: ImageDestination): Promise<CopyJob[] | void>;
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
export async function runJobs(initial: CopyJob[], opts: RunJobsOptions = {}): Promise<{ images: MirrorImageResult[]; failures: MirrorFailure[] }> {
  const pool = new CopyPool(opts.blobs ?? 8);
  const sem = new Semaphore(opts.images ?? 4);
  const images: MirrorImageResult[] = [];
  const failures: MirrorFailure[] = [];
  const seen = new Set<string>();
  const perJob = new Map<CopyJob, number>();
  let total = 0;
  let done = 0;
  let bytesTotal = 0;
  const bytes = (): number => [...perJob.values()].reduce((a, b) => a + b, 0);
  const emit = (item?: string, status?: string): void =>
    opts.onProgress?.({ phase: 'mirror', item, transferred: bytes(), total: bytesTotal || undefined, itemsDone: done, itemsTotal: total, ...(status ? { status } : {}) });

  const runOne = async (job: CopyJob): Promise<void> => {
    const release = await sem.acquire(opts.signal);
    let src: ImageSource | undefined;
    let dst: ImageDestination | undefined;
    let knownTotal = 0;
    try {
      src = job.openSource();
      dst = job.openDestination();
      const hit = await job.upToDate?.();
      const r: CopyResult = hit
        ? { rootDigest: hit.digest, sourceDigest: hit.digest, mediaType: hit.mediaType, rewritten: false, manifests: 0, blobs: { copied: 0, skipped: 0, mounted: 0, bytes: 0, foreignSkipped: 0 }, platforms: [], tag: job.tag }
        : await copyImage(src, dst, {
        signal: opts.signal,
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
          else opts.onProgress?.({ phase: 'mirror', item: e.item, status: e.status, itemSize: e.itemSize, transferred: bytes(), total: bytesTotal || undefined, itemsDone: done, itemsTotal: total });
        },
      });
      const more = (await job.after?.(r, src, dst)) ?? [];
      images.push({ source: job.source, destination: job.destination, digest: r.rootDigest, mediaType: r.mediaType, platforms: r.platforms, referrer: job.referrer, blobs: { copied: r.blobs.copied, skipped: r.blobs.skipped, mounted: r.blobs.mounted, bytes: r.blobs.bytes } });
      done++;
      emit(job.source, job.referrer ? 'referrer' : 'mirrored');
      schedule(more);
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      failures.push(toFailure(job, e));
      done++;
      emit(job.source, 'failed');
    } finally {
      release();
      await Promise.allSettled([src?.close(), dst?.close()]);
    }
  };

  const running: Promise<void>[] = [];
  const schedule = (jobs: CopyJob[]): void => {
    for (const j of jobs) {
      const key = `${j.source}\0${j.destination}`;
      if (seen.has(key)) continue;
      seen.add(key);
      total++;
      running.push(runOne(j));
    }
  };
  schedule(initial);
  // Jobs add jobs: wait until the list stops growing.
  for (let n = 0; n < running.length; ) {
    const slice = running.slice(n);
    n = running.length;
    const batch = await Promise.allSettled(slice);
    const aborted = batch.find((b) => b.status === 'rejected');
    if (aborted && aborted.status === 'rejected') {
      await Promise.allSettled(running);
      throw aborted.reason;
    }
  }
  return { images, failures };
}

/** A failure record from any error (CanvosError fields kept; secrets never reach messages). */
export function toFailure(job: Pick<CopyJob, 'source' | 'destination'>, e: unknown): MirrorFailure {
  if (CanvosError.is(e)) return { source: job.source, destination: job.destination, code: e.code, message: e.message, hint: e.hint };
  return { source: job.source, destination: job.destination, code: 'ERR_INTERNAL', message: (e as Error)?.message ?? String(e) };
}
