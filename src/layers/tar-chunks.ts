/**
 * A layer's tar stream cut straight into fixed-size chunks for the chunk compressor: headers are copied and file
 * bytes are read (one `read` per chunk piece, from the host or a spool file) directly into chunk buffers that are
 * recycled once their compressed member is done. Same bytes and the same chunk boundaries as `fixedChunks(tarBytes())`
 * (so the same digests), without the 256 KiB read buffers, the copy that joins them, and the ~2 GiB of short-lived
 * off-heap memory per GiB of layer that made V8 run major GCs (bench/README.md, "Build: where the time goes").
 * @internal
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { END_OF_ARCHIVE, encodeHeader, padding } from '../tar/header.js';
import type { PlannedEntry } from '../tar/header.js';
import { throwIfAborted } from '../util/abort.js';

/** A bounded set of equal-size buffers: `take` a fresh or recycled one, `give` it back once nobody reads it. */
export class ChunkPool {
  readonly #free: Buffer[] = [];
  readonly #max: number;
  /** Bytes per buffer. */
  readonly size: number;
  /** @param size bytes per buffer; @param max most buffers kept for reuse */
  constructor(size: number, max: number) {
    this.size = size;
    this.#max = max;
  }
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(b: Buffer): void {
    if (b.buffer.byteLength === this.size && this.#free.length < this.#max)
      this.#free.push(Buffer.from(b.buffer, 0, this.size));
  }
}

/** Fills pooled chunks in order; `full` yields each completed one. */
class ChunkWriter {
  readonly pool: ChunkPool;
  #chunk: Buffer;
  #at = 0;
  constructor(pool: ChunkPool) {
    this.pool = pool;
    this.#chunk = pool.take();
  }
  /** Room left in the current chunk. */
  get room(): number {
    return this.pool.size - this.#at;
  }
  /** The current chunk once it is full (a new one takes its place), else undefined. */
  full(): Buffer | undefined {
    if (this.#at < this.pool.size) return undefined;
    const c = this.#chunk;
    this.#chunk = this.pool.take();
    this.#at = 0;
    return c;
  }
  /** Copy as much of `b` as fits; returns the bytes copied. */
  copy(b: Buffer): number {
    const n = b.copy(this.#chunk, this.#at);
    this.#at += n;
    return n;
  }
  zero(n: number): number {
    const k = Math.min(n, this.room);
    this.#chunk.fill(0, this.#at, this.#at + k);
    this.#at += k;
    return k;
  }
  /** Read up to `len` bytes of `fh` at `pos` into the chunk; returns the bytes read (0 at end of file). */
  async read(fh: FileHandle, len: number, pos: number): Promise<number> {
    const { bytesRead } = await fh.read(this.#chunk, this.#at, Math.min(len, this.room), pos);
    this.#at += bytesRead;
    return bytesRead;
  }
  /** The last, partial chunk (a view of it), or undefined when empty. */
  rest(): Buffer | undefined {
    return this.#at > 0 ? this.#chunk.subarray(0, this.#at) : undefined;
  }
}

function changedSize(e: PlannedEntry, file: string, n: number | string): CanvosError {
  return new CanvosError(
    'ERR_CONFIG',
    `layer file ${e.path}: ${file} changed size while the layer was built (${e.size} → ${n} bytes)`,
    { hint: 'do not modify input files during a build' },
  );
}

/** Copy a file's `e.size` bytes into the chunks, yielding each chunk that fills; fails if the file changed size. */
async function* fileBytes(w: ChunkWriter, e: PlannedEntry, file: string): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    let pos = 0;
    while (pos < e.size) {
      const n = await w.read(fh, e.size - pos, pos);
      if (n === 0) throw changedSize(e, file, pos);
      pos += n;
      const c = w.full();
      if (c) yield c;
    }
    const now = (await fh.stat()).size;
    if (now !== e.size) throw changedSize(e, file, now > e.size ? `${e.size + 1}+` : now);
  } finally {
    await fh.close();
  }
}

/**
 * The tar stream of `entries` (as `tarBytes` writes it) in chunks of exactly `pool.size` bytes, the last one
 * shorter. Each chunk is a pool buffer, valid until the consumer gives it back; the last is a view of one.
 */
export async function* tarChunks(
  entries: readonly PlannedEntry[],
  pool: ChunkPool,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const w = new ChunkWriter(pool);
  function* put(b: Buffer): Generator<Buffer> {
    for (let off = 0; off < b.length;) {
      off += w.copy(b.subarray(off));
      const c = w.full();
      if (c) yield c;
    }
  }
  function* zeros(n: number): Generator<Buffer> {
    for (let left = n; left > 0;) {
      left -= w.zero(left);
      const c = w.full();
      if (c) yield c;
    }
  }
  for (const e of entries) {
    throwIfAborted(signal);
    const { data, ...fields } = e;
    yield* put(encodeHeader(fields));
    if (e.type !== 'file' || e.size === 0) continue;
    if (!data) throw new CanvosError('ERR_INTERNAL', `layer entry ${e.path} has no content source`);
    if ('buf' in data) yield* put(data.buf);
    else yield* fileBytes(w, e, data.file);
    yield* zeros(padding(e.size));
  }
  yield* zeros(END_OF_ARCHIVE.length);
  const last = w.rest();
  if (last) yield last;
}
