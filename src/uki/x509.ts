/**
 * Self-signed X.509 v3 certificates (RSA 2048, sha256WithRSAEncryption) for the Secure Boot PK, KEK and db, made
 * with node:crypto and the DER writer, as `openssl req -x509 -subj /CN=<org>/ -days N` does in osbuilder/enki
 * genkey. Also reads back what PKCS#7 signers need (issuer Name, serial number) from any DER certificate.
 */
import { X509Certificate, createHash, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  bitString,
  bool,
  children,
  explicit,
  int,
  nul,
  octets,
  oid,
  readTlv,
  seq,
  set,
  time,
  uint,
  utf8,
} from './der.js';

export const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
export const OID_RSA = '1.2.840.113549.1.1.1';
export const OID_SHA256_RSA = '1.2.840.113549.1.1.11';

/** AlgorithmIdentifier with NULL parameters. */
export const algId = (o: string): Buffer => seq(oid(o), nul());

/** Name with a single commonName RDN. */
export function cnName(cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), utf8(cn))));
}

/** Options of {@link selfSignedCert}. */
export interface CertOptions {
  /** Subject and issuer common name (CanvOS MY_ORG). */
  commonName: string;
  /** Validity in days from `notBefore` (CanvOS EXPIRATION_IN_DAYS). */
  days: number;
  /** Default: now. */
  notBefore?: Date;
  /** Serial number bytes. Default: 16 random bytes. */
  serial?: Buffer;
}

/** Makes a self-signed CA certificate for the key pair; returns its DER encoding. */
export function selfSignedCert(privateKey: KeyObject, publicKey: KeyObject, opts: CertOptions): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const notBefore = opts.notBefore ?? new Date();
  const notAfter = new Date(notBefore.getTime() + opts.days * 86_400_000);
  const serial = Buffer.from(opts.serial ?? randomBytes(16));
  serial[0] = (serial[0] as number) & 0x7f; // positive, as RFC 5280 wants
  const name = cnName(opts.commonName);
  // keyIdentifier = SHA-1 of the subjectPublicKey BIT STRING content (RFC 5280 §4.2.1.2 method 1)
  const spk = children(readTlv(spki))[1] as { content: Buffer };
  const keyId = createHash('sha1').update(spk.content.subarray(1)).digest();
  const ext = (id: string, critical: boolean, value: Buffer): Buffer =>
    critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
  const extensions = seq(
    ext('2.5.29.14', false, octets(keyId)),
    ext('2.5.29.35', false, seq(Buffer.concat([Buffer.from([0x80]), Buffer.from([keyId.length]), keyId]))),
    ext('2.5.29.19', true, seq(bool(true))),
  );
  const tbs = seq(
    explicit(0, int(2)),
    uint(serial),
    algId(OID_SHA256_RSA),
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey);
  return seq(tbs, algId(OID_SHA256_RSA), bitString(signature));
}

/** DER to PEM with the given label. */
export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Reads a certificate in PEM or DER form into DER. Throws when it is neither. */
export function certDer(data: Buffer): Buffer {
  return Buffer.from(new X509Certificate(data).raw);
}

/** The issuer Name and serialNumber INTEGER encodings of a DER certificate (for PKCS#7 IssuerAndSerialNumber). */
export function issuerAndSerial(der: Buffer): Buffer {
  const tbs = children(readTlv(der))[0];
  if (!tbs) throw new RangeError('certificate: no tbsCertificate');
  const f = children(tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0; // skip [0] version
  const serial = f[i];
  const issuer = f[i + 2];
  if (!serial || !issuer) throw new RangeError('certificate: truncated tbsCertificate');
  return seq(issuer.whole, serial.whole);
}
