/**
 * buildDisk: a Kairos raw disk image from the installer rootfs, rootless and without loop devices (issue #17),
 * shaped like AuroraBoot's raw image: COS_GRUB (EFI system partition, our FAT writer), a BIOS boot partition
 * (grub i386-pc core image, boot.img in the MBR: one image boots with UEFI and legacy BIOS), COS_OEM (ext4: user-data
 * as 90_custom.yaml, grubenv next_entry=recovery, the first-boot reset config that creates COS_STATE and
 * COS_PERSISTENT) and COS_RECOVERY (ext4: cOS/recovery.squashfs streamed from the layers, /etc/cos/grub.cfg).
 * The cloud flavour adds COS_CONTENT (content bundles, CLUSTERCONFIG, EDGE_CUSTOM_CONFIG); the MAAS flavour is EFI
 * only and adds UBUNTU_ROOTFS before COS_OEM and COS_CONTENT (see maas.ts, content-partition.ts).
 * Written as `<name>.raw.partial` in the output dir, then renamed, with a `.sha256` like the ISO.
 */
import { mkdir, mkdtemp, rm, rmdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import { abortedOr } from '../util/abort.js';
import type { FsEntry } from '../tar/entry.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { publishWithSha256 } from '../image/digest.js';
import { readUserData, requireFile } from '../iso/iso-overlay.js';
import type { SquashfsWriter } from '../iso/build-iso.js';
import { writeDisk, type DiskPart, type PlacedPart } from './assemble.js';
import { hasContent, type DiskContent } from './content-partition.js';
import {
  biosPart,
  contentPart,
  efiPart,
  linuxPart,
  oemImage,
  placeBios,
  systemImages,
  ubuntuPart,
  type DiskPhase,
  type PartContext,
} from './disk-parts.js';
import { uuidV5 } from './gpt.js';
import { KAIROS, stateSizeMiB } from './kairos-files.js';
import type { UbuntuRootfsOptions } from './maas.js';
import { squashfsLevel } from '../iso/squashfs/compressor.js';

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
  /**
   * `kairos` (AuroraBoot's raw image), `cloud` (CanvOS's cloud image: + COS_CONTENT, `#cloud-config` user-data
   * when none is given) or `maas` (CanvOS's MAAS image: EFI only, + UBUNTU_ROOTFS and COS_CONTENT). Default: kairos.
   */
  flavour?: DiskFlavour | undefined;
  /** Files of the COS_CONTENT partition (cloud and maas; ignored for kairos). Default: none (no partition). */
  content?: DiskContent | undefined;
  /** The MAAS flavour's Ubuntu root file system (required with flavour `maas`). */
  maas?: Pick<UbuntuRootfsOptions, 'image' | 'curtinHooks'> | undefined;
}

/** The disk image flavours (CanvOS: default raw image, IS_CLOUD_IMAGE, IS_MAAS). */
export type DiskFlavour = 'kairos' | 'cloud' | 'maas';

export type { DiskPhase } from './disk-parts.js';

/** Options of {@link buildDisk}. */
export interface BuildDiskOptions {
  /** Every timestamp and the name-based GUIDs/UUIDs. Default: env SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number | undefined;
  /** squashfs writer. Default: `writeSquashfs`. */
  squashfsWriter?: SquashfsWriter | undefined;
  /** gzip level of the recovery squashfs, as BuildIsoOptions.squashfsLevel. Default: the backend's. */
  squashfsLevel?: number | undefined;
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

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The user-data of COS_OEM/90_custom.yaml: the given file, or for cloud/MAAS CanvOS's bare `#cloud-config`. */
async function diskUserData(
  input: BuildDiskInput,
  flavour: DiskFlavour,
  warn: (code: string, message: string) => void,
): Promise<string | Buffer | undefined> {
  if (input.userData) return readUserData(input.userData);
  // CanvOS's cloud-image and kairos-raw-image write `#cloud-config` so AuroraBoot adds no default config: the cloud
  // datasource or MAAS provides the real user-data at boot.
  if (flavour !== 'kairos') return '#cloud-config\n';
  warn(
    'W_DISK_NO_USER_DATA',
    'no user-data: the disk has no 90_custom.yaml in COS_OEM (no users, no Palette registration)',
  );
  return undefined;
}

/** Builds `<outputDir>/<name>.raw` and its `.sha256`. */
export async function buildDisk(input: BuildDiskInput, opts: BuildDiskOptions = {}): Promise<BuildDiskResult> {
  const { signal } = opts;
  const arch = input.arch ?? 'amd64';
  const flavour = input.flavour ?? 'kairos';
  const name = input.name ?? 'palette-edge-installer';
  const warn = opts.onWarning ?? ((): void => {});
  if (!NAME_RE.test(name)) {
    throw new CanvosError('ERR_CONFIG', `invalid disk image name ${JSON.stringify(name)}`, {
      hint: 'use letters, digits, ".", "_" and "-"',
    });
  }
  if (flavour === 'maas' && arch !== 'amd64')
    throw new CanvosError('ERR_CONFIG', 'the MAAS disk image is amd64 only (as CanvOS builds it)');
  if (flavour === 'maas' && !input.maas)
    throw new CanvosError('ERR_INTERNAL', 'the maas flavour needs the Ubuntu cloud image and curtin hooks');
  opts.onProgress?.({ phase: 'validate' });
  squashfsLevel(opts.squashfsLevel);
  const userData = await diskUserData(input, flavour, warn);
  if (input.edgeCustomConfig) await requireFile(input.edgeCustomConfig, 'edge custom config');
  if (input.maas) await requireFile(input.maas.curtinHooks, 'curtin hooks');
  // Cloud/MAAS: EDGE_CUSTOM_CONFIG travels on COS_CONTENT (edge-config/), copied to /oem on first boot.
  const content: DiskContent | undefined =
    flavour === 'kairos'
      ? undefined
      : { ...input.content, edgeCustomConfig: input.content?.edgeCustomConfig ?? input.edgeCustomConfig };
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env ?? process.env);

  const outDir = resolve(input.outputDir);
  const madeOutDir = await makeOutDir(outDir);
  const rawPath = join(outDir, `${name}.raw`);
  const shaPath = `${rawPath}.sha256`;
  const partial = `${rawPath}.partial`;
  const staging = await mkdtemp(join(outDir, `.${name}.disk-staging-`));
  const ctx: PartContext = {
    staging,
    epoch,
    fsUuid: (label) => uuidV5(`canvos-lite:${name}:${epoch}:${label}`),
    env: opts.env,
    signal,
    progress: (phase: DiskPhase) => opts.onProgress?.({ phase }),
  };
  try {
    const sys = await systemImages(input.rootfs, arch, ctx, {
      grubTimeout: input.grubTimeout,
      squashfsWriter: opts.squashfsWriter,
      squashfsLevel: opts.squashfsLevel,
      warn,
    });
    const oemImg = await oemImage(ctx, {
      userData,
      edgeCustomConfig: flavour === 'kairos' ? input.edgeCustomConfig : undefined,
      stateMiB: stateSizeMiB(sys.sqfsBytes),
      maas: flavour === 'maas',
    });
    const bios = arch === 'amd64' && flavour !== 'maas';
    const parts: DiskPart[] = [
      efiPart(sys.efiImg),
      ...(bios ? [biosPart()] : []),
      ...(flavour === 'maas' && input.maas ? [await ubuntuPart(ctx, input.maas)] : []),
      linuxPart(KAIROS.oemPartName, KAIROS.oemLabel, KAIROS.oemSizeMiB, oemImg),
      linuxPart(KAIROS.recoveryPartName, KAIROS.recoveryLabel, sys.recMiB, sys.recImg),
    ];
    if (content && flavour !== 'kairos' && hasContent(content)) parts.push(await contentPart(ctx, content, flavour));
    const bootCode = bios ? await placeBios(ctx, parts) : undefined;

    ctx.progress('assemble');
    await rm(partial, { force: true });
    const disk = await writeDisk(partial, parts, {
      diskGuid: uuidV5(`canvos-lite:${name}:${epoch}:disk`),
      minSizeMiB: input.sizeMiB,
      bootCode,
      signal,
    });

    ctx.progress('checksum');
    const sha256 = await publishWithSha256(partial, rawPath, signal);
    return { rawPath, sha256Path: shaPath, sha256, sizeBytes: disk.totalSectors * 512, partitions: disk.placed };
  } catch (e) {
    await rm(partial, { force: true });
    await rm(`${shaPath}.partial`, { force: true });
    if (madeOutDir) {
      await rm(staging, { recursive: true, force: true });
      await rmdir(outDir).catch(() => undefined);
    }
    throw abortedOr(signal, e, false);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Create the output directory; true when it did not exist before (it is then removed again when the build fails:
 * rmdir, only while empty, as for the ISO).
 */
async function makeOutDir(outDir: string): Promise<boolean> {
  const existed = await stat(outDir).then(
    () => true,
    () => false,
  );
  await mkdir(outDir, { recursive: true });
  return !existed;
}
