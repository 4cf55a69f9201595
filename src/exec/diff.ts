/**
 * The filesystem difference a RUN made, captured as one deterministic uncompressed tar layer. A metadata snapshot
 * (type, mode, owner, size, mtime, ctime, inode) is taken before the command; afterwards every path whose metadata
 * changed is written (with its parent directories), deletions become whiteouts that only hide lower content (never
 * below an already deleted, replaced or opaque directory), a directory whose inode changed (removed and recreated)
 * gets an opaque marker, hardlinked files keep their pairing, entries are sorted and mtimes clamped to `mtime`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError, internalError } from '../errors.js';
import type { FsEntryType } from '../tar/entry.js';
import { ancestors, baseName, comparePaths, joinPath, parentPath } from '../layers/path.js';
import type { PlannedEntry } from '../tar/header.js';
import { tarBytes } from '../tar/write.js';
import { throwIfAborted } from '../util/abort.js';

/** Metadata of one path, as seen inside the namespace. */
export interface Meta {
  kind: 'f' | 'd' | 'l' | 'o';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: bigint;
  /** Birth time (statx), 0 when the filesystem has none: tells a recreated directory that got its old inode back. */
  btimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Image path (normalised, root = '') → metadata. */
export type Snapshot = Map<string, Meta>;

/** Walk `root` without following symlinks; paths in `skip` are left out while they are empty (mount points). */
export async function snapshot(
  root: string,
  skip: ReadonlySet<string> = new Set(),
  signal?: AbortSignal,
): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const stack = [''];
  for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
    throwIfAborted(signal);
    const st = await lstat(p === '' ? root : join(root, p), { bigint: true }).catch(() => null);
    if (
      !st ||
      (skip.has(p) &&
        ((st.isFile() && st.size === 0n) || (st.isDirectory() && (await readdir(join(root, p))).length === 0)))
    )
      continue;
    const kind = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o';
    out.set(p, {
      kind,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: kind === 'f' ? Number(st.size) : 0,
      nlink: Number(st.nlink),
      ino: st.ino,
      btimeNs: st.birthtimeNs,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
    });
    if (kind === 'd')
      for (const n of await readdir(p === '' ? root : join(root, p)).catch(() => [] as string[]))
        stack.push(joinPath(p, n));
  }
  return out;
}

/**
 * Whether a path changed. A directory's ctime is not compared: it also moves when bwrap creates and the executor
 * removes a mount point in it (whose mtime is restored), which is no change of the image.
 */
function changed(a: Meta, b: Meta): boolean {
  if (
    a.kind !== b.kind ||
    a.ino !== b.ino ||
    a.btimeNs !== b.btimeNs ||
    a.mtimeNs !== b.mtimeNs ||
    a.size !== b.size ||
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid
  )
    return true;
  return a.kind !== 'd' && a.ctimeNs !== b.ctimeNs;
}

/** Extended attributes of every path under `root` that has any (one `getfattr -R` run). */
async function readXattrs(root: string): Promise<Map<string, Record<string, Buffer>>> {
  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', root], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.on('error', (e) => {
      reject(new CanvosError('ERR_EXEC_UNAVAILABLE', `getfattr: ${e.message}`, { hint: 'apt-get install attr' }));
    });
    child.on('close', () => {
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
  const out = new Map<string, Record<string, Buffer>>();
  let cur: Record<string, Buffer> | undefined;
  const prefix = `${root}/`;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      const host = unescapeName(line.slice(8));
      cur = {};
      if (host.startsWith(prefix)) out.set(host.slice(prefix.length), cur);
      continue;
    }
    const eq = line.indexOf('=');
    if (!cur || eq <= 0) continue;
    const key = unescapeName(line.slice(0, eq));
    if (key === 'security.selinux') continue;
    const v = line.slice(eq + 1);
    cur[key] = v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : Buffer.from(v.replace(/^"|"$/g, ''), 'latin1');
  }
  return out;
}

function unescapeName(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const m = s[i] === '\\' ? /^[0-7]{3}/.exec(s.slice(i + 1)) : null;
    if (m) {
      bytes.push(parseInt(m[0], 8));
      i += 3;
    } else bytes.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Result of {@link captureDiff}. */
export interface Captured {
  diffId: string;
  size: number;
  entries: number;
}

const TYPE: Record<Meta['kind'], FsEntryType> = { f: 'file', d: 'directory', l: 'symlink', o: 'fifo' };

/** Write the difference between `before` and the current state of `root` to `outPath` as a tar layer. */
export async function captureDiff(
  root: string,
  before: Snapshot,
  outPath: string,
  opts: { mtime?: number | undefined; skip?: ReadonlySet<string> | undefined; signal?: AbortSignal | undefined } = {},
): Promise<Captured> {
  const after = await snapshot(root, opts.skip, opts.signal);
  const clamp = (ns: bigint): number => {
    const s = Number(ns / 1_000_000_000n);
    return opts.mtime === undefined ? s : Math.min(s, opts.mtime);
  };
  const add = new Set<string>();
  const opaque = new Set<string>();
  for (const [p, m] of after) {
    if (p === '') continue;
    const b = before.get(p);
    if (!b || changed(b, m)) add.add(p);
    if (b && b.kind === 'd' && m.kind === 'd' && (b.ino !== m.ino || b.btimeNs !== m.btimeNs)) opaque.add(p);
  }
  const whiteouts: string[] = [];
  for (const p of before.keys()) {
    if (p === '' || after.has(p)) continue;
    const hidden = ancestors(p).some((a) => after.get(a)?.kind !== 'd' || opaque.has(a));
    if (!hidden) whiteouts.push(p);
  }
  for (const p of [...add, ...whiteouts]) for (const a of ancestors(p)) add.add(a);
  const xattrs = add.size > 0 ? await readXattrs(root) : new Map<string, Record<string, Buffer>>();
  const wmtime = opts.mtime ?? 0;
  const entries: PlannedEntry[] = [];
  for (const p of add) {
    const m = after.get(p) ?? internalError(`${p} is in the snapshot`);
    if (m.kind === 'o') continue; // sockets, fifos, devices: not representable rootless; never produced by mknod here
    const e: PlannedEntry = {
      path: p,
      type: TYPE[m.kind],
      mode: m.mode,
      uid: m.uid,
      gid: m.gid,
      mtime: clamp(m.mtimeNs),
      size: m.size,
    };
    if (m.kind === 'l') e.linkname = await readlink(join(root, p));
    if (m.kind === 'f' && m.size > 0) e.data = { file: join(root, p) };
    const x = xattrs.get(p);
    if (x && Object.keys(x).length > 0 && m.kind !== 'l') e.xattrs = x;
    entries.push(e);
  }
  for (const p of opaque)
    entries.push({ path: joinPath(p, '.wh..wh..opq'), type: 'file', mode: 0, uid: 0, gid: 0, mtime: wmtime, size: 0 });
  for (const p of whiteouts)
    entries.push({
      path: joinPath(parentPath(p), `.wh.${baseName(p)}`),
      type: 'file',
      mode: 0,
      uid: 0,
      gid: 0,
      mtime: wmtime,
      size: 0,
    });
  entries.sort((a, b) => comparePaths(a.path, b.path));
  const firstOf = new Map<bigint, string>();
  for (const e of entries) {
    const m = after.get(e.path);
    if (!m || m.kind !== 'f' || m.nlink < 2) continue;
    const first = firstOf.get(m.ino);
    if (first === undefined) firstOf.set(m.ino, e.path);
    else Object.assign(e, { type: 'hardlink', linkname: first, size: 0, data: undefined });
  }
  return writeTar(entries, outPath, opts.signal);
}

async function writeTar(entries: PlannedEntry[], outPath: string, signal?: AbortSignal): Promise<Captured> {
  const hash = createHash('sha256');
  const out = createWriteStream(outPath, { flags: 'wx', mode: 0o644 });
  let size = 0;
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  try {
    for await (const chunk of tarBytes(entries, signal)) {
      hash.update(chunk);
      size += chunk.length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
    }
  } finally {
    out.end();
  }
  await done;
  return { diffId: `sha256:${hash.digest('hex')}`, size, entries: entries.length };
}
