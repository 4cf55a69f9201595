/**
 * CanvOS's `iso-disk-image` form (Earthfile 1427–1431): the ISO inside a FROM-scratch image at /disk/<name>.iso,
 * for sites whose tooling moves only images. One deterministic tar layer (gzip, or uncompressed: the ISO's
 * squashfs barely compresses), a linux config naming the platform, pushed to any destination.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { openDestination, type OpenOptions } from '../transports/resolve-location.js';
import { buildLayer } from '../layers/build.js';
import { sha256, type Digest } from '../image/digest.js';

/** Options of {@link pushIsoImage}. */
export interface PushIsoImageOptions extends OpenOptions {
  /** Directory for the temporary layer blob. */
  workDir: string;
  /** Default: 'amd64'. */
  arch?: 'amd64' | 'arm64' | undefined;
  /** Layer and config timestamps. Default: 0. */
  sourceDateEpoch?: number | undefined;
  /** Default: 'gzip' (what every runtime reads); 'none' saves the CPU of compressing a squashfs. */
  compression?: 'gzip' | 'none' | undefined;
  signal?: AbortSignal | undefined;
}

/** Pushes `/disk/<basename(iso)>` in a scratch image to `dest`; returns the manifest digest. */
export async function pushIsoImage(iso: string, dest: string, opts: PushIsoImageOptions): Promise<{ digest: Digest }> {
  const { signal } = opts;
  const epoch = opts.sourceDateEpoch ?? 0;
  const tmp = await mkdtemp(join(opts.workDir, '.iso-image-'));
  try {
    const layer = await buildLayer(
      {
        entries: [
          { type: 'dir', path: 'disk' },
          { type: 'file', path: `disk/${basename(iso)}`, source: { host: iso }, mode: 0o644 },
        ],
      },
      { dir: tmp, sourceDateEpoch: epoch, compression: opts.compression ?? 'gzip', signal },
    );
    const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
    const config = Buffer.from(
      JSON.stringify({
        architecture: opts.arch ?? 'amd64',
        os: 'linux',
        created,
        config: {},
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        history: [{ created, created_by: `COPY ${basename(iso)} /disk/ # canvos-lite iso-disk-image` }],
      }),
    );
    const configDesc = {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha256(config),
      size: config.length,
    };
    const layerDesc = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
    const mediaType = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType, config: configDesc, layers: [layerDesc] }),
    );
    const digest = sha256(manifest);
    const dst = openDestination(dest, opts);
    try {
      await dst.putBlob(layerDesc, () => Promise.resolve(createReadStream(layer.path)), { signal });
      await dst.putBlob(configDesc, () => Promise.resolve(Readable.from([config])), { signal });
      await dst.putManifest({ bytes: manifest, mediaType, digest }, dst.tag, { signal });
      await dst.commit({ signal });
    } finally {
      await dst.close();
    }
    return { digest };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
