/**
 * readLayer: a layer blob (gzip, zstd or plain tar, detected by magic) → FsEntry iterator, streaming, with safety checks:
 * every path is normalised (no leading `/` or `./`) and any entry whose path or hardlink target has a `..` segment
 * is rejected with ERR_TAR_UNSAFE. Symlink targets are data, not paths we write through, so any target is allowed.
 * Whiteout files are returned as ordinary entries; `mergeLayers` interprets them.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { createHash, type Hash } from 'node:crypto';
import { CanvosError } from '../errors.js';
import type { ChunkCompressor } from '../native/load.js';
import { ByteReader } from '../tar/byte-reader.js';
import type { FsEntry, FsEntryType } from '../tar/entry.js';
import { normalizeLayerPath } from './path.js';
import { applyPax, decodeHeader, decodePax, isZeroBlock, type RawHeader } from '../tar/parse.js';
import { ZSTD_MAGIC, zstdDecompress } from './zstd-stream.js';
import { throwIfAborted } from '../util/abort.js';

/** Options of {@link readLayer}. */
export interface ReadLayerOptions {
  /** Blob compression. `'auto'` sniffs the gzip and zstd magic numbers. Default: 'auto'. */
  compression?: 'auto' | 'gzip' | 'zstd' | 'none' | undefined;
  /** zstd backend. Default: the native addon when built, else node:zlib's zstd (Node >= 22.15), else ERR_CONFIG. */
  compressor?: ChunkCompressor | undefined;
  /** Name used in error messages, e.g. the layer digest. Default: 'layer'. */
  name?: string | undefined;
  /**
   * The config's `diff_ids[index]` for this layer: the uncompressed stream is hashed as it is read and compared once
   * the tar ends (the rest of the stream is read for it); a mismatch is ERR_LAYER_CORRUPT (exit 7). A reader that
   * stops early checks nothing. Default: no check.
   */
  diffId?: { expected: string; index: number } | undefined;
  signal?: AbortSignal | undefined;
}

const TYPES: Record<string, FsEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

/** Largest PAX / GNU long-name record accepted (they are buffered). Real ones are a few hundred bytes. */
const MAX_META = 1 << 20;

async function* prepend(first: Buffer[], it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* first;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  } finally {
    await it.return?.(); // close the source (file descriptor, HTTP body) when the reader stops early
  }
}

/** The uncompressed tar bytes of a blob stream. */
async function decompressed(
  src: AsyncIterable<Buffer>,
  opts: ReadLayerOptions,
  name: string,
): Promise<AsyncIterable<Buffer>> {
  const it = src[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let n = 0;
  while (n < 4) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    n += r.value.length;
  }
  const magic = Buffer.concat(head).subarray(0, 4);
  const mode = opts.compression ?? 'auto';
  const isGzip = magic[0] === 0x1f && magic[1] === 0x8b;
  const isZstd = magic.length === 4 && magic.readUInt32LE(0) === ZSTD_MAGIC;
  if (mode === 'zstd' || (mode === 'auto' && isZstd)) return zstdDecompress(prepend(head, it), name, opts.compressor);
  const raw = Readable.from(prepend(head, it), { objectMode: false });
  if (mode === 'gzip' || (mode === 'auto' && isGzip)) {
    // 256 KiB output chunks: the default 16 KiB costs ~40 % more main-thread CPU (callbacks, buffers, GC). 1 MiB
    // saved main-thread CPU alone but not end to end (the chunks no longer fit the L2 cache when the squashfs writer
    // copies them; bench/README.md "ISO, round 4").
    const gunzip = createGunzip({ chunkSize: 256 * 1024 });
    // Errors surface through iteration of `gunzip`; pipeline tears both down when the consumer stops early.
    pipeline(raw, gunzip).catch(() => undefined);
    return gunzip;
  }
  return raw;
}

function unsafe(name: string, what: string, p: string): CanvosError {
  return new CanvosError('ERR_TAR_UNSAFE', `${name}: ${what} ${JSON.stringify(p)} escapes the layer root`, {
    hint: 'refusing a layer with path traversal; the image may be malicious or corrupt',
  });
}

/**
 * Iterate the entries of a layer blob. A regular file's `content` must be read to the end (or ignored entirely)
 * before the next entry is requested; unread content is discarded when iteration continues.
 */
export async function* readLayer(stream: AsyncIterable<Buffer>, opts: ReadLayerOptions = {}): AsyncGenerator<FsEntry> {
  const name = opts.name ?? 'layer';
  const raw = await decompressed(stream, opts, name);
  const hash = opts.diffId ? diffIdHash(opts.diffId.expected, name) : undefined;
  const bytes = hash ? hashed(raw, hash) : raw;
  const iter = bytes[Symbol.asyncIterator]();
  const r = new ByteReader(iter, name);
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      throwIfAborted(opts.signal);
      const block = await r.read(512);
      if (!block || isZeroBlock(block)) {
        if (hash && opts.diffId) await checkDiffId(iter, hash, opts.diffId, name);
        return;
      }
      const h: RawHeader = decodeHeader(block, `${name} at byte ${r.offset - 512}`);
      const pad = (512 - (h.size % 512)) % 512;
      if (h.typeflag === 'x' || h.typeflag === 'g' || h.typeflag === 'L' || h.typeflag === 'K') {
        if (h.size > MAX_META) {
          throw new CanvosError(
            'ERR_LAYER_CORRUPT',
            `${name}: ${h.size}-byte extended header before ${JSON.stringify(h.name)} exceeds ${MAX_META} bytes`,
            {
              hint: 'refusing an oversized PAX/long-name record; the layer may be malicious or corrupt',
            },
          );
        }
        const body = (await r.read(h.size)) ?? Buffer.alloc(0);
        await r.skip(pad);
        if (h.typeflag === 'x') pax = decodePax(body, name);
        else if (h.typeflag === 'g') globalPax = new Map([...globalPax, ...decodePax(body, name)]);
        else if (h.typeflag === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
        else longLink = body.toString('utf8').replace(/\0.*$/s, '');
        continue;
      }
      if (longName !== undefined) h.name = longName;
      if (longLink !== undefined) h.linkname = longLink;
      const xattrs = applyPax(h, pax ? new Map([...globalPax, ...pax]) : globalPax);
      longName = longLink = pax = undefined;
      const type = TYPES[h.typeflag];
      if (type === undefined) {
        if (h.typeflag === 'S')
          throw new CanvosError('ERR_TAR_UNSAFE', `${name}: GNU sparse entry ${h.name} is not supported`);
        await r.skip(h.size + pad); // volume labels and other non-filesystem records
        continue;
      }
      const path = normalizeLayerPath(h.name);
      if (path === null) throw unsafe(name, 'entry', h.name);
      const entry: FsEntry = {
        path,
        type,
        mode: h.mode & 0o7777,
        uid: h.uid,
        gid: h.gid,
        uname: h.uname,
        gname: h.gname,
        mtime: h.mtime,
        size: type === 'file' ? h.size : 0,
      };
      if (xattrs) entry.xattrs = xattrs;
      if (type === 'symlink') entry.linkname = h.linkname;
      if (type === 'hardlink') {
        const t = normalizeLayerPath(h.linkname);
        if (t === null || t === '') throw unsafe(name, `hardlink ${path} target`, h.linkname);
        entry.linkname = t;
      }
      if (type === 'char' || type === 'block') {
        entry.devmajor = h.devmajor;
        entry.devminor = h.devminor;
      }
      if (type !== 'file' || h.size === 0) {
        await r.skip(h.size + pad);
        yield entry;
        continue;
      }
      const state = { remaining: h.size, pull: undefined as Promise<Buffer> | undefined };
      const pull = async (): Promise<Buffer> => {
        const b = await r.piece(Math.min(state.remaining, 1 << 20));
        state.remaining -= b.length;
        return b;
      };
      async function* body(): AsyncGenerator<Buffer> {
        while (state.remaining > 0) {
          state.pull = pull();
          yield await state.pull;
          state.pull = undefined;
        }
      }
      entry.content = Readable.from(body(), { objectMode: false });
      yield entry;
      if (state.remaining > 0 || state.pull) {
        entry.content.destroy();
        if (state.pull) await state.pull.catch(() => undefined);
        await r.skip(state.remaining);
      }
      await r.skip(pad);
    }
  } finally {
    await iter.return?.();
  }
}

/** A hash for `diffId`'s algorithm (`sha256:…`, `sha512:…`). */
function diffIdHash(diffId: string, name: string): Hash {
  const alg = diffId.slice(0, diffId.indexOf(':'));
  if (alg !== 'sha256' && alg !== 'sha512')
    throw new CanvosError(
      'ERR_MANIFEST_INVALID',
      `${name}: diff_id ${diffId.slice(0, 80)} is not a sha256/sha512 digest`,
    );
  return createHash(alg);
}

async function* hashed(src: AsyncIterable<Buffer>, hash: Hash): AsyncGenerator<Buffer> {
  for await (const b of src) {
    hash.update(b);
    yield b;
  }
}

/** Read what follows the tar's end marker into `hash`, then compare with the config's diff_id. */
async function checkDiffId(
  iter: AsyncIterator<Buffer>,
  hash: Hash,
  diffId: { expected: string; index: number },
  name: string,
): Promise<void> {
  for (let r = await iter.next(); !r.done; r = await iter.next());
  const got = `${diffId.expected.slice(0, diffId.expected.indexOf(':'))}:${hash.digest('hex')}`;
  if (got === diffId.expected) return;
  throw new CanvosError(
    'ERR_LAYER_CORRUPT',
    `${name}: the uncompressed layer is ${got}, but the config's diff_ids[${diffId.index}] is ${diffId.expected}`,
    { hint: 'the image is damaged (its config does not describe its layers): rebuild or re-push it' },
  );
}
