/**
 * squashfs 4.0 on-disk constants and little-endian encoders (superblock, inodes, directory records).
 * Layouts follow the kernel's fs/squashfs/squashfs_fs.h and squashfs-tools-ng doc/format.txt; all integers are
 * little-endian, inode/table references are `(metadata block offset << 16) | offset inside the uncompressed block`.
 */

export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
export const METADATA_SIZE = 8192;
/** Metadata block header bit: the block is stored uncompressed. */
export const META_UNCOMPRESSED = 0x8000;
/** Data/fragment block size bit: the block is stored uncompressed. */
export const DATA_UNCOMPRESSED = 1 << 24;
export const INVALID_FRAG = 0xffffffff;
export const INVALID_XATTR = 0xffffffff;
export const INVALID_TABLE = 0xffffffffffffffffn;
export const SUPERBLOCK_SIZE = 96;

/** Superblock flags (squashfs_fs.h SQUASHFS_*). */
export const FLAG_NO_FRAGMENTS = 0x0010;
export const FLAG_DUPLICATES = 0x0040;
export const FLAG_NO_XATTRS = 0x0200;

/** Basic inode types; the extended variant of each is `basic + 7`. Directory entries always carry the basic type. */
export const T_DIR = 1;
export const T_FILE = 2;
export const T_SYMLINK = 3;
export const T_BLKDEV = 4;
export const T_CHRDEV = 5;
export const T_FIFO = 6;
export const T_SOCKET = 7;
export const EXT = 7;

/** Fields shared by every inode header. */
export interface InodeBase {
  type: number;
  mode: number;
  uidIdx: number;
  gidIdx: number;
  mtime: number;
  ino: number;
}

/** Everything the superblock records. */
export interface Superblock {
  inodes: number;
  mkfsTime: number;
  blockSize: number;
  fragments: number;
  compression: number;
  flags: number;
  ids: number;
  rootInode: bigint;
  bytesUsed: bigint;
  idTable: bigint;
  xattrTable: bigint;
  inodeTable: bigint;
  dirTable: bigint;
  fragTable: bigint;
  exportTable: bigint;
}

export function encodeSuperblock(s: Superblock): Buffer {
  const b = Buffer.alloc(SUPERBLOCK_SIZE);
  b.writeUInt32LE(SQUASHFS_MAGIC, 0);
  b.writeUInt32LE(s.inodes, 4);
  b.writeUInt32LE(s.mkfsTime >>> 0, 8);
  b.writeUInt32LE(s.blockSize, 12);
  b.writeUInt32LE(s.fragments, 16);
  b.writeUInt16LE(s.compression, 20);
  b.writeUInt16LE(Math.log2(s.blockSize), 22);
  b.writeUInt16LE(s.flags, 24);
  b.writeUInt16LE(s.ids, 26);
  b.writeUInt16LE(4, 28);
  b.writeUInt16LE(0, 30);
  const longs = [
    s.rootInode,
    s.bytesUsed,
    s.idTable,
    s.xattrTable,
    s.inodeTable,
    s.dirTable,
    s.fragTable,
    s.exportTable,
  ];
  longs.forEach((v, i) => b.writeBigUInt64LE(v, 32 + 8 * i));
  return b;
}

function header(size: number, h: InodeBase): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt16LE(h.type, 0);
  b.writeUInt16LE(h.mode & 0o7777, 2);
  b.writeUInt16LE(h.uidIdx, 4);
  b.writeUInt16LE(h.gidIdx, 6);
  b.writeUInt32LE(h.mtime >>> 0, 8);
  b.writeUInt32LE(h.ino, 12);
  return b;
}

/** Regular file placement: `blocks` holds each data block's on-disk size word (0 = sparse). */
export interface FileInodeData {
  start: number;
  size: number;
  sparse: number;
  fragIndex: number;
  fragOffset: number;
  blocks: readonly number[];
}

/** Basic file inode when it fits (32-bit start/size, nlink 1, no xattrs), else the extended one. */
export function encodeFileInode(h: InodeBase, d: FileInodeData, nlink: number, xattr: number): Buffer {
  const n = d.blocks.length;
  if (nlink === 1 && xattr === INVALID_XATTR && d.start < 2 ** 32 && d.size < 2 ** 32) {
    const b = header(32 + 4 * n, { ...h, type: T_FILE });
    b.writeUInt32LE(d.start, 16);
    b.writeUInt32LE(d.fragIndex, 20);
    b.writeUInt32LE(d.fragOffset, 24);
    b.writeUInt32LE(d.size, 28);
    d.blocks.forEach((v, i) => b.writeUInt32LE(v, 32 + 4 * i));
    return b;
  }
  const b = header(56 + 4 * n, { ...h, type: T_FILE + EXT });
  b.writeBigUInt64LE(BigInt(d.start), 16);
  b.writeBigUInt64LE(BigInt(d.size), 24);
  b.writeBigUInt64LE(BigInt(d.sparse), 32);
  b.writeUInt32LE(nlink, 40);
  b.writeUInt32LE(d.fragIndex, 44);
  b.writeUInt32LE(d.fragOffset, 48);
  b.writeUInt32LE(xattr, 52);
  d.blocks.forEach((v, i) => b.writeUInt32LE(v, 56 + 4 * i));
  return b;
}

/** One directory index entry: where a directory header lives and the first name after it. */
export interface DirIndex {
  index: number;
  start: number;
  name: Buffer;
}

/** Directory placement in the directory table; `size` is the listing size plus 3 (the kernel's "." and ".."). */
export interface DirInodeData {
  start: number;
  offset: number;
  size: number;
  nlink: number;
  parent: number;
  index: readonly DirIndex[];
}

export function encodeDirInode(h: InodeBase, d: DirInodeData, xattr: number): Buffer {
  if (xattr === INVALID_XATTR && d.index.length === 0 && d.size <= 0xffff) {
    const b = header(32, { ...h, type: T_DIR });
    b.writeUInt32LE(d.start, 16);
    b.writeUInt32LE(d.nlink, 20);
    b.writeUInt16LE(d.size, 24);
    b.writeUInt16LE(d.offset, 26);
    b.writeUInt32LE(d.parent, 28);
    return b;
  }
  const b = header(40, { ...h, type: T_DIR + EXT });
  b.writeUInt32LE(d.nlink, 16);
  b.writeUInt32LE(d.size, 20);
  b.writeUInt32LE(d.start, 24);
  b.writeUInt32LE(d.parent, 28);
  b.writeUInt16LE(d.index.length, 32);
  b.writeUInt16LE(d.offset, 34);
  b.writeUInt32LE(xattr, 36);
  const parts = [b];
  for (const ix of d.index) {
    const e = Buffer.alloc(12);
    e.writeUInt32LE(ix.index, 0);
    e.writeUInt32LE(ix.start, 4);
    e.writeUInt32LE(ix.name.length - 1, 8);
    parts.push(e, ix.name);
  }
  return Buffer.concat(parts);
}

export function encodeSymlinkInode(h: InodeBase, target: Buffer, nlink: number, xattr: number): Buffer {
  const ext = xattr !== INVALID_XATTR;
  const b = header(24 + target.length + (ext ? 4 : 0), { ...h, type: ext ? T_SYMLINK + EXT : T_SYMLINK });
  b.writeUInt32LE(nlink, 16);
  b.writeUInt32LE(target.length, 20);
  target.copy(b, 24);
  if (ext) b.writeUInt32LE(xattr, 24 + target.length);
  return b;
}

/** Device inode; `basic` is T_BLKDEV or T_CHRDEV. */
export function encodeDevInode(h: InodeBase, basic: number, rdev: number, nlink: number, xattr: number): Buffer {
  const ext = xattr !== INVALID_XATTR;
  const b = header(ext ? 28 : 24, { ...h, type: ext ? basic + EXT : basic });
  b.writeUInt32LE(nlink, 16);
  b.writeUInt32LE(rdev >>> 0, 20);
  if (ext) b.writeUInt32LE(xattr, 24);
  return b;
}

/** FIFO/socket inode; `basic` is T_FIFO or T_SOCKET. */
export function encodeIpcInode(h: InodeBase, basic: number, nlink: number, xattr: number): Buffer {
  const ext = xattr !== INVALID_XATTR;
  const b = header(ext ? 24 : 20, { ...h, type: ext ? basic + EXT : basic });
  b.writeUInt32LE(nlink, 16);
  if (ext) b.writeUInt32LE(xattr, 20);
  return b;
}

/** The kernel's new_encode_dev: 12-bit major, 20-bit minor split around it. */
export function encodeRdev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** Directory run header: `count` entries (stored minus one) whose inodes share one inode-table block. */
export function encodeDirHeader(count: number, start: number, ino: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(count - 1, 0);
  b.writeUInt32LE(start, 4);
  b.writeUInt32LE(ino, 8);
  return b;
}

export function encodeDirEntry(offset: number, inoDelta: number, basicType: number, name: Buffer): Buffer {
  const b = Buffer.alloc(8 + name.length);
  b.writeUInt16LE(offset, 0);
  b.writeInt16LE(inoDelta, 2);
  b.writeUInt16LE(basicType, 4);
  b.writeUInt16LE(name.length - 1, 6);
  name.copy(b, 8);
  return b;
}
