/**
 * `mirror push` (registry → registry), `mirror save` (registries → ONE deduplicated OCI layout, optionally packed
 * as a split archive) and `mirror load` (layout or archive → registry, every blob verified while read). All three
 * build copy jobs for the shared run loop (engine.ts), keep going past failed images, and report per image. Resume
 * is free: blobs appear in a layout only after verification (temp file + rename), and registries are HEAD-checked.
 */
import { rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CopyResult } from '../copy/copy.js';
import { CanvosError } from '../errors.js';
import type { ImageDestination, ImageSource, PutBlobResult, RawManifest } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import { OciLayout, REF_NAME_ANNOTATION } from '../transports/oci-layout/oci-layout.js';
import { layoutSource } from '../transports/oci-layout/layout-source.js';
import { stageLayout, type StagedLayout } from '../transports/oci-layout/layout-destination.js';
import type { Descriptor } from '../image/schemas.js';
import { makeReference, parseReference, type Reference } from '../registry/reference.js';
import { RegistryRepository } from '../registry/client.js';
import { registryDestination, registrySource } from '../transports/registry/registry-image.js';
import {
  checkMaxPartSize,
  manifestPathFor,
  readArchiveManifest,
  sinceBlobs,
  writeArchive,
  type WriteArchiveOptions,
} from './archive.js';
import { MirrorArchive } from './archive-reader.js';
import { RegistryConnections } from './connections.js';
import { DestinationMounts } from './dest-mounts.js';
import { runJobs, toFailure, type CopyJob } from './engine.js';
import { destinationReference, parseDestinationRoot, planNames, type DestinationRoot } from './naming.js';
import { findReferrers, TagLists } from './referrers.js';
import type { MirrorFailure, MirrorItem, MirrorOptions, MirrorReport } from './types.js';

/** Annotation recording the digest an image had at its source. */
export const SOURCE_DIGEST_ANNOTATION = 'io.canvos-lite.mirror.source-digest';

function report(
  operation: MirrorReport['operation'],
  destination: string,
  r: Awaited<ReturnType<typeof runJobs>>,
  started: number,
  files: string[] = [],
): MirrorReport {
  const own = r.images;
  return {
    operation,
    destination,
    images: own,
    failures: r.failures,
    totals: {
      images: own.length,
      failed: r.failures.length,
      blobsCopied: own.reduce((a, i) => a + i.blobs.copied, 0),
      blobsSkipped: own.reduce((a, i) => a + i.blobs.skipped + i.blobs.mounted, 0),
      bytesCopied: own.reduce((a, i) => a + i.blobs.bytes, 0),
      seconds: (Date.now() - started) / 1000,
    },
    files,
  };
}

/** Jobs reading `item` from its registry; `dest` makes the destination side of a job for a source reference. */
function registryJobs(
  items: readonly MirrorItem[],
  conns: RegistryConnections,
  opts: MirrorOptions,
  dest: (src: Reference) => Pick<CopyJob, 'destination' | 'scope' | 'openDestination' | 'tag'> & {
    after?: (r: CopyResult) => Promise<void>;
    /** True when the destination holds the image whose source root digest is `digest`. */
    has?: (digest: Digest, signal?: AbortSignal) => Promise<boolean>;
  },
): CopyJob[] {
  const tagLists = new TagLists();
  const make = (source: Reference, platforms: MirrorItem['platforms'], referrer: boolean): CopyJob => {
    const d = dest(source);
    const destHas = d.has;
    let opened: ReturnType<typeof registrySource> | undefined;
    return {
      source: source.toString(),
      destination: d.destination,
      referrer,
      platforms,
      tag: d.tag,
      scope: d.scope,
      openSource: () => (opened = registrySource(source, conns.options(source.registry, 'src', opts.sourceRegistry))),
      openDestination: d.openDestination,
      // With a platform subset the destination root differs from the source's: no shortcut.
      upToDate:
        platforms?.length || !destHas
          ? undefined
          : async (signal = opts.signal) => {
              const repo =
                opened?.repo ?? registrySource(source, conns.options(source.registry, 'src', opts.sourceRegistry)).repo;
              const h = await repo.headManifest(source.identifier, { signal });
              return h && (await destHas(h.digest, signal)) ? { digest: h.digest, mediaType: h.mediaType } : undefined;
            },
      async after(r: CopyResult, src: ImageSource, _dst, signal = opts.signal): Promise<CopyJob[]> {
        await d.after?.(r);
        if (referrer || opts.referrers === false || !opened) return [];
        const found = await findReferrers(opened.repo, src, r.sourceDigest, tagLists, { signal });
        return [
          ...found.tags.map((t) => make(makeReference(source.registry, source.repository, t), undefined, true)),
          ...found.digests.map((dg) =>
            make(makeReference(source.registry, source.repository, undefined, dg), undefined, true),
          ),
        ];
      },
    };
  };
  return items.map((it) => make(it.source, it.platforms, false));
}

/** Copy `items` to the registry `to` (`HOST[:PORT][/path]`), named by `opts.rewrite`. */
export async function mirrorPush(
  items: readonly MirrorItem[],
  to: string,
  opts: MirrorOptions = {},
): Promise<MirrorReport> {
  const started = Date.now();
  const root = parseDestinationRoot(to);
  planNames(
    items.map((i) => i.source),
    root,
    opts.rewrite,
  );
  const conns = new RegistryConnections(opts.concurrency);
  const mounts = new DestinationMounts(root.registry);
  try {
    // Preflight: an unreachable or refusing destination is one clear error, not one failure per image.
    await conns.get(root.registry, 'dst', opts.destRegistry).ping({ signal: opts.signal });
    const jobs = registryJobs(items, conns, opts, (src) => {
      const ref = destinationReference(src, root, opts.rewrite);
      return {
        destination: ref.toString(),
        scope: `registry:${ref.name}`,
        tag: src.tag,
        openDestination: () =>
          mounts.wrap(registryDestination(ref, conns.options(root.registry, 'dst', opts.destRegistry)), ref.repository),
        has: async (digest: Digest, signal = opts.signal) => {
          const repo = new RegistryRepository(
            root.registry,
            ref.repository,
            conns.options(root.registry, 'dst', opts.destRegistry),
          );
          return (await repo.headManifest(ref.tag ?? digest, { signal }))?.digest === digest;
        },
      };
    });
    const r = await runJobs(jobs, {
      signal: opts.signal,
      onProgress: opts.onProgress,
      images: opts.concurrency?.images,
      blobs: opts.concurrency?.blobs,
    });
    return report('push', to, r, started);
  } finally {
    await conns.close();
  }
}

/** An ImageDestination writing blobs/manifests into a shared layout; index.json entries are added by the caller. */
function layoutBlobDestination(layout: OciLayout, shipped: ReadonlySet<string>): ImageDestination {
  return {
    description: `oci:${layout.dir}`,
    tag: undefined,
    // Blobs shipped in an earlier archive (--since) count as present: they are neither downloaded nor packed.
    hasBlob: async (desc: Descriptor) => shipped.has(desc.digest) || (await layout.hasBlob(desc.digest, desc.size)),
    async putBlob(desc, open, o = {}): Promise<PutBlobResult> {
      if (await layout.hasBlob(desc.digest, desc.size)) return 'exists';
      await layout.writeBlob(desc, await open(), { signal: o.signal, sourceVerified: o.sourceVerified === true });
      return 'uploaded';
    },
    hasManifest: (digest: Digest) => layout.hasBlob(digest),
    async putManifest(m: RawManifest): Promise<void> {
      await layout.writeSmallBlob(m.bytes, m.digest);
    },
    async commit(): Promise<void> {},
    async close(): Promise<void> {},
  };
}

/** The index.json entry of a saved image, named `name`. */
function indexEntry(name: string, r: CopyResult, size: number): Descriptor {
  return {
    mediaType: r.mediaType,
    digest: r.rootDigest,
    size,
    annotations: { [REF_NAME_ANNOTATION]: name, [SOURCE_DIGEST_ANNOTATION]: r.sourceDigest },
  };
}

/** Add or replace the index.json entries (by name) in one atomic rewrite. */
async function addEntries(layout: OciLayout, entries: readonly Descriptor[]): Promise<void> {
  await layout.withIndexLock(async () => {
    const idx = await layout.readIndex();
    const names = new Set(entries.map((e) => e.annotations?.[REF_NAME_ANNOTATION]));
    const keep = idx.manifests.filter((d) => !names.has(d.annotations?.[REF_NAME_ANNOTATION]));
    await layout.writeIndex({
      ...idx,
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [...keep, ...entries],
    });
  });
}

/** Options of {@link mirrorSave}. */
export interface MirrorSaveOptions extends MirrorOptions, Pick<WriteArchiveOptions, 'maxPartSize'> {
  /** Working layout for a `.tar` target (kept after an interrupted run, so the next one resumes). Default: `<to>.layout`. */
  workDir?: string | undefined;
  /** Keep the working layout after the archive is written. Default: false. */
  keepLayout?: boolean | undefined;
  /** Write the archive even when some images failed. Default: false (no archive from a failed batch). */
  allowPartial?: boolean | undefined;
  /**
   * Manifests (`.manifest.json`) of archives already delivered: blobs they hold are not downloaded nor packed
   * again (manifests always are), so the new archive loads into a registry that received those. Default: none.
   */
  since?: string[] | undefined;
}

/** Save `items` into ONE OCI layout directory `to`, or the archive `to` when it ends in `.tar`. */
export async function mirrorSave(
  items: readonly MirrorItem[],
  to: string,
  opts: MirrorSaveOptions = {},
): Promise<MirrorReport> {
  const started = Date.now();
  const asTar = to.endsWith('.tar');
  const dir = asTar ? (opts.workDir ?? `${to}.layout`) : to;
  // Options that only make sense for an archive are refused before anything is created or downloaded.
  if (opts.since?.length && !asTar)
    throw new CanvosError('ERR_USAGE', `--since needs an archive target (NAME.tar), not the directory ${to}`, {
      hint: 'a differential save only makes sense for an archive carried to a site that loaded the earlier ones',
    });
  if (opts.maxPartSize !== undefined && !asTar)
    throw new CanvosError('ERR_USAGE', `--max-part-size splits an archive, but ${to} is a directory target`, {
      hint: 'save to NAME.tar to get NAME.tar.part* files, or drop --max-part-size',
    });
  checkMaxPartSize(opts.maxPartSize);
  // A directory target is staged (src/oci/layout-destination.ts): a new DIR appears only complete, an existing
  // layout gets blobs but its index.json changes once, after every image is complete. A .tar target's working
  // layout is written in place and kept when the save stops, so the next run resumes.
  const staged = asTar ? undefined : await stageLayout(dir);
  const layout = staged?.layout ?? new OciLayout(dir);
  if (!staged) await layout.init();
  try {
    return await saveInto(layout, items, to, asTar, started, opts, staged);
  } finally {
    await staged?.discard();
  }
}

async function saveInto(
  layout: OciLayout,
  items: readonly MirrorItem[],
  to: string,
  asTar: boolean,
  started: number,
  opts: MirrorSaveOptions,
  staged: StagedLayout | undefined,
): Promise<MirrorReport> {
  const dir = layout.dir;
  const since = await Promise.all(
    (opts.since ?? []).map((p) => readArchiveManifest(p.endsWith('.manifest.json') ? p : manifestPathFor(p))),
  );
  const dst = layoutBlobDestination(layout, sinceBlobs(since));
  const conns = new RegistryConnections(opts.concurrency);
  const saved: Descriptor[] = [];
  let r: Awaited<ReturnType<typeof runJobs>>;
  try {
    const jobs = registryJobs(items, conns, opts, (src) => ({
      destination: `oci:${asTar ? dir : to}`,
      scope: `layout:${dir}`,
      tag: undefined,
      openDestination: () => dst,
      after: async (res) => {
        saved.push(indexEntry(src.toString(), res, (await stat(layout.blobPath(res.rootDigest))).size));
      },
      has: async (digest: Digest) => {
        const e = (await layout.readIndex()).manifests.find(
          (m) => m.annotations?.[REF_NAME_ANNOTATION] === src.toString(),
        );
        return e?.annotations?.[SOURCE_DIGEST_ANNOTATION] === digest && (await layout.hasBlob(e.digest, e.size));
      },
    }));
    r = await runJobs(jobs, {
      signal: opts.signal,
      onProgress: opts.onProgress,
      images: opts.concurrency?.images,
      blobs: opts.concurrency?.blobs,
    });
  } finally {
    await conns.close();
  }
  // One atomic index.json update with every image saved; a directory target then appears (or stays) complete.
  if (saved.length > 0) await addEntries(layout, saved);
  if (staged && saved.length > 0) await staged.commit();
  const files: string[] = [];
  if (asTar && (r.failures.length === 0 || opts.allowPartial)) {
    const m = await writeArchive(dir, to, {
      maxPartSize: opts.maxPartSize,
      since,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    files.push(...m.parts.map((p) => join(dirname(to), p.name)), `${to.replace(/\.tar$/, '')}.manifest.json`);
    if (!opts.keepLayout) await rm(dir, { recursive: true, force: true });
  }
  return report('save', to, r, started, files);
}

/** The images a layout directory or archive holds (its named index.json entries). */
export async function openLoadSource(
  from: string,
  signal?: AbortSignal,
): Promise<{ entries: Array<{ name: string; open: () => ImageSource }>; close(): Promise<void> }> {
  const isDir = await stat(from).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (isDir) {
    const layout = new OciLayout(from);
    const idx = await layout.readIndex();
    return {
      entries: idx.manifests.map((d) => {
        const name = d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest;
        return { name, open: () => layoutSource(from, { tag: name }) };
      }),
      close: async () => {},
    };
  }
  const a = await MirrorArchive.open(from, signal);
  return {
    entries: a.index.manifests.map((d) => ({
      name: d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest,
      open: () => a.source(d),
    })),
    close: async () => {},
  };
}

/** Push every image of a layout directory or archive `from` to the registry `to`, verifying every blob read. */
export async function mirrorLoad(
  from: string,
  to: string,
  opts: MirrorOptions = {},
): Promise<MirrorReport & { sources: Reference[] }> {
  const started = Date.now();
  const root: DestinationRoot = parseDestinationRoot(to);
  const src = await openLoadSource(from, opts.signal);
  // Entries must be named by a full reference (as mirror save writes them); others are reported, not guessed.
  const unnamed: MirrorFailure[] = [];
  const named = src.entries.flatMap((e) => {
    try {
      return [{ ...e, ref: parseReference(e.name) }];
    } catch (err) {
      unnamed.push(toFailure({ source: e.name, destination: '' }, err));
      return [];
    }
  });
  planNames(
    named.map((n) => n.ref),
    root,
    opts.rewrite,
  );
  const conns = new RegistryConnections(opts.concurrency);
  const mounts = new DestinationMounts(root.registry);
  try {
    await conns.get(root.registry, 'dst', opts.destRegistry).ping({ signal: opts.signal });
    const jobs: CopyJob[] = named.map((n) => {
      const ref = destinationReference(n.ref, root, opts.rewrite);
      return {
        source: n.name,
        destination: ref.toString(),
        referrer: /:sha256-[a-f0-9]{64}/.test(n.name) || (n.ref.tag === undefined && n.ref.digest !== undefined),
        tag: n.ref.tag,
        scope: `registry:${ref.name}`,
        openSource: n.open,
        openDestination: () =>
          mounts.wrap(registryDestination(ref, conns.options(root.registry, 'dst', opts.destRegistry)), ref.repository),
      };
    });
    const r = await runJobs(jobs, {
      signal: opts.signal,
      onProgress: opts.onProgress,
      images: opts.concurrency?.images,
      blobs: opts.concurrency?.blobs,
    });
    return {
      ...report('load', to, { images: r.images, failures: [...unnamed, ...r.failures] }, started),
      sources: named.map((n) => n.ref),
    };
  } finally {
    await Promise.allSettled([conns.close(), src.close()]);
  }
}
