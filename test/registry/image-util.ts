/**
 * Test-only helpers for the registry tests: a tiny real image (gzip tar layer, OCI config, OCI manifest)
 * built in memory, pushing it through registryDestination, and reading a whole image back.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { sha256, type Digest } from '../../src/image/digest.js';
import type { Descriptor } from '../../src/image/schemas.js';
import type { ImageDestination, ImageSource } from '../../src/image/types.js';

/** A minimal ustar archive with one regular file (enough for skopeo/umoci to accept the layer). */
export function tinyTar(name: string, content: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(content.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.fill(' ', 148, 156);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([h, content, pad, Buffer.alloc(1024)]);
}

export interface TinyImage {
  layer: Buffer;
  layerDesc: Descriptor;
  config: Buffer;
  configDesc: Descriptor;
  manifest: Buffer;
  manifestDigest: Digest;
}

export function tinyImage(seed: string, payloadBytes = 4096): TinyImage {
  const payload = Buffer.alloc(payloadBytes);
  for (let i = 0; i < payloadBytes; i++)
    payload[i] = (i * 31 + seed.length * 7 + (seed.charCodeAt(i % seed.length) | 0)) & 0xff;
  const tar = tinyTar(`file-${seed}.bin`, payload);
  const layer = gzipSync(tar);
  const layerDesc = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: sha256(layer),
    size: layer.length,
  };
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
    }),
  );
  const configDesc = {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: sha256(config),
    size: config.length,
  };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: configDesc,
      layers: [layerDesc],
    }),
  );
  return { layer, layerDesc, config, configDesc, manifest, manifestDigest: sha256(manifest) };
}

/** Push a TinyImage through an ImageDestination, tagging the manifest. */
export async function pushTiny(dest: ImageDestination, img: TinyImage, tag: string): Promise<string[]> {
  const results: string[] = [];
  results.push(await dest.putBlob(img.layerDesc, async () => Readable.from([img.layer])));
  results.push(await dest.putBlob(img.configDesc, async () => Readable.from([img.config])));
  await dest.putManifest(
    { bytes: img.manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.manifestDigest },
    tag,
  );
  await dest.commit();
  return results;
}

export async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Read a single-image manifest and every blob it references (verified by the source). */
export async function readImage(
  src: ImageSource,
  digest?: Digest,
): Promise<{ manifestDigest: Digest; blobs: Map<string, Buffer> }> {
  const m = await src.getManifest(digest);
  const j = JSON.parse(m.bytes.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
  const blobs = new Map<string, Buffer>();
  for (const d of [j.config, ...j.layers]) blobs.set(d.digest, await readAll(await src.getBlob(d)));
  return { manifestDigest: m.digest, blobs };
}
