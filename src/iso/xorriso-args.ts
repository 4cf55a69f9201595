/**
 * The xorriso command line of AuroraBoot v0.26.2 build-iso (pkg/ops/iso.go burnISO + constants
 * GetXorrisoBooloaderArgs), reproduced argument for argument: hybrid BIOS (El Torito grub2 + boot_hybrid MBR)
 * and UEFI (appended GPT ESP) boot, plus every file recorded as owned by 0:0 (independent of the builder's ids)
 * and `-compliance no_emul_toc` (no multi-session header: same bytes on a file and on stdout).
 * Pure: building the list is separate from running it (run-xorriso.ts).
 */

/** Inputs of {@link xorrisoArgs}. */
export interface XorrisoArgsInput {
  /** Staging directory mapped to the ISO root; must contain boot/eltorito.img, boot/boot_hybrid.img, boot/uefi.img. */
  isoDir: string;
  /** Output ISO path. */
  outPath: string;
  /** ISO volume id. Load-bearing: the grub menu boots `root=live:CDLABEL=COS_LIVE`. Default: 'COS_LIVE'. */
  volid?: string | undefined;
  /**
   * SOURCE_DATE_EPOCH: pins the volume dates, the grub volume uuid, every file's timestamps, the GPT disk GUID
   * and xorriso's "now", so the same inputs give the same ISO bytes. Default: none (AuroraBoot's current-time
   * behaviour; xorriso may still read SOURCE_DATE_EPOCH from its environment).
   */
  sourceDateEpoch?: number | undefined;
  /**
   * More host files mapped into the ISO tree after `isoDir` (`-map disk iso`), e.g. placeholders kept outside the
   * tree (sparse-iso.ts). Default: none.
   */
  extraMaps?: readonly { disk: string; iso: string }[] | undefined;
}

/** `YYYYMMDDhhmmsscc` (GMT) of `epoch`, the form of `-volume_date uuid` (grub's `search --fs-uuid`). */
export function volumeDateUuid(epoch: number): string {
  return `${new Date(epoch * 1000).toISOString().replace(/\D/g, '').slice(0, 14)}00`;
}

/** The reproducibility options for `epoch` (xorriso(1): -volume_date, -iso_nowtime, gpt_disk_guid). */
export function pinnedDates(epoch: number): string[] {
  const t = `=${epoch}`;
  return [
    '-volume_date',
    'uuid',
    volumeDateUuid(epoch),
    '-volume_date',
    'c',
    t,
    '-volume_date',
    'm',
    t,
    '-volume_date',
    'all_file_dates',
    t,
    '-iso_nowtime',
    t,
  ];
}

/** The ISO volume label Kairos/CanvOS boot entries look for. */
export const ISO_VOLUME_LABEL = 'COS_LIVE';

/** The argument list (without the `xorriso` program name). */
export function xorrisoArgs(input: XorrisoArgsInput): string[] {
  const { isoDir, outPath } = input;
  const volid = input.volid ?? ISO_VOLUME_LABEL;
  const epoch = input.sourceDateEpoch;
  const boot = (kind: 'grub' | 'any', setting: string): string[] => ['-boot_image', kind, setting];
  return [
    '-volid',
    volid,
    '-joliet',
    'on',
    '-padding',
    '0',
    // No emulated TOC (a 64 KiB multi-session header xorriso adds only when -outdev is a seekable file): the ISO is
    // the same bytes whether written to a file or to stdout (build-iso writes it through stdout, see sparse-iso.ts).
    '-compliance',
    'no_emul_toc',
    ...(epoch !== undefined ? pinnedDates(epoch) : []),
    '-outdev',
    outPath,
    '-map',
    isoDir,
    '/',
    ...(input.extraMaps ?? []).flatMap((m) => ['-map', m.disk, m.iso]),
    '-chmod',
    '0755',
    '--',
    // Rock Ridge would record the builder's uid/gid (root and an unprivileged user would give different ISOs).
    '-chown_r',
    '0',
    '/',
    '--',
    '-chgrp_r',
    '0',
    '/',
    '--',
    ...boot('grub', 'bin_path=/boot/eltorito.img'),
    // AuroraBoot joins with a literal '/' + '/boot/…', hence the double slash; harmless, kept for fidelity.
    ...boot('grub', `grub2_mbr=${isoDir}//boot/boot_hybrid.img`),
    ...boot('grub', 'grub2_boot_info=on'),
    ...boot('any', 'partition_offset=16'),
    ...boot('any', 'cat_path=/boot/boot.catalog'),
    ...boot('any', 'cat_hidden=on'),
    ...boot('any', 'boot_info_table=on'),
    ...boot('any', 'platform_id=0x00'),
    ...boot('any', 'emul_type=no_emulation'),
    ...boot('any', 'load_size=2048'),
    ...boot('any', 'next'),
    ...boot('any', 'platform_id=0xef'),
    ...boot('any', 'emul_type=no_emulation'),
    '-append_partition',
    '2',
    '0xef',
    `${isoDir}/boot/uefi.img`,
    ...boot('any', 'efi_path=--interval:appended_partition_2:all::'),
    ...boot('any', 'appended_part_as=gpt'),
    ...boot('any', 'mbr_force_bootable=on'),
    ...(epoch !== undefined ? boot('any', 'gpt_disk_guid=volume_date_uuid') : []),
  ];
}
