/**
 * Adapters from the registry client to the transport interfaces (src/image/types.ts):
 * `registrySource` reads manifests/blobs by reference, `registryDestination` writes them (HEAD dedupe,
 * cross-repo mount within the same registry, verified upload, manifests PUT by digest or tag).
 */
import type { Readable } from 'node:stream';
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
export type RegistryTransportOptions = RegistryRepositoryOptions;

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
    getBlob(desc: Descriptor, o?: RegistryReadOptions): Promise<Readable> {
      return repo.getBlob(desc, o);
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
  return {
    description: `docker://${r.toString()}`,
    // The reference's tag (`latest` when none was written; undefined for a digest-only reference).
    tag: r.tag,
    repo,
    reference: r,
    async hasBlob(desc: Descriptor, o?: OpOptions): Promise<boolean> {
      const h = await repo.headBlob(desc.digest, o);
      return h !== undefined && (h.size < 0 || desc.size < 0 || h.size === desc.size);
    },
    putBlob(desc, open, o: OpOptions & RegistryPutBlobHints = {}): Promise<PutBlobResult> {
      // Mounting only works within one registry (and never across Docker Hub and others).
      const mountFrom = o.mountFrom && o.mountFrom.registry === r.registry ? o.mountFrom.repository : undefined;
      return repo.pushBlob(desc, open, {
        signal: o.signal,
        onProgress: o.onProgress,
        mountFrom,
        skipExisting: o.knownAbsent !== true,
        sourceVerified: o.sourceVerified === true,
      });
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
      // Registry writes are visible as soon as each PUT returns.
    },
    close: () => repo.close(),
  };
}
