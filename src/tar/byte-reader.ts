/**
 * @internal A pull-based reader over an async byte iterator: exact reads for headers, bounded pieces for content,
 * skips for padding. Only buffers what one `read(n)` asks for (headers, PAX records), never whole entries.
 */
import { CanvosError } from '../errors.js';

export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private readonly where: string;
  private chunks: Buffer[] = [];
  private avail = 0;
  private done = false;
  /** Bytes consumed so far (for error messages). */
  offset = 0;

  constructor(it: AsyncIterator<Buffer>, where: string) {
    this.it = it;
    this.where = where;
  }

  private async ensure(n: number): Promise<boolean> {
    while (this.avail < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.avail += r.value.length;
      }
    }
    return this.avail >= n;
  }

  /** The first buffered chunk (callers ensured there is one). */
  private head(): Buffer {
    const c = this.chunks[0];
    if (!c) throw this.truncated();
    return c;
  }

  private take(n: number): Buffer {
    const first = this.head();
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let need = n;
      while (need > 0) {
        const c = this.head();
        if (c.length <= need) {
          parts.push(c);
          this.chunks.shift();
          need -= c.length;
        } else {
          parts.push(c.subarray(0, need));
          this.chunks[0] = c.subarray(need);
          need = 0;
        }
      }
      out = Buffer.concat(parts, n);
    }
    this.avail -= n;
    this.offset += n;
    return out;
  }

  truncated(): CanvosError {
    return new CanvosError(
      'ERR_LAYER_CORRUPT',
      `${this.where}: tar archive is truncated at byte ${this.offset + this.avail}`,
      {
        hint: 'the layer blob is incomplete or corrupt; pull it again',
      },
    );
  }

  /** Exactly n bytes; `null` at a clean end of input (no bytes left); throws when input ends midway. */
  async read(n: number): Promise<Buffer | null> {
    if (await this.ensure(n)) return this.take(n);
    if (this.avail === 0) return null;
    throw this.truncated();
  }

  /** Between 1 and `max` bytes (whatever is buffered first); throws at end of input. */
  async piece(max: number): Promise<Buffer> {
    if (!(await this.ensure(1))) throw this.truncated();
    return this.take(Math.min(max, this.head().length));
  }

  /** Discard n bytes. */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) left -= (await this.piece(left)).length;
  }
}
