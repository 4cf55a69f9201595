/**
 * EFI and BIOS boot artefacts. EFI: shim and grub taken from the rootfs in AuroraBoot's order (kairos-sdk path
 * lists, CD-variant grub first), else the host's monolithic CD grub as the removable-media loader. BIOS:
 * eltorito.img = grub's cdboot.img + an i386-pc core image from grub-mkimage (prefix /boot/grub2), and
 * boot_hybrid.img, both from the host's grub-pc-bin. Argument building is kept apart from execution.
 */
import { constants } from 'node:fs';
import { access, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import type { FatFileSpec } from './fat.js';
import { GRUB_CHAINLOAD_CFG } from './grub-cfg.js';
import { runTool } from '../util/run-tool.js';

/** Target architecture of the ISO. */
export type IsoArch = 'amd64' | 'arm64';

/** Boot file names in EFI/BOOT for an architecture. */
export function efiNames(arch: IsoArch): { removable: string; grub: string; hostDir: string; hostPackage: string } {
  return arch === 'arm64'
    ? {
        removable: 'bootaa64.efi',
        grub: 'grubaa64.efi',
        hostDir: '/usr/lib/grub/arm64-efi',
        hostPackage: 'grub-efi-arm64-bin',
      }
    : {
        removable: 'bootx64.efi',
        grub: 'grubx64.efi',
        hostDir: '/usr/lib/grub/x86_64-efi',
        hostPackage: 'grub-efi-amd64-bin',
      };
}

/** Rootfs paths (no leading `/`) where a shim may live, in AuroraBoot (kairos-sdk) preference order. */
export function shimCandidates(arch: IsoArch): string[] {
  const a = arch === 'arm64' ? 'aa64' : 'x64';
  const suse = arch === 'arm64' ? 'aarch64' : 'x86_64';
  const rh = ['fedora/shim.efi', 'rocky/shim.efi', 'redhat/shim.efi', `redhat/shim${a}.efi`, 'almalinux/shim.efi'];
  return [
    `usr/share/efi/${suse}/shim.efi`,
    `usr/lib/shim/shim${a}.efi.dualsigned`,
    `usr/lib/shim/shim${a}.efi.signed.latest`,
    `usr/lib/shim/shim${a}.efi.signed`,
    ...rh.map((p) => `boot/efi/EFI/${p}`),
  ];
}

/** Rootfs paths of grub EFI binaries, the ISO9660-capable CD variant first (kairos-sdk GetEfiLiveGrubFiles). */
export function grubCandidates(arch: IsoArch): string[] {
  const [deb, suse, g] =
    arch === 'arm64' ? ['arm64-efi', 'aarch64', 'grubaa64.efi'] : ['x86_64-efi', 'x86_64', 'grubx64.efi'];
  const cd = arch === 'arm64' ? 'gcdaa64.efi.signed' : 'gcdx64.efi.signed';
  return [
    `usr/lib/grub/${deb}-signed/${cd}`,
    `usr/share/efi/${suse}/grub.efi`,
    `usr/lib/grub/${deb}-signed/${g}.signed`,
    ...['fedora', 'rocky', 'redhat', 'almalinux'].map((d) => `boot/efi/EFI/${d}/${g}`),
    `usr/lib/grub/${deb}/${g}`,
  ];
}

/** Options of {@link efiBootFiles}. */
export interface EfiBootOptions {
  arch: IsoArch;
  /** Host path of a rootfs file (already resolved through symlinks), or undefined when the rootfs lacks it. */
  fromRootfs: (path: string) => string | undefined;
  /** Also write EFI/ubuntu/grub.cfg (the rootfs flavor is Ubuntu). Default: false. */
  ubuntu?: boolean | undefined;
  /** Host grub EFI directory for the fallback. Default: /usr/lib/grub/x86_64-efi (arm64: arm64-efi). */
  hostGrubDir?: string | undefined;
}

/** The files of the EFI system partition image: loaders in EFI/BOOT plus the chainload stubs. */
export async function efiBootFiles(opts: EfiBootOptions): Promise<{ files: FatFileSpec[]; source: 'rootfs' | 'host' }> {
  const names = efiNames(opts.arch);
  const stub = Buffer.from(GRUB_CHAINLOAD_CFG);
  const stubs: FatFileSpec[] = [
    { path: 'EFI/BOOT/grub.cfg', source: stub },
    { path: 'boot/grub/grub.cfg', source: stub },
    ...(opts.ubuntu ? [{ path: 'EFI/ubuntu/grub.cfg', source: stub }] : []),
  ];
  const shim = firstPresent(shimCandidates(opts.arch), opts.fromRootfs);
  const grub = firstPresent(grubCandidates(opts.arch), opts.fromRootfs);
  if (shim && grub) {
    return {
      source: 'rootfs',
      files: [
        { path: `EFI/BOOT/${names.removable}`, source: shim },
        { path: `EFI/BOOT/${names.grub}`, source: grub },
        ...stubs,
      ],
    };
  }
  if (grub && !shim) {
    // No shim: the grub binary itself is the removable-media loader.
    return { source: 'rootfs', files: [{ path: `EFI/BOOT/${names.removable}`, source: grub }, ...stubs] };
  }
  const hostDir = opts.hostGrubDir ?? names.hostDir;
  const cd = join(hostDir, 'monolithic', opts.arch === 'arm64' ? 'gcdaa64.efi' : 'gcdx64.efi');
  if (!(await exists(cd))) {
    throw new CanvosError('ERR_ISO', `no grub EFI binary in the rootfs and ${cd} is missing on this host`, {
      hint: `install ${names.hostPackage} (apt-get install ${names.hostPackage}) or use a base image that ships grub`,
    });
  }
  return { source: 'host', files: [{ path: `EFI/BOOT/${names.removable.toUpperCase()}`, source: cd }, ...stubs] };
}

function firstPresent(paths: readonly string[], lookup: (p: string) => string | undefined): string | undefined {
  for (const p of paths) {
    const host = lookup(p);
    if (host !== undefined) return host;
  }
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  return access(p, constants.R_OK).then(
    () => true,
    () => false,
  );
}

/** GRUB modules of the BIOS core image: enough to find the ISO by file, read iso9660/fat and boot Linux. */
export const BIOS_CORE_MODULES: readonly string[] = [
  'biosdisk',
  'iso9660',
  'part_msdos',
  'part_gpt',
  'fat',
  'ext2',
  'normal',
  'configfile',
  'linux',
  'search',
  'search_label',
  'search_fs_file',
  'search_fs_uuid',
  'echo',
  'test',
  'true',
  'ls',
  'cat',
  'gzio',
  'serial',
  'terminal',
  'boot',
];

/** Arguments of `grub-mkimage` for the i386-pc core image (prefix /boot/grub2, like AuroraBoot's). */
export function grubMkimageArgs(
  output: string,
  modules: readonly string[] = BIOS_CORE_MODULES,
  prefix = '/boot/grub2',
): string[] {
  return ['-O', 'i386-pc', '-p', prefix, '-o', output, ...modules];
}

/** Options of {@link writeBiosImages}. */
export interface BiosImageOptions {
  /** grub-mkimage program. Default: 'grub-mkimage' on PATH. */
  grubMkimage?: string | undefined;
  /** Directory with cdboot.img and boot_hybrid.img. Default: /usr/lib/grub/i386-pc. */
  grubPcDir?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** Writes `<bootDir>/eltorito.img` and `<bootDir>/boot_hybrid.img`. */
export async function writeBiosImages(bootDir: string, opts: BiosImageOptions = {}): Promise<void> {
  const pcDir = opts.grubPcDir ?? '/usr/lib/grub/i386-pc';
  const hint = 'install grub-pc-bin and grub-common (apt-get install grub-pc-bin grub-common)';
  for (const f of ['cdboot.img', 'boot_hybrid.img', 'kernel.img']) {
    if (!(await exists(join(pcDir, f))))
      throw new CanvosError('ERR_ISO', `${join(pcDir, f)} is missing (BIOS boot)`, { hint });
  }
  const core = join(bootDir, 'core.img.tmp');
  await runTool(opts.grubMkimage ?? 'grub-mkimage', [...grubMkimageArgs(core), '-d', pcDir], {
    code: 'ERR_ISO',
    missingHint: hint,
    signal: opts.signal,
    watch: [core],
  });
  const eltorito = Buffer.concat([await readFile(join(pcDir, 'cdboot.img')), await readFile(core)]);
  await writeFile(join(bootDir, 'eltorito.img'), eltorito);
  await writeFile(join(bootDir, 'boot_hybrid.img'), await readFile(join(pcDir, 'boot_hybrid.img')));
  await rm(core, { force: true });
}
