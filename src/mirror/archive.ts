/**
 * The mirror archive format (v1). A mirror archive is ONE OCI image layout (deduplicated blobs, index.json with one
 * entry per image) written as a plain ustar stream: `oci-layout`, `index.json`, then `blobs/sha256/<hex>` sorted by
 * digest. With a part size the stream is cut at byte boundaries into `NAME.part0001`, `NAME.part0002`, … so that
 * `cat NAME.part* > NAME` restores the tar exactly; unsplit, the tar is `NAME` itself. Next to it,
 * `<NAME without .tar>.manifest.json` lists every part with its size and sha256 (check media with `sha256sum`),
 * the images and the format name `canvos-lite-mirror-archive/v1`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { lstat, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack } from 'tar-stream';
import * as z from 'zod';
import { CanvosError } from '../errors.js';
import { OciLayout } from '../transports/oci-layout/oci-layout.js';
import type { OpOptions } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import { endStream } from '../fs-util.js';
import { reachableBlobs } from './layout-walk.js';
import { throwIfAborted } from '../util/abort.js';

/** Format identifier written to and required in the manifest. */
export const ARCHIVE_FORMAT = 'canvos-lite-mirror-archive/v1';
/** Largest file FAT32 can hold: the natural `--max-part-size` for USB sticks. */
export const FAT32_MAX_FILE = 4 * 1024 * 1024 * 1024 - 1;

/** A plain file name: no directory part, not `.` or `..`. */
const PART_NAME = /^(?!\.\.?$)[^/\\\0]+$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Schema of `NAME.manifest.json` (see the file header). */
export const ArchiveManifestSchema = z.object({
  format: z.literal(ARCHIVE_FORMAT),
  created: z.string(),
  /** Size of the whole (concatenated) tar. */
  size: z.number().int().nonnegative(),
  parts: z
    .array(
      z.object({
        /** A file name next to the manifest: never a path (a hostile manifest must not point outside). */
        name: z.string().regex(PART_NAME),
        size: z.number().int().nonnegative(),
        sha256: z.string().regex(/^[a-f0-9]{64}$/),
      }),
    )
    .min(1),
  images: z.array(z.object({ ref: z.string(), digest: z.string().regex(SHA256_DIGEST), mediaType: z.string() })),
  /** Every blob digest this archive holds (lets a later save be differential against it). */
  blobs: z.array(z.string().regex(SHA256_DIGEST)).optional(),
  /** Archives this one is differential against: their layer blobs are omitted here (manifests never are). */
  since: z.array(z.object({ created: z.string(), parts: z.array(z.string()) })).optional(),
});
/** A parsed archive manifest. */
export type ArchiveManifest = z.infer<typeof ArchiveManifestSchema>;

/** `out.tar` → `out.manifest.json` (same directory). */
export function manifestPathFor(tarPath: string): string {
  return join(dirname(tarPath), `${basename(tarPath).replace(/\.tar$/, '')}.manifest.json`);
}

/** The part file being written. */
interface OpenPart {
  ws: WriteStream;
  hash: ReturnType<typeof createHash>;
  size: number;
  name: string;
  path: string;
}

/** Writable that cuts its input into part files of at most `maxPart` bytes, hashing each. */
class PartWriter extends Writable {
  readonly parts: Array<{ name: string; size: number; sha256: string; path: string }> = [];
  private cur: OpenPart | undefined;
  private readonly base: string;
  private readonly maxPart: number;
  private readonly split: boolean;
  constructor(base: string, maxPart: number | undefined) {
    super();
    this.base = base;
    this.split = maxPart !== undefined;
    this.maxPart = maxPart ?? Number.MAX_SAFE_INTEGER;
  }
  private async open(): Promise<OpenPart> {
    const n = this.parts.length + (this.cur ? 1 : 0) + 1;
    const path = this.split ? `${this.base}.part${String(n).padStart(4, '0')}` : this.base;
    const ws = createWriteStream(`${path}.tmp`);
    await once(ws, 'open');
    this.cur = { ws, hash: createHash('sha256'), size: 0, name: basename(path), path };
    return this.cur;
  }
  private async close(): Promise<void> {
    const c = this.cur;
    if (!c) return;
    this.cur = undefined;
    await endStream(c.ws);
    // Parts stay `.tmp` until publish(): an earlier archive of the same name is intact until every part is written.
    this.parts.push({ name: c.name, size: c.size, sha256: c.hash.digest('hex'), path: c.path });
  }
  private async put(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const c = this.cur ?? (await this.open());
      const n = Math.min(chunk.length - off, this.maxPart - c.size);
      const piece = chunk.subarray(off, off + n);
      c.hash.update(piece);
      c.size += n;
      off += n;
      if (!c.ws.write(piece)) await new Promise<void>((res) => c.ws.once('drain', res));
      if (c.size >= this.maxPart) await this.close();
    }
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.put(chunk).then(() => {
      cb();
    }, cb);
  }
  override _final(cb: (e?: Error | null) => void): void {
    (async () => {
      if (!this.cur && this.parts.length === 0) await this.open(); // an empty stream still gets one part
      await this.close();
    })().then(() => {
      cb();
    }, cb);
  }
  /** Rename every written part into place (after the whole archive was written). */
  async publish(): Promise<void> {
    for (const p of this.parts) await rename(`${p.path}.tmp`, p.path);
  }
  /** Remove the written parts of an archive that did not complete. */
  async discard(): Promise<void> {
    for (const p of this.parts) await rm(`${p.path}.tmp`, { force: true });
  }
  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    const c = this.cur;
    this.cur = undefined;
    if (c) c.ws.destroy();
    Promise.resolve(c ? rm(`${c.path}.tmp`, { force: true }) : undefined).then(
      () => {
        cb(e);
      },
      () => {
        cb(e);
      },
    );
  }
}

/** Options of {@link writeArchive}. */
export interface WriteArchiveOptions extends OpOptions {
  /** Cut the tar into parts of at most this many bytes (≥ 1 MiB). Default: one file. */
  maxPartSize?: number | undefined;
  /** Earlier archives (their manifests): blobs they hold are left out, except manifests. Default: none. */
  since?: ArchiveManifest[] | undefined;
}

/** Smallest `maxPartSize`: parts are whole tar records, and a smaller size only makes thousands of files. */
export const MIN_PART_SIZE = 1024 * 1024;

/** Throw ERR_USAGE unless `maxPartSize` is undefined or a whole number of bytes from 1 MiB (checked before any download). */
export function checkMaxPartSize(maxPartSize: number | undefined): void {
  if (maxPartSize === undefined) return;
  if (!Number.isSafeInteger(maxPartSize) || maxPartSize < MIN_PART_SIZE) {
    throw new CanvosError(
      'ERR_USAGE',
      `--max-part-size ${maxPartSize} is ${Number.isSafeInteger(maxPartSize) ? 'below 1 MiB' : 'not a usable number of bytes'}`,
      { hint: 'use e.g. fat32 (4 GiB - 1), 4095M or 700M' },
    );
  }
}

/** The blobs of earlier archives, for a differential save (ERR_USAGE when one has no blob list). */
export function sinceBlobs(since: readonly ArchiveManifest[]): Set<string> {
  const out = new Set<string>();
  for (const m of since) {
    if (!m.blobs)
      throw new CanvosError('ERR_USAGE', `the archive of ${m.created} (${m.parts[0]?.name ?? '?'}) has no blob list`, {
        hint: 'use an archive written by this version of canvos-lite mirror save as --since',
      });
    for (const b of m.blobs) out.add(b);
  }
  return out;
}

/**
 * Pack the layout at `layoutDir` into the archive `tarPath` (see the file header) and write its manifest last, so
 * a manifest exists only for a complete archive. Returns the manifest.
 */
export async function writeArchive(
  layoutDir: string,
  tarPath: string,
  opts: WriteArchiveOptions = {},
): Promise<ArchiveManifest> {
  checkMaxPartSize(opts.maxPartSize);
  const layout = new OciLayout(layoutDir);
  const index = await layout.readIndex();
  const exclude = sinceBlobs(opts.since ?? []);
  const manifests = new Set<Digest>();
  const reachable = await reachableBlobs(layout, index, exclude, manifests);
  // Manifests always travel (loading walks them); other blobs already shipped in an earlier archive do not.
  const blobs = [...reachable].filter((d) => manifests.has(d) || !exclude.has(d)).sort();
  const pack = tarPack();
  const out = new PartWriter(tarPath, opts.maxPartSize);
  const mtime = new Date(0);
  const feed = (async () => {
    const add = async (name: string, file: string): Promise<void> => {
      throwIfAborted(opts.signal);
      const size = (await stat(file)).size;
      await new Promise<void>((res, rej) => {
        const entry = pack.entry({ name, size, mtime, mode: 0o644, uid: 0, gid: 0 }, (e) => {
          if (e) rej(e);
          else res();
        });
        pipeline(createReadStream(file), entry).catch(rej);
      });
    };
    await add('oci-layout', join(layoutDir, 'oci-layout'));
    await add('index.json', join(layoutDir, 'index.json'));
    let done = 0;
    for (const d of blobs) {
      await add(`blobs/${d.replace(':', '/')}`, layout.blobPath(d));
      opts.onProgress?.({
        phase: 'archive',
        item: d,
        transferred: ++done,
        total: blobs.length,
        itemsDone: done,
        itemsTotal: blobs.length,
      });
    }
    pack.finalize();
  })();
  feed.catch((e: unknown) => {
    pack.destroy(e instanceof Error ? e : new Error(String(e)));
  });
  try {
    await Promise.all([pipeline(pack, out, opts.signal ? { signal: opts.signal } : {}), feed]);
  } catch (e) {
    await out.discard();
    throwIfAborted(opts.signal);
    throw e;
  }
  const images = index.manifests.map((d) => ({
    ref: d.annotations?.['org.opencontainers.image.ref.name'] ?? d.digest,
    digest: d.digest,
    mediaType: d.mediaType,
  }));
  const manifest: ArchiveManifest = {
    format: ARCHIVE_FORMAT,
    created: new Date().toISOString(),
    size: out.parts.reduce((a, p) => a + p.size, 0),
    parts: out.parts.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    images,
    blobs,
    ...(opts.since?.length
      ? { since: opts.since.map((m) => ({ created: m.created, parts: m.parts.map((p) => p.name) })) }
      : {}),
  };
  const mpath = manifestPathFor(tarPath);
  try {
    await writeFile(`${mpath}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (e) {
    await out.discard();
    await rm(`${mpath}.tmp`, { force: true });
    throw e;
  }
  // The parts, then the manifest: a manifest names a complete archive. A target that is a directory fails the
  // rename (EISDIR): found before the first rename, so no part of this archive replaces an earlier one's.
  try {
    await refuseDirectoryTargets([...out.parts.map((p) => p.path), mpath]);
    await out.publish();
    await rename(`${mpath}.tmp`, mpath);
  } catch (e) {
    await out.discard();
    await rm(`${mpath}.tmp`, { force: true });
    throw e;
  }
  return manifest;
}

/** Throw the EISDIR a rename onto any of `paths` would, before anything is renamed. */
async function refuseDirectoryTargets(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const st = await lstat(path).catch(() => undefined);
    if (st?.isDirectory())
      throw Object.assign(new Error(`EISDIR: illegal operation on a directory, rename '${path}.tmp' -> '${path}'`), {
        code: 'EISDIR',
        errno: -21,
        syscall: 'rename',
        path,
      });
  }
}

/** Read and validate an archive manifest. */
export async function readArchiveManifest(path: string): Promise<ArchiveManifest> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CanvosError('ERR_LAYOUT', `cannot read mirror archive manifest ${path}: ${(e as Error).message}`, {
      hint: 'give the .tar (or .manifest.json) written by canvos-lite mirror save',
      cause: e,
    });
  }
  const r = ArchiveManifestSchema.safeParse(json);
  if (!r.success)
    throw new CanvosError(
      'ERR_LAYOUT',
      `${path} is not a ${ARCHIVE_FORMAT} manifest (${r.error.issues[0]?.path.join('.') || 'root'})`,
      { hint: 'give the manifest written by canvos-lite mirror save' },
    );
  return r.data;
}
