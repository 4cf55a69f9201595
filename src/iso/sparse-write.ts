/**
 * writeSparse: a stream written to a file with every all-zero, 4 KiB-aligned block left as a hole (seek instead of
 * write), so an image holding a placeholder of zeros takes no disk for it (see sparse-iso.ts).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { throwIfAborted } from '../util/abort.js';

/** Filesystem block: runs of zeros this long, at this alignment in the file, become holes. */
const HOLE_BLOCK = 4096;
const ZEROS = Buffer.alloc(HOLE_BLOCK);

/** Writes `src` to `path` (created or truncated), leaving all-zero aligned 4 KiB blocks as holes. Returns the size. */
export async function writeSparse(
  src: Readable | AsyncIterable<Buffer>,
  path: string,
  signal?: AbortSignal,
): Promise<number> {
  const fh = await open(path, 'w');
  try {
    let pos = 0;
    let carry = Buffer.alloc(0);
    for await (const chunk of src as AsyncIterable<Buffer>) {
      throwIfAborted(signal);
      const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      const whole = buf.length - (buf.length % HOLE_BLOCK);
      await writeNonZero(fh, buf.subarray(0, whole), pos);
      pos += whole;
      carry = Buffer.from(buf.subarray(whole));
    }
    await writeNonZero(fh, carry, pos);
    pos += carry.length;
    // The size covers a trailing hole too.
    await fh.truncate(pos);
    return pos;
  } finally {
    await fh.close();
  }
}

/** Writes the runs of `buf` (at file offset `pos`, block-aligned) that are not all-zero blocks. */
async function writeNonZero(fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let runStart = -1;
  for (let off = 0; off < buf.length; off += HOLE_BLOCK) {
    const block = buf.subarray(off, Math.min(off + HOLE_BLOCK, buf.length));
    const zero = block.length === HOLE_BLOCK && block.equals(ZEROS);
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      await writeAll(fh, buf.subarray(runStart, off), pos + runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) await writeAll(fh, buf.subarray(runStart), pos + runStart);
}

/** Writes all of `buf` at `pos`. */
export async function writeAll(fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos + done);
    done += bytesWritten;
  }
}
