/**
 * Reading a mirror archive (archive.ts) in place, without unpacking: its parts are treated as one virtual file,
 * the tar headers are indexed in one pass, and each image is served as an ImageSource whose blobs are byte ranges
 * verified against their digest while streaming (a corrupted blob fails its image before anything is tagged).
 */
import { open, stat } from 'node:fs/promises';
import { createReadStream, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { CanvosError } from '../errors.js';
import { isDigest, verifyBuffer, VerifyingStream, type Digest } from '../image/digest.js';
import { REF_NAME_ANNOTATION } from '../transports/oci-layout/oci-layout.js';
import { declaredManifestMediaType } from '../image/media-types.js';
import { imageIndexSchema, type Descriptor, type ImageIndex } from '../image/schemas.js';
import type { ImageSource, RawManifest } from '../image/types.js';
import { applyPax, decodeHeader, decodePax, isZeroBlock } from '../tar/parse.js';
import { manifestPathFor, readArchiveManifest, type ArchiveManifest } from './archive.js';
import { throwIfAborted } from '../util/abort.js';

interface Part {
  path: string;
  start: number;
  size: number;
}

/** An opened mirror archive. */
export class MirrorArchive {
  readonly path: string;
  readonly manifest: ArchiveManifest | undefined;
  readonly index: ImageIndex;
  private readonly parts: Part[];
  private readonly members: Map<string, { offset: number; size: number }>;
  private constructor(
    path: string,
    manifest: ArchiveManifest | undefined,
    parts: Part[],
    members: Map<string, { offset: number; size: number }>,
    index: ImageIndex,
  ) {
    this.path = path;
    this.manifest = manifest;
    this.parts = parts;
    this.members = members;
    this.index = index;
  }

  /** Open `FILE.tar` (whole or split; its `.manifest.json` next to it) or the `.manifest.json` itself. */
  static async open(path: string, signal?: AbortSignal): Promise<MirrorArchive> {
    const mpath = path.endsWith('.manifest.json') ? path : manifestPathFor(path);
    const manifest = existsSync(mpath) ? await readArchiveManifest(mpath) : undefined;
    let parts: Part[];
    if (manifest) {
      let start = 0;
      parts = [];
      for (const p of manifest.parts) {
        const file = join(dirname(mpath), p.name);
        const size = await stat(file).then(
          (s) => s.size,
          () => -1,
        );
        if (size !== p.size) {
          throw new CanvosError(
            'ERR_LAYOUT',
            `archive part ${file} ${size < 0 ? 'is missing' : `has ${size} bytes, the manifest says ${p.size}`}`,
            { hint: 'copy the part again from the original media' },
          );
        }
        parts.push({ path: file, start, size });
        start += size;
      }
    } else {
      const size = await stat(path).then(
        (s) => s.size,
        () => -1,
      );
      if (size < 0)
        throw new CanvosError('ERR_LAYOUT', `mirror archive ${path} not found (nor ${mpath})`, {
          hint: 'give the FILE.tar or FILE.manifest.json written by mirror save',
        });
      parts = [{ path, start: 0, size }];
    }
    const a = new MirrorArchive(path, manifest, parts, new Map(), { schemaVersion: 2, manifests: [] });
    await a.scan(signal);
    const idx = a.members.get('index.json');
    if (!idx)
      throw new CanvosError('ERR_LAYOUT', `${path} holds no index.json`, { hint: 'this is not a mirror archive' });
    const text = (await a.readRange(idx.offset, idx.size)).toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const r = imageIndexSchema.safeParse(json);
    if (!r.success)
      throw new CanvosError('ERR_LAYOUT', `${path}: index.json is invalid`, { hint: 'the archive is corrupt' });
    return new MirrorArchive(path, manifest, parts, a.members, r.data);
  }

  private get totalSize(): number {
    const last = this.parts.at(-1);
    return last ? last.start + last.size : 0;
  }

  /** Read `len` bytes at virtual offset `pos` (across part boundaries). */
  private async readRange(pos: number, len: number): Promise<Buffer> {
    const out = Buffer.alloc(len);
    let done = 0;
    for (const p of this.parts) {
      if (done >= len) break;
      const at = pos + done;
      if (at >= p.start + p.size || at < p.start) continue;
      const n = Math.min(len - done, p.start + p.size - at);
      const fh = await open(p.path, 'r');
      try {
        await fh.read(out, done, n, at - p.start);
      } finally {
        await fh.close();
      }
      done += n;
    }
    if (done < len)
      throw new CanvosError('ERR_LAYOUT', `${this.path} is truncated`, { hint: 'a part is missing or short' });
    return out;
  }

  private async scan(signal?: AbortSignal): Promise<void> {
    let pos = 0;
    let pax: Map<string, Buffer> | undefined;
    while (pos + 512 <= this.totalSize) {
      throwIfAborted(signal);
      const block = await this.readRange(pos, 512);
      if (isZeroBlock(block)) break;
      const h = decodeHeader(block, `${this.path} at offset ${pos}`);
      const dataAt = pos + 512;
      if (h.typeflag === 'x') pax = decodePax(await this.readRange(dataAt, Math.min(h.size, 1 << 20)), this.path);
      else if (h.typeflag === '0' || h.typeflag === '\0') {
        if (pax) applyPax(h, pax);
        pax = undefined;
        this.members.set(h.name.replace(/^\.\//, ''), { offset: dataAt, size: h.size });
      }
      const hasData = h.typeflag === '0' || h.typeflag === '\0' || h.typeflag === 'x' || h.typeflag === 'g';
      pos = dataAt + (hasData ? Math.ceil(h.size / 512) * 512 : 0);
    }
  }

  /** Stream `len` bytes at `pos` across parts. */
  private stream(pos: number, len: number): Readable {
    const out = new PassThrough();
    (async () => {
      let done = 0;
      for (const p of this.parts) {
        const at = pos + done;
        if (done >= len) break;
        if (at >= p.start + p.size || at < p.start) continue;
        const n = Math.min(len - done, p.start + p.size - at);
        const rs = createReadStream(p.path, { start: at - p.start, end: at - p.start + n - 1 });
        for await (const c of rs) if (!out.write(c)) await new Promise((r) => out.once('drain', r));
        done += n;
      }
      out.end();
    })().catch((e: unknown) => {
      out.destroy(e as Error);
    });
    return out;
  }

  /** True when the archive holds the blob (with that size when size ≥ 0). */
  hasBlob(digest: Digest, size = -1): boolean {
    const m = this.members.get(`blobs/${digest.replace(':', '/')}`);
    return m !== undefined && (size < 0 || m.size === size);
  }

  /** A verified stream of a blob. */
  openBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Readable {
    const m = this.members.get(`blobs/${desc.digest.replace(':', '/')}`);
    if (!m)
      throw new CanvosError('ERR_BLOB_UNKNOWN', `blob ${desc.digest} is missing from ${this.path}`, {
        hint: 'the archive is incomplete; save it again',
      });
    const v = new VerifyingStream(desc.digest, {
      size: desc.size,
      what: `blob ${desc.digest} in ${this.path}`,
    });
    const s = this.stream(m.offset, m.size);
    s.on('error', (e) => v.destroy(e));
    return s.pipe(v);
  }

  /** Read a manifest blob, verified. */
  async readManifest(digest: Digest): Promise<Buffer> {
    const m = this.members.get(`blobs/${digest.replace(':', '/')}`);
    if (!m)
      throw new CanvosError('ERR_BLOB_UNKNOWN', `manifest ${digest} is missing from ${this.path}`, {
        hint: 'the archive is incomplete; save it again',
      });
    if (m.size > 4 * 1024 * 1024)
      throw new CanvosError('ERR_MANIFEST_INVALID', `manifest ${digest} in ${this.path} is larger than 4 MiB`);
    const b = await this.readRange(m.offset, m.size);
    verifyBuffer(b, digest, `manifest ${digest} in ${this.path}`);
    return b;
  }

  /** An ImageSource for one index.json entry. */
  source(entry: Descriptor): ImageSource {
    const name = entry.annotations?.[REF_NAME_ANNOTATION] ?? entry.digest;
    return {
      description: `mirror-archive:${this.path}:${name}`,
      getManifest: async (digest?: Digest): Promise<RawManifest> => {
        const d = digest ?? entry.digest;
        if (!isDigest(d)) throw new CanvosError('ERR_MANIFEST_INVALID', `${this.path}: bad digest ${String(d)}`);
        const bytes = await this.readManifest(d);
        let mediaType = digest === undefined ? entry.mediaType : undefined;
        if (!mediaType) mediaType = declaredManifestMediaType(bytes);
        return { bytes, digest: d, mediaType };
      },
      getBlob: (desc: Descriptor) => Promise.resolve(this.openBlob(desc)),
      close: async () => {},
    };
  }
}
