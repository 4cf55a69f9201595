/**
 * GRUB for BIOS on a GPT disk, written without grub-install and without a loop device: an i386-pc core image from
 * grub-mkimage (diskboot.img + kernel + modules, with an embedded config) goes into the BIOS boot partition, and
 * grub's boot.img becomes the MBR boot code with the core's LBA patched in, as grub-install's setup does
 * (grub util/setup.c: write_rootdev, save_blocklists; offsets from include/grub/i386/pc/boot.h).
 */
import { constants } from 'node:fs';
import { access, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import { SECTOR } from './gpt.js';
import { runTool } from './tool.js';

/** Modules of the disk core image: read GPT/ext4/squashfs, loop-mount the recovery image, boot Linux. */
export const DISK_CORE_MODULES: readonly string[] = [
  'biosdisk',
  'part_gpt',
  'part_msdos',
  'ext2',
  'fat',
  'squash4',
  'loopback',
  'normal',
  'configfile',
  'linux',
  'search',
  'search_label',
  'search_fs_uuid',
  'search_fs_file',
  'echo',
  'test',
  'true',
  'ls',
  'cat',
  'gzio',
  'serial',
  'terminal',
  'loadenv',
  'boot',
  'sleep',
];

/** boot.img: LBA of the core image's first sector (u64). */
const KERNEL_SECTOR = 0x5c;
/** boot.img: boot drive byte (0xff = use the drive the BIOS passed). */
const BOOT_DRIVE = 0x64;
/** boot.img: the 2-byte jump that skips the drive check; nop'd for hard disks (buggy BIOS workaround). */
const DRIVE_CHECK = 0x66;
/** diskboot.img: the last blocklist entry {start u64, len u16, segment u16} ends the first sector. */
const BLOCKLIST = SECTOR - 12;
/** Where diskboot loads the rest of the core: segment 0x800 + one sector. */
const CORE_SEGMENT = 0x820;

/** Options of {@link biosBootCode}. */
export interface BiosBootOptions {
  /** GRUB script embedded in the core image (finds and loads the real config). */
  earlyConfig: string;
  /** Scratch directory. */
  workDir: string;
  /** Directory with boot.img and the i386-pc modules. Default: /usr/lib/grub/i386-pc. */
  grubPcDir?: string | undefined;
  /** grub-mkimage program. Default: 'grub-mkimage'. */
  grubMkimage?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

/** The MBR boot code and the core image, both still to be patched for their location ({@link placeBiosBoot}). */
export async function biosBootCode(opts: BiosBootOptions): Promise<{ bootImg: Buffer; core: Buffer }> {
  const dir = opts.grubPcDir ?? '/usr/lib/grub/i386-pc';
  const hint = 'install grub-pc-bin and grub-common (apt-get install grub-pc-bin grub-common)';
  for (const f of ['boot.img', 'diskboot.img', 'kernel.img']) {
    const ok = await access(join(dir, f), constants.R_OK).then(
      () => true,
      () => false,
    );
    if (!ok) throw new CanvosError('ERR_DISK', `${join(dir, f)} is missing (BIOS boot of the disk image)`, { hint });
  }
  const cfg = join(opts.workDir, 'early-grub.cfg');
  const out = join(opts.workDir, 'core.img');
  await writeFile(cfg, opts.earlyConfig);
  try {
    const args = ['-O', 'i386-pc', '-d', dir, '-c', cfg, '-p', '/grub2', '-o', out, ...DISK_CORE_MODULES];
    await runTool(opts.grubMkimage ?? 'grub-mkimage', args, { hint, env: opts.env, signal: opts.signal, watch: [out] });
    return { bootImg: await readFile(join(dir, 'boot.img')), core: await readFile(out) };
  } finally {
    await rm(cfg, { force: true });
    await rm(out, { force: true });
  }
}

/** Patches boot.img and the core image for a core written contiguously from `coreLba`. */
export function placeBiosBoot(
  bootImg: Buffer,
  core: Buffer,
  coreLba: number,
  partitionSectors: number,
): { bootCode: Buffer; core: Buffer } {
  const sectors = Math.ceil(core.length / SECTOR);
  if (sectors > partitionSectors || sectors - 1 > 0xffff) {
    throw new CanvosError(
      'ERR_DISK',
      `the GRUB core image (${core.length} bytes) does not fit the BIOS boot partition`,
    );
  }
  const boot = Buffer.from(bootImg.subarray(0, 440));
  boot.writeBigUInt64LE(BigInt(coreLba), KERNEL_SECTOR);
  boot[BOOT_DRIVE] = 0xff;
  boot[DRIVE_CHECK] = 0x90;
  boot[DRIVE_CHECK + 1] = 0x90;
  const c = Buffer.alloc(sectors * SECTOR);
  core.copy(c);
  // One contiguous run: the sectors after diskboot, loaded at CORE_SEGMENT; the entry below stays the terminator.
  c.fill(0, BLOCKLIST - 12, SECTOR);
  c.writeBigUInt64LE(BigInt(coreLba + 1), BLOCKLIST);
  c.writeUInt16LE(sectors - 1, BLOCKLIST + 8);
  c.writeUInt16LE(CORE_SEGMENT, BLOCKLIST + 10);
  return { bootCode: boot, core: c };
}
