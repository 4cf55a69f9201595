/**
 * Authenticode signing of PE images in TypeScript (Microsoft "Windows Authenticode Portable Executable Signature
 * Format"): the image hash skips CheckSum, the Certificate Table entry and the certificate table itself; the
 * signature is PKCS#7 SignedData over SpcIndirectDataContent with contentType/messageDigest/SpcSpOpusInfo
 * attributes, appended as a WIN_CERTIFICATE (8-byte aligned). The default signer of sign.ts.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { bitString, explicit, implicitPrim, octets, oid, readTlv, seq, tlv } from './der.js';
import { alignUp, parsePe } from './pe.js';
import { attribute, signedData } from './pkcs7.js';
import { OID_SHA256, algId } from './x509.js';

const OID_SPC_INDIRECT_DATA = '1.3.6.1.4.1.311.2.1.4';
const OID_SPC_PE_IMAGE_DATA = '1.3.6.1.4.1.311.2.1.15';
const OID_SPC_SP_OPUS_INFO = '1.3.6.1.4.1.311.2.1.12';
const OID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const CHUNK = 1 << 20;

/** SHA-256 Authenticode hash of the PE image at `path` (which must not be signed yet). */
export async function authenticodeHash(path: string): Promise<{ hash: Buffer; size: number }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(size, 64 * 1024));
    await fh.read(head, 0, head.length, 0);
    const h = parsePe(head);
    if (head.readUInt32LE(h.certDir + 4) !== 0) throw new RangeError('image is already signed');
    const sha = createHash('sha256');
    sha.update(head.subarray(0, h.checksum));
    sha.update(head.subarray(h.checksum + 4, h.certDir));
    sha.update(head.subarray(h.certDir + 8, h.sizeOfHeaders));
    const buf = Buffer.alloc(CHUNK);
    const hashRange = async (from: number, len: number): Promise<void> => {
      for (let done = 0; done < len;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, len - done), from + done);
        if (bytesRead === 0) throw new RangeError('truncated PE image');
        sha.update(buf.subarray(0, bytesRead));
        done += bytesRead;
      }
    };
    let end = h.sizeOfHeaders;
    for (const s of [...h.sections].filter((x) => x.rawSize > 0).sort((a, b) => a.rawPointer - b.rawPointer)) {
      await hashRange(s.rawPointer, s.rawSize);
      end = Math.max(end, s.rawPointer + s.rawSize);
    }
    if (size > end) await hashRange(end, size - end); // data after the last section (no certificate table yet)
    return { hash: sha.digest(), size };
  } finally {
    await fh.close();
  }
}

/**
 * Prepares an image for signing: removes an existing signature (as sbsign replaces one) and the data after the
 * last section (a COFF symbol table, as in systemd-bootx64.efi: EFI loaders never map it, sbverify refuses
 * images with such unaccounted bytes), zeroing the COFF symbol table fields that pointed there.
 */
export async function prepareForSigning(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const head = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const h = parsePe(head.subarray(0, bytesRead));
    const end = Math.max(
      h.sizeOfHeaders,
      ...h.sections.filter((x) => x.rawSize > 0).map((x) => x.rawPointer + x.rawSize),
    );
    if ((await fh.stat()).size <= end) return;
    await fh.write(Buffer.alloc(8), 0, 8, h.certDir);
    await fh.write(Buffer.alloc(8), 0, 8, h.coff + 8); // PointerToSymbolTable, NumberOfSymbols
    await fh.truncate(end);
  } finally {
    await fh.close();
  }
}

/** Signs the PE image at `path` in place with `key`/`cert` (DER). */
export async function authenticodeSign(path: string, key: KeyObject, cert: Buffer): Promise<void> {
  const { hash, size } = await authenticodeHash(path);
  // SpcPeImageData { flags BIT STRING {}, file [0] SpcLink { file [2] SpcString { unicode [0] "<<<Obsolete>>>" } } }
  const obsolete = implicitPrim(0, Buffer.from('<<<Obsolete>>>', 'utf16le').swap16());
  const peImageData = seq(bitString(Buffer.alloc(0)), explicit(0, tlv(0xa2, obsolete)));
  const indirect = seq(seq(oid(OID_SPC_PE_IMAGE_DATA), peImageData), seq(algId(OID_SHA256), octets(hash)));
  // messageDigest covers the content octets of SpcIndirectDataContent, not its SEQUENCE header
  const digest = createHash('sha256').update(readTlv(indirect).content).digest();
  const p7 = signedData({
    cert,
    key,
    contentType: OID_SPC_INDIRECT_DATA,
    content: indirect,
    authAttrs: [
      attribute(OID_CONTENT_TYPE, oid(OID_SPC_INDIRECT_DATA)),
      attribute(OID_SPC_SP_OPUS_INFO, seq()),
      attribute(OID_MESSAGE_DIGEST, octets(digest)),
    ],
  });
  const at = alignUp(size, 8);
  const len = alignUp(8 + p7.length, 8);
  const win = Buffer.alloc(len);
  win.writeUInt32LE(len, 0);
  win.writeUInt16LE(0x0200, 4); // WIN_CERT_REVISION_2_0
  win.writeUInt16LE(0x0002, 6); // WIN_CERT_TYPE_PKCS_SIGNED_DATA
  p7.copy(win, 8);
  const fh = await open(path, 'r+');
  try {
    const head = Buffer.alloc(1024);
    await fh.read(head, 0, head.length, 0);
    const h = parsePe(head);
    const dir = Buffer.alloc(8);
    dir.writeUInt32LE(at, 0);
    dir.writeUInt32LE(len, 4);
    await fh.write(dir, 0, 8, h.certDir);
    if (at > size) await fh.write(Buffer.alloc(at - size), 0, at - size, size);
    await fh.write(win, 0, len, at);
  } finally {
    await fh.close();
  }
}
