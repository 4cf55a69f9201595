/**
 * Builds the config and manifest of a provider image from the base image's: the base config is kept as is (Env,
 * Cmd, Labels, unknown fields) with the new diff_ids and history entries appended, and the manifest lists the base
 * layers unchanged followed by the new ones, in the base manifest's media-type family (OCI or Docker v2).
 * Output bytes depend only on the inputs, so the same build gives the same digests.
 */
import { CanvosError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import type { Descriptor } from '../image/schemas.js';
import type { RawManifest } from '../image/types.js';

/** A layer to append, as buildLayer returned it (media type already chosen for the family). */
export interface AppendedLayer {
  digest: Digest;
  size: number;
  diffId: Digest;
  mediaType: string;
  /** History `created_by`; must not contain secrets. */
  createdBy: string;
}

/** The assembled image: exact bytes of config and manifest. */
export interface AssembledImage {
  config: { bytes: Buffer; digest: Digest; mediaType: string };
  manifest: RawManifest;
  layers: Descriptor[];
}

/** True when the base manifest is Docker v2 schema 2 (then the new image is too). */
export function isDockerFamily(manifestMediaType: string): boolean {
  return manifestMediaType === MediaType.DockerManifest;
}

/** The layer media type for the family. */
export function layerMediaTypeFor(manifestMediaType: string, compression: 'gzip' | 'zstd' = 'gzip'): string {
  if (compression === 'zstd') {
    if (isDockerFamily(manifestMediaType)) {
      throw new CanvosError(
        'ERR_CONFIG',
        `zstd layers need an OCI base image, but the base manifest is ${manifestMediaType}`,
        {
          hint: 'use gzip layers (the default), or a base image pushed with OCI media types',
        },
      );
    }
    return MediaType.OciLayerZstd;
  }
  return isDockerFamily(manifestMediaType) ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;
}

/** One new history entry: a layer's (in `layers` order) or a config-only instruction's (`emptyLayer`). */
export interface HistoryItem {
  createdBy: string;
  emptyLayer?: boolean | undefined;
}

/** Options of {@link assembleImage}. */
export interface AssembleOptions {
  /** RFC 3339 time for the config and the new history entries (SOURCE_DATE_EPOCH). Default: base's, none. */
  created?: string | undefined;
  /** Labels merged into the runtime config. Default: none. */
  labels?: Record<string, string> | undefined;
  /** Replaces the runtime config (`config.config`), e.g. after Dockerfile ENV/CMD/…. Default: the base's. */
  runtimeConfig?: Record<string, unknown> | undefined;
  /**
   * The new history entries in order, when they are not one per layer (config-only Dockerfile instructions);
   * the non-empty ones must match `layers` one to one. Default: one entry per layer from its `createdBy`.
   */
  history?: readonly HistoryItem[] | undefined;
}

/**
 * Append `layers` to the base image. `created` (RFC 3339) becomes the config's `created` and each new history
 * entry's, when given (SOURCE_DATE_EPOCH); otherwise the base's `created` is kept and history entries carry none.
 */
export function assembleImage(
  base: { manifest: RawManifest; configBytes: Buffer; layers: readonly Descriptor[] },
  layers: readonly AppendedLayer[],
  opts: AssembleOptions = {},
): AssembledImage {
  const docker = isDockerFamily(base.manifest.mediaType);
  const config = JSON.parse(base.configBytes.toString('utf8')) as Record<string, unknown>;
  const rootfs = (config.rootfs ?? { type: 'layers', diff_ids: [] }) as { type: string; diff_ids: string[] };
  config.rootfs = { ...rootfs, diff_ids: [...rootfs.diff_ids, ...layers.map((l) => l.diffId)] };
  // History must stay consistent with the layers (one non-empty entry per layer); a base without history stays so.
  const items: readonly HistoryItem[] = opts.history ?? layers.map((l) => ({ createdBy: l.createdBy }));
  if (items.filter((h) => !h.emptyLayer).length !== layers.length) {
    throw new CanvosError(
      'ERR_INTERNAL',
      `history has ${items.filter((h) => !h.emptyLayer).length} layer entries for ${layers.length} layers`,
    );
  }
  if (Array.isArray(config.history)) {
    config.history = [
      ...(config.history as unknown[]),
      ...items.map((h) => ({
        ...(opts.created ? { created: opts.created } : {}),
        created_by: h.createdBy,
        ...(h.emptyLayer ? { empty_layer: true } : {}),
      })),
    ];
  }
  if (opts.created) config.created = opts.created;
  if (opts.runtimeConfig) config.config = opts.runtimeConfig;
  if (opts.labels && Object.keys(opts.labels).length) {
    const c = (config.config ?? {}) as Record<string, unknown>;
    c.Labels = { ...(c.Labels ?? {}), ...opts.labels };
    config.config = c;
  }
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc = {
    mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig,
    digest: sha256(configBytes),
    size: configBytes.length,
  };
  const all: Descriptor[] = [
    ...base.layers,
    ...layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  ];
  const manifestType = docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest = { schemaVersion: 2, mediaType: manifestType, config: configDesc, layers: all };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return {
    config: { bytes: configBytes, digest: configDesc.digest, mediaType: configDesc.mediaType },
    manifest: { bytes, mediaType: manifestType, digest: sha256(bytes) },
    layers: all,
  };
}
