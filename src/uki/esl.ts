/**
 * EFI_SIGNATURE_LIST (UEFI 2.10 §32.4.1) writer and reader: the .esl files of CanvOS's secure-boot/enrollment and
 * the payload of PK/KEK/db/dbx. One list per X.509 certificate (their sizes differ); SHA-256 hashes share a list.
 */

/** EFI_CERT_X509_GUID. */
export const EFI_CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
/** EFI_CERT_SHA256_GUID. */
export const EFI_CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';
/** Microsoft's signature owner GUID (what sbctl and efitools use for Microsoft's certificates). */
export const MICROSOFT_OWNER = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

/** A GUID in its mixed-endian EFI_GUID byte form. */
export function guidBytes(guid: string): Buffer {
  const h = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(h)) throw new RangeError(`not a GUID: ${guid}`);
  const b = Buffer.from(h, 'hex');
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}

/** The text form of an EFI_GUID's 16 bytes. */
export function guidString(b: Buffer): string {
  const r = (x: Buffer): string => Buffer.from(x).reverse().toString('hex');
  const t = b.subarray(8).toString('hex');
  return `${r(b.subarray(0, 4))}-${r(b.subarray(4, 6))}-${r(b.subarray(6, 8))}-${t.slice(0, 4)}-${t.slice(4)}`;
}

/** One signature: its type, owner and data (a DER certificate or a 32-byte hash). */
export interface EfiSignature {
  type: string;
  owner: string;
  data: Buffer;
}

/** Encodes signatures as concatenated EFI_SIGNATURE_LISTs, grouping same type and size in order. */
export function encodeEsl(sigs: readonly EfiSignature[]): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < sigs.length) {
    const first = sigs[i] as EfiSignature;
    const group = [first];
    // x509 lists hold one certificate each (as efitools cert-to-efi-sig-list and sbctl write them)
    if (first.type !== EFI_CERT_X509) {
      while (i + group.length < sigs.length) {
        const n = sigs[i + group.length] as EfiSignature;
        if (n.type !== first.type || n.data.length !== first.data.length) break;
        group.push(n);
      }
    }
    i += group.length;
    const sigSize = 16 + first.data.length;
    const header = Buffer.alloc(28);
    guidBytes(first.type).copy(header, 0);
    header.writeUInt32LE(28 + sigSize * group.length, 16);
    header.writeUInt32LE(0, 20);
    header.writeUInt32LE(sigSize, 24);
    out.push(header);
    for (const s of group) out.push(guidBytes(s.owner), s.data);
  }
  return Buffer.concat(out);
}

/** Decodes concatenated EFI_SIGNATURE_LISTs. Throws RangeError on a malformed list. */
export function decodeEsl(b: Buffer): EfiSignature[] {
  const out: EfiSignature[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 28 > b.length) throw new RangeError(`EFI signature list truncated at byte ${off}`);
    const type = guidString(b.subarray(off, off + 16));
    const listSize = b.readUInt32LE(off + 16);
    const headerSize = b.readUInt32LE(off + 20);
    const sigSize = b.readUInt32LE(off + 24);
    if (
      sigSize < 16 ||
      listSize < 28 + headerSize ||
      off + listSize > b.length ||
      (listSize - 28 - headerSize) % sigSize !== 0
    ) {
      throw new RangeError(`EFI signature list at byte ${off} has inconsistent sizes`);
    }
    for (let p = off + 28 + headerSize; p < off + listSize; p += sigSize) {
      out.push({ type, owner: guidString(b.subarray(p, p + 16)), data: Buffer.from(b.subarray(p + 16, p + sigSize)) });
    }
    off += listSize;
  }
  return out;
}
