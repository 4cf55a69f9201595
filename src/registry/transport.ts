/**
 * Adapters from the registry client to the copy engine's transport interfaces (src/copy/types.ts):
 * `registrySource` reads manifests/blobs by reference, `registryDestination` writes them (HEAD dedupe,
 * cross-repo mount within the same registry, verified upload, manifests PUT by digest or tag).
 */
import type { Readable } from 'node:stream';
import { CanvosError } from '../errors.js';
import { sha256, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/schemas.js';
import type { ImageDestination, ImageSource, OpOptions, PutBlobResult, RawManifest } from '../copy/types.js';
import { RegistryRepository, type RegistryRepositoryOptions } from './client.js';
import { parseReference, type Reference } from './reference.js';

/** Options of the registry transports (connection, auth and upload options of a Repository). */
export type RegistryTransportOptions = RegistryRepositoryOptions;

function toRef(ref: string | Reference): Reference {
  return typeof ref === 'string' ? parseReference(ref) : ref;
}

/** An ImageSource reading `ref` (tag or digest) from its registry. */
export function registrySource(
  ref: string | Reference,
  opts: RegistryTransportOptions = {},
): ImageSource & { readonly repo: RegistryRepository; readonly reference: Reference } {
  const r = toRef(ref);
  const repo = new RegistryRepository(r.registry, r.repository, { ...opts, push: false });
  return {
    description: `docker://${r.toString()}`,
    repo,
    reference: r,
    mountOrigin: { registry: r.registry, repository: r.repository },
    getManifest(digest?: Digest, o?: OpOptions): Promise<RawManifest> {
      return repo.getManifest(digest ?? r.identifier, o);
    },
    getBlob(desc: Descriptor, o?: OpOptions): Promise<Readable> {
      return repo.getBlob(desc, o);
    },
    close: () => repo.close(),
  };
}

/** An ImageDestination writing to `ref`'s repository; the root manifest is tagged with the tag given to putManifest. */
export function registryDestination(
  ref: string | Reference,
  opts: RegistryTransportOptions = {},
): ImageDestination & { readonly repo: RegistryRepository; readonly reference: Reference } {
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
    putBlob(desc, open, o = {}): Promise<PutBlobResult> {
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
