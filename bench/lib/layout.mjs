/**
 * Writes OCI image layouts of incompressible data for benches, without canvos-lite code (an independent writer, like
 * test/helpers/fixtures.ts makeOciLayout, which is TypeScript and so not importable here). Each layer is a gzip'd tar
 * holding one random file; one index per image when it has several platforms.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

/** Random bytes, `total` of them, in 1 MiB chunks. */
export async function* randomStream(total) {
  for (let left = total; left > 0;) {
    const n = Math.min(left, 1 << 20);
    yield randomBytes(n);
    left -= n;
  }
}

/** Write `total` random bytes to `file`. */
export async function writeRandomFile(file, total) {
  await pipeline(randomStream(total), createWriteStream(file));
}

function octal(n, width) {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar header for a regular file (mode 0644, uid/gid 0, mtime 0). */
export function tarHeader(name, size) {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(0, 12), 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

async function* tarOfOneFile(name, size) {
  yield tarHeader(name, size);
  yield* randomStream(size);
  const pad = (512 - (size % 512)) % 512;
  yield Buffer.alloc(pad + 1024);
}

/** Write one gzip'd tar layer blob into `<layout>/blobs/sha256/`; returns {digest, size, diffId}. */
export async function writeLayerBlob(layoutDir, name, payloadBytes, level = 1) {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const tmp = join(blobs, `.tmp-${randomBytes(6).toString('hex')}`);
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let size = 0;
  await pipeline(
    tarOfOneFile(name, payloadBytes),
    async function* (src) {
      for await (const b of src) {
        diff.update(b);
        yield b;
      }
    },
    createGzip({ level }),
    async function* (src) {
      for await (const b of src) {
        blob.update(b);
        size += b.length;
        yield b;
      }
    },
    createWriteStream(tmp),
  );
  const hex = blob.digest('hex');
  await rename(tmp, join(blobs, hex));
  return { digest: `sha256:${hex}`, size, diffId: `sha256:${diff.digest('hex')}` };
}

/** Store a JSON document as a blob; returns its descriptor. */
export async function writeJsonBlob(layoutDir, mediaType, obj) {
  const bytes = Buffer.from(JSON.stringify(obj));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layoutDir, 'blobs', 'sha256', hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/**
 * Add an image to the layout at `dir` under tag `tag`: `platforms` (e.g. ['linux/amd64','linux/arm64']) × `layers`
 * random layers of `layerBytes` each. Returns the root descriptor.
 */
export async function addImage(dir, { tag, platforms = ['linux/amd64'], layers = 2, layerBytes = 1 << 20 }) {
  const manifests = [];
  for (const p of platforms) {
    const [os, architecture] = p.split('/');
    const descs = [];
    for (let i = 0; i < layers; i++)
      descs.push(await writeLayerBlob(dir, `data/${tag}-${os}-${architecture}-${i}.bin`, layerBytes));
    const config = await writeJsonBlob(dir, 'application/vnd.oci.image.config.v1+json', {
      architecture,
      os,
      config: { Env: ['PATH=/usr/bin:/bin'] },
      rootfs: { type: 'layers', diff_ids: descs.map((d) => d.diffId) },
      history: descs.map(() => ({ created_by: 'bench' })),
    });
    const m = await writeJsonBlob(dir, 'application/vnd.oci.image.manifest.v1+json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers: descs.map((d) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: d.digest,
        size: d.size,
      })),
    });
    manifests.push({ ...m, platform: { architecture, os } });
  }
  const root =
    manifests.length === 1
      ? { mediaType: manifests[0].mediaType, digest: manifests[0].digest, size: manifests[0].size }
      : await writeJsonBlob(dir, 'application/vnd.oci.image.index.v1+json', {
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests,
        });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  let index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  } catch {}
  index.manifests = index.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  index.manifests.push({ ...root, annotations: { 'org.opencontainers.image.ref.name': tag } });
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return root;
}
