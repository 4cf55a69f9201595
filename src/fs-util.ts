/**
 * Filesystem helpers for paths the user gives. `mkdir(p, { recursive: true })` never returns for some paths
 * (Node loops on ENOENT under /proc, e.g. `oci:/proc/x/y`), and then ignores signals: {@link mkdirs} creates the
 * missing directories one by one instead and fails with the real errno of the first one it cannot create.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Writable } from 'node:stream';

/** End a writable (e.g. a file write stream) and wait until it has flushed; a write error rejects. */
export function endStream(s: Writable): Promise<void> {
  return new Promise((res, rej) => {
    s.end((e?: Error | null) => {
      if (e) rej(e);
      else res();
    });
  });
}

/** Create `path` and its missing parents (like `mkdir -p`); an existing non-directory is ENOTDIR. */
export async function mkdirs(path: string): Promise<void> {
  const missing: string[] = [];
  for (let p = resolve(path); ;) {
    const st = await stat(p).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return undefined;
    });
    if (st) {
      if (!st.isDirectory())
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${p}'`), {
          code: 'ENOTDIR',
          errno: -20,
          syscall: 'mkdir',
          path: p,
        });
      break;
    }
    missing.push(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of missing.reverse()) {
    await mkdir(d).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    });
  }
}
