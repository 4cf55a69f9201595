/**
 * One streaming pass over the base image's merged filesystem that collects everything the provider layers need
 * from it: the small files CanvOS edits (kairos-release, bootargs.cfg, the CA bundle), directory metadata (so
 * appended layers don't reset /etc or /root to 0755 root:root), the names to whiteout (/etc/ssh/ssh_host_*), and
 * the systemd version (libsystemd-shared-<N>.so), which decides whether k8s is bundled (CanvOS CHECK_SYSTEMD_VERSION).
 */
import type { EntryMeta } from '../layers/spec.js';
import type { FsEntry } from '../tar/entry.js';
import { extractFile } from '../layers/extract.js';
import { mergeLayers, type LayerOpener } from '../layers/merge.js';
import { resolveLinkTarget } from '../layers/path.js';

/** A file read from the base image. */
export interface BaseFile {
  content: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/** What the build knows about the base image's filesystem. */
export interface BaseScan {
  /** Requested files that exist (symlinks followed). Keyed by normalised path (no leading `/`). */
  files: Map<string, BaseFile>;
  /** Metadata of every directory, keyed by normalised path. */
  dirs: Map<string, EntryMeta>;
  /** Every symlink (path → target as stored), to place appended entries the way a COPY into the rootfs would. */
  links: Map<string, string>;
  /** Child names of the requested directories (any type). */
  children: Map<string, string[]>;
  /** systemd major version found in the base, if any. */
  systemdVersion: number | undefined;
  /** Number of entries seen. */
  entries: number;
}

const SYSTEMD_SHARED = /(?:^|\/)libsystemd-shared-(\d+)(?:[.~-][^/]*)?\.so(?:\.\d+)*$/;
const norm = (p: string): string => p.replace(/^\/+/, '').replace(/\/+$/, '');

/** Scan `openers` (bottom layer first) once; `files` and `dirs` list the image paths of interest. */
export async function scanBase(
  openers: readonly LayerOpener[],
  want: { files: readonly string[]; listDirs: readonly string[] },
  opts: { signal?: AbortSignal | undefined; maxFileBytes?: number | undefined } = {},
): Promise<BaseScan> {
  const wantFiles = new Set(want.files.map(norm));
  const wantDirs = new Set(want.listDirs.map(norm));
  const max = opts.maxFileBytes ?? 16 << 20;
  const scan: BaseScan = {
    files: new Map(),
    dirs: new Map(),
    links: new Map(),
    children: new Map(),
    systemdVersion: undefined,
    entries: 0,
  };
  const indirect: string[] = []; // wanted files that are links: resolved with extractFile afterwards
  for (const d of wantDirs) scan.children.set(d, []);
  for await (const e of mergeLayers(openers, { signal: opts.signal })) {
    scan.entries++;
    if (e.type === 'directory') scan.dirs.set(e.path, meta(e));
    else if (e.type === 'symlink') scan.links.set(e.path, e.linkname ?? '');
    const slash = e.path.lastIndexOf('/');
    const parent = slash < 0 ? '' : e.path.slice(0, slash);
    if (wantDirs.has(parent)) scan.children.get(parent)?.push(e.path.slice(slash + 1));
    const m = SYSTEMD_SHARED.exec(e.path);
    if (m && (e.type === 'file' || e.type === 'symlink' || e.type === 'hardlink')) {
      scan.systemdVersion = Math.max(scan.systemdVersion ?? 0, Number(m[1]));
    }
    if (wantFiles.has(e.path)) {
      if (e.type === 'file' && e.size <= max) {
        const parts: Buffer[] = [];
        for await (const c of e.content ?? []) parts.push(c as Buffer);
        scan.files.set(e.path, { content: Buffer.concat(parts), mode: e.mode, uid: e.uid, gid: e.gid });
        continue;
      }
      if (e.type === 'symlink' || e.type === 'hardlink') indirect.push(e.path);
    }
    e.content?.resume();
  }
  for (const p of indirect) {
    const buf = await extractFile(openers, p, { signal: opts.signal, maxBytes: max });
    if (buf) scan.files.set(p, { content: buf, mode: 0o644, uid: 0, gid: 0 });
  }
  for (const list of scan.children.values()) list.sort();
  return scan;
}

function meta(e: FsEntry): EntryMeta {
  return { mode: e.mode, uid: e.uid, gid: e.gid, uname: e.uname ?? '', gname: e.gname ?? '', mtime: e.mtime };
}

/** `*` glob match of one path segment. */
export function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*')}$`,
  );
  return re.test(name);
}

/**
 * Where an appended entry at `path` really lands in the base rootfs: parent components are resolved through the
 * base's symlinks (e.g. `lib/systemd/x` → `usr/lib/systemd/x` on usr-merged bases), like Docker/BuildKit COPY
 * does; the last component only when it is a symlink to a directory. Returns `''` for the root.
 */
export function resolveInBase(scan: Pick<BaseScan, 'links' | 'dirs'>, path: string): string {
  let parts = path === '' ? [] : path.split('/');
  const cur: string[] = [];
  for (let hops = 0; parts.length > 0;) {
    const seg = parts.shift() as string;
    const here = cur.length ? `${cur.join('/')}/${seg}` : seg;
    const link = scan.links.get(here);
    if (link === undefined || hops > 40) {
      cur.push(seg);
      continue;
    }
    const target = resolveLinkTarget(cur.join('/'), link);
    if (parts.length === 0 && !scan.dirs.has(target)) {
      cur.push(seg); // a symlink to a file (or dangling) is replaced, not followed
      continue;
    }
    hops++;
    parts = [...(target === '' ? [] : target.split('/')), ...parts];
    cur.length = 0;
  }
  return cur.join('/');
}

/**
 * Bring `scan` up to date with one more layer on top (e.g. a Dockerfile RUN layer): whiteouts and opaque directories
 * remove what they hide (applied first, as they only hide lower layers), then the layer's entries update the
 * directory metadata, symlinks, the child names of listed directories (so a RUN that creates
 * /etc/ssh/ssh_host_* keys gets them whited out like the base's), the systemd version, and the `watch` files
 * (re-read when the layer replaces them, forgotten when it removes them or puts something else there).
 */
export async function updateScan(
  scan: BaseScan,
  layer: AsyncIterable<FsEntry>,
  watch: ReadonlySet<string>,
): Promise<void> {
  const added: { e: Omit<FsEntry, 'content'>; content?: Buffer }[] = [];
  const removed: string[] = []; // paths removed with their subtrees
  const opaque: string[] = []; // directories whose lower content is hidden
  for await (const e of layer) {
    const slash = e.path.lastIndexOf('/');
    const dir = slash < 0 ? '' : e.path.slice(0, slash);
    const name = e.path.slice(slash + 1);
    if (name === '.wh..wh..opq') opaque.push(dir);
    else if (name.startsWith('.wh.')) removed.push(`${dir ? `${dir}/` : ''}${name.slice(4)}`);
    else if (watch.has(e.path) && e.type === 'file' && e.content) {
      const parts: Buffer[] = [];
      for await (const c of e.content) parts.push(c as Buffer);
      added.push({ e, content: Buffer.concat(parts) });
      continue;
    } else added.push({ e });
    e.content?.resume();
  }
  const under = (p: string, root: string): boolean => root === '' || p.startsWith(`${root}/`);
  const drop = (root: string, self: boolean): void => {
    for (const m of [scan.files, scan.dirs, scan.links] as Map<string, unknown>[]) {
      for (const k of [...m.keys()]) if ((self && k === root) || under(k, root)) m.delete(k);
    }
    for (const [k, list] of scan.children) {
      if ((self && k === root) || under(k, root) || (!self && k === root)) list.length = 0;
    }
    if (self) {
      const slash = root.lastIndexOf('/');
      const list = scan.children.get(slash < 0 ? '' : root.slice(0, slash));
      const i = list?.indexOf(root.slice(slash + 1)) ?? -1;
      if (list && i >= 0) list.splice(i, 1);
    }
  };
  for (const d of opaque) drop(d, false);
  for (const p of removed) drop(p, true);
  for (const { e, content } of added) {
    if (e.type === 'directory') {
      scan.dirs.set(e.path, meta(e));
      scan.links.delete(e.path);
    } else {
      if (scan.dirs.has(e.path)) drop(e.path, true); // a non-directory replaces a directory and its subtree
      if (e.type === 'symlink') scan.links.set(e.path, e.linkname ?? '');
      else scan.links.delete(e.path);
    }
    if (watch.has(e.path)) {
      if (content) scan.files.set(e.path, { content, mode: e.mode, uid: e.uid, gid: e.gid });
      else scan.files.delete(e.path);
    }
    const slash = e.path.lastIndexOf('/');
    const list = scan.children.get(slash < 0 ? '' : e.path.slice(0, slash));
    const name = e.path.slice(slash + 1);
    if (list && !list.includes(name)) {
      list.push(name);
      list.sort();
    }
    const m = SYSTEMD_SHARED.exec(e.path);
    if (m && e.type !== 'directory') scan.systemdVersion = Math.max(scan.systemdVersion ?? 0, Number(m[1]));
  }
}
