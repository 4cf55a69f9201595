/**
 * Writing an assembled image (base layers by reference + new layers + config + manifest) through the copy engine:
 * the image is offered as an ImageSource, so it gets the engine's existence checks, cross-repository mounts of the
 * base layers, largest-first scheduling and shared progress, and its manifest is written only after every blob is
 * confirmed. The bytes are the assembled ones: the digests do not depend on the destination.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobCache } from '../cache/blob-cache.js';
import { copyImage, type CopyResult } from '../copy/copy.js';
import { CanvosError } from '../errors.js';
import { VerifyingStream, type Digest } from '../image/digest.js';
import type { Descriptor } from '../image/schemas.js';
import type { ImageDestination, OpOptions, ProgressEvent, ProgressFn, RawManifest } from '../image/types.js';
import { blobMountOrigin, type MountableSource } from '../transports/registry/registry-image.js';
import type { AssembledImage } from './assemble.js';
import { cachedBlobPath, type OpenedImage } from './image-reader.js';

/** What an assembled image is made of, besides its own bytes. */
export interface AssembledParts {
  /** The image the base layers come from (read through `cache`; mountable from its registry). */
  base: OpenedImage;
  /** Files holding the new layers, by digest. */
  files: ReadonlyMap<string, string>;
  cache: BlobCache;
}

/**
 * The assembled image as an ImageSource: manifest and config from memory, new layers from their files, base layers
 * through the blob cache. Every blob stream verifies digest and size, as ImageSource requires.
 */
export function assembledImageSource(image: AssembledImage, parts: AssembledParts): MountableSource {
  const { base, files, cache } = parts;
  const description = `image ${image.manifest.digest} assembled on ${base.source.description}`;
  const baseDigests = new Set(base.layers.map((l) => l.digest));
  const open = async (desc: Descriptor, signal: AbortSignal | undefined): Promise<Readable> => {
    if (desc.digest === image.config.digest) return Readable.from([image.config.bytes]);
    const file = files.get(desc.digest);
    if (file !== undefined) return createReadStream(file);
    if (baseDigests.has(desc.digest)) return createReadStream(await cachedBlobPath(base.source, desc, cache, signal));
    throw new CanvosError('ERR_BLOB_UNKNOWN', `${description} has no blob ${desc.digest}`);
  };
  return {
    description,
    getManifest(digest?: Digest): Promise<RawManifest> {
      if (digest !== undefined && digest !== image.manifest.digest)
        return Promise.reject(new CanvosError('ERR_MANIFEST_UNKNOWN', `${description} has no manifest ${digest}`));
      return Promise.resolve(image.manifest);
    },
    async getBlob(desc: Descriptor, o?: OpOptions): Promise<Readable> {
      const s = await open(desc, o?.signal);
      const v = new VerifyingStream(desc.digest, { size: desc.size, what: `blob ${desc.digest} of ${description}` });
      s.on('error', (e) => v.destroy(e));
      return s.pipe(v);
    },
    mountOriginOf: (desc) => (baseDigests.has(desc.digest) ? blobMountOrigin(base.source, desc) : undefined),
    close: () => Promise.resolve(),
  };
}

/** The engine's blob statuses in the provider build's `write-blob` vocabulary (PutBlobResult). */
const WRITE_STATUS: Readonly<Record<string, string>> = { copied: 'uploaded', skipped: 'exists', mounted: 'mounted' };

/**
 * Progress of a provider image write: the engine's byte events pass as they are (`copy`), each finished blob is
 * reported as `write-blob` with `uploaded`, `exists` or `mounted`.
 */
function writeProgress(progress: ProgressFn): ProgressFn {
  return (e: ProgressEvent) => {
    if (e.status === undefined || e.item === undefined) {
      progress(e);
      return;
    }
    progress({
      phase: 'write-blob',
      item: e.item,
      transferred: e.itemSize ?? 0,
      total: e.itemSize,
      status: WRITE_STATUS[e.status] ?? e.status,
      itemSize: e.itemSize,
    });
  };
}

/** Options of {@link pushAssembledImage}. */
export interface PushAssembledOptions {
  /** Tag of the manifest. Default: the destination's own tag. */
  tag?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Default: none. */
  onProgress?: ProgressFn | undefined;
}

/** Write `image` to `dst` through the copy engine: blobs (base layers checked/mounted first), then the manifest, then commit. */
export function pushAssembledImage(
  dst: ImageDestination,
  image: AssembledImage,
  parts: AssembledParts,
  opts: PushAssembledOptions = {},
): Promise<CopyResult> {
  return copyImage(assembledImageSource(image, parts), dst, {
    tag: opts.tag,
    signal: opts.signal,
    // Like the writes before the engine: a base layer with `urls` is copied too, from the base's registry.
    includeForeign: true,
    onProgress: opts.onProgress ? writeProgress(opts.onProgress) : undefined,
  });
}
