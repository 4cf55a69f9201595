/**
 * Walks a host directory for a `tree` layer entry: lstat only (symlinks are kept as symlinks, never followed),
 * files sharing an inode become hardlinks, device nodes keep their major/minor, sockets are skipped.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { CanvosError } from '../errors.js';
import { joinPath } from './path.js';
import type { PlannedEntry } from '../tar/header.js';
import type { TreeSpec } from './spec.js';
import { throwIfAborted } from '../util/abort.js';

/** Linux dev_t split (glibc gnu_dev_major/minor). */
function devMajor(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function devMinor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

/** @internal Yield the entries of host directory `host` placed at image path `dest` (dest itself first). */
export async function* walkTree(
  host: string,
  dest: string,
  s: TreeSpec,
  signal?: AbortSignal,
): AsyncGenerator<PlannedEntry> {
  const inodes = new Map<string, string>(); // "dev:ino" -> first image path
  // bigint stats: a float mtimeMs rounds x.999999999 s up to the next second; mtimeNs is exact.
  const root = await lstat(host, { bigint: true }).catch((e: unknown) => {
    throw new CanvosError('ERR_CONFIG', `layer spec tree ${s.path}: cannot read host directory ${host}`, {
      cause: e,
      hint: 'check the path',
    });
  });
  if (!root.isDirectory())
    throw new CanvosError('ERR_CONFIG', `layer spec tree ${s.path}: ${host} is not a directory`, {
      hint: 'use a file entry',
    });
  const stack: Array<[string, string, BigIntStats]> = [[host, dest, root]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    throwIfAborted(signal);
    const [hp, ip, st] = top;
    const base = {
      path: ip,
      uid: s.uid ?? 0,
      gid: s.gid ?? 0,
      uname: '',
      gname: '',
      mtime: Number(st.mtimeNs / 1_000_000_000n),
      size: 0,
    };
    const perm = Number(st.mode) & 0o7777;
    if (st.isDirectory()) {
      yield { ...base, type: 'directory', mode: s.dirMode ?? perm };
      const names = await readdir(hp);
      for (const n of names.sort().reverse()) {
        const child = join(hp, n);
        stack.push([child, joinPath(ip, n), await lstat(child, { bigint: true })]);
      }
    } else if (st.isSymbolicLink()) {
      yield { ...base, type: 'symlink', mode: 0o777, linkname: await readlink(hp) };
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? inodes.get(key) : undefined;
      if (first !== undefined) {
        yield { ...base, type: 'hardlink', mode: s.fileMode ?? perm, linkname: first };
      } else {
        if (st.nlink > 1n) inodes.set(key, ip);
        yield { ...base, type: 'file', mode: s.fileMode ?? perm, size: Number(st.size), data: { file: hp } };
      }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      yield {
        ...base,
        type: st.isCharacterDevice() ? 'char' : 'block',
        mode: perm,
        devmajor: devMajor(Number(st.rdev)),
        devminor: devMinor(Number(st.rdev)),
      };
    } else if (st.isFIFO()) {
      yield { ...base, type: 'fifo', mode: perm };
    }
    // sockets cannot be archived meaningfully; skipped like GNU tar does
  }
}
