/**
 * The two X.509 facts the CA-certificate layer needs without running openssl: the certificates of a PEM/DER file,
 * and OpenSSL's subject-name hash (`openssl x509 -subject_hash`, X509_NAME_hash: SHA-1 of the canonical encoding of
 * the subject, x509_name_canon in crypto/x509/x_name.c), which names the `<hash>.N` links `openssl rehash` writes.
 */
import { createHash, X509Certificate } from 'node:crypto';

interface Tlv {
  tag: number;
  /** Offset of the value. */
  start: number;
  end: number;
  /** The whole encoding (tag, length, value). */
  raw: Buffer;
}

function tlv(buf: Buffer, at: number): Tlv {
  const tag = buf[at] ?? -1;
  let len = buf[at + 1] ?? 0;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] ?? 0);
    start += n;
  }
  const end = start + len;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, start, end, raw: buf.subarray(at, end) };
}

function children(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.start; at < t.end;) {
    const c = tlv(buf, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

function encode(tag: number, value: Buffer): Buffer {
  const n = value.length;
  const len =
    n < 0x80
      ? Buffer.from([n])
      : n < 0x100
        ? Buffer.from([0x81, n])
        : n < 0x10000
          ? Buffer.from([0x82, n >> 8, n & 0xff])
          : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, value]);
}

// ASN1_MASK_CANON: UTF8String, BMPString, UniversalString, PrintableString, T61String, IA5String, VisibleString.
const CANON_TAGS = new Set([0x0c, 0x1e, 0x1c, 0x13, 0x14, 0x16, 0x1a]);

function toUtf8(tag: number, v: Buffer): Buffer {
  if (tag === 0x0c) return v;
  let s = '';
  if (tag === 0x1e) for (let i = 0; i + 1 < v.length; i += 2) s += String.fromCodePoint(v.readUInt16BE(i));
  else if (tag === 0x1c) for (let i = 0; i + 3 < v.length; i += 4) s += String.fromCodePoint(v.readUInt32BE(i));
  else for (const b of v) s += String.fromCodePoint(b); // one byte per character (T61 is read as Latin-1)
  return Buffer.from(s, 'utf8');
}

const isSpace = (b: number): boolean => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/** asn1_string_canon: trim, collapse runs of white space to one space, lowercase ASCII; other bytes unchanged. */
function canonValue(v: Buffer): Buffer {
  let from = 0;
  let to = v.length;
  while (from < to && isSpace(v[from] ?? 0)) from++;
  while (to > from && isSpace(v[to - 1] ?? 0)) to--;
  const out: number[] = [];
  for (let i = from; i < to;) {
    const b = v[i] ?? 0;
    if (b >= 0x80) {
      out.push(b);
      i++;
    } else if (isSpace(b)) {
      out.push(0x20);
      while (i < to && isSpace(v[i] ?? 0)) i++;
    } else {
      out.push(b >= 0x41 && b <= 0x5a ? b + 0x20 : b);
      i++;
    }
  }
  return Buffer.from(out);
}

/** DER SET OF order: bytewise, a shorter encoding first when it is a prefix. */
function derCompare(a: Buffer, b: Buffer): number {
  const c = Buffer.compare(a.subarray(0, Math.min(a.length, b.length)), b.subarray(0, Math.min(a.length, b.length)));
  return c !== 0 ? c : a.length - b.length;
}

/** `openssl x509 -subject_hash` of a DER certificate: 8 lowercase hex digits. */
export function subjectHash(der: Buffer): string {
  const cert = tlv(der, 0);
  const tbs = children(der, cert)[0];
  if (!tbs) throw new Error('not a certificate');
  const fields = children(der, tbs);
  const hasVersion = fields[0]?.tag === 0xa0;
  const subject = fields[(hasVersion ? 1 : 0) + 4];
  if (!subject || subject.tag !== 0x30) throw new Error('certificate has no subject');
  const canon: Buffer[] = [];
  for (const rdn of children(der, subject)) {
    const atvs = children(der, rdn).map((atv) => {
      const [oid, value] = children(der, atv);
      if (!oid || !value) throw new Error('malformed name attribute');
      const v = CANON_TAGS.has(value.tag)
        ? encode(0x0c, canonValue(toUtf8(value.tag, der.subarray(value.start, value.end))))
        : value.raw;
      return encode(0x30, Buffer.concat([oid.raw, v]));
    });
    canon.push(encode(0x31, Buffer.concat(atvs.sort(derCompare))));
  }
  const md = createHash('sha1').update(Buffer.concat(canon)).digest();
  return (((md[0] ?? 0) | ((md[1] ?? 0) << 8) | ((md[2] ?? 0) << 16) | ((md[3] ?? 0) << 24)) >>> 0)
    .toString(16)
    .padStart(8, '0');
}

const PEM_RE = /-----BEGIN (X509 CERTIFICATE|CERTIFICATE|TRUSTED CERTIFICATE)-----([\s\S]*?)-----END \1-----/g;

/** The certificates of a file as p11-kit reads anchors: every PEM certificate block, or the file itself as DER. */
export function certificatesOf(content: Buffer): Buffer[] {
  const text = content.toString('latin1');
  const blocks = [...text.matchAll(PEM_RE)].map((m) => Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64'));
  const candidates = blocks.length > 0 ? blocks : [content];
  return candidates.filter((der) => {
    try {
      new X509Certificate(der);
      return true;
    } catch {
      return false;
    }
  });
}

/** The certificate as PEM (64-column base64), as p11-kit's pem-bundle writes it. */
export function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** p11-kit's label of a certificate: the subject's CN, else OU, else O, else the whole subject. */
export function certLabel(der: Buffer): string {
  const subject = new X509Certificate(der).subject;
  for (const key of ['CN', 'OU', 'O']) {
    const line = subject.split('\n').find((l) => l.startsWith(`${key}=`));
    if (line) return line.slice(key.length + 1).replace(/\\(.)/g, '$1'); // Node escapes leading/trailing spaces
  }
  return subject.replaceAll('\n', ', ');
}
