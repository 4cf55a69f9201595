/**
 * Streams file contents into squashfs data blocks: blocks are compressed in parallel (bounded in flight) and
 * written in order, all-zero blocks become sparse (size word 0), files shorter than a block are packed into shared
 * fragment blocks (tail ends of longer files too with alwaysUseFragments), and files with identical content
 * (sha256 + size) share one copy by rewinding the write position.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CanvosError } from '../../errors.js';
import type { Compressor } from './compressor.js';
import { DATA_UNCOMPRESSED, INVALID_FRAG } from './format.js';
import type { FileInodeData } from './format.js';
import { throwIfAborted } from '../../util/abort.js';

/** Where a file's content ended up (mutable while its blocks are still in flight). */
export interface FileData extends FileInodeData {
  blocks: number[];
}

interface Job {
  raw: Buffer;
  /** The whole staging buffer under `raw`, reused for a later block once `raw` is written. */
  recycle: Buffer | undefined;
  done: Promise<Buffer | null>;
  sink: (pos: number, word: number) => void;
}

/** Options of the data writer (already validated by writeSquashfs). */
export interface DataWriterOptions {
  blockSize: number;
  concurrency: number;
  fragments: boolean;
  /** Also pack the tail ends of files of a block or more into fragments (mksquashfs -always-use-fragments). */
  alwaysUseFragments: boolean;
  dedupe: boolean;
  signal?: AbortSignal | undefined;
  /** Called with the number of content bytes consumed so far. */
  onBytes?: ((bytesIn: number) => void) | undefined;
}

export class DataWriter {
  /** Next write position in the image. */
  pos: number;
  /** Fragment table: on-disk position and size word of each fragment block. */
  readonly fragPos: number[] = [];
  readonly fragWord: number[] = [];
  bytesIn = 0;
  private readonly fh: FileHandle;
  private readonly c: Compressor;
  private readonly o: DataWriterOptions;
  private readonly zero: Buffer;
  private inflight: Job[] = [];
  /** Compressions not started yet (at most `concurrency` run at once). */
  private readonly pending: (() => void)[] = [];
  private running = 0;
  private readonly window: number;
  private fragBuf: Buffer | undefined;
  private fragFill = 0;
  private readonly seen = new Map<string, FileData>();
  /** Block staging buffer, reused across files until a full block is handed to the compressor. */
  private stage: Buffer;
  /**
   * Written staging buffers (whole blocks, file tails, fragment blocks) ready for reuse: keeps RSS flat instead of
   * leaving 1 MiB buffers to the GC (each new one also counts towards V8's next full GC).
   */
  private readonly free: Buffer[] = [];

  constructor(fh: FileHandle, start: number, c: Compressor, o: DataWriterOptions) {
    this.fh = fh;
    this.pos = start;
    this.c = c;
    this.o = o;
    this.zero = Buffer.alloc(o.blockSize);
    this.stage = Buffer.allocUnsafe(o.blockSize);
    this.window = 2 * o.concurrency + 2;
  }

  /** Consumes `content` (exactly `size` bytes) and returns its placement. */
  async writeFile(path: string, content: Readable | undefined, size: number): Promise<FileData> {
    const bs = this.o.blockSize;
    const data: FileData = { start: 0, size, sparse: 0, fragIndex: INVALID_FRAG, fragOffset: 0, blocks: [] };
    let started = false;
    const sink = (pos: number, word: number, len: number): void => {
      if (!started) data.start = pos;
      started = true;
      data.blocks.push(word);
      if (word === 0) data.sparse += len;
    };
    const hash = this.o.dedupe ? createHash('sha256') : undefined;
    let buf = this.stage;
    let fill = 0;
    let total = 0;
    let submitted = 0;
    if (content) {
      for await (const chunk of content as AsyncIterable<Buffer>) {
        throwIfAborted(this.o.signal);
        hash?.update(chunk);
        total += chunk.length;
        for (let p = 0; p < chunk.length;) {
          const n = Math.min(chunk.length - p, bs - fill);
          chunk.copy(buf, fill, p, p + n);
          fill += n;
          p += n;
          if (fill === bs) {
            const raw = buf;
            await this.submit(
              raw,
              (pos, w) => {
                sink(pos, w, raw.length);
              },
              true,
              raw,
            );
            submitted++;
            buf = this.stage = this.takeBuffer();
            fill = 0;
          }
        }
        this.bytesIn += chunk.length;
        this.o.onBytes?.(this.bytesIn);
      }
    }
    if (total !== size) {
      throw new CanvosError(
        'ERR_SIZE_MISMATCH',
        `squashfs: ${path} has ${total} content bytes, its entry says ${size}`,
        {
          hint: 'the entry producer must yield a content stream of exactly `size` bytes',
        },
      );
    }
    if (hash && size > 0) {
      const key = `${hash.digest('base64')}:${size}`;
      const prev = this.seen.get(key);
      if (prev) {
        // Drop this copy: once its blocks are on disk, later writes simply overwrite them.
        if (submitted > 0) {
          await this.drain();
          this.pos = data.start;
        }
        return prev;
      }
      this.seen.set(key, data);
    }
    if (fill > 0) {
      // Like mksquashfs: files shorter than a block go into fragments, the tail end of a longer file is its own
      // short block unless alwaysUseFragments (so inode sizes, hence the whole metadata layout, match mksquashfs).
      if (this.o.fragments && (submitted === 0 || this.o.alwaysUseFragments)) this.addTail(buf.subarray(0, fill), data);
      else {
        // The staging buffer goes with the tail block; the next file stages into another one.
        const tail = buf.subarray(0, fill);
        this.stage = this.takeBuffer();
        await this.submit(
          tail,
          (pos, w) => {
            sink(pos, w, tail.length);
          },
          true,
          buf,
        );
      }
    }
    return data;
  }

  /** A free staging buffer of one block. */
  private takeBuffer(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.o.blockSize);
  }

  private addTail(tail: Buffer, data: FileData): void {
    const bs = this.o.blockSize;
    if (this.fragFill + tail.length > bs) this.flushFragment();
    this.fragBuf ??= this.takeBuffer();
    tail.copy(this.fragBuf, this.fragFill);
    data.fragIndex = this.fragPos.length;
    data.fragOffset = this.fragFill;
    this.fragFill += tail.length;
  }

  private flushFragment(): void {
    if (!this.fragBuf || this.fragFill === 0) return;
    const idx = this.fragPos.length;
    this.fragPos.push(0);
    this.fragWord.push(0);
    // Queued without awaiting the in-flight bound: at most one extra block, and positions stay in order.
    this.enqueue(
      this.fragBuf.subarray(0, this.fragFill),
      (pos, w) => {
        this.fragPos[idx] = pos;
        this.fragWord[idx] = w;
      },
      false,
      this.fragBuf,
    );
    this.fragBuf = undefined;
    this.fragFill = 0;
  }

  private enqueue(raw: Buffer, sink: Job['sink'], sparseOk: boolean, recycle?: Buffer): void {
    const sparse = sparseOk && raw.length === this.o.blockSize && raw.equals(this.zero);
    let done: Promise<Buffer | null>;
    if (sparse) done = Promise.resolve(null);
    else {
      done = new Promise<Buffer>((resolve, reject) => {
        const start = (): void => {
          this.running++;
          this.c
            .compress(raw)
            .then(resolve, reject)
            .finally(() => {
              this.running--;
              this.pending.shift()?.();
            });
        };
        if (this.running < this.o.concurrency) start();
        else this.pending.push(start);
      });
    }
    done.catch(() => {}); // surfaced when retired; avoids an unhandled rejection meanwhile
    this.inflight.push({ raw, recycle, done, sink });
  }

  private async submit(raw: Buffer, sink: Job['sink'], sparseOk: boolean, recycle?: Buffer): Promise<void> {
    this.enqueue(raw, sink, sparseOk, recycle);
    // Blocks are written in order, but compress out of order: at most `concurrency` at once on the threadpool
    // (the rest of the pool stays free for file reads), the next one starting as soon as any finishes, with up to
    // `window` blocks read ahead so a slow block at the head does not leave the other threads idle.
    while (this.inflight.length > this.window) await this.retire();
  }

  private async retire(): Promise<void> {
    const j = this.inflight.shift();
    if (!j) return;
    const z = await j.done;
    if (z === null) {
      if (j.recycle) this.free.push(j.recycle);
      j.sink(this.pos, 0);
      return;
    }
    // Store raw when compression does not shrink the block (bit 24 marks it).
    const raw = z.length >= j.raw.length;
    const out = raw ? j.raw : z;
    await this.fh.write(out, 0, out.length, this.pos);
    if (j.recycle) this.free.push(j.recycle); // written (or compressed): reusable for the next block
    j.sink(this.pos, raw ? out.length | DATA_UNCOMPRESSED : out.length);
    this.pos += out.length;
  }

  /** Waits until every queued block is on disk. */
  async drain(): Promise<void> {
    while (this.inflight.length > 0) await this.retire();
  }

  /** Flushes the last fragment block and all queued blocks; returns the end of the data area. */
  async finish(): Promise<number> {
    this.flushFragment();
    await this.drain();
    return this.pos;
  }
}
