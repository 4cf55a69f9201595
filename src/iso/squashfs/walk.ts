/**
 * walkDirectory: an lstat-based FsEntry producer for a directory on disk (bench and tests; the real ISO input is
 * an image's merged layer stream). Pre-order, names sorted, hardlinks detected by (dev, ino); xattrs are not read
 * (Node has no xattr API) and sockets are skipped (FsEntry has no socket type).
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FsEntry } from '../../tar/entry.js';
import { throwIfAborted } from '../../util/abort.js';

/** Options of walkDirectory. */
export interface WalkOptions {
  signal?: AbortSignal | undefined;
}

/** Linux dev_t split (glibc gnu_dev_major/minor). */
function devSplit(rdev: number): { devmajor: number; devminor: number } {
  const r = BigInt(rdev);
  const major = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const minor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return { devmajor: major, devminor: minor };
}

/** Yields every object under `dir` (the root itself as path `''`) as FsEntry, file contents as lazy streams. */
export async function* walkDirectory(dir: string, opts: WalkOptions = {}): AsyncGenerator<FsEntry> {
  const seen = new Map<string, string>();
  const stack: string[] = [''];
  while (stack.length > 0) {
    throwIfAborted(opts.signal);
    const rel = stack.pop() as string;
    const abs = rel === '' ? dir : join(dir, rel);
    // bigint stats: a float mtimeMs rounds x.999999999 s up to the next second; mtimeNs is exact.
    const big = await lstat(abs, { bigint: true });
    const st = {
      mode: Number(big.mode),
      uid: Number(big.uid),
      gid: Number(big.gid),
      size: Number(big.size),
      nlink: Number(big.nlink),
      dev: big.dev,
      ino: big.ino,
      rdev: Number(big.rdev),
    };
    const base = {
      path: rel,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Number(big.mtimeNs / 1_000_000_000n),
      size: 0,
    };
    if (big.isDirectory()) {
      yield { ...base, type: 'directory' };
      const names = (await readdir(abs)).sort().reverse(); // reversed: the stack pops them in order
      for (const n of names) stack.push(rel === '' ? n : `${rel}/${n}`);
      continue;
    }
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = seen.get(key);
      if (first !== undefined) {
        yield { ...base, type: 'hardlink', linkname: first };
        continue;
      }
      seen.set(key, rel);
    }
    if (big.isFile()) {
      // ReadStream allocates a full highWaterMark buffer per read: size it to the file for the many small ones.
      const highWaterMark = Math.min(1 << 20, Math.max(st.size + 1, 16 << 10));
      yield { ...base, type: 'file', size: st.size, content: createReadStream(abs, { highWaterMark }) };
    } else if (big.isSymbolicLink()) {
      yield { ...base, type: 'symlink', linkname: await readlink(abs) };
    } else if (big.isCharacterDevice() || big.isBlockDevice()) {
      yield { ...base, type: big.isCharacterDevice() ? 'char' : 'block', ...devSplit(st.rdev) };
    } else if (big.isFIFO()) {
      yield { ...base, type: 'fifo' };
    }
  }
}
