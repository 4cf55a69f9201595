/**
 * `mirror plan`: resolve every image to its root digest and full blob set (without moving any blob), then check
 * which blobs the target already holds: HEAD at a destination registry, presence in a layout directory or in the
 * working layout of an interrupted archive save. Totals count each blob once across images (what would really
 * move), and images that cannot be resolved are listed as failures rather than aborting the plan.
 */
import { existsSync } from 'node:fs';
import { bottomUp, loadGraph, selectPlatforms } from '../image/graph.js';
import type { ImageSource } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import { OciLayout } from '../transports/oci-layout/oci-layout.js';
import { formatPlatform } from '../image/platform.js';
import { RegistryRepository } from '../registry/client.js';
import { parseReference } from '../registry/reference.js';
import { registrySource } from '../transports/registry/registry-image.js';
import { DEFAULT_CONCURRENCY } from '../util/semaphore.js';
import { manifestPathFor, readArchiveManifest, sinceBlobs } from './archive.js';
import { RegistryConnections } from './connections.js';
import { eachLimited, toFailure } from './engine.js';
import { destinationReference, parseDestinationRoot, planNames } from './naming.js';
import { openLoadSource } from './operations.js';
import type { MirrorFailure, MirrorItem, MirrorOptions } from './types.js';

/** One image of a plan. */
export interface PlanImage {
  source: string;
  destination: string;
  digest: string;
  mediaType: string;
  platforms: string[];
  manifests: number;
  blobs: number;
  bytes: number;
  /** Blobs (and their bytes) the target does not have yet. */
  newBlobs: number;
  newBytes: number;
}

/** What a push/save/load would move. */
export interface MirrorPlan {
  target: string;
  images: PlanImage[];
  failures: MirrorFailure[];
  /** Counted once per distinct blob across all images. */
  totals: {
    images: number;
    failed: number;
    blobs: number;
    bytes: number;
    newBlobs: number;
    newBytes: number;
    presentBytes: number;
  };
}

/** Where the plan's images would go: a registry (`HOST[/path]`), a layout dir, a `.tar` archive, or nowhere. */
export type PlanTarget = { kind: 'registry'; to: string } | { kind: 'layout'; path: string } | { kind: 'none' };

/** Options of {@link mirrorPlan}. */
export interface MirrorPlanOptions extends MirrorOptions {
  /** Plan the images of this layout directory or archive (what `mirror load --from` would push) instead of `items`. */
  from?: string | undefined;
  /** Earlier archives (or their `.manifest.json`): blobs they carry count as present, as a differential save. */
  since?: string[] | undefined;
}
type PlanSource = { source: string; platforms?: MirrorItem['platforms']; open: () => ImageSource };
/** True when the target already holds blob `d` (in repository `repo` of a destination registry). */
type HasBlob = (repo: string, d: Digest, size: number, signal: AbortSignal | undefined) => Promise<boolean>;
/** Per distinct blob: its size, and whether it is new at the target. */
type UniqueBlobs = Map<string, { size: number; isNew: boolean }>;

/** Plan `items` (from registries) or, with `opts.from`, the images of a layout/archive. */
export async function mirrorPlan(
  items: readonly MirrorItem[],
  target: PlanTarget,
  opts: MirrorPlanOptions = {},
): Promise<MirrorPlan> {
  // Blobs carried by earlier archives count as present (a differential save would leave them out).
  const shipped = sinceBlobs(
    await Promise.all(
      (opts.since ?? []).map((p) => readArchiveManifest(p.endsWith('.manifest.json') ? p : manifestPathFor(p))),
    ),
  );
  const conns = new RegistryConnections(opts.concurrency);
  const root = target.kind === 'registry' ? parseDestinationRoot(target.to) : undefined;
  const srcs = await planSources(items, conns, opts);
  if (root)
    planNames(
      srcs.map((s) => parseReference(s.source)),
      root,
      opts.rewrite,
    );
  let layout: OciLayout | undefined;
  if (target.kind === 'layout') {
    const dir = target.path.endsWith('.tar') ? `${target.path}.layout` : target.path;
    if (existsSync(dir)) layout = new OciLayout(dir);
  }
  const has = presence(shipped, root && { registry: root.registry, conns, opts }, layout);

  const images: PlanImage[] = [];
  const failures: MirrorFailure[] = [];
  const unique: UniqueBlobs = new Map();
  try {
    await eachLimited(srcs, opts.concurrency?.images ?? 4, async (s) => {
      // The image's own signal (AbortSignal.any adds no listener to the caller's): its requests listen there.
      const signal = opts.signal ? AbortSignal.any([opts.signal]) : undefined;
      const dest = root ? destinationReference(parseReference(s.source), root, opts.rewrite) : undefined;
      const destination = dest ? dest.toString() : target.kind === 'layout' ? `oci:${target.path}` : '';
      const src = s.open();
      try {
        images.push(await planImage(s, src, destination, dest?.repository ?? '', has, unique, signal));
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        failures.push(toFailure({ source: s.source, destination }, e));
      } finally {
        await src.close();
      }
    });
  } finally {
    await conns.close();
  }
  const order = new Map(srcs.map((s, i) => [s.source, i]));
  images.sort((x, y) => (order.get(x.source) ?? 0) - (order.get(y.source) ?? 0));
  return {
    target: target.kind === 'registry' ? target.to : target.kind === 'layout' ? target.path : '',
    images,
    failures,
    totals: { images: images.length, failed: failures.length, ...blobTotals(unique) },
  };
}

/** The images to plan: the entries of `opts.from` (a layout or archive), else `items` read from their registries. */
async function planSources(
  items: readonly MirrorItem[],
  conns: RegistryConnections,
  opts: MirrorPlanOptions,
): Promise<PlanSource[]> {
  if (opts.from) {
    const l = await openLoadSource(opts.from, opts.signal);
    return l.entries.map((e) => ({ source: e.name, open: e.open }));
  }
  return items.map((it) => ({
    source: it.source.toString(),
    platforms: it.platforms,
    open: () => registrySource(it.source, conns.options(it.source.registry, 'src', opts.sourceRegistry)),
  }));
}

/**
 * The presence check: shipped blobs are present; at a registry one HEAD per repository and blob (memoised; an
 * error counts as absent); else the layout directory when there is one.
 */
function presence(
  shipped: ReadonlySet<string>,
  reg: { registry: string; conns: RegistryConnections; opts: MirrorPlanOptions } | undefined,
  layout: OciLayout | undefined,
): HasBlob {
  const present = new Map<string, Promise<boolean>>();
  return (repo, d, size, signal) => {
    if (shipped.has(d)) return Promise.resolve(true);
    if (!reg) return Promise.resolve(layout ? layout.hasBlob(d, size) : false);
    const key = `${repo}\0${d}`;
    let p = present.get(key);
    if (!p) {
      const r = new RegistryRepository(
        reg.registry,
        repo,
        reg.conns.options(reg.registry, 'dst', reg.opts.destRegistry),
      );
      p = r.headBlob(d, { signal }).then(
        (h) => h !== undefined,
        () => false,
      );
      present.set(key, p);
    }
    return p;
  };
}

/** Resolve one image's graph and check each of its blobs at the target; records the blobs in `unique`. */
async function planImage(
  s: PlanSource,
  src: ImageSource,
  destination: string,
  repo: string,
  has: HasBlob,
  unique: UniqueBlobs,
  signal: AbortSignal | undefined,
): Promise<PlanImage> {
  const full = await loadGraph(src, undefined, { signal });
  const { root: top } = selectPlatforms(full, s.platforms ?? [], src.description);
  const nodes = bottomUp(top);
  const blobs = new Map<Digest, number>();
  for (const n of nodes) for (const b of n.blobs) if (!b.urls?.length) blobs.set(b.digest, b.size);
  let newBlobs = 0;
  let newBytes = 0;
  // As many HEADs at once as one registry serves by default (DEFAULT_CONCURRENCY).
  await eachLimited([...blobs], DEFAULT_CONCURRENCY, async ([d, size]) => {
    const isNew = !(await has(repo, d, size, signal));
    if (isNew) {
      newBlobs++;
      newBytes += size;
    }
    const u = unique.get(d);
    unique.set(d, { size, isNew: (u?.isNew ?? true) && isNew });
  });
  return {
    source: s.source,
    destination,
    digest: top.raw.digest,
    mediaType: top.raw.mediaType,
    platforms:
      top.kind === 'index'
        ? top.children.flatMap((c) => (c.platform ? [formatPlatform(c.platform)] : []))
        : top.platform
          ? [formatPlatform(top.platform)]
          : [],
    manifests: nodes.length,
    blobs: blobs.size,
    bytes: [...blobs.values()].reduce((x, y) => x + y, 0),
    newBlobs,
    newBytes,
  };
}

/** The blob totals of a plan, each distinct blob counted once. */
function blobTotals(unique: UniqueBlobs): Omit<MirrorPlan['totals'], 'images' | 'failed'> {
  const all = [...unique.values()];
  const newOnes = all.filter((u) => u.isNew);
  return {
    blobs: all.length,
    bytes: all.reduce((x, u) => x + u.size, 0),
    newBlobs: newOnes.length,
    newBytes: newOnes.reduce((x, u) => x + u.size, 0),
    presentBytes: all.filter((u) => !u.isNew).reduce((x, u) => x + u.size, 0),
  };
}
