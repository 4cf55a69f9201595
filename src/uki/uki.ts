/**
 * Unified kernel images: systemd's EFI stub (linuxx64.efi.stub) with .osrel, .cmdline, .uname, .pcrpkey, .pcrsig,
 * .initrd and .linux sections appended, in ukify's order, streamed from the input files (kernel and initrds are never held
 * in memory). Signing is separate (sign.ts), as ukify signs after assembly.
 */
import { existsSync } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { parsePe, planSections, type NewSection } from './pe.js';
import { throwIfAborted } from '../util/abort.js';
import { pcrSignatureJson, stubVersion, type SectionData } from './pcrsig.js';

/** Where Debian's systemd-boot-efi (and most distributions) put the stub. */
export const DEFAULT_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

/** A section payload: literal bytes or files concatenated (initrds). */
type Payload = { bytes: Buffer } | { files: string[] };

/** Options of {@link buildUki}. */
export interface BuildUkiOptions {
  /** Kernel image (bzImage with an EFI stub). */
  kernel: string;
  /** Initrd files, concatenated into .initrd in order. */
  initrds: string[];
  /** Kernel command line (.cmdline). */
  cmdline: string;
  /** os-release content (.osrel). */
  osRelease: string;
  /** Kernel release, `uname -r` (.uname). Default: none. */
  uname?: string;
  /** PEM public key of the TPM PCR signing key (.pcrpkey). Default: none. */
  pcrPublicKey?: string;
  /**
   * The TPM PCR signing key (PEM file, tpm2-pcr-private.pem): adds .pcrsig, the signed PCR 11 policy for the
   * boot phases (pcrsig.ts). Default: none.
   */
  pcrPrivateKey?: string;
  /** The EFI stub. Default: {@link DEFAULT_STUB}. */
  stub?: string;
  signal?: AbortSignal;
}

const CHUNK = 1 << 20;

async function copyRange(
  src: FileHandle,
  from: number,
  length: number,
  dst: FileHandle,
  to: number,
  signal?: AbortSignal,
): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(length, 1)));
  for (let done = 0; done < length;) {
    throwIfAborted(signal);
    const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, length - done), from + done);
    if (bytesRead === 0)
      throw new CanvosError('ERR_CONFIG', 'input file shrank while it was read', {
        hint: 'do not change inputs during the build',
      });
    await dst.write(buf, 0, bytesRead, to + done);
    done += bytesRead;
  }
}

async function sizeOf(p: Payload): Promise<number> {
  if ('bytes' in p) return p.bytes.length;
  let n = 0;
  for (const f of p.files) {
    const st = await stat(f).catch((e: unknown) => {
      throw new CanvosError('ERR_CONFIG', `${f}: cannot read (${(e as Error).message})`, {
        cause: e,
        hint: 'check the kernel and initrd paths',
      });
    });
    n += st.size;
  }
  return n;
}

/** The stub's own sections `names` (contents up to their VirtualSize) and its systemd version (.sdmagic). */
async function stubSections(
  stubPath: string,
  names: string[],
): Promise<{ version?: number; found: Map<string, Buffer> }> {
  const fh = await open(stubPath, 'r');
  try {
    const head = Buffer.alloc(Math.min((await fh.stat()).size, 64 * 1024));
    await fh.read(head, 0, head.length, 0);
    const found = new Map<string, Buffer>();
    for (const s of parsePe(head).sections) {
      if (!names.includes(s.name) && s.name !== '.sdmagic') continue;
      const b = Buffer.alloc(Math.min(s.virtualSize, s.rawSize));
      await fh.read(b, 0, b.length, s.rawPointer);
      found.set(s.name, b);
    }
    const magic = found.get('.sdmagic');
    const version = magic ? stubVersion(magic) : undefined;
    return { ...(version !== undefined ? { version } : {}), found };
  } catch (e) {
    throw new CanvosError('ERR_CONFIG', `${stubPath}: unusable EFI stub (${(e as Error).message})`, {
      cause: e,
      hint: 'use systemd-boot-efi linuxx64.efi.stub',
    });
  } finally {
    await fh.close();
  }
}

/** The .pcrsig JSON for the UKI of `payloads` on the stub at `stubPath` (whose own .sbat the stub measures too). */
async function pcrsigFor(
  stubPath: string,
  keyPath: string,
  payloads: [string, Payload][],
  signal?: AbortSignal,
): Promise<string> {
  const stub = await stubSections(stubPath, ['.sbat', '.splash', '.dtb']);
  const sections = new Map<string, SectionData>(stub.found);
  for (const [name, p] of payloads) sections.set(name, 'bytes' in p ? p.bytes : p.files);
  const key = await readFile(keyPath).catch((e: unknown) => {
    throw new CanvosError('ERR_CONFIG', `${keyPath}: cannot read the TPM PCR signing key (${(e as Error).message})`, {
      cause: e,
      hint: 'run canvos-lite uki genkey (it writes private-keys/tpm2-pcr-private.pem)',
    });
  });
  return pcrSignatureJson({ sections, privateKey: key, stubVersion: stub.version, signal });
}

/** Assembles the (unsigned) UKI at `output`; returns the section names and sizes added. */
export async function buildUki(output: string, opts: BuildUkiOptions): Promise<NewSection[]> {
  const stubPath = opts.stub ?? DEFAULT_STUB;
  if (!existsSync(stubPath)) {
    throw new CanvosError('ERR_CONFIG', `systemd EFI stub ${stubPath} not found`, {
      hint: 'install systemd-boot-efi (Debian/Ubuntu) or pass --stub FILE',
    });
  }
  const payloads: [string, Payload][] = [
    ['.osrel', { bytes: Buffer.from(opts.osRelease) }],
    ['.cmdline', { bytes: Buffer.from(opts.cmdline) }],
    ...(opts.uname ? ([['.uname', { bytes: Buffer.from(opts.uname) }]] as [string, Payload][]) : []),
    ...(opts.pcrPublicKey ? ([['.pcrpkey', { bytes: Buffer.from(opts.pcrPublicKey) }]] as [string, Payload][]) : []),
    ['.initrd', { files: opts.initrds }],
    ['.linux', { files: [opts.kernel] }],
  ];
  if (opts.pcrPrivateKey) {
    const pcrsig = await pcrsigFor(stubPath, opts.pcrPrivateKey, payloads, opts.signal);
    payloads.splice(
      payloads.findIndex(([n]) => n === '.initrd'),
      0,
      ['.pcrsig', { bytes: Buffer.from(pcrsig) }],
    );
  }
  const adds: NewSection[] = [];
  for (const [name, p] of payloads) adds.push({ name, size: await sizeOf(p) });
  const stub = await open(stubPath, 'r');
  const out = await open(output, 'w', 0o644);
  try {
    const head = Buffer.alloc(Math.min((await stub.stat()).size, 64 * 1024));
    await stub.read(head, 0, head.length, 0);
    let h;
    let layout;
    try {
      h = parsePe(head);
      layout = planSections(head, adds);
    } catch (e) {
      throw new CanvosError('ERR_CONFIG', `${stubPath}: unusable EFI stub (${(e as Error).message})`, {
        cause: e,
        hint: 'use systemd-boot-efi linuxx64.efi.stub',
      });
    }
    await out.write(layout.headers, 0, layout.headers.length, 0);
    const withData = h.sections.filter((s) => s.rawPointer && s.rawSize);
    const from = Math.min(...withData.map((s) => s.rawPointer));
    const to = Math.max(...withData.map((s) => s.rawPointer + s.rawSize));
    await copyRange(stub, from, to - from, out, from + layout.shift, opts.signal);
    for (const [i, [, p]] of payloads.entries()) {
      const at = layout.placed[i]?.rawPointer as number;
      if ('bytes' in p) await out.write(p.bytes, 0, p.bytes.length, at);
      else {
        let off = at;
        for (const f of p.files) {
          const fh = await open(f, 'r');
          try {
            const n = (await fh.stat()).size;
            await copyRange(fh, 0, n, out, off, opts.signal);
            off += n;
          } finally {
            await fh.close();
          }
        }
      }
    }
    await out.truncate(layout.size);
  } finally {
    await stub.close();
    await out.close();
  }
  return adds;
}
