/**
 * A small DER (ASN.1) writer and reader: just what X.509 self-signed certificates, PKCS#7 SignedData for
 * authenticated EFI variables and Authenticode need. Node has no certificate builder (only X509Certificate to
 * read), so Trusted Boot keys are made here instead of with @peculiar/x509 or openssl.
 * @internal
 */

/** Encodes one TLV with an identifier octet `tag`. */
export function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
/** SET OF, elements sorted by their encoding as DER requires. */
export const set = (...items: Buffer[]): Buffer =>
  tlv(0x31, Buffer.concat([...items].sort((a, b) => Buffer.compare(a, b))));
export const nul = (): Buffer => Buffer.from([0x05, 0x00]);
export const octets = (b: Buffer): Buffer => tlv(0x04, b);
export const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const bool = (v: boolean): Buffer => Buffer.from([0x01, 0x01, v ? 0xff : 0x00]);
/** [n] EXPLICIT (constructed context tag). */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT primitive context tag around raw content. */
export const implicitPrim = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

/** INTEGER from an unsigned big-endian magnitude. */
export function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v.length === 0) v = Buffer.from([0]);
  if ((v[0] as number) & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}
export const int = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return uint(b);
};

/** OBJECT IDENTIFIER from dotted form. */
export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * (parts[0] as number) + (parts[1] as number)];
  for (const p of parts.slice(2)) {
    const bytes = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii'))
    : tlv(0x18, Buffer.from(iso, 'ascii'));
}

/** One parsed TLV: tag, the whole encoding and its content. */
export interface Tlv {
  tag: number;
  whole: Buffer;
  content: Buffer;
}

/** Reads the TLV at `off` in `b`. Throws RangeError on truncated or indefinite-length input. */
export function readTlv(b: Buffer, off = 0): Tlv {
  const tag = b[off];
  let len = b[off + 1];
  if (tag === undefined || len === undefined) throw new RangeError('DER: truncated');
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new RangeError('DER: unsupported length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[off + 2 + i] ?? 0);
    hdr += n;
  }
  if (off + hdr + len > b.length) throw new RangeError('DER: truncated');
  return { tag, whole: b.subarray(off, off + hdr + len), content: b.subarray(off + hdr, off + hdr + len) };
}

/** The children of a constructed TLV. */
export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off < t.content.length;) {
    const c = readTlv(t.content, off);
    out.push(c);
    off += c.whole.length;
  }
  return out;
}
