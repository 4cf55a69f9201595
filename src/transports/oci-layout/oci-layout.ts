/**
 * OCI image layout directories (image-spec `image-layout.md`): `oci-layout`, `index.json` and `blobs/<alg>/<hex>`.
 * Blobs are written through a verified temp file and renamed; `index.json` is replaced atomically and only by
 * `commit()`, so a failed copy never moves a tag. Tags are `org.opencontainers.image.ref.name` annotations.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CanvosError } from '../../errors.js';
import type { OpOptions } from '../../image/types.js';
import { blobFile, blobSize, storeBlob } from '../../cache/blob-cache.js';
import { isDigest, sha256, verifyBuffer, VerifyingStream, type Digest } from '../../image/digest.js';
import { MediaType } from '../../image/media-types.js';
import { imageIndexSchema, type Descriptor, type ImageIndex } from '../../image/schemas.js';
import { mkdirs } from '../../fs-util.js';
import { writeFileAtomic } from '../../util/atomic-file.js';

/** The annotation holding an index.json entry's tag. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const MAX_MANIFEST = 4 * 1024 * 1024;

/** An OCI image layout directory. */
export class OciLayout {
  /** The layout directory. */
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  /** `blobs/` root. */
  get blobsDir(): string {
    return join(this.dir, 'blobs');
  }

  /** Create `oci-layout`, `blobs/sha256` and an empty `index.json` when missing (ERR_LAYOUT for a foreign index.json). */
  async init(): Promise<void> {
    // Someone else's index.json in a directory without oci-layout: never turn it into a layout (ERR_LAYOUT).
    if (!(await exists(join(this.dir, 'oci-layout'))) && (await exists(join(this.dir, 'index.json')))) {
      throw new CanvosError(
        'ERR_LAYOUT',
        `${this.dir} holds an index.json but no oci-layout file: it is not an OCI image layout; refusing to write into it`,
        {
          hint: 'give a new or empty directory, or one that holds oci-layout, index.json and blobs/',
        },
      );
    }
    await mkdirs(join(this.dir, 'blobs', 'sha256'));
    if (!(await exists(join(this.dir, 'oci-layout')))) {
      await writeFileAtomic(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    }
    // Under the lock: a concurrent writer's first tag must not be replaced by our empty index.
    await this.withIndexLock(async () => {
      if (!(await exists(join(this.dir, 'index.json'))))
        await this.writeIndex({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
    });
  }

  /** Read and validate `index.json` (ERR_LAYOUT when the directory is not a layout). */
  async readIndex(): Promise<ImageIndex> {
    const file = join(this.dir, 'index.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new CanvosError('ERR_LAYOUT', `${this.dir} is not an OCI image layout (no index.json)`, {
        cause: e,
        hint: 'give the directory that holds oci-layout, index.json and blobs/',
      });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CanvosError('ERR_LAYOUT', `${file} is not valid JSON`, { hint: 'the layout is corrupt; recreate it' });
    }
    const r = imageIndexSchema.safeParse(json);
    if (!r.success) {
      throw new CanvosError('ERR_LAYOUT', `${file} is invalid at ${r.error.issues[0]?.path.join('.') || '(root)'}`, {
        hint: 'the layout is corrupt; recreate it',
      });
    }
    return r.data;
  }

  /** Replace `index.json` atomically (temp file + rename). */
  async writeIndex(index: ImageIndex): Promise<void> {
    await writeFileAtomic(join(this.dir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  }

  /** Tag names (ref.name annotations) of index.json entries, in order. */
  async tags(): Promise<string[]> {
    return (await this.readIndex()).manifests.flatMap((d) =>
      d.annotations?.[REF_NAME_ANNOTATION] ? [d.annotations[REF_NAME_ANNOTATION]] : [],
    );
  }

  /**
   * The index.json entry for `tag`; without a tag, the only entry (ERR_LAYOUT listing the names when there are
   * several). ERR_MANIFEST_UNKNOWN when the tag is absent.
   */
  async resolve(tag?: string): Promise<Descriptor> {
    const idx = await this.readIndex();
    const names = idx.manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest);
    if (tag === undefined) {
      const [only, ...more] = idx.manifests;
      if (only && more.length === 0) return only;
      throw new CanvosError(
        'ERR_LAYOUT',
        `${this.dir} holds ${idx.manifests.length} images; name one (${names.join(', ') || 'none'})`,
        {
          hint: `write oci:${this.dir}:<tag>`,
        },
      );
    }
    const found =
      idx.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag) ??
      (isDigest(tag) ? idx.manifests.find((d) => d.digest === tag) : undefined);
    if (!found) {
      throw new CanvosError('ERR_MANIFEST_UNKNOWN', `tag ${JSON.stringify(tag)} not found in ${this.dir}`, {
        hint: `available: ${names.join(', ') || 'none'}`,
      });
    }
    return found;
  }

  /** Path of a blob file. */
  blobPath(digest: Digest): string {
    return blobFile(this.blobsDir, digest);
  }

  /** True when the blob exists with the expected size (size < 0 skips the size check). */
  async hasBlob(digest: Digest, size = -1): Promise<boolean> {
    const s = await blobSize(this.blobsDir, digest);
    return s !== undefined && (size < 0 || s === size);
  }

  /** A stream of a blob, verified against the descriptor (errors at end on mismatch). */
  async openBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    const path = this.blobPath(desc.digest);
    if ((await blobSize(this.blobsDir, desc.digest)) === undefined) {
      throw new CanvosError('ERR_BLOB_UNKNOWN', `blob ${desc.digest} is missing from ${this.dir}`, {
        hint: 'the layout is incomplete; copy the image into it again',
      });
    }
    const verifier = new VerifyingStream(desc.digest, { size: desc.size, what: `blob ${desc.digest} in ${this.dir}` });
    const rs = createReadStream(path);
    rs.on('error', (e) => verifier.destroy(e));
    return rs.pipe(verifier);
  }

  /** Read a small blob (manifest, config) whole, verified. */
  async readSmallBlob(digest: Digest, what = `blob ${digest}`): Promise<Buffer> {
    const size = await blobSize(this.blobsDir, digest);
    if (size === undefined)
      throw new CanvosError('ERR_BLOB_UNKNOWN', `${what} is missing from ${this.dir}`, {
        hint: 'the layout is incomplete; copy the image into it again',
      });
    if (size > MAX_MANIFEST)
      throw new CanvosError('ERR_MANIFEST_INVALID', `${what} in ${this.dir} is larger than ${MAX_MANIFEST} bytes`);
    const bytes = await readFile(this.blobPath(digest));
    verifyBuffer(bytes, digest, `${what} in ${this.dir}`);
    return bytes;
  }

  /**
   * Store a blob from a stream, verified, atomically. `sourceVerified`: `input` checks its own digest and size and
   * errors at its end on mismatch, so it is not hashed again (see `StoreBlobOptions.sourceVerified` in the blob cache).
   */
  async writeBlob(
    desc: Pick<Descriptor, 'digest' | 'size'>,
    input: Readable,
    opts: OpOptions & { onBytes?: ((n: number) => void) | undefined; sourceVerified?: boolean | undefined } = {},
  ): Promise<void> {
    await storeBlob(this.blobsDir, input, {
      digest: desc.digest,
      size: desc.size,
      signal: opts.signal,
      onBytes: opts.onBytes,
      sourceVerified: opts.sourceVerified,
    });
  }

  /** Store a small in-memory blob (manifest, config) atomically. */
  async writeSmallBlob(bytes: Buffer, digest: Digest = sha256(bytes)): Promise<Digest> {
    verifyBuffer(bytes, digest, `blob ${digest}`);
    if (await this.hasBlob(digest, bytes.length)) return digest;
    await writeFileAtomic(this.blobPath(digest), bytes);
    return digest;
  }

  /**
   * Point `tag` at `desc` in index.json (replacing an entry with the same name, keeping the others). Without a tag
   * the entry is added unnamed unless an unnamed entry with that digest exists.
   */
  async setTag(desc: Descriptor, tag: string | undefined): Promise<void> {
    await this.withIndexLock(() => this.setTagLocked(desc, tag));
  }

  /**
   * Run `fn` holding `index.json.lock` (a directory: mkdir is atomic), so concurrent writers (other copies, other
   * processes) never lose each other's tags. A lock older than 30 s is considered left by a crash and broken.
   */
  async withIndexLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = join(this.dir, 'index.json.lock');
    for (let waited = 0; ; waited += 10) {
      try {
        await mkdir(lock);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const age = await stat(lock).then(
          (st) => Date.now() - st.mtimeMs,
          () => 0,
        );
        if (age > 30_000) await rm(lock, { recursive: true, force: true });
        else if (waited > 60_000)
          throw new CanvosError('ERR_LAYOUT', `${lock} is held by another writer`, {
            hint: 'wait for the other copy to finish, or remove the lock directory if none is running',
          });
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    try {
      return await fn();
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }

  private async setTagLocked(desc: Descriptor, tag: string | undefined): Promise<void> {
    const idx = await this.readIndex();
    const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (desc.platform) entry.platform = desc.platform;
    if (tag !== undefined) entry.annotations = { [REF_NAME_ANNOTATION]: tag };
    const keep = idx.manifests.filter((d) => {
      const name = d.annotations?.[REF_NAME_ANNOTATION];
      return tag !== undefined ? name !== tag : !(name === undefined && d.digest === desc.digest);
    });
    await this.writeIndex({
      ...idx,
      schemaVersion: 2,
      mediaType: idx.mediaType ?? MediaType.OciIndex,
      manifests: [...keep, entry],
    });
  }
}

/** @internal */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Options of the layout transports. */
export interface LayoutTransportOptions {
  /** Tag (ref.name) to read or write. Default: read the only entry; write an unnamed entry. */
  tag?: string | undefined;
}
