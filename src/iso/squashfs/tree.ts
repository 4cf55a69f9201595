/**
 * The in-memory directory tree the squashfs tables are built from. Entries may arrive in any order: missing
 * parents are created as implicit 0755 root:root directories and filled in if their entry shows up later;
 * hardlinks are recorded by path and resolved once every entry has been seen.
 */
import { CanvosError } from '../../errors.js';
import type { FsEntry } from '../../tar/entry.js';
import type { FileData } from './data-writer.js';
import { T_BLKDEV, T_CHRDEV, T_DIR, T_FIFO, T_FILE, T_SYMLINK, encodeRdev } from './format.js';

/** One inode-to-be. Hardlinked paths share the same Node. A class keeps 100k of them compact (fixed shape). */
export class Node {
  type: number;
  mode: number;
  uid = 0;
  gid = 0;
  mtime: number;
  xattrs: Record<string, Buffer> | undefined = undefined;
  /** Directories: children by name. */
  children: Map<string, Node> | undefined;
  target: Buffer | undefined = undefined;
  rdev = 0;
  data: FileData | undefined = undefined;
  nlink = 1;
  /** Inode number (0 = not assigned yet) and inode-table reference (-1 = not written yet). */
  ino = 0;
  ref = -1;

  constructor(type: number, mode: number, mtime: number) {
    this.type = type;
    this.mode = mode;
    this.mtime = mtime;
    this.children = type === T_DIR ? new Map() : undefined;
  }

  /** Copies ownership, permissions, mtime and xattrs from an entry. */
  setMeta(e: FsEntry): void {
    this.mode = e.mode & 0o7777;
    this.uid = e.uid;
    this.gid = e.gid;
    this.mtime = e.mtime;
    this.xattrs = e.xattrs && Object.keys(e.xattrs).length > 0 ? e.xattrs : undefined;
  }
}

const TYPES: Partial<Record<FsEntry['type'], number>> = {
  file: T_FILE,
  directory: T_DIR,
  symlink: T_SYMLINK,
  char: T_CHRDEV,
  block: T_BLKDEV,
  fifo: T_FIFO,
};

function bad(path: string, why: string, hint: string): CanvosError {
  return new CanvosError('ERR_ISO', `squashfs: entry ${JSON.stringify(path)} ${why}`, { hint });
}

/** Splits a producer path into segments, tolerating `./`, leading and trailing slashes. */
export function segments(path: string): string[] {
  const segs = path.split('/').filter((s) => s !== '' && s !== '.');
  for (const s of segs) {
    if (s === '..') throw bad(path, 'contains ..', 'normalise entry paths before writing the squashfs');
    if (Buffer.byteLength(s) > 256)
      throw bad(path, 'has a name longer than 256 bytes', 'squashfs names are at most 256 bytes');
  }
  return segs;
}

export class Tree {
  readonly root: Node;
  private readonly implicitTime: number;
  private readonly hardlinks: Array<[string, string]> = [];

  constructor(implicitTime: number) {
    this.implicitTime = implicitTime;
    this.root = this.dirNode();
  }

  private dirNode(): Node {
    return new Node(T_DIR, 0o755, this.implicitTime);
  }

  /** The directory at `segs`, creating implicit directories on the way. */
  private dir(segs: readonly string[], path: string): Node {
    let d = this.root;
    for (const s of segs) {
      const children = d.children;
      if (!children) throw bad(path, 'lies below a non-directory', 'the stream must not put entries under files');
      let n = children.get(s);
      if (!n) {
        n = this.dirNode();
        children.set(s, n);
      }
      d = n;
    }
    if (!d.children) throw bad(path, 'lies below a non-directory', 'the stream must not put entries under files');
    return d;
  }

  /** Looks a path up without creating anything. */
  lookup(path: string): Node | undefined {
    let d: Node | undefined = this.root;
    for (const s of segments(path)) d = d?.children?.get(s);
    return d;
  }

  /** Adds (or replaces) the object at `e.path`; `data` is the written content of a regular file. */
  add(e: FsEntry, data?: FileData): void {
    const segs = segments(e.path);
    if (e.type === 'hardlink') {
      if (!e.linkname) throw bad(e.path, 'is a hardlink without linkname', 'set linkname to the target path');
      this.hardlinks.push([e.path, e.linkname]);
      return;
    }
    const type = TYPES[e.type];
    if (type === undefined) throw bad(e.path, `has unsupported type ${e.type}`, 'report this entry type');
    const name = segs.pop();
    if (name === undefined) {
      if (type !== T_DIR) throw bad(e.path, 'is the root but not a directory', 'the root entry must be a directory');
      this.root.setMeta(e);
      return;
    }
    const parent = this.dir(segs, e.path);
    const children = parent.children as Map<string, Node>;
    const old = children.get(name);
    if (type === T_DIR && old?.children) {
      old.setMeta(e); // an implicit (or repeated) directory gets its real metadata
      return;
    }
    if (old?.children && old.children.size > 0) {
      throw bad(e.path, 'replaces a non-empty directory', 'the stream must delete the directory contents first');
    }
    const n = new Node(type, 0, 0);
    n.setMeta(e);
    if (type === T_SYMLINK) n.target = Buffer.from(e.linkname ?? '');
    if (type === T_CHRDEV || type === T_BLKDEV) n.rdev = encodeRdev(e.devmajor ?? 0, e.devminor ?? 0);
    n.data = data;
    children.set(name, n);
  }

  /** Attaches recorded hardlinks to their targets (chains allowed); call once after the last entry. */
  resolveHardlinks(): void {
    let todo = this.hardlinks;
    while (todo.length > 0) {
      const later: Array<[string, string]> = [];
      for (const [path, target] of todo) {
        const t = this.lookup(target);
        if (!t) {
          later.push([path, target]);
          continue;
        }
        if (t.children) throw bad(path, `is a hardlink to directory ${target}`, 'directories cannot be hardlinked');
        const segs = segments(path);
        const name = segs.pop();
        if (name === undefined) throw bad(path, 'is a hardlink at the root', 'the root must be a directory');
        const children = this.dir(segs, path).children as Map<string, Node>;
        const old = children.get(name);
        if (old === t) continue;
        if (old?.children && old.children.size > 0) throw bad(path, 'replaces a non-empty directory', 'fix the stream');
        if (old) old.nlink--;
        children.set(name, t);
        t.nlink++;
      }
      if (later.length === todo.length) {
        const [path, target] = later[0] as [string, string];
        throw bad(path, `is a hardlink to missing ${target}`, 'the hardlink target must be part of the stream');
      }
      todo = later;
    }
  }
}
