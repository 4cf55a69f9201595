/**
 * `--base REF` of iso, disk and uki iso: open a ready installer image (any transport) for one architecture, hand it
 * to the command, and close its source whatever happens. Blobs go through the shared blob cache.
 */
import { BlobCache } from '../oci/cache.js';
import { openImage, type OpenedImage } from '../provider/image-reader.js';
import type { RegistryTransportOptions } from '../registry/transport.js';
import type { CliIo } from './types.js';

/** Runs `use` with the image `ref` for linux/`arch` opened; its source is closed afterwards. */
export async function withBaseImage<T>(
  ref: string,
  arch: string,
  registry: RegistryTransportOptions,
  io: CliIo,
  use: (img: OpenedImage) => Promise<T>,
): Promise<T> {
  const img = await openImage(ref, arch, { cache: new BlobCache({ env: io.env }), signal: io.signal, registry });
  try {
    return await use(img);
  } finally {
    await img.source.close().catch(() => {});
  }
}
