/**
 * Cross-repository blob reuse at the destination registry. Images mirrored into different repositories often share
 * layers (a CanvOS base image and the provider images built on it); once a blob landed in one destination
 * repository, the others get it by a mount (POST ?mount=&from=) instead of a second download + upload. A blob
 * still in flight to another repository is waited for first, so shared layers cross the wire once per run.
 */
import type { ImageDestination, OpOptions, PutBlobResult } from '../image/types.js';
import type { RegistryImageDestination, RegistryPutBlobHints } from '../transports/registry/registry-image.js';
import type { Descriptor } from '../image/schemas.js';

/** Where each blob went at one destination registry during a run. */
export class DestinationMounts {
  private readonly where = new Map<string, { repository: string; done: Promise<boolean> }>();
  readonly registry: string;
  constructor(registry: string) {
    this.registry = registry;
  }

  /** `dst` (a destination repository on this registry) with putBlob mounting from sibling repositories. */
  wrap(dst: RegistryImageDestination, repository: string): ImageDestination {
    const putBlob = async (
      desc: Descriptor,
      open: () => Promise<import('node:stream').Readable>,
      o: OpOptions & RegistryPutBlobHints = {},
    ): Promise<PutBlobResult> => {
      const prev = this.where.get(desc.digest);
      if (prev && prev.repository !== repository && (await prev.done)) {
        return dst.putBlob(desc, open, { ...o, mountFrom: { registry: this.registry, repository: prev.repository } });
      }
      let settle: (ok: boolean) => void = () => {};
      const done = new Promise<boolean>((r) => (settle = r));
      if (!prev || prev.repository !== repository) this.where.set(desc.digest, { repository, done });
      try {
        const r = await dst.putBlob(desc, open, o);
        settle(true);
        return r;
      } catch (e) {
        settle(false);
        if (this.where.get(desc.digest)?.done === done) this.where.delete(desc.digest);
        throw e;
      }
    };
    return {
      description: dst.description,
      tag: dst.tag,
      singleImage: dst.singleImage,
      checksOnPut: dst.checksOnPut,
      hasBlob: (d, o) => dst.hasBlob(d, o),
      putBlob,
      hasManifest: (d, o) => dst.hasManifest(d, o),
      putManifest: (m, t, o) => dst.putManifest(m, t, o),
      commit: (o) => dst.commit(o),
      close: () => dst.close(),
    };
  }
}
