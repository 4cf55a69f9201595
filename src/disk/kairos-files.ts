/**
 * The Kairos pieces of the raw disk image, as AuroraBoot's raw image (pkg/ops/rawDiskGeneration.go) writes them:
 * the GRUB stub that chainloads the recovery partition's /etc/cos/grub.cfg, the OEM grubenv that makes the first
 * boot pick the recovery entry, the first-boot yip config that adds COS_STATE and COS_PERSISTENT and runs an
 * unattended reset, and a fallback /etc/cos/grub.cfg for rootfs trees that ship none.
 */
import { stringify } from 'yaml';

/** Partition labels, names and default sizes (MiB) of kairos-agent's pkg/constants. */
export const KAIROS = {
  efiLabel: 'COS_GRUB',
  oemLabel: 'COS_OEM',
  recoveryLabel: 'COS_RECOVERY',
  stateLabel: 'COS_STATE',
  persistentLabel: 'COS_PERSISTENT',
  efiPartName: 'efi',
  biosPartName: 'bios',
  oemPartName: 'oem',
  recoveryPartName: 'recovery',
  statePartName: 'state',
  persistentPartName: 'persistent',
  efiSizeMiB: 64,
  oemSizeMiB: 64,
  biosSizeMiB: 1,
  recoverySquashFile: 'cOS/recovery.squashfs',
  grubConf: 'etc/cos/grub.cfg',
} as const;

/** AuroraBoot's GrubEfiRecovery: find COS_RECOVERY and run its /etc/cos/grub.cfg (EFI and BIOS). */
export const GRUB_RECOVERY_STUB = [
  `search --no-floppy --label --set=root ${KAIROS.recoveryLabel}`,
  'set root=($root)',
  'set prefix=($root)/grub2',
  `configfile ($root)/${KAIROS.grubConf}`,
  '',
].join('\n');

/** Options of {@link fallbackGrubCfg}. */
export interface FallbackGrubOptions {
  /** Menu timeout in seconds. Default: 5. */
  timeout?: number | undefined;
}

/**
 * A recovery-only /etc/cos/grub.cfg for a rootfs without one: boots the kernel and initrd inside
 * /cOS/recovery.squashfs with dracut's live-image arguments (root=live:LABEL=COS_RECOVERY). Like Kairos's own
 * grub.cfg it loads the first `/grubenv` found (COS_OEM's), boots `next_entry` when set and sources `/grubcustom`
 * (the MAAS flavour's first-boot entry lives there).
 */
export function fallbackGrubCfg(opts: FallbackGrubOptions = {}): string {
  const img = `/${KAIROS.recoverySquashFile}`;
  return `set timeout=${opts.timeout ?? 5}
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set default=recovery
search --no-floppy --file --set=env_blk /grubenv
if [ "\${env_blk}" ]; then load_env -f "(\${env_blk})/grubenv"; fi
if [ "\${next_entry}" ]; then set default="\${next_entry}"; fi
menuentry "Kairos recovery" --id recovery {
  search --no-floppy --label --set=root ${KAIROS.recoveryLabel}
  loopback loop0 ($root)${img}
  linux (loop0)/boot/vmlinuz root=live:LABEL=${KAIROS.recoveryLabel} rd.live.dir=/cOS rd.live.squashimg=recovery.squashfs rd.cos.oemlabel=${KAIROS.oemLabel} rd.immucore.oemlabel=${KAIROS.oemLabel} console=tty1 console=ttyS0,115200 selinux=0 panic=5
  initrd (loop0)/boot/initrd
}
search --no-floppy --file --set=custom_blk /grubcustom
if [ "\${custom_blk}" ]; then source "(\${custom_blk})/grubcustom"; fi
`;
}

/** A GRUB environment block (grub-editenv format: 1024 bytes, '#'-padded). */
export function grubEnvBlock(vars: Readonly<Record<string, string>>): Buffer {
  const body = `# GRUB Environment Block\n${Object.entries(vars)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('')}`;
  const b = Buffer.alloc(1024, '#');
  if (body.length > 1024) throw new RangeError('grubenv too large');
  b.write(body, 0, 'latin1');
  return b;
}

/** First boot (AuroraBoot's 01_reset.yaml): add COS_STATE and COS_PERSISTENT on the recovery disk, reset. */
export function firstBootResetYaml(stateSizeMiB: number): string {
  const part = (name: string, label: string, plabel: string, size: number): unknown => ({
    name,
    layout: {
      device: { label: KAIROS.recoveryLabel },
      add_partitions: [{ fsLabel: label, size, pLabel: plabel, filesystem: 'ext4' }],
    },
  });
  return stringify({
    name: 'Expand disk layout',
    stages: {
      'rootfs.before': [
        part('Add state partition', KAIROS.stateLabel, KAIROS.statePartName, stateSizeMiB),
        // Size 0: the rest of the disk.
        part('Add persistent partition', KAIROS.persistentLabel, KAIROS.persistentPartName, 0),
      ],
      network: [
        {
          if: '[ -f "/run/cos/recovery_mode" ]',
          name: 'Run auto reset',
          commands: ['kairos-agent --debug reset --unattended --reboot'],
        },
      ],
      'after-reset': [
        { if: '[ -f "/oem/01_reset.yaml" ]', name: 'Auto remove this file', commands: ['rm /oem/01_reset.yaml'] },
      ],
    },
  });
}

/** AuroraBoot's COS_STATE size for a recovery image of `bytes`: three images plus 100 MiB. */
export function stateSizeMiB(recoveryBytes: number): number {
  return Math.floor((recoveryBytes * 3 + 100 * 1024 * 1024) / (1024 * 1024));
}
