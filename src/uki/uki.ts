/**
 * Unified kernel images: systemd's EFI stub (linuxx64.efi.stub) with .osrel, .cmdline, .uname, .pcrpkey, .initrd
 * and .linux sections appended, in ukify's order, streamed from the input files (kernel and initrds are never held
 * in memory). Signing is separate (sign.ts), as ukify signs after assembly.
 */
import { existsSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { CanvosError } from '../errors.js';
import { parsePe, planSections, type NewSection } from './pe.js';
import { throwIfAborted } from '../util/abort.js';

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
