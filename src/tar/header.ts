/**
 * Deterministic ustar header encoding with PAX extended headers only when a value does not fit ustar (long names or
 * link names, long user/group names, big sizes/ids/times, xattrs). Never writes atime/ctime, and the PAX header's own
 * name is derived from the entry path (not a pid like GNU tar), so the same entry always encodes to the same bytes.
 */
import type { FsEntry, FsEntryType } from './entry.js';

/** Tar block size. */
export const BLOCK = 512;

const TYPEFLAG: Record<FsEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

/** The metadata part of an FsEntry needed to write its header. */
export type HeaderFields = Omit<FsEntry, 'content'>;

/** One entry ready to be written; `data` is where a regular file's bytes come from. */
export interface PlannedEntry extends HeaderFields {
  data?: { buf: Buffer } | { file: string } | undefined;
}

const MAX_OCTAL_7 = 0o7777777; // 8-byte fields: 7 digits + NUL
const MAX_OCTAL_11 = 0o77777777777; // 12-byte fields: 11 digits + NUL

function writeString(buf: Buffer, off: number, len: number, s: string | Buffer): void {
  (typeof s === 'string' ? Buffer.from(s) : s).copy(buf, off, 0, len);
}

function writeOctal(buf: Buffer, off: number, len: number, v: number): void {
  // GNU/Go style: zero-padded, NUL terminated. Values that do not fit are carried in PAX and written as 0 here.
  const max = len === 8 ? MAX_OCTAL_7 : MAX_OCTAL_11;
  const s = (v >= 0 && v <= max ? v : 0).toString(8).padStart(len - 1, '0');
  buf.write(`${s}\0`, off, len, 'ascii');
}

/** One PAX record: `"<len> <key>=<value>\n"` where len counts the whole record including its own digits. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length > len) len++;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function ustarHeader(e: HeaderFields, name: Buffer, linkname: Buffer, typeflag: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, e.mode & 0o7777);
  writeOctal(h, 108, 8, e.uid);
  writeOctal(h, 116, 8, e.gid);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, e.mtime);
  h.write('        ', 148, 8, 'ascii');
  h.write(typeflag, 156, 1, 'ascii');
  writeString(h, 157, 100, linkname);
  h.write('ustar\u000000', 257, 8, 'ascii');
  writeString(h, 265, 32, e.uname ?? '');
  writeString(h, 297, 32, e.gname ?? '');
  if (e.type === 'char' || e.type === 'block') {
    writeOctal(h, 329, 8, e.devmajor ?? 0);
    writeOctal(h, 337, 8, e.devminor ?? 0);
  }
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/** Bytes of padding after `size` content bytes to reach the next block boundary. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * Encode the header block(s) for one entry: an optional PAX `x` header plus its records, then the ustar header.
 * `e.path` must be normalised; directories get a trailing `/`.
 */
export function encodeHeader(e: HeaderFields): Buffer {
  const name = e.type === 'directory' ? `${e.path}/` : e.path;
  const linkname = e.type === 'symlink' || e.type === 'hardlink' ? (e.linkname ?? '') : '';
  const size = e.type === 'file' ? e.size : 0;
  const pax: Array<[string, Buffer]> = [];
  const nameBytes = Buffer.byteLength(name);
  if (nameBytes > 100) pax.push(['path', Buffer.from(name)]);
  if (Buffer.byteLength(linkname) > 100) pax.push(['linkpath', Buffer.from(linkname)]);
  if (size > MAX_OCTAL_11) pax.push(['size', Buffer.from(String(size))]);
  if (e.uid > MAX_OCTAL_7) pax.push(['uid', Buffer.from(String(e.uid))]);
  if (e.gid > MAX_OCTAL_7) pax.push(['gid', Buffer.from(String(e.gid))]);
  if (e.mtime > MAX_OCTAL_11) pax.push(['mtime', Buffer.from(String(e.mtime))]);
  if (Buffer.byteLength(e.uname ?? '') > 32) pax.push(['uname', Buffer.from(e.uname ?? '')]);
  if (Buffer.byteLength(e.gname ?? '') > 32) pax.push(['gname', Buffer.from(e.gname ?? '')]);
  for (const [k, v] of Object.entries(e.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    pax.push([`SCHILY.xattr.${k}`, v]);
  const main = ustarHeader(e, truncateBytes(name, 100), truncateBytes(linkname, 100), TYPEFLAG[e.type], size);
  if (pax.length === 0) return main;
  const records = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  const slash = e.path.lastIndexOf('/');
  const paxName =
    slash < 0 ? `PaxHeaders/${e.path}` : `${e.path.slice(0, slash)}/PaxHeaders/${e.path.slice(slash + 1)}`;
  const paxHeader = ustarHeader(
    {
      path: '',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: Math.min(Math.max(e.mtime, 0), MAX_OCTAL_11),
      size: 0,
    },
    truncateBytes(paxName, 100),
    Buffer.alloc(0),
    'x',
    records.length,
  );
  return Buffer.concat([paxHeader, records, Buffer.alloc(padding(records.length)), main]);
}

/** The first n bytes of the UTF-8 encoding (the full value is in the PAX record when this truncates). */
function truncateBytes(s: string, n: number): Buffer {
  return Buffer.from(s).subarray(0, n);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);
