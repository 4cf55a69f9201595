/**
 * The MAAS flavour (CanvOS `./earthly.sh +maas-image`: kairos-raw-image + cloudconfigs/build-kairos-maas.sh),
 * rootless. MAAS deploys a disk image with curtin, which needs an Ubuntu root file system to finish the deployment,
 * so CanvOS puts one in front of Kairos: UBUNTU_ROOTFS (the Ubuntu cloud image's root file system, 3 GiB) with
 * curtin's hook at /curtin/curtin-hooks and a one-shot systemd unit that copies the MAAS user-data to COS_OEM as
 * userdata.yaml and reboots into Kairos recovery; COS_OEM gets a `grubcustom` entry for that first Ubuntu boot
 * and `next_entry=ubuntu-firstboot`. 80_stylus_maas.yaml (in the rootfs) removes the Ubuntu partition later.
 * Here the cloud image's ext4 file system is used as it is (relabelled, files added with debugfs), no loop device.
 */
import { copyFile, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { publishWithSha256 } from '../image/digest.js';
import { CanvosError } from '../errors.js';
import { normaliseCommands } from './ext4.js';
import { runTool } from './tool.js';

export const UBUNTU_ROOTFS_LABEL = 'UBUNTU_ROOTFS';
/** build-kairos-maas.sh's UBUNTU_ROOT_SIZE. */
export const UBUNTU_ROOTFS_MIB = 3072;
/** What CanvOS downloads (build-kairos-maas.sh UBUNTU_URL); canvos-lite reads it from the project instead. */
export const UBUNTU_CLOUD_IMAGE_URL =
  'https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.tar.gz';
export const FIRSTBOOT_ENTRY = 'ubuntu-firstboot';

const HINT = `download ${UBUNTU_CLOUD_IMAGE_URL} (what CanvOS's build-kairos-maas.sh downloads) into the project directory, or pass the .tar.gz or its .img`;

/** COS_OEM/grubcustom: the first-boot entry that starts the Ubuntu root file system for curtin/cloud-init. */
export function maasGrubCustom(): string {
  return `menuentry 'MAAS Kairos Setup' --id '${FIRSTBOOT_ENTRY}' {
  search --no-floppy --label --set=root ${UBUNTU_ROOTFS_LABEL}
  linux ($root)/boot/vmlinuz root=LABEL=${UBUNTU_ROOTFS_LABEL} rw console=tty1 console=ttyS0,115200n8
  initrd ($root)/boot/initrd.img
}
`;
}

/** The one-shot first-boot script of the Ubuntu root file system. */
export function setupRecoveryScript(): string {
  return `#!/bin/bash
# canvos-lite MAAS first boot: hand the MAAS user-data to Kairos and reboot into its recovery system.
set -euo pipefail
done_marker=/var/lib/setup-recovery-completed
[ -e "$done_marker" ] && exit 0
oem_dev=$(blkid -L COS_OEM) || { echo "COS_OEM not found" >&2; exit 1; }
mnt=$(mktemp -d)
mount -o rw "$oem_dev" "$mnt"
status=0
if [ -f /var/lib/cloud/instance/user-data.txt ]; then
  cp /var/lib/cloud/instance/user-data.txt "$mnt/userdata.yaml" || status=1
fi
grub-editenv "$mnt/grubenv" set next_entry=recovery || status=1
umount "$mnt" || status=1
rmdir "$mnt"
if [ "$status" -ne 0 ]; then echo "setup-recovery failed; not rebooting" >&2; exit 1; fi
mkdir -p "$(dirname "$done_marker")"
touch "$done_marker"
reboot
`;
}

/** Its systemd unit. */
export function setupRecoveryUnit(): string {
  return `[Unit]
Description=canvos-lite MAAS first boot: user-data to COS_OEM, reboot into Kairos recovery
After=network-online.target
Wants=network-online.target
ConditionPathExists=!/var/lib/setup-recovery-completed

[Service]
Type=oneshot
ExecStart=/opt/spectrocloud/scripts/setup-recovery.sh
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`;
}

/** Whether `file` holds an ext2/3/4 file system (superblock magic 0xEF53 at byte 1080). */
async function isExtFs(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 1080);
    return b.readUInt16LE(0) === 0xef53;
  } finally {
    await fh.close();
  }
}

/** Options of {@link prepareUbuntuRootfs}. */
export interface UbuntuRootfsOptions {
  /** The cloud image: `*-server-cloudimg-amd64.tar.gz` (its `.img` is used) or that `.img` (ext4). */
  image: string;
  /** cloudconfigs/curtin-hooks of the project → /curtin/curtin-hooks (0750). */
  curtinHooks: string;
  /** Scratch directory (the prepared image is written here). */
  workDir: string;
  sourceDateEpoch: number;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

/** Writes the UBUNTU_ROOTFS partition image and returns its path and partition size in MiB. */
export async function prepareUbuntuRootfs(o: UbuntuRootfsOptions): Promise<{ path: string; sizeMiB: number }> {
  const tool = { hint: 'install e2fsprogs and tar', env: o.env, signal: o.signal };
  const st = await stat(o.image).catch(() => undefined);
  if (!st?.isFile())
    throw new CanvosError('ERR_CONFIG', `Ubuntu cloud image ${o.image} does not exist`, { hint: HINT });
  const img = join(o.workDir, 'ubuntu-rootfs.img');
  if (/\.(tar\.gz|tgz)$/.test(o.image)) {
    const x = join(o.workDir, 'ubuntu-extract');
    await mkdir(x, { recursive: true });
    await runTool('tar', ['-xzf', o.image, '-C', x, '--wildcards', '*.img'], tool);
    const found = (await readdir(x, { recursive: true })).find((n) => n.endsWith('.img'));
    if (!found) throw new CanvosError('ERR_CONFIG', `${o.image} holds no .img file system image`, { hint: HINT });
    await rename(join(x, found), img);
    await rm(x, { recursive: true, force: true });
  } else {
    await runTool('cp', ['--sparse=always', o.image, img], tool);
  }
  if (!(await isExtFs(img)))
    throw new CanvosError('ERR_CONFIG', `${o.image}: not an ext4 root file system image`, { hint: HINT });
  await runTool('tune2fs', ['-L', UBUNTU_ROOTFS_LABEL, img], tool);
  const staged = { hooks: join(o.workDir, 'curtin-hooks'), script: join(o.workDir, 'setup-recovery.sh') };
  await copyFile(o.curtinHooks, staged.hooks);
  await writeFile(staged.script, setupRecoveryScript());
  const unit = join(o.workDir, 'setup-recovery.service');
  await writeFile(unit, setupRecoveryUnit());
  const sys = '/etc/systemd/system';
  const added = [
    '/curtin',
    '/curtin/curtin-hooks',
    '/opt/spectrocloud',
    '/opt/spectrocloud/scripts',
    '/opt/spectrocloud/scripts/setup-recovery.sh',
    `${sys}/setup-recovery.service`,
    `${sys}/multi-user.target.wants/setup-recovery.service`,
  ];
  // debugfs `write` links the new file into the current directory, hence the `cd`s; mkdir of an existing
  // directory only prints an error.
  const cmds = [
    'mkdir /curtin',
    'cd /curtin',
    `write "${staged.hooks}" curtin-hooks`,
    'sif /curtin/curtin-hooks mode 0100750',
    'mkdir /opt',
    'mkdir /opt/spectrocloud',
    'mkdir /opt/spectrocloud/scripts',
    'cd /opt/spectrocloud/scripts',
    `write "${staged.script}" setup-recovery.sh`,
    'sif /opt/spectrocloud/scripts/setup-recovery.sh mode 0100755',
    'mkdir /etc/systemd',
    `mkdir ${sys}`,
    `mkdir ${sys}/multi-user.target.wants`,
    `cd ${sys}`,
    `write "${unit}" setup-recovery.service`,
    `sif ${sys}/setup-recovery.service mode 0100644`,
    `symlink ${sys}/multi-user.target.wants/setup-recovery.service ${sys}/setup-recovery.service`,
  ];
  const input = `${cmds.join('\n')}\n${normaliseCommands(added, o.sourceDateEpoch)}`;
  await runTool('debugfs', ['-w', '-f', '-', img], { ...tool, input });
  const check = await runTool('debugfs', ['-R', 'stat /curtin/curtin-hooks', img], tool);
  if (!/Mode:\s+0750/.test(check))
    throw new CanvosError('ERR_DISK', `debugfs could not add /curtin/curtin-hooks to ${o.image}`);
  const sizeMiB = Math.max(UBUNTU_ROOTFS_MIB, Math.ceil((await stat(img)).size / (1024 * 1024)));
  return { path: img, sizeMiB };
}

/**
 * CanvOS's last MAAS step: `<name>.raw` gzip'd (gzip's default level, as `gzip -c`) to `<name>.raw.gz` with its
 * `.sha256`; the raw image and its checksum are removed (MAAS takes the `.raw.gz` as a `ddgz` upload).
 */
export async function finishMaasImage(
  rawPath: string,
  signal?: AbortSignal,
): Promise<{ path: string; sha256Path: string; sha256: string }> {
  const path = `${rawPath}.gz`;
  const partial = `${path}.partial`;
  try {
    await pipeline(createReadStream(rawPath), createGzip({ level: 6 }), createWriteStream(partial), { signal });
    const sha256 = await publishWithSha256(partial, path, signal);
    await rm(rawPath, { force: true });
    await rm(`${rawPath}.sha256`, { force: true });
    return { path, sha256Path: `${path}.sha256`, sha256 };
  } catch (e) {
    await rm(partial, { force: true });
    throw e;
  }
}
