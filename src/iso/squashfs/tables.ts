/**
 * Builds the inode and directory tables from the tree. Directories are written bottom-up (children's inodes,
 * then the directory's listing, then its inode) so every reference is known when it is written; inode numbers
 * are assigned beforehand in the same order so a directory can name its parent's number.
 */
import type { Compressor } from './compressor.js';
import {
  INVALID_FRAG,
  METADATA_SIZE,
  T_BLKDEV,
  T_CHRDEV,
  T_FIFO,
  T_FILE,
  T_SOCKET,
  T_SYMLINK,
  encodeDevInode,
  encodeDirEntry,
  encodeDirHeader,
  encodeDirInode,
  encodeFileInode,
  encodeIpcInode,
  encodeSymlinkInode,
} from './format.js';
import type { DirIndex, InodeBase } from './format.js';
import { MetadataWriter } from './metadata.js';
import type { Node } from './tree.js';
import type { IdTable, XattrTable } from './xattrs.js';

/** The encoded tables plus what the superblock needs from them. */
export interface InodeTables {
  inodes: Buffer[];
  dirs: Buffer[];
  rootRef: number;
  inodeCount: number;
  files: number;
  dirCount: number;
}

type Child = { name: Buffer; node: Node };

function sortedChildren(d: Node): Child[] {
  const kids: Child[] = [];
  for (const [name, node] of d.children ?? []) kids.push({ name: Buffer.from(name), node });
  return kids.sort((a, b) => Buffer.compare(a.name, b.name)); // squashfs lookup relies on byte order
}

const EMPTY_FILE = { start: 0, size: 0, sparse: 0, fragIndex: INVALID_FRAG, fragOffset: 0, blocks: [] };

/** Writes inode and directory tables for the tree under `root`. */
export function buildTables(root: Node, c: Compressor, ids: IdTable, xattrs: XattrTable): InodeTables {
  const iw = new MetadataWriter(c);
  const dw = new MetadataWriter(c);
  let next = 1;
  let files = 0;
  let dirCount = 0;

  const number = (d: Node): void => {
    for (const { node } of sortedChildren(d)) {
      if (node.children) number(node);
      else if (node.ino === 0) node.ino = next++;
    }
    d.ino = next++;
  };
  number(root);
  const inodeCount = next - 1;

  const base = (n: Node): InodeBase => ({
    type: n.type,
    mode: n.mode,
    uidIdx: ids.index(n.uid),
    gidIdx: ids.index(n.gid),
    mtime: n.mtime,
    ino: n.ino,
  });

  const writeLeaf = (n: Node): void => {
    n.ref = iw.ref;
    const x = xattrs.index(n.xattrs);
    const h = base(n);
    switch (n.type) {
      case T_FILE:
        files++;
        iw.write(encodeFileInode(h, n.data ?? EMPTY_FILE, n.nlink, x));
        break;
      case T_SYMLINK:
        iw.write(encodeSymlinkInode(h, n.target ?? Buffer.alloc(0), n.nlink, x));
        break;
      case T_CHRDEV:
      case T_BLKDEV:
        iw.write(encodeDevInode(h, n.type, n.rdev, n.nlink, x));
        break;
      case T_FIFO:
      case T_SOCKET:
        iw.write(encodeIpcInode(h, n.type, n.nlink, x));
        break;
      default:
        throw new RangeError(`squashfs: unexpected inode type ${n.type}`);
    }
  };

  const writeDir = (d: Node, parentIno: number): void => {
    dirCount++;
    const kids = sortedChildren(d);
    let subdirs = 0;
    for (const { node } of kids) {
      if (node.children) {
        subdirs++;
        writeDir(node, d.ino);
      } else if (node.ref < 0) writeLeaf(node);
    }
    const start = dw.block;
    const offset = dw.offset;
    const startAbs = dw.uncompressed;
    const index: DirIndex[] = [];
    let indexedAt = 0; // listing offset of the last indexed header (the directory start counts as one)
    for (let i = 0; i < kids.length;) {
      const first = (kids[i] as Child).node;
      const blk = Math.floor(first.ref / 65536);
      const rel = dw.uncompressed - startAbs;
      if (i > 0 && rel + 8 + (kids[i] as Child).name.length - indexedAt > METADATA_SIZE) {
        // Like mksquashfs: a header per 8 KiB of listing, each indexed so lookups can skip ahead (format.txt §6.1).
        index.push({ index: rel, start: dw.block, name: (kids[i] as Child).name });
        indexedAt = rel;
      }
      // A run shares one inode block, holds at most 256 entries, keeps inode deltas within int16 and does not
      // cross the next 8 KiB index point.
      let j = i;
      let size = rel + 12;
      while (j < kids.length && j - i < 256) {
        const { node, name } = kids[j] as Child;
        const delta = node.ino - first.ino;
        if (Math.floor(node.ref / 65536) !== blk || delta < -32768 || delta > 32767) break;
        if (j > i && size + 8 + name.length - indexedAt > METADATA_SIZE) break;
        size += 8 + name.length;
        j++;
      }
      dw.write(encodeDirHeader(j - i, blk, first.ino));
      for (let k = i; k < j; k++) {
        const { name, node } = kids[k] as Child;
        dw.write(encodeDirEntry(node.ref % 65536, node.ino - first.ino, node.type, name));
      }
      i = j;
    }
    d.ref = iw.ref;
    const dir = { start, offset, size: dw.uncompressed - startAbs + 3, nlink: 2 + subdirs, parent: parentIno, index };
    iw.write(encodeDirInode(base(d), dir, xattrs.index(d.xattrs)));
  };

  // The root's ".." is conventionally one past the last inode number (as mksquashfs does).
  writeDir(root, inodeCount + 1);
  return { inodes: iw.finish(), dirs: dw.finish(), rootRef: root.ref, inodeCount, files, dirCount };
}
