/**
 * OCI image layouts written by hand for seeding registries and as an independent oracle: deliberately imports
 * nothing from src/. Layers are tar-stream archives of random (incompressible) payload files, gzipped with
 * node:zlib and streamed to disk while hashing both the tar (diff_id) and the gzip (digest).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';

/** Options of {@link makeOciLayout}. */
export interface OciLayoutOptions {
  /** The `org.opencontainers.image.ref.name` of the single index.json entry. Default: 'latest'. */
  tag?: string;
  /** 'os/arch[/variant]' per image; more than one makes an image index (or Docker manifest list). Default: ['linux/amd64']. */
  platforms?: string[];
  /** Layers per platform. Default: 2. */
  layers?: number;
  /** Approximate random payload bytes per layer. Default: 65536. */
  layerBytes?: number;
  /** Extra small files (path → content) in the first layer of every platform. Default: none. */
  files?: Record<string, string>;
  /**
   * Docker v2s2 media types instead of OCI ones. skopeo 1.9's `oci:` transport skips such index.json entries
   * ("no descriptor found"): seed registries with these via ./push-layout.ts instead. Default: false.
   */
  docker?: boolean;
}

/** What {@link makeOciLayout} wrote. */
export interface OciLayoutResult {
  /** Digest index.json points at: the index/manifest list for >1 platform, else the single manifest. */
  indexDigest: string;
  /** Digests of the per-platform manifests, in `platforms` order. */
  manifestDigests: string[];
  /** Extra: per platform, the config digest, layer digests and diff_ids (same order as manifestDigests). */
  images: Array<{ platform: string; configDigest: string; layerDigests: string[]; diffIds: string[] }>;
}

const OCI = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};
const DOCKER = {
  index: 'application/vnd.docker.distribution.manifest.list.v2+json',
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

/** Passes bytes through while counting and sha256-hashing them. */
class Hasher extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

async function writeBlob(dir: string, mediaType: string, data: Buffer): Promise<Desc> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(join(dir, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length };
}

/** Streams one gzip tar layer into the layout; returns its descriptor and diff_id. */
async function writeLayer(
  dir: string,
  mediaType: string,
  index: number,
  bytes: number,
  files: Record<string, string>,
): Promise<{ desc: Desc; diffId: string }> {
  const tar = tarPack();
  const raw = new Hasher();
  const gz = new Hasher();
  const tmp = join(dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
  const done = pipeline(tar, raw, createGzip(), gz, createWriteStream(tmp));
  const mtime = new Date('2024-01-01T00:00:00Z');
  const entry = (name: string, content: Buffer) =>
    new Promise<void>((resolve, reject) =>
      tar.entry({ name, mode: 0o644, mtime }, content, (err) => (err ? reject(err) : resolve())),
    );
  tar.entry({ name: `layer${index}`, type: 'directory', mode: 0o755, mtime });
  for (const [path, content] of Object.entries(files)) {
    const parts = path.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++)
      tar.entry({ name: parts.slice(0, i).join('/'), type: 'directory', mode: 0o755, mtime });
    await entry(parts.join('/'), Buffer.from(content));
  }
  // The payload is written in 64 KiB slices so a large layerBytes never sits in memory at once.
  let payloadDone!: Promise<void>;
  const payload = await new Promise<ReturnType<typeof tar.entry>>((resolve) => {
    payloadDone = new Promise<void>((ok, fail) => {
      resolve(
        tar.entry({ name: `layer${index}/payload.bin`, size: bytes, mode: 0o644, mtime }, (err) =>
          err ? fail(err) : ok(),
        ),
      );
    });
  });
  for (let left = bytes; left > 0; left -= 65536) {
    if (!payload.write(randomBytes(Math.min(left, 65536))))
      await new Promise<void>((r) => payload.once('drain', () => r()));
  }
  payload.end(undefined);
  await payloadDone;
  tar.finalize();
  await done;
  const hex = gz.hash.digest('hex');
  await rename(tmp, join(dir, 'blobs', 'sha256', hex));
  return { desc: { mediaType, digest: `sha256:${hex}`, size: gz.size }, diffId: `sha256:${raw.hash.digest('hex')}` };
}

function parsePlatform(p: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant] = p.split('/');
  if (!os || !architecture) throw new Error(`makeOciLayout: bad platform '${p}', want os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Writes a complete OCI image layout into `dir` (created if missing); see {@link OciLayoutOptions}. */
export async function makeOciLayout(dir: string, opts: OciLayoutOptions = {}): Promise<OciLayoutResult> {
  const mt = opts.docker ? DOCKER : OCI;
  const platforms = opts.platforms ?? ['linux/amd64'];
  if (platforms.length === 0) throw new Error('makeOciLayout: platforms is empty');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests: Array<Desc & { platform: ReturnType<typeof parsePlatform> }> = [];
  const images: OciLayoutResult['images'] = [];
  for (const p of platforms) {
    const platform = parsePlatform(p);
    const layers: Desc[] = [];
    const diffIds: string[] = [];
    for (let i = 0; i < (opts.layers ?? 2); i++) {
      const l = await writeLayer(dir, mt.layer, i, opts.layerBytes ?? 64 * 1024, i === 0 ? (opts.files ?? {}) : {});
      layers.push(l.desc);
      diffIds.push(l.diffId);
    }
    const config = {
      created: '2024-01-01T00:00:00Z',
      ...platform,
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['/bin/sh'],
        Labels: { 'canvos.test/platform': p },
      },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `makeOciLayout layer ${i}` })),
    };
    const configDesc = await writeBlob(dir, mt.config, Buffer.from(JSON.stringify(config)));
    const manifest = { schemaVersion: 2, mediaType: mt.manifest, config: configDesc, layers };
    const m = await writeBlob(dir, mt.manifest, Buffer.from(JSON.stringify(manifest)));
    manifests.push({ ...m, platform });
    images.push({ platform: p, configDigest: configDesc.digest, layerDigests: layers.map((l) => l.digest), diffIds });
  }
  let top: Desc;
  if (manifests.length === 1) {
    top = { mediaType: manifests[0]!.mediaType, digest: manifests[0]!.digest, size: manifests[0]!.size };
  } else {
    top = await writeBlob(
      dir,
      mt.index,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt.index, manifests })),
    );
  }
  const tag = opts.tag ?? 'latest';
  const index = {
    schemaVersion: 2,
    mediaType: OCI.index,
    manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return { indexDigest: top.digest, manifestDigests: manifests.map((m) => m.digest), images };
}
