/**
 * Pull single files out of an image's merged filesystem (e.g. /etc/kairos-release, /boot/vmlinuz) without unpacking
 * it, following symlinks (also in parent directories) and hardlinks within the image like a chroot would.
 * The first pass stops as soon as the path is a regular file; a symlink costs one more pass over the layers.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../tar/entry.js';
import { mergeLayers, type LayerOpener, type MergeOptions } from './merge.js';
import { normalizeLayerPath, resolveLinkTarget } from './path.js';
import { withAtomicFile } from '../util/atomic-file.js';

const MAX_HOPS = 40; // Linux MAXSYMLINKS

/** Options of {@link extractFile} / {@link extractFileTo}. */
export interface ExtractOptions extends MergeOptions {
  /** extractFile only: refuse files larger than this. Default: 64 MiB. */
  maxBytes?: number | undefined;
}

function resolveThrough(p: string, symlinks: Map<string, string>, path: string): string {
  let parts = p === '' ? [] : p.split('/');
  const cur: string[] = [];
  let hops = 0;
  for (let seg = parts.shift(); seg !== undefined; seg = parts.shift()) {
    const link = symlinks.get([...cur, seg].join('/'));
    if (link === undefined) {
      cur.push(seg);
      continue;
    }
    if (++hops > MAX_HOPS)
      throw new CanvosError('ERR_CONFIG', `too many levels of symbolic links resolving ${path} in the image`);
    const t = resolveLinkTarget(cur.join('/'), link);
    parts = [...(t === '' ? [] : t.split('/')), ...parts];
    cur.length = 0;
  }
  return cur.join('/');
}

async function locate<T>(
  openers: readonly LayerOpener[],
  path: string,
  opts: ExtractOptions,
  consume: (e: FsEntry) => Promise<T>,
): Promise<T | null> {
  // `..` in a lookup path is resolved chroot-style rather than rejected: it names a location inside the image.
  let want: string = normalizeLayerPath(path) ?? resolveLinkTarget('', path);
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    const symlinks = new Map<string, string>();
    let hardlinkTo: string | undefined;
    for await (const e of mergeLayers(openers, opts)) {
      if (e.type === 'symlink') symlinks.set(e.path, e.linkname ?? '');
      if (e.path !== want) continue;
      if (e.type === 'file') return await consume(e);
      if (e.type === 'hardlink') hardlinkTo = e.linkname;
      else if (e.type !== 'symlink') return null; // a directory, device, ... is not a file
    }
    const next: string = hardlinkTo ?? resolveThrough(want, symlinks, path);
    if (next === want) return null;
    want = next;
  }
  throw new CanvosError('ERR_CONFIG', `too many levels of links resolving ${path} in the image`);
}

/** Read a (small) regular file from the merged image; `null` when there is no regular file at `path`. */
export async function extractFile(
  openers: readonly LayerOpener[],
  path: string,
  opts: ExtractOptions = {},
): Promise<Buffer | null> {
  const max = opts.maxBytes ?? 64 << 20;
  return locate(openers, path, opts, async (e) => {
    if (e.size > max) {
      throw new CanvosError(
        'ERR_CONFIG',
        `${path} in the image is ${e.size} bytes, over the ${max}-byte limit of extractFile`,
        {
          hint: 'use extractFileTo for large files',
        },
      );
    }
    const parts: Buffer[] = [];
    for await (const c of e.content ?? []) parts.push(c as Buffer);
    return Buffer.concat(parts);
  });
}

/**
 * Stream a regular file from the merged image to `dest` (written as a temp file, then renamed: util/atomic-file.ts). Returns the entry's
 * metadata (mode, owner, size…), or `null` when there is no regular file at `path`.
 */
export async function extractFileTo(
  openers: readonly LayerOpener[],
  path: string,
  dest: string,
  opts: ExtractOptions = {},
): Promise<Omit<FsEntry, 'content'> | null> {
  return locate(openers, path, opts, async (e) => {
    await withAtomicFile(dest, async (part) => {
      const src = e.content;
      if (src) await pipeline(src, createWriteStream(part), opts.signal ? { signal: opts.signal } : {});
      else await pipeline(async function* () {}, createWriteStream(part));
    });
    const { content: _c, ...meta } = e;
    return meta;
  });
}
