/**
 * A GUID partition table writer: protective MBR (with room for a BIOS boot sector), primary header + entry array
 * at LBA 1–33, backup array + header in the last 33 sectors, CRC32s as UEFI 2.10 §5.3 defines them. GUIDs are
 * name-based (RFC 4122 v5) so the same inputs give the same table; AuroraBoot derives its partition GUIDs the
 * same way (uuid.NewV5(NamespaceURL, label)).
 */
import { createHash } from 'node:crypto';
import { CanvosError } from '../errors.js';

/** Bytes per logical sector. */
export const SECTOR = 512;
/** Entries in the partition entry array (the UEFI minimum, 16 KiB). */
const ENTRIES = 128;
const ENTRY_SIZE = 128;
/** Sectors of the entry array. */
const ARRAY_SECTORS = (ENTRIES * ENTRY_SIZE) / SECTOR;

/** Well-known partition type GUIDs. */
export const PART_TYPE = {
  efiSystem: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  biosBoot: '21686148-6449-6e6f-744e-656564454649',
  linuxFs: '0fc63daf-8483-4772-8e79-3d69d8477de4',
} as const;

/** One partition of {@link gptTables}. */
export interface GptPartition {
  /** Type GUID, e.g. {@link PART_TYPE}.efiSystem. */
  type: string;
  /** Unique partition GUID. */
  guid: string;
  firstLba: number;
  /** Inclusive. */
  lastLba: number;
  /** Partition name (≤ 36 UTF-16 units), e.g. 'efi'. */
  name: string;
  /** Attribute bits (bit 0 required, bit 2 legacy BIOS bootable). Default: 0n. */
  attributes?: bigint | undefined;
}

/** Input of {@link gptTables}. */
export interface GptInput {
  /** Disk size in sectors. */
  totalSectors: number;
  diskGuid: string;
  partitions: readonly GptPartition[];
  /** 440 bytes of MBR boot code (grub's boot.img), or none. */
  bootCode?: Buffer | undefined;
}

const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, the one GPT and zlib use). */
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

/** RFC 4122 name-based UUID (SHA-1, version 5) in the URL namespace, lower-case text. */
export function uuidV5(name: string, namespace: string = NAMESPACE_URL): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name).digest().subarray(0, 16);
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** A GUID in its on-disk form: the first three fields little-endian, the rest as written. */
export function guidBytes(guid: string): Buffer {
  const hex = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new CanvosError('ERR_INTERNAL', `invalid GUID ${JSON.stringify(guid)}`);
  const b = Buffer.from(hex, 'hex');
  return Buffer.concat([
    b.subarray(0, 4).reverse(),
    b.subarray(4, 6).reverse(),
    b.subarray(6, 8).reverse(),
    b.subarray(8),
  ]);
}

/** First and last LBA usable by partitions on a disk of `totalSectors`. */
export function usableRange(totalSectors: number): { first: number; last: number } {
  return { first: 2 + ARRAY_SECTORS, last: totalSectors - 2 - ARRAY_SECTORS };
}

/** The tables to write: `head` at offset 0 (MBR + primary GPT, 34 sectors), `tail` over the last 33 sectors. */
export function gptTables(input: GptInput): { head: Buffer; tail: Buffer; tailOffset: number } {
  const { totalSectors } = input;
  const { first, last } = usableRange(totalSectors);
  if (input.partitions.length > ENTRIES) throw new CanvosError('ERR_INTERNAL', 'too many GPT partitions');
  const array = Buffer.alloc(ENTRIES * ENTRY_SIZE);
  input.partitions.forEach((p, i) => {
    if (p.firstLba < first || p.lastLba > last || p.lastLba < p.firstLba) {
      throw new CanvosError(
        'ERR_INTERNAL',
        `GPT partition ${p.name} (${p.firstLba}-${p.lastLba}) outside ${first}-${last}`,
      );
    }
    const e = array.subarray(i * ENTRY_SIZE, (i + 1) * ENTRY_SIZE);
    guidBytes(p.type).copy(e, 0);
    guidBytes(p.guid).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.firstLba), 32);
    e.writeBigUInt64LE(BigInt(p.lastLba), 40);
    e.writeBigUInt64LE(p.attributes ?? 0n, 48);
    const name = Buffer.from(p.name, 'utf16le');
    if (name.length > 72) throw new CanvosError('ERR_INTERNAL', `GPT partition name ${p.name} is too long`);
    name.copy(e, 56);
  });
  const arrayCrc = crc32(array);
  const header = (current: number, backup: number, entriesLba: number): Buffer => {
    const h = Buffer.alloc(SECTOR);
    h.write('EFI PART', 0, 'latin1');
    h.writeUInt32LE(0x00010000, 8);
    h.writeUInt32LE(92, 12);
    h.writeBigUInt64LE(BigInt(current), 24);
    h.writeBigUInt64LE(BigInt(backup), 32);
    h.writeBigUInt64LE(BigInt(first), 40);
    h.writeBigUInt64LE(BigInt(last), 48);
    guidBytes(input.diskGuid).copy(h, 56);
    h.writeBigUInt64LE(BigInt(entriesLba), 72);
    h.writeUInt32LE(ENTRIES, 80);
    h.writeUInt32LE(ENTRY_SIZE, 84);
    h.writeUInt32LE(arrayCrc, 88);
    h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
    return h;
  };
  const mbr = Buffer.alloc(SECTOR);
  if (input.bootCode) input.bootCode.copy(mbr, 0, 0, Math.min(440, input.bootCode.length));
  // Protective entry: type 0xEE from LBA 1 over the whole disk (capped at 2^32-1 sectors).
  const pe = 0x1be;
  mbr.set([0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff], pe);
  mbr.writeUInt32LE(1, pe + 8);
  mbr.writeUInt32LE(Math.min(totalSectors - 1, 0xffffffff), pe + 12);
  mbr.writeUInt16LE(0xaa55, 510);
  const lastLba = totalSectors - 1;
  const head = Buffer.concat([mbr, header(1, lastLba, 2), array]);
  const tail = Buffer.concat([array, header(lastLba, 1, lastLba - ARRAY_SECTORS)]);
  return { head, tail, tailOffset: (lastLba - ARRAY_SECTORS) * SECTOR };
}
