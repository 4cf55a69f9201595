/**
 * Applies one image layer (an uncompressed or compressed tar stream) onto a root directory on disk, inside the
 * executor's namespace (so owners are real): OCI whiteouts and opaque directories, owners, modes, mtimes, xattrs
 * (set after chown, so security.capability survives), symlinks and hardlinks. Paths are resolved chroot-style: a
 * symlink in the image never leads outside `root`. Device nodes and fifos cannot be created in a user namespace and
 * are skipped (counted); /dev is provided at run time.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../layers/entry.js';
import { ancestors, baseName, joinPath, parentPath, resolveLinkTarget } from '../layers/path.js';
import { readLayer } from '../layers/read.js';

/** What applying a layer did. */
export interface ApplyResult {
  entries: number;
  /** Device nodes and fifos that were not created. */
  skippedSpecial: number;
  /** Entries whose owner could not be set (ids outside the namespace's mapping). */
  chownFailed: number;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_HOPS = 40;

/** Resolves image paths to host paths under `root` without ever leaving it (symlinks resolved chroot-style). */
export class RootResolver {
  private readonly dirs = new Map<string, string>();
  readonly root: string;
  private readonly replace: boolean;
  /** `replace`: a non-directory where a directory is needed is replaced (tar semantics) rather than an error. */
  constructor(root: string, replace = true) {
    this.root = root;
    this.replace = replace;
  }

  /** Forget cached resolutions (after anything was removed or replaced). */
  reset(): void {
    this.dirs.clear();
  }

  /** The resolved image path of directory `dir` (following symlinks), creating missing directories when `create`. */
  async dir(dir: string, create: boolean, hops = 0): Promise<string> {
    if (dir === '') return '';
    const cached = this.dirs.get(dir);
    if (cached !== undefined) return cached;
    const parent = await this.dir(parentPath(dir), create, hops);
    const here = joinPath(parent, baseName(dir));
    let out = here;
    const st = await lstat(join(this.root, here)).catch(() => null);
    if (st === null) {
      if (!create) throw Object.assign(new Error(`no directory ${dir}`), { code: 'ENOENT' });
      await mkdir(join(this.root, here), { mode: 0o755 });
    } else if (st.isSymbolicLink()) {
      if (hops >= MAX_HOPS) throw new CanvosError('ERR_LAYER_CORRUPT', `too many levels of symbolic links at ${dir}`);
      const target = resolveLinkTarget(parent, await readlink(join(this.root, here)));
      out = await this.dir(target, create, hops + 1);
    } else if (!st.isDirectory()) {
      if (!create || !this.replace) throw Object.assign(new Error(`not a directory: ${dir}`), { code: 'ENOTDIR' });
      await rm(join(this.root, here), { force: true });
      await mkdir(join(this.root, here), { mode: 0o755 });
    }
    this.dirs.set(dir, out);
    return out;
  }

  /** Host path of `p`: its parent resolved, its last component not followed. */
  async path(p: string, create = true): Promise<string> {
    if (p === '') return this.root;
    return join(this.root, await this.dir(parentPath(p), create), baseName(p));
  }
}

/** Set xattrs through `setfattr --restore` (one process per layer); values are hex-encoded. */
async function setXattrs(items: Array<{ host: string; xattrs: Record<string, Buffer> }>): Promise<void> {
  if (items.length === 0) return;
  const dump = items
    .map(({ host, xattrs }) => `# file: ${escapeName(host)}\n${Object.entries(xattrs).map(([k, v]) => `${k}=0x${v.toString('hex')}`).join('\n')}\n`)
    .join('\n');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('setfattr', ['-h', '--restore=-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => reject(new CanvosError('ERR_EXEC_UNAVAILABLE', `setfattr: ${e.message}`, { hint: 'apt-get install attr' })));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new CanvosError('ERR_LAYER_CORRUPT', `setting extended attributes failed: ${err.trim().split('\n').pop() ?? ''}`))));
    child.stdin.end(dump);
  });
}

/** getfattr's file-name escaping: backslash, control characters and non-ASCII bytes as \ooo. */
export function escapeName(p: string): string {
  let out = '';
  for (const b of Buffer.from(p)) out += b === 0x5c || b < 0x21 || b > 0x7e || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  return out;
}

/** Remove `p` (any type, recursively). */
async function remove(host: string): Promise<void> {
  await rm(host, { recursive: true, force: true });
}

/** Apply one layer stream onto `root`. */
export async function applyLayerTo(root: string, src: AsyncIterable<Buffer>, name: string, signal?: AbortSignal): Promise<ApplyResult> {
  const res = new RootResolver(root);
  const seen = new Set<string>(); // paths this layer created (an opaque marker must not hide them)
  const dirTimes: Array<[string, number]> = [];
  const xattrs: Array<{ host: string; xattrs: Record<string, Buffer> }> = [];
  const result: ApplyResult = { entries: 0, skippedSpecial: 0, chownFailed: 0 };
  for await (const e of readLayer(src, { name, signal })) {
    const base = baseName(e.path);
    if (base.startsWith(WH)) {
      res.reset();
      const dir = parentPath(e.path);
      const hostDir = await res.path(dir, false).catch(() => null);
      if (hostDir === null) continue;
      if (base === OPAQUE) {
        for (const child of await readdir(hostDir).catch(() => [] as string[])) {
          if (!seen.has(joinPath(dir, child))) await remove(join(hostDir, child));
        }
      } else if (!base.startsWith(`${WH}${WH}`)) {
        await remove(join(hostDir, base.slice(WH.length)));
      }
      res.reset();
      continue;
    }
    result.entries++;
    if (e.type === 'char' || e.type === 'block' || e.type === 'fifo') {
      result.skippedSpecial++;
      e.content?.resume();
      continue;
    }
    seen.add(e.path);
    for (const a of ancestors(e.path)) seen.add(a);
    const host = await res.path(e.path);
    const old = await lstat(host).catch(() => null);
    if (e.type === 'directory') {
      if (old && !old.isDirectory()) {
        await remove(host);
        res.reset();
      }
      if (!old || !old.isDirectory()) await mkdir(host, { mode: 0o700 });
    } else {
      if (old) {
        await remove(host);
        if (old.isDirectory() || old.isSymbolicLink()) res.reset();
      }
      await create(e, host, res, signal);
    }
    try {
      await lchown(host, e.uid, e.gid);
    } catch {
      result.chownFailed++;
    }
    if (e.type !== 'symlink') await chmod(host, e.mode & 0o7777);
    if (e.xattrs && Object.keys(e.xattrs).length > 0 && e.type !== 'symlink') xattrs.push({ host, xattrs: e.xattrs });
    if (e.type === 'directory') dirTimes.push([host, e.mtime]);
    else if (e.type === 'symlink') await lutimes(host, e.mtime, e.mtime);
    else await utimes(host, e.mtime, e.mtime);
  }
  await setXattrs(xattrs);
  for (let i = dirTimes.length - 1; i >= 0; i--) {
    const [host, t] = dirTimes[i]!;
    await utimes(host, t, t).catch(() => undefined);
  }
  return result;
}

async function create(e: FsEntry, host: string, res: RootResolver, signal?: AbortSignal): Promise<void> {
  if (e.type === 'symlink') {
    await symlink(e.linkname ?? '', host);
  } else if (e.type === 'hardlink') {
    const target = await res.path(e.linkname ?? '', false).catch(() => null);
    const st = target === null ? null : await lstat(target).catch(() => null);
    if (target === null || st === null || st.isDirectory()) {
      throw new CanvosError('ERR_LAYER_CORRUPT', `hardlink ${e.path} points to ${e.linkname ?? ''}, which is not in the image`);
    }
    await link(target, host);
  } else {
    const out = createWriteStream(host, { flags: 'wx', mode: 0o600 });
    if (e.content) await pipeline(e.content, out, signal ? { signal } : {});
    else await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
