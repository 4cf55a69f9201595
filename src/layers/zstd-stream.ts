/**
 * @internal Streaming zstd decoding of a layer blob with bounded memory. The native decoder's `push()` returns all
 * output of its input at once, and zstd can expand 4 input bytes (an RLE block) into 128 KiB, so input is cut at
 * block boundaries found by a small frame/block header scanner (RFC 8878 §3.1) that bounds each push's output.
 * The scanner also reports truncation and garbage between frames. Uses node:zlib's zstd when no addon is loaded.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { CanvosError } from '../errors.js';
import { compressor, type ChunkCompressor } from '../native/load.js';

/** The zstd frame magic, little-endian on the wire: 28 B5 2F FD. */
export const ZSTD_MAGIC = 0xfd2fb528;
/** Decoded bytes one native push may produce at most (plus one block). */
const OUT_TARGET = 4 << 20;
/** Block_Maximum_Size: no block decodes to more than 128 KiB (RFC 8878 §3.1.1.2.4). */
const MAX_BLOCK = 128 << 10;

type State = 'magic' | 'skipsize' | 'fhd' | 'frest' | 'bheader' | 'body';

/** Walks frame and block headers; `bound` sums the largest output the bytes scanned so far can decode to. */
class FrameScanner {
  private state: State = 'magic';
  private need = 4; // header bytes wanted, or body bytes remaining
  private hdr: number[] = [];
  private checksum = false;
  private frames = 0;
  private readonly name: string;
  offset = 0;
  bound = 0;
  constructor(name: string) {
    this.name = name;
  }

  /** Advance from `pos` until the end of `buf` or until `bound` reaches OUT_TARGET; returns the stop position. */
  scan(buf: Buffer, pos: number): number {
    while (pos < buf.length && this.bound < OUT_TARGET) {
      if (this.state === 'body') {
        const n = Math.min(this.need, buf.length - pos);
        pos += n;
        this.offset += n;
        this.need -= n;
      } else {
        this.hdr.push(buf.readUInt8(pos++));
        this.offset++;
        if (this.hdr.length < this.need) continue;
        this.header(Buffer.from(this.hdr));
        this.hdr = [];
      }
      if (this.state === 'body' && this.need === 0) this.afterBody();
    }
    return pos;
  }

  /** Throws unless the input ended exactly between frames. */
  finish(): void {
    if (this.state !== 'magic' || this.hdr.length > 0 || this.frames === 0) {
      throw corrupt(this.name, `zstd stream is truncated at byte ${this.offset}`);
    }
  }

  private next: 'magic' | 'bheader' = 'magic';
  private lastBlock = false;

  private header(h: Buffer): void {
    switch (this.state) {
      case 'magic': {
        const m = h.readUInt32LE(0);
        if (m === ZSTD_MAGIC) this.go('fhd', 1);
        else if (m >>> 4 === 0x184d2a5)
          this.go('skipsize', 4); // skippable frame
        else throw corrupt(this.name, `no zstd frame at byte ${this.offset - 4}`);
        this.frames++;
        return;
      }
      case 'skipsize':
        this.body(h.readUInt32LE(0), 'magic');
        return;
      case 'fhd': {
        const fhd = h.readUInt8(0);
        if (fhd & 0x08) throw corrupt(this.name, `reserved bit set in zstd frame header at byte ${this.offset - 1}`);
        const single = (fhd >> 5) & 1;
        const dictIdBytes = (fhd & 3) === 3 ? 4 : fhd & 3; // 0, 1, 2, 4
        const contentSizeBytes = fhd >> 6 === 0 ? single : 1 << (fhd >> 6); // single, 2, 4, 8
        const rest = (single ? 0 : 1) + dictIdBytes + contentSizeBytes;
        this.checksum = (fhd & 0x04) !== 0;
        if (rest === 0) this.go('bheader', 3);
        else this.go('frest', rest);
        return;
      }
      case 'frest':
        this.go('bheader', 3);
        return;
      case 'bheader': {
        const v = h.readUIntLE(0, 3);
        const type = (v >> 1) & 3;
        const size = v >>> 3;
        if (type === 3) throw corrupt(this.name, `reserved zstd block type at byte ${this.offset - 3}`);
        this.bound += type === 2 ? MAX_BLOCK : Math.min(size, MAX_BLOCK);
        this.lastBlock = (v & 1) === 1;
        this.body(type === 1 ? 1 : size, 'bheader');
        return;
      }
      default:
        return;
    }
  }

  private go(s: State, need: number): void {
    this.state = s;
    this.need = need;
  }

  private body(n: number, then: 'magic' | 'bheader'): void {
    this.next = then;
    this.go('body', n);
    if (n === 0) this.afterBody();
  }

  private afterBody(): void {
    if (this.next === 'bheader' && this.lastBlock) {
      this.lastBlock = false;
      if (this.checksum)
        this.body(4, 'magic'); // content checksum, verified by libzstd
      else this.go('magic', 4);
    } else this.go(this.next === 'bheader' ? 'bheader' : 'magic', this.next === 'bheader' ? 3 : 4);
  }
}

function corrupt(name: string, what: string, cause?: unknown): CanvosError {
  return new CanvosError('ERR_LAYER_CORRUPT', `${name}: ${what}`, {
    hint: 'the layer blob is incomplete or corrupt; pull it again',
    ...(cause === undefined ? {} : { cause }),
  });
}

type ZlibWithZstd = { createZstdDecompress?: () => NodeJS.ReadWriteStream };

/**
 * Decode a zstd stream (one or more frames) to its uncompressed bytes. Truncated or corrupt input throws
 * ERR_LAYER_CORRUPT; no zstd implementation (no addon, Node < 22.15) throws ERR_CONFIG.
 */
export async function* zstdDecompress(
  src: AsyncIterable<Buffer>,
  name: string,
  using?: ChunkCompressor,
): AsyncGenerator<Buffer> {
  const c = using ?? compressor();
  const viaZlib = (zlib as unknown as ZlibWithZstd).createZstdDecompress;
  const scanner = new FrameScanner(name);
  if (c.backend !== 'native' && viaZlib) {
    async function* checked(): AsyncGenerator<Buffer> {
      for await (const b of src) {
        for (let p = 0; p < b.length; scanner.bound = 0) p = scanner.scan(b, p);
        yield b;
      }
      scanner.finish();
    }
    const z = viaZlib();
    const done = pipeline(Readable.from(checked()), z);
    done.catch(() => undefined); // surfaced through iteration of `z`
    try {
      for await (const b of z as AsyncIterable<Buffer>) yield b;
      await done;
    } catch (e) {
      throw CanvosError.is(e) ? e : corrupt(name, `zstd stream is corrupt: ${(e as Error).message}`, e);
    }
    return;
  }
  const dec = c.zstdDecoder(); // throws ERR_CONFIG (with a hint) when there is no zstd at all
  const push = (b: Buffer): Buffer => {
    try {
      return dec.push(b);
    } catch (e) {
      throw corrupt(name, `zstd stream is corrupt near byte ${scanner.offset}: ${(e as Error).message}`, e);
    }
  };
  for await (const b of src) {
    let start = 0;
    while (start < b.length) {
      const stop = scanner.scan(b, start);
      const out = push(b.subarray(start, stop));
      scanner.bound = 0;
      start = stop;
      if (out.length > 0) yield out;
    }
  }
  scanner.finish();
  try {
    dec.end();
  } catch (e) {
    throw corrupt(name, `zstd stream is truncated: ${(e as Error).message}`, e);
  }
}
