/**
 * FAT geometry and boot sector: picks FAT12/16/32 and the cluster size for an image size, computes the
 * region offsets (reserved sectors, two FATs, fixed root directory, data) and encodes the BIOS parameter block.
 * Cluster-count thresholds follow the Microsoft FAT specification (FAT12 < 4085 ≤ FAT16 < 65525 ≤ FAT32).
 */
import { CanvosError } from '../errors.js';

/** A FAT variant. */
export type FatType = 12 | 16 | 32;

/** The computed layout of a FAT volume (all offsets in 512-byte sectors). */
export interface FatGeometry {
  type: FatType;
  totalSectors: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  fatSectors: number;
  /** Sectors of the fixed FAT12/16 root directory (0 on FAT32). */
  rootDirSectors: number;
  rootEntries: number;
  dataStart: number;
  /** Number of data clusters (numbered 2 … clusters+1). */
  clusters: number;
}

export const SECTOR = 512;
const FAT32_MIN_BYTES = 512 * 1024 * 1024;

function layoutFor(totalSectors: number, type: FatType, spc: number): FatGeometry {
  const reservedSectors = type === 32 ? 32 : 1;
  const rootEntries = type === 32 ? 0 : 512;
  const rootDirSectors = (rootEntries * 32) / SECTOR;
  let fatSectors = 1;
  // Fixed point: the FAT must hold an entry for every cluster that remains once the FATs are carved out.
  for (;;) {
    const clusters = Math.floor((totalSectors - reservedSectors - 2 * fatSectors - rootDirSectors) / spc);
    const need = Math.ceil(((clusters + 2) * type) / 8 / SECTOR);
    if (need <= fatSectors) {
      return {
        type,
        totalSectors,
        sectorsPerCluster: spc,
        reservedSectors,
        fatSectors,
        rootDirSectors,
        rootEntries,
        dataStart: reservedSectors + 2 * fatSectors + rootDirSectors,
        clusters,
      };
    }
    fatSectors = need;
  }
}

function valid(g: FatGeometry): boolean {
  if (g.type === 12) return g.clusters >= 1 && g.clusters < 4085;
  if (g.type === 16) return g.clusters >= 4085 && g.clusters < 65525;
  return g.clusters >= 65525 && g.clusters < 0x0ffffff5;
}

/**
 * Geometry for an image of `bytes` (a multiple of 512): FAT32 from 512 MiB (like mkfs.fat), else FAT16 with the
 * smallest cluster that keeps the count in range, else FAT12 for tiny images. `force` pins the type.
 */
export function fatGeometry(bytes: number, force?: FatType): FatGeometry {
  if (bytes % SECTOR !== 0 || bytes < 64 * SECTOR) {
    throw new CanvosError('ERR_ISO', `FAT image size ${bytes} must be a multiple of 512 and at least 32 KiB`);
  }
  const total = bytes / SECTOR;
  const order: FatType[] = force ? [force] : bytes >= FAT32_MIN_BYTES ? [32, 16] : [16, 12];
  for (const type of order) {
    const spcs = type === 32 ? [8, 16, 32, 64] : [1, 2, 4, 8, 16, 32, 64];
    for (const spc of spcs) {
      const g = layoutFor(total, type, spc);
      if (valid(g)) return g;
    }
  }
  throw new CanvosError('ERR_ISO', `no FAT${force ?? ''} layout fits an image of ${bytes} bytes`, {
    hint: 'choose another image size or let the writer pick the FAT type',
  });
}

/** Byte offset of data cluster `n` (n ≥ 2). */
export function clusterOffset(g: FatGeometry, n: number): number {
  return (g.dataStart + (n - 2) * g.sectorsPerCluster) * SECTOR;
}

/** Encodes an 11-byte space-padded label. */
export function labelBytes(label: string): Buffer {
  return Buffer.from(label.toUpperCase().padEnd(11, ' ').slice(0, 11), 'latin1');
}

/**
 * The boot sector (and on FAT32 the FSInfo sector). The boot code only runs `int 18h` (“not bootable, try the
 * next device”), so a BIOS that tries the ESP falls through instead of hanging.
 */
export function bootSectors(
  g: FatGeometry,
  label: string,
  volumeId: number,
  freeClusters: number,
  nextFree: number,
): {
  boot: Buffer;
  fsInfo?: Buffer;
} {
  const b = Buffer.alloc(SECTOR);
  const fat32 = g.type === 32;
  b[0] = 0xeb;
  b[1] = fat32 ? 0x58 : 0x3c;
  b[2] = 0x90;
  b.write('MSWIN4.1', 3, 'latin1');
  b.writeUInt16LE(SECTOR, 11);
  b[13] = g.sectorsPerCluster;
  b.writeUInt16LE(g.reservedSectors, 14);
  b[16] = 2;
  b.writeUInt16LE(g.rootEntries, 17);
  b.writeUInt16LE(g.totalSectors < 0x10000 && !fat32 ? g.totalSectors : 0, 19);
  b[21] = 0xf8;
  b.writeUInt16LE(fat32 ? 0 : g.fatSectors, 22);
  b.writeUInt16LE(32, 24);
  b.writeUInt16LE(64, 26);
  b.writeUInt32LE(0, 28);
  b.writeUInt32LE(g.totalSectors < 0x10000 && !fat32 ? 0 : g.totalSectors, 32);
  let ext = 36;
  if (fat32) {
    b.writeUInt32LE(g.fatSectors, 36);
    b.writeUInt16LE(0, 40);
    b.writeUInt16LE(0, 42);
    b.writeUInt32LE(2, 44);
    b.writeUInt16LE(1, 48);
    b.writeUInt16LE(6, 50);
    ext = 64;
  }
  b[ext] = 0x80;
  b[ext + 2] = 0x29;
  b.writeUInt32LE(volumeId >>> 0, ext + 3);
  labelBytes(label).copy(b, ext + 7);
  b.write(fat32 ? 'FAT32   ' : g.type === 16 ? 'FAT16   ' : 'FAT12   ', ext + 18, 'latin1');
  const code = ext + 26;
  b[code] = 0xcd;
  b[code + 1] = 0x18;
  b[510] = 0x55;
  b[511] = 0xaa;
  if (!fat32) return { boot: b };
  const fsInfo = Buffer.alloc(SECTOR);
  fsInfo.writeUInt32LE(0x41615252, 0);
  fsInfo.writeUInt32LE(0x61417272, 484);
  fsInfo.writeUInt32LE(freeClusters, 488);
  fsInfo.writeUInt32LE(nextFree, 492);
  fsInfo.writeUInt32LE(0xaa550000, 508);
  return { boot: b, fsInfo };
}

/** A FAT table (one copy) with the media/clean markers in entries 0 and 1 and the given chains. */
export function encodeFat(g: FatGeometry, next: Map<number, number>): Buffer {
  const buf = Buffer.alloc(g.fatSectors * SECTOR);
  const eoc = g.type === 12 ? 0xfff : g.type === 16 ? 0xffff : 0x0fffffff;
  const set = (n: number, v: number): void => {
    if (g.type === 16) buf.writeUInt16LE(v, n * 2);
    else if (g.type === 32) buf.writeUInt32LE(v, n * 4);
    else {
      // FAT12 packs two 12-bit entries into three bytes.
      const off = Math.floor((n * 3) / 2);
      const cur = buf.readUInt16LE(off);
      buf.writeUInt16LE(n % 2 === 0 ? (cur & 0xf000) | v : (cur & 0x000f) | (v << 4), off);
    }
  };
  set(0, (eoc & ~0xff) | 0xf8);
  set(1, eoc);
  for (const [n, v] of next) set(n, v === 0 ? eoc : v);
  return buf;
}
