/**
 * The partition images of buildDisk, each written into the staging directory: the recovery system (squashfs of
 * the rootfs inside an ext4 COS_RECOVERY) and the EFI system partition (both from one pass over the rootfs),
 * COS_OEM, the BIOS boot partition's GRUB core, and the flavours' UBUNTU_ROOTFS and COS_CONTENT.
 */
import { copyFile, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FsEntry } from '../tar/entry.js';
import { throwIfAborted } from '../util/abort.js';
import { writeFatImage } from '../iso/fat.js';
import { efiBootFiles, grubCandidates, shimCandidates } from '../iso/grub.js';
import { RootfsCapture } from '../iso/rootfs-capture.js';
import { writeSquashfs } from '../iso/squashfs/index.js';
import { isUbuntu, type SquashfsWriter } from '../iso/build-iso.js';
import type { DiskPart } from './assemble.js';
import { biosBootCode, placeBiosBoot } from './bios.js';
import { CONTENT_LABEL, writeContentImage, type DiskContent } from './content-partition.js';
import { writeExt4Image } from './ext4.js';
import { PART_TYPE } from './gpt.js';
import { GRUB_RECOVERY_STUB, KAIROS, fallbackGrubCfg, firstBootResetYaml, grubEnvBlock } from './kairos-files.js';
import {
  FIRSTBOOT_ENTRY,
  UBUNTU_ROOTFS_LABEL,
  maasGrubCustom,
  prepareUbuntuRootfs,
  type UbuntuRootfsOptions,
} from './maas.js';

const RELEASE_FILES = ['etc/kairos-release', 'etc/os-release', 'usr/lib/os-release'];
const MIB = 1024 * 1024;

/** Phases of buildDisk. */
export type DiskPhase =
  'validate' | 'squashfs' | 'efi' | 'oem' | 'recovery' | 'content' | 'ubuntu' | 'bios' | 'assemble' | 'checksum';

/** What the partition builders share. */
export interface PartContext {
  /** Scratch directory (removed by the caller). */
  staging: string;
  epoch: number;
  /** The name-based file system UUID of `label`. */
  fsUuid: (label: string) => string;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  progress: (phase: DiskPhase) => void;
}

const ext4Opts = (ctx: PartContext, label: string, sizeMiB: number): Parameters<typeof writeExt4Image>[2] => ({
  label,
  uuid: ctx.fsUuid(label),
  sizeBytes: sizeMiB * MIB,
  sourceDateEpoch: ctx.epoch,
  env: ctx.env,
  signal: ctx.signal,
});

/**
 * One pass over the rootfs: cOS/recovery.squashfs (+ /etc/cos/grub.cfg) in the COS_RECOVERY ext4 image, and the
 * COS_GRUB FAT image with shim/grub from the rootfs (else the host's) and a stub that finds COS_RECOVERY.
 */
export async function systemImages(
  rootfs: AsyncIterable<FsEntry>,
  arch: 'amd64' | 'arm64',
  ctx: PartContext,
  o: {
    grubTimeout?: number | undefined;
    squashfsWriter?: SquashfsWriter | undefined;
    squashfsLevel?: number | undefined;
    warn: (code: string, message: string) => void;
  },
): Promise<{ efiImg: string; recImg: string; recMiB: number; sqfsBytes: number }> {
  const { staging, signal } = ctx;
  const spool = join(staging, 'spool');
  const recDir = join(staging, 'recovery');
  await mkdir(spool);
  await mkdir(join(recDir, 'cOS'), { recursive: true });
  await mkdir(join(recDir, 'etc', 'cos'), { recursive: true });
  await mkdir(join(recDir, 'grub2'));
  const capture = new RootfsCapture(
    spool,
    [...shimCandidates(arch), ...grubCandidates(arch), ...RELEASE_FILES, KAIROS.grubConf],
    ['usr/lib/shim'],
  );

  ctx.progress('squashfs');
  const sqfs = join(recDir, KAIROS.recoverySquashFile);
  const sqfsOpts = { signal, mkfsTime: ctx.epoch, level: o.squashfsLevel };
  await (o.squashfsWriter ?? writeSquashfs)(capture.wrap(rootfs, signal), sqfs, sqfsOpts);
  const sqfsBytes = (await stat(sqfs)).size;
  const rootCfg = capture.resolve(KAIROS.grubConf);
  if (rootCfg) await copyFile(rootCfg, join(recDir, KAIROS.grubConf));
  else {
    o.warn(
      'W_DISK_NO_GRUB_CFG',
      `the rootfs has no /${KAIROS.grubConf} (Kairos images ship it): a recovery-only menu is used`,
    );
    await writeFile(join(recDir, KAIROS.grubConf), fallbackGrubCfg({ timeout: o.grubTimeout }));
  }
  throwIfAborted(signal);

  ctx.progress('efi');
  const ubuntu = await isUbuntu(capture);
  const efi = await efiBootFiles({ arch, ubuntu, fromRootfs: (p) => capture.resolve(p) });
  const stub = Buffer.from(GRUB_RECOVERY_STUB);
  const efiFiles = efi.files.map((f) => (f.path.endsWith('grub.cfg') ? { ...f, source: stub } : f));
  const efiImg = join(staging, 'efi.img');
  await writeFatImage(
    efiImg,
    { files: efiFiles },
    { label: KAIROS.efiLabel, sizeBytes: KAIROS.efiSizeMiB * MIB, sourceDateEpoch: ctx.epoch, signal },
  );

  ctx.progress('recovery');
  // AuroraBoot: twice the system image (room for the transition image of a recovery upgrade) plus 150 MiB.
  const recMiB = Math.ceil((sqfsBytes * 2) / MIB) + 150;
  const recImg = join(staging, 'recovery.img');
  await writeExt4Image(recDir, recImg, ext4Opts(ctx, KAIROS.recoveryLabel, recMiB));
  await rm(recDir, { recursive: true, force: true });
  await rm(spool, { recursive: true, force: true });
  return { efiImg, recImg, recMiB, sqfsBytes };
}

/**
 * COS_OEM: user-data as 90_custom.yaml, EDGE_CUSTOM_CONFIG, the first-boot reset config and grubenv
 * (`next_entry=recovery`; MAAS: `ubuntu-firstboot` plus the `grubcustom` entry that boots UBUNTU_ROOTFS).
 */
export async function oemImage(
  ctx: PartContext,
  o: { userData?: string | Buffer | undefined; edgeCustomConfig?: string | undefined; stateMiB: number; maas: boolean },
): Promise<string> {
  ctx.progress('oem');
  const oemDir = join(ctx.staging, 'oem');
  await mkdir(oemDir);
  if (o.userData) await writeFile(join(oemDir, '90_custom.yaml'), o.userData);
  if (o.edgeCustomConfig) await copyFile(o.edgeCustomConfig, join(oemDir, '.edge_custom_config.yaml'));
  await writeFile(join(oemDir, 'grubenv'), grubEnvBlock({ next_entry: o.maas ? FIRSTBOOT_ENTRY : 'recovery' }));
  if (o.maas) await writeFile(join(oemDir, 'grubcustom'), maasGrubCustom());
  await writeFile(join(oemDir, '01_reset.yaml'), firstBootResetYaml(o.stateMiB));
  const oemImg = join(ctx.staging, 'oem.img');
  await writeExt4Image(oemDir, oemImg, ext4Opts(ctx, KAIROS.oemLabel, KAIROS.oemSizeMiB));
  return oemImg;
}

export const efiPart = (content: string): DiskPart => ({
  name: KAIROS.efiPartName,
  type: PART_TYPE.efiSystem,
  label: KAIROS.efiLabel,
  sizeMiB: KAIROS.efiSizeMiB,
  attributes: 1n,
  content,
});

export const biosPart = (): DiskPart => ({
  name: KAIROS.biosPartName,
  type: PART_TYPE.biosBoot,
  label: 'BIOS_BOOT',
  sizeMiB: KAIROS.biosSizeMiB,
  attributes: 0b101n,
});

export const linuxPart = (name: string, label: string, sizeMiB: number, content: string): DiskPart => ({
  name,
  type: PART_TYPE.linuxFs,
  label,
  sizeMiB,
  content,
});

/** MAAS: the Ubuntu cloud image's root file system as UBUNTU_ROOTFS (GPT name `ubuntu_rootfs`, as CanvOS). */
export async function ubuntuPart(
  ctx: PartContext,
  m: Pick<UbuntuRootfsOptions, 'image' | 'curtinHooks'>,
): Promise<DiskPart> {
  ctx.progress('ubuntu');
  const u = await prepareUbuntuRootfs({
    ...m,
    workDir: ctx.staging,
    sourceDateEpoch: ctx.epoch,
    env: ctx.env,
    signal: ctx.signal,
  });
  return linuxPart('ubuntu_rootfs', UBUNTU_ROOTFS_LABEL, u.sizeMiB, u.path);
}

/** COS_CONTENT after COS_RECOVERY; GPT name COS_CONTENT (cloud, `name 4 COS_CONTENT`) or `content` (MAAS). */
export async function contentPart(
  ctx: PartContext,
  content: DiskContent,
  flavour: 'cloud' | 'maas',
): Promise<DiskPart> {
  ctx.progress('content');
  const img = join(ctx.staging, 'content.img');
  const sizeMiB = await writeContentImage(content, join(ctx.staging, 'content'), img, {
    uuid: ctx.fsUuid(CONTENT_LABEL),
    sourceDateEpoch: ctx.epoch,
    env: ctx.env,
    signal: ctx.signal,
  });
  return linuxPart(flavour === 'cloud' ? CONTENT_LABEL : 'content', CONTENT_LABEL, sizeMiB, img);
}

/** GRUB's BIOS core into `parts[1]` (the BIOS boot partition after COS_GRUB); returns the MBR boot code. */
export async function placeBios(ctx: PartContext, parts: DiskPart[]): Promise<Buffer> {
  ctx.progress('bios');
  const codes = await biosBootCode({
    earlyConfig: GRUB_RECOVERY_STUB,
    workDir: ctx.staging,
    env: ctx.env,
    signal: ctx.signal,
  });
  const biosLba = 2048 + KAIROS.efiSizeMiB * 2048;
  const placed = placeBiosBoot(codes.bootImg, codes.core, biosLba, KAIROS.biosSizeMiB * 2048);
  const bios = parts[1];
  if (bios) bios.content = placed.core;
  return placed.bootCode;
}
