/**
 * Metadata-block writers: the 8 KiB compressed blocks that hold inodes, directories and lookup tables.
 * Each block is a 2-byte length word (bit 15 = stored uncompressed) followed by the payload. Blocks are kept
 * in memory (a 100k-entry rootfs yields a few MiB) and copied into the image once the data blocks are done.
 */
import { METADATA_SIZE, META_UNCOMPRESSED } from './format.js';
import type { Compressor } from './compressor.js';

/** Compresses one metadata block, falling back to the raw bytes when compression does not help. */
export function metaBlock(c: Compressor, raw: Buffer): Buffer {
  const z = c.compressSync(raw);
  const store = z.length < raw.length ? z : raw;
  const out = Buffer.allocUnsafe(2 + store.length);
  out.writeUInt16LE(store === raw ? raw.length | META_UNCOMPRESSED : z.length, 0);
  store.copy(out, 2);
  return out;
}

/** An append-only stream of metadata blocks with references into it. */
export class MetadataWriter {
  private readonly c: Compressor;
  private readonly blocks: Buffer[] = [];
  private cur = Buffer.allocUnsafe(METADATA_SIZE);
  private fill = 0;
  /** Bytes of compressed blocks already emitted: the start offset of the current block. */
  private emitted = 0;
  /** Uncompressed bytes written so far. */
  uncompressed = 0;

  constructor(c: Compressor) {
    this.c = c;
  }

  /** Offset (relative to this table's start) of the block the next byte lands in. */
  get block(): number {
    return this.emitted;
  }

  /** Offset inside the current uncompressed block where the next byte lands (always < 8192). */
  get offset(): number {
    return this.fill;
  }

  /** The 64-bit-style reference `block << 16 | offset` of the next byte (fits a JS number below 2^37 blocks). */
  get ref(): number {
    return this.emitted * 65536 + this.fill;
  }

  write(buf: Buffer): void {
    let p = 0;
    while (p < buf.length) {
      const n = Math.min(buf.length - p, METADATA_SIZE - this.fill);
      buf.copy(this.cur, this.fill, p, p + n);
      this.fill += n;
      p += n;
      if (this.fill === METADATA_SIZE) this.flush();
    }
    this.uncompressed += buf.length;
  }

  private flush(): void {
    if (this.fill === 0) return;
    const b = metaBlock(this.c, this.cur.subarray(0, this.fill));
    this.blocks.push(b);
    this.emitted += b.length;
    this.fill = 0;
  }

  /** Flushes the last partial block and returns all blocks; the writer is done afterwards. */
  finish(): Buffer[] {
    this.flush();
    return this.blocks;
  }
}

/**
 * Encodes a lookup table (fragment, id, xattr-id): `raw` split into metadata blocks placed at `at`, plus the
 * u64 array of their absolute positions (the caller puts it right after the blocks, or after a header).
 */
export function lookupTable(c: Compressor, raw: Buffer, at: number): { blocks: Buffer; index: Buffer } {
  const parts: Buffer[] = [];
  const positions: number[] = [];
  let pos = at;
  for (let p = 0; p < raw.length; p += METADATA_SIZE) {
    const b = metaBlock(c, raw.subarray(p, Math.min(raw.length, p + METADATA_SIZE)));
    positions.push(pos);
    parts.push(b);
    pos += b.length;
  }
  const index = Buffer.alloc(8 * positions.length);
  positions.forEach((v, i) => index.writeBigUInt64LE(BigInt(v), 8 * i));
  return { blocks: Buffer.concat(parts), index };
}
