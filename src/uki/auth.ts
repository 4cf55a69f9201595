/**
 * Signed authenticated variables (.auth, UEFI 2.10 §8.2.2 EFI_VARIABLE_AUTHENTICATION_2): an EFI_TIME, then a
 * WIN_CERTIFICATE_UEFI_GUID holding PKCS#7 over VariableName||VendorGuid||Attributes||TimeStamp||Data, then the
 * data (an EFI signature list). What efitools sign-efi-sig-list and sbctl write; firmware in setup mode or
 * systemd-boot's secure-boot-enroll writes them with SetVariable.
 */
import type { KeyObject } from 'node:crypto';
import { guidBytes } from './esl.js';
import { signedData } from './pkcs7.js';

export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const EFI_CERT_TYPE_PKCS7 = '4aafd29d-68df-49ee-8aa9-347d375665a7';
/** NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS. */
export const AUTH_ATTRS = 0x27;
/** EFI_VARIABLE_APPEND_WRITE, for appending to db/dbx/KEK. */
export const APPEND_WRITE = 0x40;

/** The Secure Boot variables canvos-lite signs. */
export type SecureBootVar = 'PK' | 'KEK' | 'db' | 'dbx';

/** The vendor GUID of a Secure Boot variable. */
export function vendorGuid(name: SecureBootVar): string {
  return name === 'PK' || name === 'KEK' ? EFI_GLOBAL_VARIABLE : EFI_IMAGE_SECURITY_DATABASE;
}

/** EFI_TIME for a date (UTC, nanoseconds, timezone and daylight zero, as the spec requires for auth variables). */
export function efiTime(d: Date): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(d.getUTCFullYear(), 0);
  b.writeUInt8(d.getUTCMonth() + 1, 2);
  b.writeUInt8(d.getUTCDate(), 3);
  b.writeUInt8(d.getUTCHours(), 4);
  b.writeUInt8(d.getUTCMinutes(), 5);
  b.writeUInt8(d.getUTCSeconds(), 6);
  return b;
}

/** Options of {@link signVariable}. */
export interface SignVariableOptions {
  name: SecureBootVar;
  /** The variable content (an EFI signature list; empty to delete). */
  data: Buffer;
  /** Signing key and its DER certificate: PK signs PK and KEK, KEK signs db and dbx. */
  key: KeyObject;
  cert: Buffer;
  /** Timestamp; later than the variable's current one for updates. Default: now. */
  timestamp?: Date;
  /** Attributes. Default: {@link AUTH_ATTRS}. */
  attributes?: number;
}

/** The complete .auth file content: EFI_VARIABLE_AUTHENTICATION_2 followed by the data. */
export function signVariable(opts: SignVariableOptions): Buffer {
  const ts = efiTime(opts.timestamp ?? new Date());
  const attrs = Buffer.alloc(4);
  attrs.writeUInt32LE(opts.attributes ?? AUTH_ATTRS);
  const signed = Buffer.concat([
    Buffer.from(opts.name, 'utf16le'),
    guidBytes(vendorGuid(opts.name)),
    attrs,
    ts,
    opts.data,
  ]);
  const p7 = signedData({ cert: opts.cert, key: opts.key, data: signed, bare: true });
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(8 + 16 + p7.length, 0); // dwLength covers the WIN_CERTIFICATE header, CertType and CertData
  hdr.writeUInt16LE(0x0200, 4); // WIN_CERT_REVISION 2.0
  hdr.writeUInt16LE(0x0ef1, 6); // WIN_CERT_TYPE_EFI_GUID
  return Buffer.concat([ts, hdr, guidBytes(EFI_CERT_TYPE_PKCS7), p7, opts.data]);
}
