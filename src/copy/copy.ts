/**
 * The copy engine: walk an image's manifest graph at the source, move every blob once (deduplicated by digest,
 * skipped when present, mounted when possible, bounded concurrency, never recompressed), then write manifests
 * bottom-up as their exact bytes, the root (with its tag) last, and commit. Any failure aborts the rest and leaves
 * the tag untouched. This file orchestrates (graph load, platform selection, what the destination already has);
 * blobs.ts moves the blobs, manifests.ts writes the manifests, pool.ts is what concurrent copies share.
 */
import { setMaxListeners } from 'node:events';
import { CanvosError } from '../errors.js';
import { abortedOr } from '../util/abort.js';
import type { Digest } from '../image/digest.js';
import { bottomUp, childPlatforms, loadGraph, selectPlatforms, type ManifestNode } from '../image/graph.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import type { ImageDestination, ImageSource, OpOptions } from '../image/types.js';
import { copyBlobs, planBlobs, type BlobStats } from './blobs.js';
import { writeManifests } from './manifests.js';
import { CopyPool } from './pool.js';

export { CopyPool, type BlobStatus } from './pool.js';

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
  blobs: BlobStats;
  /** Platforms copied (`linux/arm64`), from the index descriptors; empty when unknown. */
  platforms: string[];
  tag: string | undefined;
}

/** Destination manifest checks started early, by digest. */
type ManifestChecks = Map<string, Promise<boolean>>;

/**
 * `src` for loading the graph, starting the destination's check of each child manifest together with its GET (one
 * round trip instead of two in a row). Used only when every child is copied, so no check is wasted.
 */
function checkingChildren(src: ImageSource, dst: ImageDestination, checks: ManifestChecks, o: OpOptions): ImageSource {
  return {
    description: src.description,
    getManifest(digest?: Digest, opts?: OpOptions) {
      if (digest !== undefined && !checks.has(digest)) {
        const check = dst.hasManifest(digest, o);
        // Awaited in presentManifests; a source failure first leaves it unread.
        check.catch(() => {});
        checks.set(digest, check);
      }
      return src.getManifest(digest, opts);
    },
    getBlob: (desc, opts) => src.getBlob(desc, opts),
    close: () => src.close(),
  };
}

/** The graph to copy: the source's root, narrowed to the wanted platforms (the host's for single-image destinations). */
async function selectRoot(
  src: ImageSource,
  dst: ImageDestination,
  opts: CopyOptions,
  o: OpOptions,
  checks: ManifestChecks,
): Promise<{ full: ManifestNode; root: ManifestNode; rewritten: boolean }> {
  const everyChild = !opts.force && !opts.platforms?.length && opts.allPlatforms !== false && !dst.singleImage;
  const full = await loadGraph(everyChild ? checkingChildren(src, dst, checks, o) : src, undefined, o);
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
  return { full, root, rewritten };
}

/** Image manifests of `nodes` the destination already holds (their blobs are complete there). */
async function presentManifests(
  nodes: readonly ManifestNode[],
  dst: ImageDestination,
  o: OpOptions,
  checks: ManifestChecks,
): Promise<Set<string>> {
  const present = new Set<string>();
  await Promise.all(
    nodes
      .filter((n) => n.kind === 'image')
      .map(async (n) => {
        if (await (checks.get(n.raw.digest) ?? dst.hasManifest(n.raw.digest, o))) present.add(n.raw.digest);
      }),
  );
  return present;
}

/** Copy one image (or index) from `src` to `dst`. See the file header for the guarantees. */
export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  const failed = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failed.signal]) : failed.signal;
  // Every request in flight listens on this signal: many at once is expected, not a leak.
  setMaxListeners(0, signal);
  const o: OpOptions = { signal };
  const tag = opts.tag ?? dst.tag;

  const checks: ManifestChecks = new Map();
  const { full, root, rewritten } = await selectRoot(src, dst, opts, o, checks);
  const nodes = bottomUp(root);
  const present = opts.force ? new Set<string>() : await presentManifests(nodes, dst, o, checks);
  const scope = opts.poolScope ?? dst.description;
  let firstError: unknown;
  const fail = (e: unknown): void => {
    if (firstError === undefined) firstError = e;
    failed.abort(e);
  };
  const stats = await copyBlobs(planBlobs(nodes, present, opts.includeForeign === true), {
    src,
    dst,
    signal,
    fail,
    onProgress: opts.onProgress,
    concurrency: opts.concurrency,
    pool: opts.pool,
    scope,
  });
  if (firstError !== undefined) throw toError(firstError, opts.signal);

  let manifests: number;
  try {
    manifests = await writeManifests(root, tag, { dst, present, pool: opts.pool, scope, o });
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

/** The user's abort wins over whatever error it caused downstream. */
function toError(e: unknown, userSignal: AbortSignal | undefined): unknown {
  return abortedOr(userSignal, e, false);
}
