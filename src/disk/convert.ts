/**
 * Converts the raw disk: `raw.gz` (MAAS custom image, `ddgz`) with zlib, and with qemu-img `qcow2` (QEMU/KVM, OpenStack, MAAS custom images) and `vhd` as a *fixed*
 * VHD (`vpc`, subformat=fixed, force_size=on: the virtual size stays the raw size, a whole number of MiB, which
 * Azure requires). The VHD footer's timestamp and UUID are set from SOURCE_DATE_EPOCH and the image name so the
 * file is reproducible (qemu-img writes the current time and a random UUID).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CanvosError } from '../errors.js';
import { uuidV5 } from './gpt.js';
import { runTool } from './tool.js';

/** Output formats besides raw; `raw.gz` is MAAS's `ddgz` upload format (AuroraBoot Raw2MAAS: gzip, fastest level). */
export type DiskFormat = 'qcow2' | 'vhd' | 'raw.gz';

/** Options of {@link convertDisk}. */
export interface ConvertDiskOptions {
  /** VHD footer time. Default: 0 (the VHD epoch, 2000-01-01). */
  sourceDateEpoch?: number | undefined;
  /** qemu-img program. Default: 'qemu-img'. */
  qemuImg?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

/** qemu-img arguments for `format`. */
export function qemuImgArgs(raw: string, out: string, format: 'qcow2' | 'vhd'): string[] {
  const o =
    format === 'qcow2' ? ['-O', 'qcow2', '-o', 'compat=1.1'] : ['-O', 'vpc', '-o', 'subformat=fixed,force_size=on'];
  return ['convert', '-q', '-f', 'raw', ...o, raw, out];
}

/** Writes `<raw without .raw>.<format>` next to `raw` (via `.partial`) and returns its path. */
export async function convertDisk(raw: string, format: DiskFormat, opts: ConvertDiskOptions = {}): Promise<string> {
  const out = `${raw.replace(/\.raw$/, '')}.${format}`;
  const partial = `${out}.partial`;
  await rm(partial, { force: true });
  try {
    if (format === 'raw.gz') {
      // Node's gzip header has mtime 0 and no name: the same raw gives the same .raw.gz.
      await pipeline(createReadStream(raw), createGzip({ level: 1 }), createWriteStream(partial), {
        signal: opts.signal,
      });
      await rename(partial, out);
      return out;
    }
    await runTool(opts.qemuImg ?? 'qemu-img', qemuImgArgs(raw, partial, format), {
      hint: 'install qemu-utils (apt-get install qemu-utils), or build only the .raw image',
      env: opts.env,
      signal: opts.signal,
      watch: [partial],
    });
    if (format === 'vhd')
      await fixVhdFooter(partial, opts.sourceDateEpoch ?? 0, uuidV5(`canvos-lite:vhd:${out.split('/').pop() ?? ''}`));
    await rename(partial, out);
    return out;
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  }
}

/** VHD footer (last 512 bytes of a fixed VHD): timestamp at 24, checksum at 64, UUID at 68 (VHD spec 1.0). */
async function fixVhdFooter(file: string, epoch: number, uuid: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const { size } = await fh.stat();
    const f = Buffer.alloc(512);
    await fh.read(f, 0, 512, size - 512);
    if (f.toString('latin1', 0, 8) !== 'conectix')
      throw new CanvosError('ERR_DISK', `${file}: qemu-img wrote no VHD footer`);
    f.writeUInt32BE(Math.max(0, epoch - 946_684_800) >>> 0, 24);
    // The footer stores the UUID big-endian (RFC 4122 byte order), unlike GPT's mixed-endian GUIDs.
    Buffer.from(uuid.replace(/-/g, ''), 'hex').copy(f, 68);
    f.writeUInt32BE(0, 64);
    let sum = 0;
    for (const b of f) sum += b;
    f.writeUInt32BE(~sum >>> 0, 64);
    await fh.write(f, 0, 512, size - 512);
  } finally {
    await fh.close();
  }
}

/** Converts `raw` to each of `formats` in turn; returns the written paths by format. */
export async function convertAll(
  raw: string,
  formats: readonly DiskFormat[],
  opts: ConvertDiskOptions = {},
): Promise<Partial<Record<DiskFormat, string>>> {
  const out: Partial<Record<DiskFormat, string>> = {};
  for (const f of formats) out[f] = await convertDisk(raw, f, opts);
  return out;
}
