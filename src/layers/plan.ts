/**
 * Turns a LayerSpec into the exact, ordered list of tar entries to write: normalised paths, defaults applied, mtimes
 * clamped, later duplicates winning, implied parent directories added, hardlink sets re-rooted on their
 * byte-order-smallest path (so a link never precedes its target in the sorted archive), and sorted by path bytes.
 * Streamed sources (URLs, other images' entries) are spooled to files under `spoolDir`; nothing large stays in memory.
 */
import { createWriteStream } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../tar/entry.js';
import { downloadVerified } from './download.js';
import type { HttpOptions } from '../http/dispatcher.js';
import { ancestors, baseName, comparePaths, joinPath, normalizeLayerPath, parentPath } from './path.js';
import type { EntryMeta, FileSpec, LayerSpec } from './spec.js';
import type { PlannedEntry } from '../tar/header.js';
import { walkTree } from './tree.js';
import { throwIfAborted } from '../util/abort.js';

/** @internal Options of planLayer. */
export interface PlanOptions {
  sourceDateEpoch: number;
  spoolDir: string;
  impliedParents: boolean;
  parentMeta?: ((path: string) => EntryMeta | undefined) | undefined;
  download?: HttpOptions | undefined;
  signal?: AbortSignal | undefined;
}

function specPath(p: string, what: string): string {
  const n = normalizeLayerPath(p);
  if (n === null) {
    throw new CanvosError('ERR_CONFIG', `layer spec ${what} path ${JSON.stringify(p)} has a '..' segment`, {
      hint: 'use absolute image paths such as /etc/kairos/branding/x',
    });
  }
  return n;
}

/** Resolve a spec into sorted entries ready for the tar writer. */
export async function planLayer(spec: LayerSpec, opts: PlanOptions): Promise<PlannedEntry[]> {
  const epoch = opts.sourceDateEpoch;
  const clamp = (t: number | undefined): number => Math.max(0, Math.min(Math.floor(t ?? epoch), epoch));
  const map = new Map<string, PlannedEntry>();
  let spoolN = 0;
  const spoolName = (): string => join(opts.spoolDir, `s${spoolN++}`);
  const put = (e: PlannedEntry): void => {
    map.delete(e.path); // re-insert so iteration order reflects "last wins" (irrelevant after sorting, but tidy)
    map.set(e.path, e);
  };
  const withMeta = (
    path: string,
    type: FsEntry['type'],
    m: EntryMeta,
    defMode: number,
    base?: FsEntry,
  ): PlannedEntry => ({
    path,
    type,
    mode: (m.mode ?? base?.mode ?? defMode) & 0o7777,
    uid: m.uid ?? base?.uid ?? 0,
    gid: m.gid ?? base?.gid ?? 0,
    uname: m.uname ?? base?.uname ?? '',
    gname: m.gname ?? base?.gname ?? '',
    xattrs: m.xattrs ?? base?.xattrs,
    mtime: clamp(m.mtime ?? base?.mtime),
    size: 0,
  });

  for (const s of spec.entries) {
    throwIfAborted(opts.signal);
    switch (s.type) {
      case 'file':
        put(await planFile(s, specPath(s.path, 'file'), withMeta, spoolName, opts));
        break;
      case 'dir':
        put(withMeta(specPath(s.path, 'dir'), 'directory', s, 0o755));
        break;
      case 'symlink':
        put({ ...withMeta(specPath(s.path, 'symlink'), 'symlink', s, 0o777), linkname: s.target });
        break;
      case 'hardlink': {
        const target = specPath(s.target, 'hardlink target');
        put({ ...withMeta(specPath(s.path, 'hardlink'), 'hardlink', {}, 0o644), linkname: target });
        break;
      }
      case 'char':
      case 'block':
        put({ ...withMeta(specPath(s.path, s.type), s.type, s, 0o600), devmajor: s.devmajor, devminor: s.devminor });
        break;
      case 'fifo':
        put(withMeta(specPath(s.path, 'fifo'), 'fifo', s, 0o644));
        break;
      case 'whiteout':
        for (const p of s.paths) {
          const n = specPath(p, 'whiteout');
          if (n === '')
            throw new CanvosError('ERR_CONFIG', 'layer spec whiteout of the root directory', {
              hint: 'use an opaque entry instead',
            });
          put(withMeta(joinPath(parentPath(n), `.wh.${baseName(n)}`), 'file', {}, 0o644));
        }
        break;
      case 'opaque':
        put(withMeta(joinPath(specPath(s.path, 'opaque'), '.wh..wh..opq'), 'file', {}, 0o644));
        break;
      case 'tree': {
        const dest = specPath(s.path, 'tree');
        for await (const e of walkTree(s.host, dest, s, opts.signal)) put({ ...e, mtime: clamp(e.mtime) });
        break;
      }
      case 'entries':
        for await (const e of s.source) {
          throwIfAborted(opts.signal);
          const mapped = mapEntryPath(e.path, s.map);
          if (mapped === null) {
            e.content?.resume();
            continue;
          }
          const { content: _c, ...fields } = e;
          const p: PlannedEntry = { ...fields, path: mapped, mtime: clamp(e.mtime) };
          if (e.type === 'hardlink') {
            const t = mapEntryPath(e.linkname ?? '', s.map);
            if (t === null) {
              throw new CanvosError(
                'ERR_CONFIG',
                `entries source: hardlink ${e.path} points to ${e.linkname}, which map() dropped`,
                {
                  hint: 'keep the hardlink target in map(), or drop the link too',
                },
              );
            }
            p.linkname = t;
          } else if (e.type === 'file') {
            Object.assign(p, await spool(e, spoolName()));
          }
          put(p);
        }
        break;
    }
  }
  map.delete(''); // the root directory is never written: it belongs to whatever the layer is applied on
  if (opts.impliedParents) addParents(map, (p) => withMeta(p, 'directory', opts.parentMeta?.(p) ?? {}, 0o755));
  rootHardlinks(map);
  return [...map.values()].sort((a, b) => comparePaths(sortKey(a.path), sortKey(b.path)));
}

/**
 * Byte order, except that whiteouts sort before their siblings: image-spec layer.md asks that whiteouts precede
 * sibling entries, so sequential unpackers delete `x` before a same-layer `x` (e.g. `-x` < `.wh.-x`) is recreated.
 */
function sortKey(p: string): string {
  const b = baseName(p);
  return b.startsWith('.wh.') ? `${p.slice(0, p.length - b.length)}\u0000${b}` : p;
}

function mapEntryPath(p: string, map: ((p: string) => string | null) | undefined): string | null {
  const m = map ? map(p) : p;
  if (m === null) return null;
  const n = normalizeLayerPath(m);
  if (n === null) throw new CanvosError('ERR_CONFIG', `entries source: map() turned ${p} into ${m}, which has '..'`);
  return n;
}

type WithMeta = (path: string, type: FsEntry['type'], m: EntryMeta, defMode: number, base?: FsEntry) => PlannedEntry;

async function planFile(
  s: FileSpec,
  path: string,
  withMeta: WithMeta,
  spoolName: () => string,
  opts: Pick<PlanOptions, 'download' | 'signal'>,
): Promise<PlannedEntry> {
  const signal = opts.signal;
  const src = s.source;
  if ('inline' in src) {
    const buf = typeof src.inline === 'string' ? Buffer.from(src.inline) : src.inline;
    return { ...withMeta(path, 'file', s, 0o644), size: buf.length, data: { buf } };
  }
  if ('host' in src) {
    const st = await stat(src.host).catch((e: unknown) => {
      throw new CanvosError('ERR_CONFIG', `layer spec file ${s.path}: cannot read host file ${src.host}`, {
        cause: e,
        hint: 'check the path',
      });
    });
    if (!st.isFile())
      throw new CanvosError('ERR_CONFIG', `layer spec file ${s.path}: host path ${src.host} is not a regular file`, {
        hint: 'use a tree entry for directories',
      });
    return { ...withMeta(path, 'file', s, st.mode & 0o7777), size: st.size, data: { file: src.host } };
  }
  if ('url' in src) {
    const file = spoolName();
    const size = await downloadVerified(src.url, src.sha256, file, { ...opts.download, signal });
    return { ...withMeta(path, 'file', s, 0o644), size, data: { file } };
  }
  const e = src.entry;
  if (e.type !== 'file')
    throw new CanvosError('ERR_CONFIG', `layer spec file ${s.path}: source entry ${e.path} is a ${e.type}, not a file`);
  const file = spoolName();
  return { ...withMeta(path, 'file', s, 0o644, e), ...(await spool(e, file)) };
}

async function spool(e: FsEntry, file: string): Promise<{ size: number; data: { file: string } }> {
  if (!e.content) return { size: 0, data: { file: await emptyFile(file) } };
  let size = 0;
  await pipeline(
    e.content,
    async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        size += c.length;
        yield c;
      }
    },
    createWriteStream(file),
  );
  return { size, data: { file } };
}

async function emptyFile(file: string): Promise<string> {
  await writeFile(file, '');
  return file;
}

function addParents(map: Map<string, PlannedEntry>, parent: (p: string) => PlannedEntry): void {
  for (const p of [...map.keys()]) {
    for (const a of ancestors(p)) {
      const have = map.get(a);
      if (!have) map.set(a, parent(a));
      else if (have.type !== 'directory') {
        throw new CanvosError('ERR_CONFIG', `layer spec: ${a} is a ${have.type} but ${p} is inside it`, {
          hint: 'remove one of the two entries or make the parent a directory',
        });
      }
    }
  }
}

/**
 * Hardlinks must follow their target in the archive. For each link set, the byte-order-smallest member becomes the
 * regular file (with the original target's metadata and data) and all others link to it — same filesystem result.
 */
function rootHardlinks(map: Map<string, PlannedEntry>): void {
  const sets = new Map<string, string[]>(); // file path -> link paths
  for (const e of map.values()) {
    if (e.type !== 'hardlink') continue;
    let t = e.linkname ?? '';
    const seen = new Set<string>([e.path]);
    let target = map.get(t);
    while (target?.type === 'hardlink' && !seen.has(t)) {
      seen.add(t);
      t = target.linkname ?? '';
      target = map.get(t);
    }
    if (!target || target.type !== 'file') {
      throw new CanvosError(
        'ERR_CONFIG',
        `layer spec: hardlink ${e.path} points to ${e.linkname}, which is not a regular file in this layer`,
        {
          hint: 'hardlink targets must be regular files added by the same layer',
        },
      );
    }
    const list = sets.get(t) ?? [];
    list.push(e.path);
    sets.set(t, list);
  }
  for (const [t, links] of sets) {
    const file = map.get(t);
    const holder = [t, ...links].sort(comparePaths)[0];
    if (!file || holder === undefined) continue;
    const { data, size, ...meta } = file;
    for (const p of [t, ...links]) {
      if (p === holder) map.set(p, { ...meta, path: p, type: 'file', size, data });
      else map.set(p, { ...meta, path: p, type: 'hardlink', linkname: holder, size: 0 });
    }
  }
}
