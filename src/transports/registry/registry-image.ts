/**
 * Adapters from the registry client to the transport interfaces (src/image/types.ts):
 * `registrySource` reads manifests/blobs by reference, `registryDestination` writes them (HEAD dedupe,
 * cross-repo mount within the same registry, verified upload, manifests PUT by digest or tag).
 */
import type { Readable } from 'node:stream';
import type { BlobLocations } from '../../cache/blob-locations.js';
import { CanvosError } from '../../errors.js';
import { sha256, type Digest } from '../../image/digest.js';
import type { Descriptor } from '../../image/schemas.js';
import type {
  ImageDestination,
  ImageSource,
  OpOptions,
  PutBlobHints,
  PutBlobResult,
  RawManifest,
} from '../../image/types.js';
import type { BlobReadOptions } from '../../registry/blobs.js';
import { RegistryRepository, type RegistryRepositoryOptions } from '../../registry/client.js';
import { parseReference, type Reference } from '../../registry/reference.js';

/** Options of the registry transports (connection, auth and upload options of a Repository). */
export interface RegistryTransportOptions extends RegistryRepositoryOptions {
  /**
   * The persistent blob-location cache: sources record where they read each blob, destinations record where blobs
   * are and, before uploading one, try to mount it from up to 3 of its known repositories on the same registry
   * (most recent first; a location that proves stale is forgotten). The CLI passes `blobLocationsFromEnv(...)`.
   * Default: none (only the source's own repository is a mount candidate).
   */
  blobLocations?: BlobLocations | undefined;
}

/** Mount attempts per blob at most (the source's own repository included). */
const MAX_MOUNT_ATTEMPTS = 3;

/**
 * Blobs this process saw in a destination repository (`registry/repository@digest`, oldest first, bounded): like a
 * location the cache knows there, they are checked with a HEAD before any mount is tried. Only the order of the
 * checks depends on it, never what is trusted.
 */
const seenHere = new Set<string>();
const SEEN_HERE_MAX = 4096;

function rememberHere(key: string): void {
  seenHere.delete(key);
  seenHere.add(key);
  if (seenHere.size > SEEN_HERE_MAX) {
    const oldest = seenHere.values().next();
    if (!oldest.done) seenHere.delete(oldest.value);
  }
}

/** A registry repository a blob can be mounted from (POST ?mount=&from=) at a destination on the same registry. */
export interface MountOrigin {
  registry: string;
  repository: string;
}

/**
 * The registry extension of ImageSource: where a blob can be mounted from. A registry destination on the same
 * registry then mounts it instead of uploading its bytes. Sources offering other sources' blobs (the provider
 * build's assembled image) answer per blob.
 */
export interface MountableSource extends ImageSource {
  /** The repository `desc` can be mounted from, or undefined when it cannot. */
  mountOriginOf(desc: Descriptor): MountOrigin | undefined;
}

/** Blob-read options a registry source understands beyond OpOptions; other sources ignore them. */
export type RegistryReadOptions = OpOptions & Pick<BlobReadOptions, 'widen'>;

/** Put-blob hints a registry destination understands beyond PutBlobHints; other destinations ignore them. */
export interface RegistryPutBlobHints extends PutBlobHints {
  /** Try a cross-repository mount from here first (only within one registry). Default: none. */
  mountFrom?: MountOrigin | undefined;
}

/** The registry ImageSource: an ImageSource that also says where its blobs can be mounted from. */
export interface RegistryImageSource extends MountableSource {
  readonly repo: RegistryRepository;
  readonly reference: Reference;
  /** `registry/repository` this source reads from. */
  readonly mountOrigin: MountOrigin;
  getBlob(desc: Descriptor, opts?: RegistryReadOptions): Promise<Readable>;
}

/** The registry ImageDestination: putBlob takes {@link RegistryPutBlobHints}. */
export interface RegistryImageDestination extends ImageDestination {
  readonly repo: RegistryRepository;
  readonly reference: Reference;
  putBlob(
    desc: Descriptor,
    open: () => Promise<Readable>,
    opts?: OpOptions & RegistryPutBlobHints,
  ): Promise<PutBlobResult>;
}

/** Where `src` says `desc` can be mounted from (registry sources and those offering their blobs), else undefined. */
export function blobMountOrigin(src: ImageSource, desc: Descriptor): MountOrigin | undefined {
  const m = (src as Partial<MountableSource>).mountOriginOf;
  return typeof m === 'function' ? m.call(src, desc) : undefined;
}

/**
 * Where to try mounting `digest` from into `dest`: the source's own repository (when on the same registry: mounting
 * never works across registries, and a registry never gets another one's credentials), then the cache's known
 * locations on that registry (not `dest` itself), most recent first; at most {@link MAX_MOUNT_ATTEMPTS}.
 */
async function mountCandidates(
  digest: Digest,
  { registry, repository }: MountOrigin,
  hint: MountOrigin | undefined,
  cache: BlobLocations | undefined,
): Promise<{ from: MountOrigin[]; knownHere: boolean }> {
  const known = cache ? await cache.locations(digest) : [];
  const out: MountOrigin[] = [];
  let knownHere = false;
  for (const l of [...(hint ? [hint] : []), ...known]) {
    if (l.registry !== registry) continue;
    if (l.repository === repository) knownHere = true;
    else if (!out.some((o) => o.repository === l.repository)) out.push(l);
  }
  return { from: out.slice(0, MAX_MOUNT_ATTEMPTS), knownHere };
}

function toRef(ref: string | Reference): Reference {
  return typeof ref === 'string' ? parseReference(ref) : ref;
}

/** An ImageSource reading `ref` (tag or digest) from its registry. */
export function registrySource(ref: string | Reference, opts: RegistryTransportOptions = {}): RegistryImageSource {
  const r = toRef(ref);
  const repo = new RegistryRepository(r.registry, r.repository, { ...opts, push: false });
  const mountOrigin: MountOrigin = { registry: r.registry, repository: r.repository };
  return {
    description: `docker://${r.toString()}`,
    repo,
    reference: r,
    mountOrigin,
    mountOriginOf: () => mountOrigin,
    getManifest(digest?: Digest, o?: OpOptions): Promise<RawManifest> {
      return repo.getManifest(digest ?? r.identifier, o);
    },
    async getBlob(desc: Descriptor, o?: RegistryReadOptions): Promise<Readable> {
      const s = await repo.getBlob(desc, o);
      // Only a blob read to its verified end is known to be there.
      const cache = opts.blobLocations;
      if (cache) s.once('end', () => void cache.record(desc.digest, mountOrigin));
      return s;
    },
    close: () => repo.close(),
  };
}

/** An ImageDestination writing to `ref`'s repository; the root manifest is tagged with the tag given to putManifest. */
export function registryDestination(
  ref: string | Reference,
  opts: RegistryTransportOptions = {},
): RegistryImageDestination {
  const r = toRef(ref);
  const repo = new RegistryRepository(r.registry, r.repository, { ...opts, push: true });
  // A destination is written after the source was read from: its set-up overlaps those reads.
  repo.http.prepare();
  const cache = opts.blobLocations;
  const here: MountOrigin = { registry: r.registry, repository: r.repository };
  // Cache updates run beside the copy (a blob's slot and the manifests do not wait for a file write); commit and close
  // wait for them, so the cache is up to date when the copy returns.
  const writes = new Set<Promise<void>>();
  const track = (p: Promise<void> | undefined): void => {
    if (!p) return;
    writes.add(p);
    void p.finally(() => writes.delete(p));
  };
  const seen = (digest: Digest): void => {
    rememberHere(`${r.name}@${digest}`);
    track(cache?.record(digest, here));
  };
  const settled = async (): Promise<void> => {
    while (writes.size) await Promise.all(writes);
  };
  return {
    description: `docker://${r.toString()}`,
    // The reference's tag (`latest` when none was written; undefined for a digest-only reference).
    tag: r.tag,
    repo,
    reference: r,
    async hasBlob(desc: Descriptor, o?: OpOptions): Promise<boolean> {
      const h = await repo.headBlob(desc.digest, o);
      const has = h !== undefined && (h.size < 0 || desc.size < 0 || h.size === desc.size);
      if (has) seen(desc.digest);
      return has;
    },
    // putBlob finds a blob that is already here itself, with fewer requests than hasBlob + putBlob.
    checksOnPut: true,
    async putBlob(desc, open, o: OpOptions & RegistryPutBlobHints = {}): Promise<PutBlobResult> {
      const { from, knownHere } = await mountCandidates(desc.digest, here, o.mountFrom, cache);
      const result = await repo.pushBlob(desc, open, {
        signal: o.signal,
        onProgress: o.onProgress,
        mountFrom: from.map((l) => l.repository),
        // A blob last seen elsewhere is more likely mountable than here: one POST (a 201 proves it) instead of a
        // HEAD and a POST. One the cache saw here is checked with a HEAD first, as before.
        mountFirst: !knownHere && !seenHere.has(`${r.name}@${desc.digest}`),
        onMount: (from, outcome) => {
          // A refused mount proves the blob is no longer there; an access denial proves nothing.
          if (outcome === 'refused') track(cache?.forget(desc.digest, { registry: r.registry, repository: from }));
        },
        skipExisting: o.knownAbsent !== true,
        sourceVerified: o.sourceVerified === true,
      });
      seen(desc.digest);
      return result;
    },
    async hasManifest(digest: Digest, o?: OpOptions): Promise<boolean> {
      return (await repo.headManifest(digest, o)) !== undefined;
    },
    async putManifest(m: RawManifest, tag: string | undefined, o?: OpOptions): Promise<void> {
      const digest = sha256(m.bytes);
      if (digest !== m.digest && m.digest.startsWith('sha256:')) {
        throw new CanvosError(
          'ERR_DIGEST_MISMATCH',
          `manifest for ${r.name}: bytes hash to ${digest}, not the claimed ${m.digest}`,
          { hint: 'internal error in the caller: the manifest bytes were changed' },
        );
      }
      await repo.putManifest(m, tag ?? m.digest, o);
    },
    async commit(): Promise<void> {
      // Registry writes are visible as soon as each PUT returns; only the cache's may still be under way.
      await settled();
    },
    async close(): Promise<void> {
      await settled();
      await repo.close();
    },
  };
}
