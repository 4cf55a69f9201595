/**
 * Applies one image layer (an uncompressed or compressed tar stream) onto a root directory on disk, inside the
 * executor's namespace (so owners are real): OCI whiteouts and opaque directories, owners, modes, mtimes, xattrs
 * (set after chown, so security.capability survives), symlinks and hardlinks. Paths are resolved chroot-style: a
 * symlink in the image never leads outside `root`. Device nodes and fifos cannot be created in a user namespace and
 * are skipped (counted); /dev is provided at run time.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../tar/entry.js';
import { endStream } from '../fs-util.js';
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
    .map(
      ({ host, xattrs }) =>
        `# file: ${escapeName(host)}\n${Object.entries(xattrs)
          .map(([k, v]) => `${k}=0x${v.toString('hex')}`)
          .join('\n')}\n`,
    )
    .join('\n');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('setfattr', ['-h', '--restore=-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => {
      reject(new CanvosError('ERR_EXEC_UNAVAILABLE', `setfattr: ${e.message}`, { hint: 'apt-get install attr' }));
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else {
        const last = err.trim().split('\n').pop() ?? '';
        reject(new CanvosError('ERR_LAYER_CORRUPT', `setting extended attributes failed: ${last}`));
      }
    });
    child.stdin.end(dump);
  });
}

/** getfattr's file-name escaping: backslash, control characters and non-ASCII bytes as \ooo. */
export function escapeName(p: string): string {
  let out = '';
  for (const b of Buffer.from(p))
    out +=
      b === 0x5c || b < 0x21 || b > 0x7e || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  return out;
}

/** Remove `p` (any type, recursively). */
async function remove(host: string): Promise<void> {
  await rm(host, { recursive: true, force: true });
}

/**
 * Bounded background file work keyed by host path: file writes and metadata calls overlap (the extraction is bound
 * by syscall round trips), later work on the same path waits for earlier work, and removals flush everything first.
 */
class Background {
  private readonly byPath = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<void>>();
  private error: Error | undefined;

  async settle(host: string): Promise<void> {
    await this.byPath.get(host);
  }

  async add(host: string, job: () => Promise<void>): Promise<void> {
    if (this.error !== undefined) throw this.error;
    while (this.inflight.size >= 32) await Promise.race(this.inflight);
    const run = (this.byPath.get(host) ?? Promise.resolve()).then(job).catch((e: unknown) => {
      this.error ??= e instanceof Error ? e : new Error(String(e));
    });
    const tracked: Promise<void> = run.finally(() => {
      this.inflight.delete(tracked);
      if (this.byPath.get(host) === tracked) this.byPath.delete(host);
    });
    this.inflight.add(tracked);
    this.byPath.set(host, tracked);
  }

  async flush(): Promise<void> {
    await Promise.all(this.inflight);
    if (this.error !== undefined) throw this.error;
  }
}

const SMALL = 1 << 20;

async function readAll(e: FsEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of e.content ?? []) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Apply one layer stream onto `root`. `fresh`: `root` was empty before this layer, so a path not yet written by
 * this layer cannot exist (saves one lstat per entry for a base layer).
 */
export async function applyLayerTo(
  root: string,
  src: AsyncIterable<Buffer>,
  name: string,
  signal?: AbortSignal,
  fresh = false,
): Promise<ApplyResult> {
  const res = new RootResolver(root);
  const seen = new Set<string>(); // paths this layer created (an opaque marker must not hide them)
  const dirTimes: Array<[string, number]> = [];
  const xattrs: Array<{ host: string; xattrs: Record<string, Buffer> }> = [];
  const result: ApplyResult = { entries: 0, skippedSpecial: 0, chownFailed: 0 };
  const bg = new Background();
  const meta = async (e: FsEntry, host: string): Promise<void> => {
    try {
      await lchown(host, e.uid, e.gid);
    } catch {
      result.chownFailed++;
    }
    if (e.type === 'symlink') await lutimes(host, e.mtime, e.mtime);
    else {
      await chmod(host, e.mode & 0o7777);
      if (e.type !== 'directory') await utimes(host, e.mtime, e.mtime);
    }
  };
  for await (const e of readLayer(src, { name, signal })) {
    const base = baseName(e.path);
    if (base.startsWith(WH)) {
      await bg.flush();
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
    const mayExist = !fresh || e.path === '' || seen.has(e.path);
    seen.add(e.path);
    for (const a of ancestors(e.path)) seen.add(a);
    const host = await res.path(e.path);
    await bg.settle(host);
    const old = mayExist ? await lstat(host).catch(() => null) : null;
    if (old && !(old.isDirectory() && e.type === 'directory')) {
      await bg.flush();
      await remove(host);
      if (old.isDirectory() || old.isSymbolicLink()) res.reset();
    }
    if (e.xattrs && Object.keys(e.xattrs).length > 0 && e.type !== 'symlink') xattrs.push({ host, xattrs: e.xattrs });
    if (e.type === 'directory') {
      if (!old || !old.isDirectory()) await mkdir(host, { mode: 0o700 });
      await meta(e, host);
      dirTimes.push([host, e.mtime]);
    } else if (e.type === 'file' && e.size <= SMALL) {
      const buf = await readAll(e);
      await bg.add(host, async () => {
        await writeFile(host, buf, { flag: 'wx', mode: 0o600 });
        await meta(e, host);
      });
    } else {
      if (e.type === 'hardlink') await bg.settle(await res.path(e.linkname ?? '', false).catch(() => ''));
      await create(e, host, res, signal);
      await bg.add(host, () => meta(e, host));
    }
  }
  await bg.flush();
  await setXattrs(xattrs);
  for (const [host, t] of dirTimes.reverse()) await utimes(host, t, t).catch(() => undefined);
  return result;
}

async function create(e: FsEntry, host: string, res: RootResolver, signal?: AbortSignal): Promise<void> {
  if (e.type === 'symlink') {
    await symlink(e.linkname ?? '', host);
  } else if (e.type === 'hardlink') {
    const target = await res.path(e.linkname ?? '', false).catch(() => null);
    const st = target === null ? null : await lstat(target).catch(() => null);
    if (target === null || st === null || st.isDirectory()) {
      throw new CanvosError(
        'ERR_LAYER_CORRUPT',
        `hardlink ${e.path} points to ${e.linkname ?? ''}, which is not in the image`,
      );
    }
    await link(target, host);
  } else {
    const out = createWriteStream(host, { flags: 'wx', mode: 0o600 });
    if (e.content) await pipeline(e.content, out, signal ? { signal } : {});
    else await endStream(out);
  }
}
