/**
 * Walking the manifest graph stored in an OCI layout (or any blob store with the same read function): every
 * manifest, config and layer reachable from index.json. Used to pack a mirror archive (only reachable blobs, and a
 * missing one is an error rather than a silently incomplete archive).
 */
import { CanvosError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { OciLayout } from '../transports/oci-layout/oci-layout.js';
import { parseManifest, type ImageIndex } from '../image/schemas.js';

/** Reads a small blob (manifest) verified by digest. */
export type ReadManifestFn = (digest: Digest) => Promise<Buffer>;

/** Digests reachable from `index`; foreign layers (with `urls`) are included only when `has` says they exist. */
export async function reachableFrom(
  index: ImageIndex,
  read: ReadManifestFn,
  has: (d: Digest) => Promise<boolean>,
  where: string,
  manifestsOut?: Set<Digest>,
): Promise<Set<Digest>> {
  const out = new Set<Digest>();
  const visit = async (digest: Digest, mediaType: string | undefined, depth: number): Promise<void> => {
    if (out.has(digest)) return;
    if (depth > 8)
      throw new CanvosError('ERR_MANIFEST_INVALID', `${where}: manifests nested deeper than 8 at ${digest}`);
    out.add(digest);
    manifestsOut?.add(digest);
    const m = parseManifest(await read(digest), mediaType, `manifest ${digest} in ${where}`);
    if (m.kind === 'index') {
      for (const d of m.value.manifests) await visit(d.digest, d.mediaType, depth + 1);
      return;
    }
    for (const b of [m.value.config, ...m.value.layers]) {
      const d = b.digest;
      if (b.urls?.length && !(await has(d))) continue;
      if (!(await has(d))) {
        throw new CanvosError('ERR_BLOB_UNKNOWN', `${where}: blob ${d} of manifest ${digest} is missing`, {
          hint: 'the save was interrupted or the layout was modified; run mirror save again to complete it',
        });
      }
      out.add(d);
    }
  };
  for (const d of index.manifests) await visit(d.digest, d.mediaType, 0);
  return out;
}

/** Every blob reachable from the layout's index.json; blobs in `exclude` may be absent (differential archives). */
export function reachableBlobs(
  layout: OciLayout,
  index: ImageIndex,
  exclude?: ReadonlySet<string>,
  manifestsOut?: Set<Digest>,
): Promise<Set<Digest>> {
  const has = async (d: Digest): Promise<boolean> => exclude?.has(d) === true || (await layout.hasBlob(d));
  return reachableFrom(index, (d) => layout.readSmallBlob(d, `manifest ${d}`), has, layout.dir, manifestsOut);
}
