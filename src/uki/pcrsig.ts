/**
 * The `.pcrsig` section of a UKI: the PCR 11 values systemd-stub will have measured when the booted system reaches
 * each boot phase, as TPM2 PolicyPCR digests signed with the TPM PCR signing key (what `systemd-measure sign`
 * computes and ukify embeds; the UKI spec's "JSON Format for .pcrsig"). systemd-cryptsetup unlocks a disk bound
 * with `--tpm2-public-key` only when the booted UKI carries a signature for the current PCR 11 value.
 *
 * PCR 11 starts at zero; the stub extends it, for every measured section in the canonical order, with the digest of
 * the section name (with its NUL) and then of the section contents; systemd-pcrphase then extends it with the
 * digest of each phase word. The policy is TPM2_PolicyPCR's digest over PCR 11 of the sha256 bank; the signature is
 * RSA PKCS#1 v1.5 / SHA-256 over that digest, `pkfp` the SHA-256 of the public key's PKCS#1 DER.
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** The UKI sections systemd-stub measures into PCR 11, in its (canonical) order; `.pcrsig` is never measured. */
export const MEASURED_SECTIONS = [
  '.linux',
  '.osrel',
  '.cmdline',
  '.initrd',
  '.ucode',
  '.splash',
  '.dtb',
  '.uname',
  '.sbat',
  '.pcrpkey',
] as const;

/** systemd-measure's default boot phases (the words systemd-pcrphase measures, `:`-separated). */
export const DEFAULT_PHASES = [
  'enter-initrd',
  'enter-initrd:leave-initrd',
  'enter-initrd:leave-initrd:sysinit',
  'enter-initrd:leave-initrd:sysinit:ready',
];

/**
 * The sections a systemd-stub of `version` measures: 252 and older know neither `.uname` nor `.sbat` (added to the
 * stub's section list in 253), `.ucode` came with 256. Unknown version: the newest list.
 */
export function measuredSections(version: number | undefined): string[] {
  return MEASURED_SECTIONS.filter(
    (s) =>
      version === undefined ||
      (((s !== '.uname' && s !== '.sbat') || version >= 253) && (s !== '.ucode' || version >= 256)),
  );
}

/** The systemd version in a stub's `.sdmagic` ("#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####"). */
export function stubVersion(sdmagic: Buffer): number | undefined {
  const m = /systemd-stub (\d+)/.exec(sdmagic.toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

/** A section's contents: bytes, or files concatenated (streamed). */
export type SectionData = Buffer | string[];

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

async function digestOf(data: SectionData, signal?: AbortSignal): Promise<Buffer> {
  if (Buffer.isBuffer(data)) return sha256(data);
  const h = createHash('sha256');
  for (const f of data) for await (const chunk of createReadStream(f, { signal })) h.update(chunk as Buffer);
  return h.digest();
}

/** PCR 11 (sha256 bank) after the stub measured `sections` (only those in `measured`, in that order). */
export async function pcr11AfterStub(
  sections: ReadonlyMap<string, SectionData>,
  measured: readonly string[],
  signal?: AbortSignal,
): Promise<Buffer> {
  let pcr: Buffer = Buffer.alloc(32);
  for (const name of measured) {
    const data = sections.get(name);
    if (data === undefined) continue;
    pcr = sha256(pcr, sha256(Buffer.from(`${name}\0`, 'latin1')));
    pcr = sha256(pcr, await digestOf(data, signal));
  }
  return pcr;
}

/** PCR 11 once systemd-pcrphase measured every word of `phase` ("enter-initrd:leave-initrd"). */
export function pcr11AtPhase(afterStub: Buffer, phase: string): Buffer {
  let pcr = afterStub;
  for (const word of phase.split(':')) pcr = sha256(pcr, sha256(Buffer.from(word, 'utf8')));
  return pcr;
}

/** TPM_CC_PolicyPCR. */
const TPM_CC_POLICY_PCR = 0x17f;
/** TPM_ALG_SHA256. */
const TPM_ALG_SHA256 = 0x0b;

/**
 * TPM2_PolicyPCR's policy digest for PCR 11 of the sha256 bank holding `pcr`, from an empty policy (TPM 2.0
 * Part 3 §23.7: H(policy || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || H(pcr values))).
 */
export function policyPcrDigest(pcr: Buffer): Buffer {
  const cc = Buffer.alloc(4);
  cc.writeUInt32BE(TPM_CC_POLICY_PCR);
  // TPML_PCR_SELECTION: count 1, { hash sha256, sizeofSelect 3, pcrSelect bit 11 }
  const sel = Buffer.from([0, 0, 0, 1, 0, TPM_ALG_SHA256, 3, 0x00, 1 << (11 - 8), 0x00]);
  return sha256(Buffer.alloc(32), cc, sel, sha256(pcr));
}

/** Options of {@link pcrSignatureJson}. */
export interface PcrSignatureOptions {
  /** The UKI's sections by name (those not measured are ignored). */
  sections: ReadonlyMap<string, SectionData>;
  /** The TPM PCR signing key (RSA; tpm2-pcr-private.pem): a KeyObject or PEM. */
  privateKey: KeyObject | string | Buffer;
  /** The stub's systemd version (selects the measured sections). Default: the newest list. */
  stubVersion?: number | undefined;
  /** Default: {@link DEFAULT_PHASES}. */
  phases?: readonly string[] | undefined;
  signal?: AbortSignal | undefined;
}

/** The `.pcrsig` JSON, exactly as `systemd-measure sign --bank=sha256 --json=short` prints it (with its newline). */
export async function pcrSignatureJson(opts: PcrSignatureOptions): Promise<string> {
  const key =
    typeof opts.privateKey === 'object' && 'type' in opts.privateKey && !Buffer.isBuffer(opts.privateKey)
      ? opts.privateKey
      : createPrivateKey(opts.privateKey);
  const pkfp = sha256(createPublicKey(key).export({ type: 'pkcs1', format: 'der' })).toString('hex');
  const afterStub = await pcr11AfterStub(opts.sections, measuredSections(opts.stubVersion), opts.signal);
  const entries = (opts.phases ?? DEFAULT_PHASES).map((phase) => {
    const pol = policyPcrDigest(pcr11AtPhase(afterStub, phase));
    return { pcrs: [11], pkfp, pol: pol.toString('hex'), sig: sign('sha256', pol, key).toString('base64') };
  });
  return `${JSON.stringify({ sha256: entries })}\n`;
}
