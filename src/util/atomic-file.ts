/**
 * Atomic file writes with the one temp naming of the house: a file is written as `.<name>.canvos-tmp-<pid>-<rand>`
 * in its own directory (hidden, never mistaken for the result, and on the same filesystem so the rename that
 * publishes it is atomic), then renamed into place; on failure the temp file is removed. Resumable downloads keep
 * their own stable `<path>.partial` (registry/blobs.ts), because a later run must find it.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The marker in every temp name. */
export const TEMP_MARK = '.canvos-tmp-';

/** A fresh temp path next to `dest`: `.<name>.canvos-tmp-<pid>-<rand>`. */
export function tempPathFor(dest: string): string {
  return join(dirname(dest), `.${basename(dest)}${TEMP_MARK}${String(process.pid)}-${randomBytes(4).toString('hex')}`);
}

/**
 * Produce `dest` atomically: `fill(tmp)` writes the temp file, which is then renamed to `dest`; when `fill` or the
 * rename fails the temp file is removed and the error rethrown.
 */
export async function withAtomicFile<T>(dest: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = tempPathFor(dest);
  try {
    const r = await fill(tmp);
    await rename(tmp, dest);
    return r;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Write a small file atomically (temp file in the same directory, then rename). */
export function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  return withAtomicFile(path, (tmp) => writeFile(tmp, data));
}
