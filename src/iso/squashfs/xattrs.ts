/**
 * The id table (uid/gid lookup) and the xattr table of a squashfs image. Identical xattr sets share one
 * lookup entry; values are stored inline. Only the user., trusted. and security. namespaces exist in
 * squashfs (as in mksquashfs, others such as system.posix_acl_* are dropped).
 */
import { CanvosError } from '../../errors.js';
import type { Compressor } from './compressor.js';
import { INVALID_XATTR } from './format.js';
import { MetadataWriter, lookupTable } from './metadata.js';

const PREFIXES: ReadonlyArray<[string, number]> = [
  ['user.', 0],
  ['trusted.', 1],
  ['security.', 2],
];

/** uid/gid values in first-use order mapped to their 16-bit table index. */
export class IdTable {
  private readonly ids = new Map<number, number>();

  index(id: number): number {
    let i = this.ids.get(id);
    if (i === undefined) {
      i = this.ids.size;
      if (i > 0xffff) {
        throw new CanvosError('ERR_ISO', `squashfs: more than 65536 distinct uids/gids (at id ${id})`, {
          hint: 'squashfs stores ids as 16-bit table indexes; normalise ownership in the rootfs',
        });
      }
      this.ids.set(id, i);
    }
    return i;
  }

  get count(): number {
    return this.ids.size;
  }

  /** Encodes the table placed at `at`; returns bytes and the position of its block index (superblock field). */
  encode(c: Compressor, at: number): { bytes: Buffer; start: number } {
    const raw = Buffer.alloc(4 * this.ids.size);
    for (const [id, i] of this.ids) raw.writeUInt32LE(id >>> 0, 4 * i);
    const t = lookupTable(c, raw, at);
    return { bytes: Buffer.concat([t.blocks, t.index]), start: at + t.blocks.length };
  }
}

interface XattrSet {
  kv: Buffer;
  count: number;
}

/** Deduplicated xattr sets; `index()` gives the per-inode xattr id. */
export class XattrTable {
  private readonly byKey = new Map<string, number>();
  private readonly sets: XattrSet[] = [];

  /** The xattr id for a set (INVALID_XATTR when none of its keys can be stored). */
  index(xattrs: Record<string, Buffer> | undefined): number {
    if (!xattrs) return INVALID_XATTR;
    const parts: Buffer[] = [];
    let count = 0;
    // Sorted keys make the table independent of the producer's key order.
    for (const key of Object.keys(xattrs).sort()) {
      const p = PREFIXES.find(([pre]) => key.startsWith(pre) && key.length > pre.length);
      const value = xattrs[key];
      if (!p || !value) continue;
      const name = Buffer.from(key.slice(p[0].length));
      const h = Buffer.alloc(4);
      h.writeUInt16LE(p[1], 0);
      h.writeUInt16LE(name.length, 2);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(value.length, 0);
      parts.push(h, name, v, value);
      count++;
    }
    if (count === 0) return INVALID_XATTR;
    const kv = Buffer.concat(parts);
    const key = kv.toString('latin1');
    let i = this.byKey.get(key);
    if (i === undefined) {
      i = this.sets.length;
      this.sets.push({ kv, count });
      this.byKey.set(key, i);
    }
    return i;
  }

  get count(): number {
    return this.sets.length;
  }

  /**
   * Encodes key/value blocks, the id lookup blocks, the {kv start, count} header and the block index, placed at
   * `at`; `start` is the header position (superblock xattr_id_table_start).
   */
  encode(c: Compressor, at: number): { bytes: Buffer; start: number } {
    const w = new MetadataWriter(c);
    const ids = Buffer.alloc(16 * this.sets.length);
    this.sets.forEach((s, i) => {
      ids.writeBigUInt64LE(BigInt(w.ref), 16 * i);
      ids.writeUInt32LE(s.count, 16 * i + 8);
      ids.writeUInt32LE(s.kv.length, 16 * i + 12);
      w.write(s.kv);
    });
    const kv = Buffer.concat(w.finish());
    const t = lookupTable(c, ids, at + kv.length);
    const header = Buffer.alloc(16);
    header.writeBigUInt64LE(BigInt(at), 0);
    header.writeUInt32LE(this.sets.length, 8);
    return { bytes: Buffer.concat([kv, t.blocks, header, t.index]), start: at + kv.length + t.blocks.length };
  }
}
