/**
 * `--base REF` of iso, disk and uki iso: open a ready installer image (any transport) for one architecture, hand it
 * to the command, and close its source whatever happens. Blobs go through the shared blob cache.
 */
import { BlobCache } from '../cache/blob-cache.js';
import { openImage, type OpenedImage } from '../provider/image-reader.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import { PROJECT_OPTIONS } from './config-options.js';
import { BASE_IMAGE_OPTIONS, JSON_OPTION } from './flag-sets.js';
import { usageError } from './flags.js';
import type { CliIo } from './types.js';

/**
 * parseArgs options of the commands that build from the installer rootfs (iso, disk): the project configuration, or
 * `--base REF` with its registry flags and `--name`, `--arch`, `--edge-custom-config`; `--user-data`, `--output` and
 * `--json` in either form.
 */
export const INSTALLER_SOURCE_OPTIONS = {
  ...PROJECT_OPTIONS,
  ...BASE_IMAGE_OPTIONS,
  ...JSON_OPTION,
  base: { type: 'string' },
  name: { type: 'string' },
  arch: { type: 'string' },
  'edge-custom-config': { type: 'string' },
  'user-data': { type: 'string' },
  output: { type: 'string' },
} as const;

/** `--arch` of a `--base` image: amd64 (default) or arm64. */
export function parseBaseArch(command: string, v: string | undefined): 'amd64' | 'arm64' {
  const arch = v ?? 'amd64';
  if (arch !== 'amd64' && arch !== 'arm64')
    throw usageError(command, `--arch must be amd64 or arm64, not ${JSON.stringify(arch)}`);
  return arch;
}

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
