/**
 * buildIso: the CanvOS installer ISO (canvos.md §3.3/§3.5/§6.4) from a merged rootfs stream or a ready squashfs.
 * Staging happens in a temp dir inside the output dir (removed on success and failure); the squashfs is moved into
 * the ISO through a sparse placeholder (sparse-iso.ts) so the disk peak stays near the ISO size; the ISO is written as
 * `<name>.iso.partial` and renamed, then `<name>.iso.sha256` (sha256sum format) is written the same way, so an
 * interrupted build never leaves a half-written artefact behind.
 */
import { link, copyFile, mkdir, mkdtemp, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../tar/entry.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { publishWithSha256 } from '../image/digest.js';
import { writeFatImage } from './fat.js';
import { normalizeTreeModes, scanFilesIso, stageIsoOverlay } from './files-iso.js';
import { GRUB_CHAINLOAD_CFG } from './grub-cfg.js';
import { efiBootFiles, grubCandidates, shimCandidates, writeBiosImages, type IsoArch } from './grub.js';
import { DEFAULT_CONTENT_SPLIT_BYTES, listContentBundles, readUserData, requireFile } from './iso-overlay.js';
import { RootfsCapture } from './rootfs-capture.js';
import { writeSquashfs } from './squashfs/index.js';
import { squashfsLevel } from './squashfs/compressor.js';
import { writeIso } from './sparse-iso.js';
import { mkdirs } from '../fs-util.js';
import { withPath } from '../error-map.js';
import { abortedOr, throwIfAborted } from '../util/abort.js';

/** Writes a file to `dest` (e.g. extracts /boot/vmlinuz from an image). */
export type FileExtractor = (dest: string, signal?: AbortSignal) => Promise<void>;

/** Writes an FsEntry stream as a squashfs image (the signature of `writeSquashfs`). */
export type SquashfsWriter = (
  entries: AsyncIterable<FsEntry>,
  outPath: string,
  opts?: { signal?: AbortSignal | undefined; mkfsTime?: number | undefined; sync?: boolean | undefined },
) => Promise<{ bytes: number }>;

/** What goes into the ISO. Give `rootfs` or `squashfsPath`. */
export interface BuildIsoInput {
  /** The merged iso-image rootfs (e.g. `mergeLayers(...)`); consumed once. */
  rootfs?: AsyncIterable<FsEntry> | undefined;
  /** A squashfs written beforehand; then `kernel` and `initrd` are required. */
  squashfsPath?: string | undefined;
  /**
   * Kernel: host path or extractor. Default: the rootfs's first /boot/{uImage,Image,zImage,vmlinuz,image}* in name
   * order, links followed (AuroraBoot's choice; /boot/vmlinuz on Kairos images).
   */
  kernel?: string | FileExtractor | undefined;
  /** Initrd: host path or extractor. Default: the rootfs's first /boot/{initrd,initramfs}* (/boot/initrd on Kairos). */
  initrd?: string | FileExtractor | undefined;
  /**
   * The project's `overlay/files-iso/` directory, copied onto the ISO first (its `boot/grub2/grub.cfg` replaces
   * the built-in CanvOS menu and gets the same DEFAULT_ENTRY/DEBUG edits). A missing directory is ERR_CONFIG.
   * Default: none.
   */
  filesIsoDir?: string | undefined;
  /** User-data file (validated) → /files-iso/config.yaml and /config.yaml. Default: none. */
  userData?: string | undefined;
  /** EDGE_CUSTOM_CONFIG → /.edge_custom_config.yaml. Default: none. */
  edgeCustomConfig?: string | undefined;
  /** Directories whose `*.zst` bundles go, split, to /opt/spectrocloud/content/. Default: none. */
  contentDirs?: readonly string[] | undefined;
  /** CLUSTERCONFIG → /opt/spectrocloud/clusterconfig/spc.tgz. Default: none. */
  clusterConfig?: string | undefined;
  /** Output directory (created). */
  outputDir: string;
  /** ISO_NAME. Default: 'palette-edge-installer'. */
  name?: string | undefined;
  /** Default: 'amd64'. */
  arch?: IsoArch | undefined;
  /** FORCE_INTERACTIVE_INSTALL: default grub entry 2. Default: false. */
  forceInteractive?: boolean | undefined;
  /** DEBUG kernel parameters in the menu. Default: false. */
  debug?: boolean | undefined;
  /** Grub menu timeout in seconds, replacing the menu's `set timeout=` value. Default: the menu's (CanvOS: 5). */
  grubTimeout?: number | undefined;
}

/** Progress of {@link buildIso}: a phase change, with percent when the phase reports it. */
export interface IsoProgress {
  phase: 'validate' | 'squashfs' | 'boot' | 'efi' | 'overlay' | 'xorriso' | 'checksum';
  percent?: number | undefined;
}

/** Options of {@link buildIso}. */
export interface BuildIsoOptions {
  /** Content bundle part size. Default: 3_000_000_000 (GNU split `3GB`). */
  contentSplitBytes?: number | undefined;
  /** FAT/EFI timestamps. Default: env SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number | undefined;
  /** squashfs writer. Default: `writeSquashfs` from ./squashfs. */
  squashfsWriter?: SquashfsWriter | undefined;
  /**
   * gzip level of rootfs.squashfs: 1..12 with the native addon (libdeflate), 1..9 on node:zlib. Default: the
   * backend's (`DEFAULT_SQUASHFS_LEVEL`: the fastest libdeflate level whose image is no larger than mksquashfs's).
   */
  squashfsLevel?: number | undefined;
  /** xorriso program. Default: env CANVOS_XORRISO, else 'xorriso'. */
  xorriso?: string | undefined;
  /** Environment for child processes (PATH lookup). Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: IsoProgress) => void) | undefined;
  /** Called for inputs that are replaced or have no effect (e.g. a files-iso file the build generates). Default: none. */
  onWarning?: ((code: string, message: string) => void) | undefined;
}

/** Result of {@link buildIso}. */
export interface BuildIsoResult {
  isoPath: string;
  sha256Path: string;
  /** Hex sha256 of the ISO. */
  sha256: string;
}

const RELEASE_FILES = ['etc/kairos-release', 'etc/os-release', 'usr/lib/os-release'];

/** Builds `<outputDir>/<name>.iso` and its `.sha256`. */
export async function buildIso(input: BuildIsoInput, opts: BuildIsoOptions = {}): Promise<BuildIsoResult> {
  const { signal } = opts;
  const arch = input.arch ?? 'amd64';
  const name = input.name ?? 'palette-edge-installer';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new CanvosError('ERR_CONFIG', `invalid ISO name ${JSON.stringify(name)}`, {
      hint: 'use letters, digits, ".", "_" and "-"',
    });
  }
  if (!input.rootfs === !input.squashfsPath) {
    throw new CanvosError('ERR_USAGE', 'buildIso needs exactly one of rootfs or squashfsPath');
  }
  if (input.squashfsPath && (!input.kernel || !input.initrd)) {
    throw new CanvosError('ERR_USAGE', 'buildIso with squashfsPath also needs kernel and initrd');
  }
  // Validate every user input before the long steps.
  opts.onProgress?.({ phase: 'validate' });
  if (input.rootfs) squashfsLevel(opts.squashfsLevel);
  const userData = input.userData ? await readUserData(input.userData) : undefined;
  if (input.edgeCustomConfig) await requireFile(input.edgeCustomConfig, 'edge custom config');
  if (input.clusterConfig) await requireFile(input.clusterConfig, 'cluster config');
  if (input.squashfsPath) await requireFile(input.squashfsPath, 'squashfs');
  for (const k of [input.kernel, input.initrd]) if (typeof k === 'string') await requireFile(k, 'kernel/initrd');
  const bundles = await listContentBundles(input.contentDirs ?? [], opts.onWarning);
  const filesIso = input.filesIsoDir
    ? { dir: resolve(input.filesIsoDir), entries: await scanFilesIso(input.filesIsoDir) }
    : undefined;
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env ?? process.env);

  const outDir = resolve(input.outputDir);
  // A directory made for this ISO is removed again when the build fails (rmdir: only while empty).
  const madeOutDir = !(await stat(outDir).then(
    () => true,
    () => false,
  ));
  await mkdirs(outDir);
  const isoPath = join(outDir, `${name}.iso`);
  const shaPath = `${isoPath}.sha256`;
  const partial = `${isoPath}.partial`;
  const staging = await mkdtemp(join(outDir, `.${name}.staging-`));
  const iso = join(staging, 'iso');
  try {
    const spool = join(staging, 'spool');
    await mkdir(spool);
    await mkdir(join(iso, 'boot'), { recursive: true });
    const capture = new RootfsCapture(
      spool,
      [...shimCandidates(arch), ...grubCandidates(arch), ...RELEASE_FILES],
      ['boot', 'usr/lib/shim', `usr/lib/grub/${arch === 'arm64' ? 'arm64' : 'x86_64'}-efi-signed`],
    );

    opts.onProgress?.({ phase: 'squashfs' });
    await stageSquashfs(input, capture, iso, epoch, opts);
    throwIfAborted(signal);

    opts.onProgress?.({ phase: 'boot' });
    await placeBootFile(input.kernel, capture, KERNEL_PREFIXES, join(iso, 'boot', 'kernel'), signal);
    await placeBootFile(input.initrd, capture, INITRD_PREFIXES, join(iso, 'boot', 'initrd'), signal);
    const ubuntu = await isUbuntu(capture);

    opts.onProgress?.({ phase: 'efi' });
    const efi = await efiBootFiles({ arch, ubuntu, fromRootfs: (p) => capture.resolve(p) });
    await writeFatImage(
      join(iso, 'boot', 'uefi.img'),
      { files: efi.files },
      { label: 'EFI_LIVE', sourceDateEpoch: epoch, signal },
    );
    // AuroraBoot also writes the chainload stubs into the ISO tree itself.
    for (const p of ['EFI/BOOT/grub.cfg', 'boot/grub/grub.cfg', ...(ubuntu ? ['EFI/ubuntu/grub.cfg'] : [])]) {
      await mkdir(join(iso, p, '..'), { recursive: true });
      await writeFile(join(iso, p), GRUB_CHAINLOAD_CFG);
    }
    await writeBiosImages(join(iso, 'boot'), { signal });

    opts.onProgress?.({ phase: 'overlay' });
    await stageIsoOverlay(iso, {
      filesIso,
      userData,
      edgeCustomConfig: input.edgeCustomConfig,
      bundles,
      contentSplitBytes: opts.contentSplitBytes ?? DEFAULT_CONTENT_SPLIT_BYTES,
      clusterConfig: input.clusterConfig,
      forceInteractive: input.forceInteractive,
      debug: input.debug,
      grubTimeout: input.grubTimeout,
      onWarning: opts.onWarning,
      signal,
    });
    await rm(spool, { recursive: true, force: true });
    await normalizeTreeModes(iso);

    opts.onProgress?.({ phase: 'xorriso' });
    await writeIso(
      { isoDir: iso, outPath: partial, sourceDateEpoch: epoch > 0 ? epoch : undefined, moveIn: ownFiles(input) },
      {
        xorriso: opts.xorriso,
        env: opts.env,
        signal,
        onProgress: (p) => opts.onProgress?.({ phase: 'xorriso', percent: p.percent }),
      },
    );

    opts.onProgress?.({ phase: 'checksum' });
    const sha256 = await publishWithSha256(partial, isoPath, signal);
    return { isoPath, sha256Path: shaPath, sha256 };
  } catch (e) {
    await rm(partial, { force: true });
    await rm(`${shaPath}.partial`, { force: true });
    await rm(staging, { recursive: true, force: true });
    if (madeOutDir) await rmdir(outDir).catch(() => {});
    if (signal?.aborted) throw abortedOr(signal, e, false);
    throw withPath(e, partial);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Writes the rootfs's squashfs into the ISO tree, or links (else copies) a given squashfs there. */
async function stageSquashfs(
  input: BuildIsoInput,
  capture: RootfsCapture,
  iso: string,
  epoch: number,
  opts: BuildIsoOptions,
): Promise<void> {
  const sqfs = join(iso, 'rootfs.squashfs');
  if (input.rootfs) {
    // writeSquashfs defaults match AuroraBoot's `mksquashfs -b 1024k` (gzip, 1 MiB blocks).
    const writer = opts.squashfsWriter ?? writeSquashfs;
    // No fsync: the squashfs is a staging file, moved into the ISO and deleted.
    const o = { signal: opts.signal, mkfsTime: epoch, level: opts.squashfsLevel, sync: false };
    await writer(capture.wrap(input.rootfs, opts.signal), sqfs, o);
    return;
  }
  const given = input.squashfsPath ?? '';
  await link(given, sqfs).catch(() => copyFile(given, sqfs));
}

/**
 * The large tree files this build wrote itself, which writeIso moves into the ISO through sparse placeholders (the
 * disk peak stays near the ISO size): the squashfs unless the caller gave it (a hard link to the caller's file),
 * the kernel and the initrd (copies or extracts).
 */
function ownFiles(input: BuildIsoInput): string[] {
  return [...(input.rootfs ? ['rootfs.squashfs'] : []), 'boot/kernel', 'boot/initrd'];
}

/** Kernel and initrd name prefixes in /boot, in the order of kairos-agent's FindKernelInitrd (AuroraBoot). */
const KERNEL_PREFIXES = ['uImage', 'Image', 'zImage', 'vmlinuz', 'image'];
const INITRD_PREFIXES = ['initrd', 'initramfs'];

/**
 * The first /boot entry (in name order) starting with one of `prefixes`, as FindFileWithPrefix picks it: a file
 * directly, a link when its target exists (followed inside the rootfs). E.g. /boot/vmlinuz → vmlinuz-<kver> on
 * x86 Kairos images, /boot/Image on arm64 images without that link.
 */
function findBootFile(capture: RootfsCapture, prefixes: readonly string[]): string | undefined {
  for (const name of capture.children('boot')) {
    if (!prefixes.some((p) => name.startsWith(p))) continue;
    const host = capture.resolve(`boot/${name}`);
    if (host) return host;
  }
  return undefined;
}

async function placeBootFile(
  given: string | FileExtractor | undefined,
  capture: RootfsCapture,
  prefixes: readonly string[],
  dest: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (typeof given === 'string') return copyFile(given, dest);
  if (given) return given(dest, signal);
  const host = findBootFile(capture, prefixes);
  if (!host) {
    throw new CanvosError(
      'ERR_ISO',
      `the rootfs has no /boot/${prefixes.join('*, /boot/')}* file (a Kairos image links /boot/vmlinuz and /boot/initrd)`,
      {
        hint: 'use a Kairos base image, or pass the kernel/initrd explicitly',
      },
    );
  }
  // The spool is deleted before xorriso runs; a rename keeps one copy on disk.
  await rename(host, dest).catch(() => copyFile(host, dest));
}

/** Whether the captured release files name an Ubuntu flavor (AuroraBoot then adds EFI/ubuntu/grub.cfg). */
export async function isUbuntu(capture: RootfsCapture): Promise<boolean> {
  for (const f of RELEASE_FILES) {
    const host = capture.resolve(f);
    if (!host) continue;
    const text = await readFile(host, 'utf8');
    const flavor = /^(?:KAIROS_FLAVOR|ID)="?([^"\n]*)"?/m.exec(text)?.[1] ?? '';
    return flavor.toLowerCase().includes('ubuntu');
  }
  return false;
}
