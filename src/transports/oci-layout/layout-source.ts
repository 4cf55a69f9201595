/**
 * The `oci:DIR[:tag]` source: the manifest a tag (or the only index.json entry) names, its children and blobs, read
 * from the layout's blob files and verified against their digests.
 */
import type { Digest } from '../../image/digest.js';
import { declaredManifestMediaType, MediaType } from '../../image/media-types.js';
import type { Descriptor } from '../../image/schemas.js';
import type { ImageSource, RawManifest } from '../../image/types.js';
import { OciLayout, type LayoutTransportOptions } from './oci-layout.js';

/** An ImageSource reading `oci:DIR[:tag]`. */
export function layoutSource(
  dir: string,
  opts: LayoutTransportOptions = {},
): ImageSource & { readonly layout: OciLayout } {
  const layout = new OciLayout(dir);
  let root: Promise<Descriptor> | undefined;
  return {
    description: `oci:${dir}${opts.tag !== undefined ? `:${opts.tag}` : ''}`,
    layout,
    async getManifest(digest?: Digest): Promise<RawManifest> {
      let mediaType: string | undefined;
      if (digest === undefined) {
        root ??= layout.resolve(opts.tag);
        const d = await root;
        digest = d.digest;
        mediaType = d.mediaType;
      }
      const bytes = await layout.readSmallBlob(digest, `manifest ${digest}`);
      if (mediaType === undefined) {
        try {
          mediaType = declaredManifestMediaType(bytes);
        } catch {
          mediaType = MediaType.OciManifest;
        }
      }
      return { bytes, digest, mediaType };
    },
    getBlob: (desc: Descriptor) => layout.openBlob(desc),
    async close(): Promise<void> {},
  };
}
