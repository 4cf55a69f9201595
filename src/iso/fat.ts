/**
 * writeFatImage: a deterministic FAT12/16/32 image (the ISO's EFI system partition `uefi.img`) written in pure
 * TypeScript, without mkfs.vfat/mcopy. Size defaults to the content rounded up to the next 4 MiB like AuroraBoot;
 * files are laid out contiguously in sorted order, every timestamp and the volume id come from SOURCE_DATE_EPOCH,
 * so the same inputs give a byte-identical image. Written to `<out>.partial`, then renamed.
 */
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import {
  ATTR_ARCHIVE,
  ATTR_DIR,
  ATTR_VOLUME,
  checkLongName,
  dosDateTime,
  lfnEntries,
  shortEntry,
  shortNameFor,
} from './fat-dirent.js';
import {
  SECTOR,
  bootSectors,
  clusterOffset,
  encodeFat,
  fatGeometry,
  labelBytes,
  type FatGeometry,
  type FatType,
} from './fat-geometry.js';
import { throwIfAborted } from '../util/abort.js';

/** A file to put in the image: `source` is a host file path or the content itself. */
export interface FatFileSpec {
  /** Path inside the image, `/`-separated, e.g. `EFI/BOOT/BOOTX64.EFI`. */
  path: string;
  source: string | Buffer;
}

/** What goes into the image. Parent directories of files are created implicitly. */
export interface FatImageSpec {
  files: readonly FatFileSpec[];
  /** Extra (possibly empty) directories. Default: none. */
  dirs?: readonly string[] | undefined;
}

/** Progress of {@link writeFatImage}, in content bytes copied. */
export interface FatProgress {
  phase: 'fat';
  transferred: number;
  total: number;
  percent: number;
}

/** Options of {@link writeFatImage}. */
export interface WriteFatOptions {
  /** Volume label (≤ 11 characters, stored upper-case). Default: 'EFI_LIVE'. */
  label?: string | undefined;
  /** Exact image size in bytes. Default: content (+4 KiB per directory) rounded up to the next `roundTo`. */
  sizeBytes?: number | undefined;
  /** Size granularity when `sizeBytes` is unset. Default: 4 MiB (AuroraBoot). */
  roundTo?: number | undefined;
  /** Force a FAT type. Default: FAT32 from 512 MiB, else FAT16 (FAT12 for tiny images). */
  fatType?: FatType | undefined;
  /** Timestamp of every entry. Default: env SOURCE_DATE_EPOCH, else 0 (stored as 1980-01-01). */
  sourceDateEpoch?: number | undefined;
  /** Volume serial number. Default: derived from `sourceDateEpoch`. */
  volumeId?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: FatProgress) => void) | undefined;
}

/** Result of {@link writeFatImage}. */
export interface FatImageResult {
  path: string;
  bytes: number;
  fatType: FatType;
  clusterSize: number;
}

interface Node {
  name: string;
  dir: boolean;
  children: Map<string, Node>;
  source?: string | Buffer;
  size: number;
  cluster: number;
  clusterCount: number;
  /** Directory entries in on-disk order: per child, its LFN chain + short entry (filled after allocation). */
  names: Array<{ node: Node; short: Buffer; lfn: string | undefined }>;
}

const MiB = 1024 * 1024;

function newNode(name: string, dir: boolean): Node {
  return { name, dir, children: new Map(), size: 0, cluster: 0, clusterCount: 0, names: [] };
}

function splitPath(p: string): string[] {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.includes('..')) {
    throw new CanvosError('ERR_ISO', `invalid path ${JSON.stringify(p)} for the FAT image`, {
      hint: 'use a relative path such as EFI/BOOT/BOOTX64.EFI',
    });
  }
  for (const s of parts) checkLongName(s);
  return parts;
}

function ensureDir(root: Node, parts: readonly string[], original: string): Node {
  let cur = root;
  for (const part of parts) {
    const key = part.toUpperCase(); // FAT names are case-insensitive
    let next = cur.children.get(key);
    if (!next) cur.children.set(key, (next = newNode(part, true)));
    if (!next.dir) throw new CanvosError('ERR_ISO', `FAT image path ${JSON.stringify(original)} passes through a file`);
    cur = next;
  }
  return cur;
}

async function buildTree(spec: FatImageSpec): Promise<{ root: Node; content: number; dirs: number }> {
  const root = newNode('', true);
  for (const d of spec.dirs ?? []) ensureDir(root, splitPath(d), d);
  let content = 0;
  for (const f of spec.files) {
    const parts = splitPath(f.path);
    const parent = ensureDir(root, parts.slice(0, -1), f.path);
    const name = parts[parts.length - 1] ?? '';
    if (parent.children.has(name.toUpperCase())) {
      throw new CanvosError('ERR_ISO', `duplicate path ${JSON.stringify(f.path)} in the FAT image`);
    }
    const node = newNode(name, false);
    node.source = f.source;
    node.size = typeof f.source === 'string' ? (await stat(f.source)).size : f.source.length;
    if (node.size > 0xffffffff) throw new CanvosError('ERR_ISO', `${f.path} is larger than 4 GiB, too big for FAT`);
    parent.children.set(name.toUpperCase(), node);
    content += node.size;
  }
  let dirs = 0;
  const count = (n: Node): void => {
    if (!n.dir) return;
    dirs++;
    for (const c of n.children.values()) count(c);
  };
  count(root);
  return { root, content, dirs };
}

/** Assigns short names; returns the number of 32-byte entries of directory `n`. */
function nameEntries(n: Node, isRoot: boolean): number {
  const taken = new Set<string>(['.          ', '..         ']);
  let entries = isRoot ? 1 : 2; // volume label, or "." and ".."
  const sorted = [...n.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const c of sorted) {
    const { short, needsLfn } = shortNameFor(c.name, taken);
    taken.add(short);
    n.names.push({ node: c, short: Buffer.from(short, 'latin1'), lfn: needsLfn ? c.name : undefined });
    entries += 1 + (needsLfn ? Math.ceil((c.name.length + 1) / 13) : 0);
  }
  return entries;
}

interface Plan {
  g: FatGeometry;
  next: Map<number, number>;
  used: number;
  dirOrder: Node[];
  fileOrder: Node[];
}

function plan(root: Node, g: FatGeometry): Plan | undefined {
  const clusterBytes = g.sectorsPerCluster * SECTOR;
  const next = new Map<number, number>();
  let free = 2;
  const dirOrder: Node[] = [];
  const fileOrder: Node[] = [];
  const alloc = (n: Node, bytes: number): void => {
    n.clusterCount = Math.ceil(bytes / clusterBytes);
    n.cluster = n.clusterCount === 0 ? 0 : free;
    for (let i = 0; i < n.clusterCount; i++) next.set(free + i, i === n.clusterCount - 1 ? 0 : free + i + 1);
    free += n.clusterCount;
  };
  const walk = (n: Node, isRoot: boolean): void => {
    n.names = [];
    const entries = nameEntries(n, isRoot);
    dirOrder.push(n);
    if (isRoot && g.type !== 32) {
      if (entries > g.rootEntries)
        throw new CanvosError('ERR_ISO', `too many files in the FAT root directory (${entries})`);
      n.cluster = 0;
    } else alloc(n, Math.max(1, entries) * 32);
    for (const { node } of n.names) {
      if (node.dir) walk(node, false);
      else {
        alloc(node, node.size);
        fileOrder.push(node);
      }
    }
  };
  walk(root, true);
  const used = free - 2;
  return used <= g.clusters ? { g, next, used, dirOrder, fileOrder } : undefined;
}

function dirBytes(n: Node, parent: Node | undefined, label: string, when: { date: number; time: number }): Buffer {
  const out: Buffer[] = [];
  if (!parent) out.push(shortEntry(labelBytes(label), ATTR_VOLUME, 0, 0, when));
  else {
    out.push(shortEntry('.          ', ATTR_DIR, n.cluster, 0, when));
    // ".." of a first-level directory points at cluster 0, whatever the FAT type.
    out.push(shortEntry('..         ', ATTR_DIR, parent.name === '' ? 0 : parent.cluster, 0, when));
  }
  for (const { node, short, lfn } of n.names) {
    if (lfn !== undefined) out.push(...lfnEntries(lfn, short));
    out.push(shortEntry(short, node.dir ? ATTR_DIR : ATTR_ARCHIVE, node.cluster, node.dir ? 0 : node.size, when));
  }
  return Buffer.concat(out);
}

/** Writes a FAT image holding `spec` to `outPath`. */
export async function writeFatImage(
  outPath: string,
  spec: FatImageSpec,
  opts: WriteFatOptions = {},
): Promise<FatImageResult> {
  const label = opts.label ?? 'EFI_LIVE';
  if (!/^[A-Za-z0-9 _\-!#$%&'()@^`{}~]{1,11}$/.test(label)) {
    throw new CanvosError('ERR_ISO', `invalid FAT volume label ${JSON.stringify(label)}`, {
      hint: 'use ≤ 11 letters, digits or _-',
    });
  }
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv();
  const when = dosDateTime(epoch);
  const volumeId = opts.volumeId ?? (epoch >>> 0) ^ 0x43564f53; // 'CVOS'
  const { root, content, dirs } = await buildTree(spec);
  const step = opts.roundTo ?? 4 * MiB;
  let size = opts.sizeBytes ?? (Math.floor((content + dirs * 4096) / step) + 1) * step;
  let p: Plan | undefined;
  for (;;) {
    p = plan(root, fatGeometry(size, opts.fatType));
    if (p) break;
    if (opts.sizeBytes !== undefined) {
      throw new CanvosError('ERR_ISO', `${content} bytes of files do not fit a FAT image of ${size} bytes`, {
        hint: 'leave sizeBytes unset to size the image from its content',
      });
    }
    size += step;
  }
  const { g } = p;
  const tmp = `${outPath}.partial`;
  const fh = await open(tmp, 'w');
  try {
    await fh.truncate(size);
    const put = async (buf: Buffer, pos: number): Promise<void> => {
      await fh.write(buf, 0, buf.length, pos);
    };
    const { boot, fsInfo } = bootSectors(g, label, volumeId, g.clusters - p.used, p.used + 2);
    await put(boot, 0);
    if (fsInfo) {
      await put(fsInfo, SECTOR);
      await put(boot, 6 * SECTOR);
      await put(fsInfo, 7 * SECTOR);
    }
    const fat = encodeFat(g, p.next);
    await put(fat, g.reservedSectors * SECTOR);
    await put(fat, (g.reservedSectors + g.fatSectors) * SECTOR);
    const parents = new Map<Node, Node>();
    for (const d of p.dirOrder) for (const { node } of d.names) parents.set(node, d);
    for (const d of p.dirOrder) {
      const bytes = dirBytes(d, parents.get(d), label, when);
      const pos =
        d === root && g.type !== 32 ? (g.reservedSectors + 2 * g.fatSectors) * SECTOR : clusterOffset(g, d.cluster);
      await put(bytes, pos);
    }
    let transferred = 0;
    for (const f of p.fileOrder) {
      throwIfAborted(opts.signal);
      if (f.size === 0) continue;
      let pos = clusterOffset(g, f.cluster);
      const end = pos + f.size;
      if (Buffer.isBuffer(f.source)) await put(f.source, pos);
      else {
        for await (const chunk of createReadStream(f.source ?? '', {
          signal: opts.signal,
          end: f.size - 1,
        }) as AsyncIterable<Buffer>) {
          await put(chunk, pos);
          pos += chunk.length;
          transferred += chunk.length;
          opts.onProgress?.({ phase: 'fat', transferred, total: content, percent: pct(transferred, content) });
        }
        if (pos !== end)
          throw new CanvosError('ERR_ISO', `${String(f.source)} changed size while writing the FAT image`);
        continue;
      }
      transferred += f.size;
      opts.onProgress?.({ phase: 'fat', transferred, total: content, percent: pct(transferred, content) });
    }
    await fh.close();
    await rename(tmp, outPath);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throwIfAborted(opts.signal);
    throw e;
  }
  return { path: outPath, bytes: size, fatType: g.type, clusterSize: g.sectorsPerCluster * SECTOR };
}

function pct(a: number, b: number): number {
  return b === 0 ? 100 : Math.floor((a / b) * 100);
}
