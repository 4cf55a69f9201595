/**
 * buildDisk: a Kairos raw disk image from the installer rootfs, rootless and without loop devices (issue #17),
 * shaped like AuroraBoot's raw image: COS_GRUB (EFI system partition, our FAT writer), a BIOS boot partition
 * (grub i386-pc core image, boot.img in the MBR: one image boots with UEFI and legacy BIOS), COS_OEM (ext4: user-data
 * as 90_custom.yaml, grubenv next_entry=recovery, the first-boot reset config that creates COS_STATE and
 * COS_PERSISTENT) and COS_RECOVERY (ext4: cOS/recovery.squashfs streamed from the layers, /etc/cos/grub.cfg).
 * Written as `<name>.raw.partial` in the output dir, then renamed, with a `.sha256` like the ISO.
 */
import { copyFile, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import { buildOutputFile } from '../fs-util.js';
import type { FsEntry } from '../layers/entry.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { publishWithSha256 } from '../oci/digest.js';
import { writeFatImage } from '../iso/fat.js';
import { efiBootFiles, grubCandidates, shimCandidates } from '../iso/grub.js';
import { readUserData, requireFile } from '../iso/iso-overlay.js';
import { RootfsCapture } from '../iso/rootfs-capture.js';
import { writeSquashfs } from '../iso/squashfs/index.js';
import { isUbuntu, type SquashfsWriter } from '../iso/build-iso.js';
import { writeDisk, type DiskPart, type PlacedPart } from './assemble.js';
import { biosBootCode, placeBiosBoot } from './bios.js';
import { writeExt4Image, type Ext4ImageOptions } from './ext4.js';
import { PART_TYPE, uuidV5 } from './gpt.js';
import {
  GRUB_RECOVERY_STUB,
  KAIROS,
  fallbackGrubCfg,
  firstBootResetYaml,
  grubEnvBlock,
  stateSizeMiB,
} from './kairos-files.js';

/** What goes into the disk image. */
export interface BuildDiskInput {
  /** The merged installer rootfs; consumed once. */
  rootfs: AsyncIterable<FsEntry>;
  /** Output directory (created). */
  outputDir: string;
  /** File name stem: `<name>.raw`. Default: 'palette-edge-installer'. */
  name?: string | undefined;
  /** Default: 'amd64'. arm64 images get no BIOS boot partition. */
  arch?: 'amd64' | 'arm64' | undefined;
  /** User-data (validated) → COS_OEM/90_custom.yaml. Default: none (a warning). */
  userData?: string | undefined;
  /** EDGE_CUSTOM_CONFIG → COS_OEM/.edge_custom_config.yaml. Default: none. */
  edgeCustomConfig?: string | undefined;
  /** Minimum disk size in MiB (AuroraBoot `disk.size`); the image is extended with free space. Default: 0. */
  sizeMiB?: number | undefined;
  /** Menu timeout of the fallback grub.cfg (rootfs without /etc/cos/grub.cfg). Default: 5. */
  grubTimeout?: number | undefined;
}

/** Phases of {@link buildDisk}. */
export type DiskPhase = 'validate' | 'squashfs' | 'efi' | 'oem' | 'recovery' | 'bios' | 'assemble' | 'checksum';

/** Options of {@link buildDisk}. */
export interface BuildDiskOptions {
  /** Every timestamp and the name-based GUIDs/UUIDs. Default: env SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number | undefined;
  /** squashfs writer. Default: `writeSquashfs`. */
  squashfsWriter?: SquashfsWriter | undefined;
  /** Environment of the child processes. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: { phase: DiskPhase }) => void) | undefined;
  /** Recoverable oddities, e.g. W_DISK_NO_GRUB_CFG. Default: ignored. */
  onWarning?: ((code: string, message: string) => void) | undefined;
}

/** Result of {@link buildDisk}. */
export interface BuildDiskResult {
  rawPath: string;
  sha256Path: string;
  sha256: string;
  sizeBytes: number;
  partitions: PlacedPart[];
}

const RELEASE_FILES = ['etc/kairos-release', 'etc/os-release', 'usr/lib/os-release'];
const MIB = 1024 * 1024;

/** Builds `<outputDir>/<name>.raw` and its `.sha256`. */
export async function buildDisk(input: BuildDiskInput, opts: BuildDiskOptions = {}): Promise<BuildDiskResult> {
  const { signal } = opts;
  const arch = input.arch ?? 'amd64';
  const name = input.name ?? 'palette-edge-installer';
  const warn = opts.onWarning ?? ((): void => {});
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new CanvosError('ERR_CONFIG', `invalid disk image name ${JSON.stringify(name)}`, {
      hint: 'use letters, digits, ".", "_" and "-"',
    });
  }
  opts.onProgress?.({ phase: 'validate' });
  const userData = input.userData ? await readUserData(input.userData) : undefined;
  if (!userData)
    warn(
      'W_DISK_NO_USER_DATA',
      'no user-data: the disk has no 90_custom.yaml in COS_OEM (no users, no Palette registration)',
    );
  if (input.edgeCustomConfig) await requireFile(input.edgeCustomConfig, 'edge custom config');
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env ?? process.env);
  const fsUuid = (label: string): string => uuidV5(`canvos-lite:${name}:${epoch}:${label}`);
  const ext4 = { sourceDateEpoch: epoch, env: opts.env, signal };

  const outDir = resolve(input.outputDir);
  await mkdir(outDir, { recursive: true });
  const rawPath = join(outDir, `${name}.raw`);
  const build = async (staging: string, partial: string): Promise<BuildDiskResult> => {
    const recDir = join(staging, 'recovery');
    const spool = join(staging, 'spool');
    const capture = new RootfsCapture(
      spool,
      [...shimCandidates(arch), ...grubCandidates(arch), ...RELEASE_FILES, KAIROS.grubConf],
      ['usr/lib/shim'],
    );
    await mkdir(spool);
    const sqfsBytes = await writeRecoveryTree(recDir, capture, input, opts, epoch);
    const efiImg = await writeEfiImage(staging, capture, arch, epoch, opts);
    const oemImg = await writeOemImage(staging, input, userData, sqfsBytes, opts, {
      ...ext4,
      label: KAIROS.oemLabel,
      uuid: fsUuid(KAIROS.oemLabel),
      sizeBytes: KAIROS.oemSizeMiB * MIB,
    });

    opts.onProgress?.({ phase: 'recovery' });
    // AuroraBoot: twice the system image (room for the transition image of a recovery upgrade) plus 150 MiB.
    const recMiB = Math.ceil((sqfsBytes * 2) / MIB) + 150;
    const recImg = join(staging, 'recovery.img');
    await writeExt4Image(recDir, recImg, {
      ...ext4,
      label: KAIROS.recoveryLabel,
      uuid: fsUuid(KAIROS.recoveryLabel),
      sizeBytes: recMiB * MIB,
    });
    await rm(recDir, { recursive: true, force: true });
    await rm(spool, { recursive: true, force: true });

    const parts = diskPartitions(arch, efiImg, oemImg, recImg, recMiB);
    let bootCode: Buffer | undefined;
    if (arch === 'amd64') {
      opts.onProgress?.({ phase: 'bios' });
      const codes = await biosBootCode({ earlyConfig: GRUB_RECOVERY_STUB, workDir: staging, env: opts.env, signal });
      const biosLba = 2048 + KAIROS.efiSizeMiB * 2048;
      const placed = placeBiosBoot(codes.bootImg, codes.core, biosLba, KAIROS.biosSizeMiB * 2048);
      bootCode = placed.bootCode;
      const bios = parts[1];
      if (bios) Object.assign(bios, { content: placed.core });
    }

    opts.onProgress?.({ phase: 'assemble' });
    await rm(partial, { force: true });
    const disk = await writeDisk(partial, parts, {
      diskGuid: uuidV5(`canvos-lite:${name}:${epoch}:disk`),
      minSizeMiB: input.sizeMiB,
      bootCode,
      signal,
    });

    opts.onProgress?.({ phase: 'checksum' });
    const sha256 = await publishWithSha256(partial, rawPath, signal);
    const sha256Path = `${rawPath}.sha256`;
    return { rawPath, sha256Path, sha256, sizeBytes: disk.totalSectors * 512, partitions: disk.placed };
  };
  return buildOutputFile(rawPath, `.${name}.disk-staging-`, build, { signal });
}

/** COS_RECOVERY's tree: cOS/recovery.squashfs of the rootfs and /etc/cos/grub.cfg. Returns the squashfs size. */
async function writeRecoveryTree(
  recDir: string,
  capture: RootfsCapture,
  input: BuildDiskInput,
  opts: BuildDiskOptions,
  epoch: number,
): Promise<number> {
  const { signal } = opts;
  await mkdir(join(recDir, 'cOS'), { recursive: true });
  await mkdir(join(recDir, 'etc', 'cos'), { recursive: true });
  await mkdir(join(recDir, 'grub2'));
  opts.onProgress?.({ phase: 'squashfs' });
  const sqfs = join(recDir, KAIROS.recoverySquashFile);
  await (opts.squashfsWriter ?? writeSquashfs)(capture.wrap(input.rootfs, signal), sqfs, { signal, mkfsTime: epoch });
  const rootCfg = capture.resolve(KAIROS.grubConf);
  if (rootCfg) await copyFile(rootCfg, join(recDir, KAIROS.grubConf));
  else {
    opts.onWarning?.(
      'W_DISK_NO_GRUB_CFG',
      `the rootfs has no /${KAIROS.grubConf} (Kairos images ship it): a recovery-only menu is used`,
    );
    await writeFile(join(recDir, KAIROS.grubConf), fallbackGrubCfg({ timeout: input.grubTimeout }));
  }
  signal?.throwIfAborted();
  return (await stat(sqfs)).size;
}

/** COS_GRUB: the EFI system partition's FAT image (shim and grub from the rootfs, a stub grub.cfg). */
async function writeEfiImage(
  staging: string,
  capture: RootfsCapture,
  arch: 'amd64' | 'arm64',
  epoch: number,
  opts: BuildDiskOptions,
): Promise<string> {
  opts.onProgress?.({ phase: 'efi' });
  const ubuntu = await isUbuntu(capture);
  const efi = await efiBootFiles({ arch, ubuntu, fromRootfs: (p) => capture.resolve(p) });
  const stub = Buffer.from(GRUB_RECOVERY_STUB);
  const efiFiles = efi.files.map((f) => (f.path.endsWith('grub.cfg') ? { ...f, source: stub } : f));
  const efiImg = join(staging, 'efi.img');
  await writeFatImage(
    efiImg,
    { files: efiFiles },
    { label: KAIROS.efiLabel, sizeBytes: KAIROS.efiSizeMiB * MIB, sourceDateEpoch: epoch, signal: opts.signal },
  );
  return efiImg;
}

/** COS_OEM: user-data, the edge custom config, grubenv (next entry: recovery) and the first-boot reset config. */
async function writeOemImage(
  staging: string,
  input: BuildDiskInput,
  userData: Buffer | undefined,
  sqfsBytes: number,
  opts: BuildDiskOptions,
  ext4: Ext4ImageOptions,
): Promise<string> {
  opts.onProgress?.({ phase: 'oem' });
  const oemDir = join(staging, 'oem');
  await mkdir(oemDir);
  if (userData) await writeFile(join(oemDir, '90_custom.yaml'), userData);
  if (input.edgeCustomConfig) await copyFile(input.edgeCustomConfig, join(oemDir, '.edge_custom_config.yaml'));
  await writeFile(join(oemDir, 'grubenv'), grubEnvBlock({ next_entry: 'recovery' }));
  await writeFile(join(oemDir, '01_reset.yaml'), firstBootResetYaml(stateSizeMiB(sqfsBytes)));
  const oemImg = join(staging, 'oem.img');
  await writeExt4Image(oemDir, oemImg, ext4);
  return oemImg;
}

/** The GPT partitions in AuroraBoot's order; amd64 gets a BIOS boot partition (index 1, content set later). */
function diskPartitions(
  arch: 'amd64' | 'arm64',
  efiImg: string,
  oemImg: string,
  recImg: string,
  recMiB: number,
): DiskPart[] {
  return [
    {
      name: KAIROS.efiPartName,
      type: PART_TYPE.efiSystem,
      label: KAIROS.efiLabel,
      sizeMiB: KAIROS.efiSizeMiB,
      attributes: 1n,
      content: efiImg,
    },
    ...(arch === 'amd64'
      ? [
          {
            name: KAIROS.biosPartName,
            type: PART_TYPE.biosBoot,
            label: 'BIOS_BOOT',
            sizeMiB: KAIROS.biosSizeMiB,
            attributes: 0b101n,
          },
        ]
      : []),
    {
      name: KAIROS.oemPartName,
      type: PART_TYPE.linuxFs,
      label: KAIROS.oemLabel,
      sizeMiB: KAIROS.oemSizeMiB,
      content: oemImg,
    },
    {
      name: KAIROS.recoveryPartName,
      type: PART_TYPE.linuxFs,
      label: KAIROS.recoveryLabel,
      sizeMiB: recMiB,
      content: recImg,
    },
  ];
}
