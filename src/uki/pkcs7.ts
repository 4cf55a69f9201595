/**
 * PKCS#7 (RFC 2315) SignedData with one RSA/SHA-256 signer, the form UEFI firmware verifies: detached and without
 * authenticated attributes for authenticated variables (as efitools sign-efi-sig-list), or with embedded content
 * and authenticated attributes for Authenticode.
 * @internal
 */
import { sign, type KeyObject } from 'node:crypto';
import { explicit, int, octets, oid, seq, set, tlv } from './der.js';
import { OID_RSA, OID_SHA256, algId, issuerAndSerial } from './x509.js';

export const OID_PKCS7_DATA = '1.2.840.113549.1.7.1';
export const OID_PKCS7_SIGNED = '1.2.840.113549.1.7.2';

/** Options of {@link signedData}. */
export interface SignedDataOptions {
  /** The signer's DER certificate (also embedded in `certificates`). */
  cert: Buffer;
  key: KeyObject;
  /** Content type OID. Default: id-data. */
  contentType?: string;
  /** Embedded content (the encoded value, e.g. SpcIndirectDataContent); omitted = detached. */
  content?: Buffer;
  /** Bytes signed when there are no authenticated attributes (the detached data). */
  data?: Buffer;
  /** Authenticated attributes (each an encoded Attribute); the signature then covers their SET encoding. */
  authAttrs?: Buffer[];
  /** Return the bare SignedData, as UEFI authenticated variables carry it (UEFI 2.10 §8.2.2). Default: false. */
  bare?: boolean;
}

/** ContentInfo{signedData}, or the bare SignedData. */
export function signedData(opts: SignedDataOptions): Buffer {
  const contentType = opts.contentType ?? OID_PKCS7_DATA;
  let signature: Buffer;
  let attrs: Buffer | undefined;
  if (opts.authAttrs) {
    const s = set(...opts.authAttrs);
    signature = sign('sha256', s, opts.key);
    attrs = Buffer.concat([Buffer.from([0xa0]), s.subarray(1)]); // [0] IMPLICIT SET OF Attribute
  } else {
    if (!opts.data) throw new RangeError('signedData: data or authAttrs required');
    signature = sign('sha256', opts.data, opts.key);
  }
  const signerInfo = seq(
    int(1),
    issuerAndSerial(opts.cert),
    algId(OID_SHA256),
    ...(attrs ? [attrs] : []),
    algId(OID_RSA),
    octets(signature),
  );
  const contentInfo = opts.content ? seq(oid(contentType), explicit(0, opts.content)) : seq(oid(contentType));
  const sd = seq(int(1), set(algId(OID_SHA256)), contentInfo, tlv(0xa0, opts.cert), set(signerInfo));
  return opts.bare ? sd : seq(oid(OID_PKCS7_SIGNED), explicit(0, sd));
}

/** Attribute ::= SEQUENCE { type, SET OF value }. */
export const attribute = (type: string, value: Buffer): Buffer => seq(oid(type), set(value));
