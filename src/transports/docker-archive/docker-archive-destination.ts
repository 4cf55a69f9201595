/**
 * The `docker-archive:FILE[:name:tag]` destination: a single-image `docker save` archive that `docker load` accepts,
 * which is also an OCI image layout. Blobs are spooled next to FILE; the tar is built and renamed into place by
 * commit(), so a failed copy leaves no archive.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../../errors.js';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../../tar/header.js';
import type { ImageDestination, PutBlobResult, RawManifest } from '../../image/types.js';
import { blobFile, blobSize, storeBlob } from '../../cache/blob-cache.js';
import { digestHex, type Digest } from '../../image/digest.js';
import { isIndexMediaType, MediaType } from '../../image/media-types.js';
import { parseManifest, type Descriptor } from '../../image/schemas.js';
import { REF_NAME_ANNOTATION } from '../oci-layout/oci-layout.js';
import { mkdirs } from '../../fs-util.js';
import { withPath } from '../../error-map.js';
import { tempPathFor } from '../../util/atomic-file.js';

/** Options of {@link dockerArchiveDestination}. */
export interface DockerArchiveDestinationOptions {
  /** Name recorded in RepoTags (`docker load` tags the image with it), e.g. `example.com/app:1.0`. Default: none. */
  ref?: string | undefined;
}

/**
 * An ImageDestination writing a single-image `docker save` archive that `docker load` accepts (blobs stored as
 * they are, compressed layers included). The tar is also an OCI image layout (oci-layout, index.json). Blobs are
 * spooled next to FILE and the archive appears atomically (temp + rename) in commit().
 */
export function dockerArchiveDestination(file: string, opts: DockerArchiveDestinationOptions = {}): ImageDestination {
  const what = `docker-archive:${file}`;
  const spool = join(dirname(file), `.${randomBytes(6).toString('hex')}.canvos-spool`);
  const blobRoot = join(spool, 'blobs');
  let image: RawManifest | undefined;
  const cleanup = (): Promise<void> => rm(spool, { recursive: true, force: true });
  return {
    description: `${what}${opts.ref ? `:${opts.ref}` : ''}`,
    singleImage: true,
    async hasBlob(desc: Descriptor): Promise<boolean> {
      return (await blobSize(blobRoot, desc.digest)) === desc.size;
    },
    async putBlob(desc, openBlob, o = {}): Promise<PutBlobResult> {
      if ((await blobSize(blobRoot, desc.digest)) === desc.size) return 'exists';
      await storeBlob(blobRoot, await openBlob(), {
        digest: desc.digest,
        size: desc.size,
        signal: o.signal,
        sourceVerified: o.sourceVerified === true,
      });
      return 'uploaded';
    },
    hasManifest: () => Promise.resolve(false),
    putManifest(m: RawManifest): Promise<void> {
      // The executor's throws become the promise's rejection.
      return new Promise((resolve) => {
        const parsed = parseManifest(m.bytes, m.mediaType, `manifest ${m.digest}`);
        if (parsed.kind === 'index' || isIndexMediaType(m.mediaType)) {
          throw new CanvosError('ERR_USAGE', `${what} holds a single image, not an index`, {
            hint: 'select one platform with --platform',
          });
        }
        image = m;
        resolve();
      });
    },
    async commit(o = {}): Promise<void> {
      if (!image) throw new CanvosError('ERR_INTERNAL', `${what}: commit without a manifest`);
      await writeArchive(file, archiveEntries(image, await spooledBlobs(image, blobRoot, what), opts.ref), o.signal);
      await cleanup();
    },
    close: cleanup,
  };
}

/** An archive member: its bytes, or the path of the file holding them. */
interface ArchiveEntry {
  name: string;
  size: number;
  from: string | Buffer;
}

const blobName = (d: Digest): string => `blobs/sha256/${digestHex(d)}`;

/** The image's config and layers as spooled (foreign layers that were not copied are left out), each once. */
async function spooledBlobs(
  image: RawManifest,
  blobRoot: string,
  what: string,
): Promise<{ config: Descriptor; layers: Descriptor[]; entries: ArchiveEntry[] }> {
  const parsed = parseManifest(image.bytes, image.mediaType);
  if (parsed.kind !== 'image') throw new CanvosError('ERR_INTERNAL', `${what}: not an image manifest`);
  const { config, layers } = parsed.value;
  const entries: ArchiveEntry[] = [];
  const seen = new Set<string>();
  for (const d of [config, ...layers]) {
    if (d.urls?.length && (await blobSize(blobRoot, d.digest)) === undefined) continue;
    if (!seen.has(d.digest))
      entries.push({ name: blobName(d.digest), size: d.size, from: blobFile(blobRoot, d.digest) });
    seen.add(d.digest);
  }
  return { config, layers: layers.filter((l) => seen.has(l.digest)), entries };
}

/** Every member of the archive: the blobs, the manifest, then manifest.json, index.json and oci-layout. */
function archiveEntries(
  image: RawManifest,
  blobs: { config: Descriptor; layers: Descriptor[]; entries: ArchiveEntry[] },
  ref: string | undefined,
): ArchiveEntry[] {
  const entries = [...blobs.entries, { name: blobName(image.digest), size: image.bytes.length, from: image.bytes }];
  const manifestJson = [
    {
      Config: blobName(blobs.config.digest),
      RepoTags: ref ? [ref] : null,
      Layers: blobs.layers.map((l) => blobName(l.digest)),
    },
  ];
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      {
        mediaType: image.mediaType,
        digest: image.digest,
        size: image.bytes.length,
        ...(ref
          ? {
              annotations: {
                'io.containerd.image.name': ref,
                [REF_NAME_ANNOTATION]: ref.slice(ref.lastIndexOf(':') + 1),
              },
            }
          : {}),
      },
    ],
  };
  for (const [name, json] of [
    ['manifest.json', manifestJson],
    ['index.json', index],
    ['oci-layout', { imageLayoutVersion: '1.0.0' }],
  ] as const) {
    const b = Buffer.from(JSON.stringify(json));
    entries.push({ name, size: b.length, from: b });
  }
  return entries;
}

/** Write the tar of `entries` to a temp file next to `file` and rename it into place. */
async function writeArchive(
  file: string,
  entries: readonly ArchiveEntry[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const tmp = tempPathFor(file);
  async function* tarStream(): AsyncGenerator<Buffer> {
    yield encodeHeader({ path: 'blobs', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
    yield encodeHeader({ path: 'blobs/sha256', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
    for (const e of entries) {
      yield encodeHeader({ path: e.name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: e.size });
      if (typeof e.from === 'string') for await (const c of createReadStream(e.from)) yield c as Buffer;
      else yield e.from;
      yield Buffer.alloc(padding(e.size));
    }
    yield END_OF_ARCHIVE;
  }
  try {
    await mkdirs(dirname(file));
    await pipeline(Readable.from(tarStream()), createWriteStream(tmp), signal ? { signal } : {});
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw withPath(e, tmp);
  }
}
