/**
 * Decoding of tar header blocks (v7, ustar, GNU) and PAX extended-header records. Values are kept as bytes where
 * they can be binary (xattrs: `SCHILY.xattr.*` raw, `LIBARCHIVE.xattr.*` base64), unlike tar-stream which decodes
 * PAX values as UTF-8 and would corrupt `security.capability`.
 */
import { CanvosError } from '../errors.js';

/** A decoded raw header, before PAX/GNU long-name overrides are applied. */
export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function cstr(b: Buffer, off: number, len: number): Buffer {
  const end = b.indexOf(0, off);
  return b.subarray(off, end < 0 || end > off + len ? off + len : end);
}

function num(b: Buffer, off: number, len: number): number {
  const f = b.subarray(off, off + len);
  const lead = f[0] ?? 0;
  if (lead & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as marker.
    let v = BigInt(lead & 0x7f);
    for (let i = 1; i < f.length; i++) v = (v << 8n) | BigInt(f[i] ?? 0);
    return Number(v);
  }
  const s = f
    .toString('latin1')
    .replace(/^ +/, '')
    .replace(/[\0 ].*$/s, '');
  return s === '' ? 0 : parseInt(s, 8);
}

/** True when the block is all zeros (end-of-archive marker). */
export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Decode one 512-byte header; throws ERR_LAYER_CORRUPT on a checksum mismatch (not a tar, or corrupt). */
export function decodeHeader(b: Buffer, where: string): RawHeader {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 32 : (b[i] ?? 0);
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  const sum = num(b, 148, 8);
  if (sum !== unsigned && sum !== signed) {
    throw new CanvosError('ERR_LAYER_CORRUPT', `${where}: invalid tar header checksum`, {
      hint: 'the layer is corrupt or not a tar archive',
    });
  }
  const magic = b.subarray(257, 263).toString('latin1');
  let name = cstr(b, 0, 100).toString('utf8');
  // POSIX ustar splits long names into prefix/name; the GNU format stores atime/ctime there instead.
  if (magic === 'ustar\0') {
    const prefix = cstr(b, 345, 155).toString('utf8');
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const isUstar = magic.startsWith('ustar');
  return {
    name,
    mode: num(b, 100, 8),
    uid: num(b, 108, 8),
    gid: num(b, 116, 8),
    size: num(b, 124, 12),
    mtime: num(b, 136, 12),
    typeflag: String.fromCharCode(b[156] ?? 0),
    linkname: cstr(b, 157, 100).toString('utf8'),
    uname: isUstar ? cstr(b, 265, 32).toString('utf8') : '',
    gname: isUstar ? cstr(b, 297, 32).toString('utf8') : '',
    devmajor: isUstar ? num(b, 329, 8) : 0,
    devminor: isUstar ? num(b, 337, 8) : 0,
  };
}

/** Decode PAX records into a key → raw value map. */
export function decodePax(buf: Buffer, where: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break; // trailing NUL padding
    const sp = buf.indexOf(0x20, off);
    const len = sp < 0 ? NaN : parseInt(buf.subarray(off, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0 || off + len > buf.length) {
      throw new CanvosError('ERR_LAYER_CORRUPT', `${where}: malformed PAX header record`, {
        hint: 'the layer is corrupt',
      });
    }
    const rec = buf.subarray(sp + 1, off + len - 1); // drop trailing '\n'
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

/** Apply PAX values onto a header; extended attributes are collected separately. */
export function applyPax(h: RawHeader, pax: Map<string, Buffer>): Record<string, Buffer> | undefined {
  let xattrs: Record<string, Buffer> | undefined;
  for (const [k, v] of pax) {
    const s = (): string => v.toString('utf8');
    switch (k) {
      case 'path':
        h.name = s();
        break;
      case 'linkpath':
        h.linkname = s();
        break;
      case 'size':
        h.size = parseInt(s(), 10);
        break;
      case 'uid':
        h.uid = parseInt(s(), 10);
        break;
      case 'gid':
        h.gid = parseInt(s(), 10);
        break;
      case 'uname':
        h.uname = s();
        break;
      case 'gname':
        h.gname = s();
        break;
      case 'mtime':
        h.mtime = paxSeconds(s());
        break;
      default:
        if (k.startsWith('SCHILY.xattr.')) (xattrs ??= {})[k.slice(13)] = Buffer.from(v);
        else if (k.startsWith('LIBARCHIVE.xattr.'))
          (xattrs ??= {})[decodeURIComponent(k.slice(17))] = Buffer.from(s(), 'base64');
    }
  }
  return xattrs;
}

/**
 * Whole seconds of a PAX time ("1700000000.999999999"), truncated toward −∞ like GNU tar. Not via parseFloat:
 * a double rounds 1700000000.999999999 up to 1700000001.
 */
function paxSeconds(v: string): number {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v.trim());
  if (!m) return Math.floor(Number(v));
  const whole = Number(m[2]);
  const fraction = /[1-9]/.test(m[3] ?? '');
  return m[1] ? -whole - (fraction ? 1 : 0) : whole;
}
