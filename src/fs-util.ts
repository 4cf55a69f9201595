/**
 * Filesystem helpers for paths the user gives. `mkdir(p, { recursive: true })` never returns for some paths
 * (Node loops on ENOENT under /proc, e.g. `oci:/proc/x/y`), and then ignores signals: {@link mkdirs} creates the
 * missing directories one by one instead and fails with the real errno of the first one it cannot create.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { abortError } from './util/abort.js';
import { CanvosError } from './errors.js';

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

/** Options of {@link buildOutputFile}. */
export interface OutputFileOptions {
  signal?: AbortSignal | undefined;
  /** Runs after a failure's clean-up, e.g. to remove an output directory made for this build. Default: none. */
  onFailure?: (() => Promise<void>) | undefined;
  /** Maps the error of a failure that is not an abort. Default: unchanged. */
  mapError?: ((e: unknown) => unknown) | undefined;
}

/**
 * Runs `build` for an output file `outPath` that is written as `<outPath>.partial` and then published with its
 * `<outPath>.sha256` (the ISO and the raw disk): `build` gets a staging directory `<stagingPrefix>*` next to the
 * output, removed afterwards in all cases. On failure the `.partial` files and the staging directory are removed,
 * `onFailure` runs, and when `signal` aborted the error is ERR_ABORTED whatever the step that noticed it threw.
 */
export async function buildOutputFile<T>(
  outPath: string,
  stagingPrefix: string,
  build: (staging: string, partial: string) => Promise<T>,
  opts: OutputFileOptions = {},
): Promise<T> {
  const partial = `${outPath}.partial`;
  const staging = await mkdtemp(join(dirname(outPath), stagingPrefix));
  try {
    return await build(staging, partial);
  } catch (e) {
    await rm(partial, { force: true });
    await rm(`${outPath}.sha256.partial`, { force: true });
    await rm(staging, { recursive: true, force: true });
    await opts.onFailure?.();
    if (opts.signal?.aborted && !(CanvosError.is(e) && e.code === 'ERR_ABORTED')) throw abortError(opts.signal);
    throw opts.mapError ? opts.mapError(e) : e;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
