/**
 * newc ("070701") cpio writer for initramfs images: the kernel unpacks it into the initial rootfs. Entries are
 * written to a stream with backpressure; file contents are streamed, never held whole.
 * @internal
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** One cpio record's metadata. */
export interface CpioHeader {
  name: string;
  /** st_mode: type bits | permission bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  ino: number;
  rdevmajor?: number;
  rdevminor?: number;
}

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

/** Streams newc records into `out`, tracking the 4-byte alignment. */
export class CpioWriter {
  private offset = 0;
  private readonly out: Writable;
  constructor(out: Writable) {
    this.out = out;
  }

  private async put(b: Buffer): Promise<void> {
    this.offset += b.length;
    if (!this.out.write(b)) await once(this.out, 'drain');
  }

  /** Writes a header (and name); the caller then writes exactly `size` bytes with {@link data} and calls {@link end}. */
  async header(h: CpioHeader): Promise<void> {
    const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
    const name = Buffer.from(`${h.name}\0`);
    const fields = [
      h.ino,
      h.mode,
      h.uid,
      h.gid,
      h.nlink,
      h.mtime,
      h.size,
      0,
      0,
      h.rdevmajor ?? 0,
      h.rdevminor ?? 0,
      name.length,
      0,
    ];
    const head = Buffer.from(`070701${fields.map(hex).join('')}`, 'latin1');
    await this.put(head);
    await this.put(name);
    await this.put(pad4(this.offset));
  }

  async data(b: Buffer): Promise<void> {
    await this.put(b);
  }

  /** Pads the file data to 4 bytes. */
  async end(): Promise<void> {
    await this.put(pad4(this.offset));
  }

  /** A whole record with in-memory data (directories, symlinks, small files). */
  async record(h: Omit<CpioHeader, 'size'>, data: Buffer = Buffer.alloc(0)): Promise<void> {
    await this.header({ ...h, size: data.length });
    if (data.length) await this.data(data);
    await this.end();
  }

  /** The TRAILER!!! record. */
  async trailer(): Promise<void> {
    await this.record({ name: 'TRAILER!!!', mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, ino: 0 });
  }
}
