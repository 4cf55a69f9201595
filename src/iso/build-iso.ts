/**
 * buildIso: the CanvOS installer ISO (canvos.md §3.3/§3.5/§6.4) from a merged rootfs stream or a ready squashfs.
 * Staging happens in a temp dir inside the output dir (removed on success and failure); the ISO is written as
 * `<name>.iso.partial` and renamed, then `<name>.iso.sha256` (sha256sum format) is written the same way, so an
 * interrupted build never leaves a half-written artefact behind.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, copyFile, mkdir, mkdtemp, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CanvosError, abortError } from '../errors.js';
import type { FsEntry } from '../layers/entry.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { writeFatImage } from './fat.js';
import { GRUB_CHAINLOAD_CFG, canvosGrubMenu } from './grub-cfg.js';
import { efiBootFiles, grubCandidates, shimCandidates, writeBiosImages, type IsoArch } from './grub.js';
import {
  DEFAULT_CONTENT_SPLIT_BYTES,
  copyInto,
  listContentBundles,
  readUserData,
  requireFile,
  splitFile,
} from './iso-overlay.js';
import { RootfsCapture } from './rootfs-capture.js';
import { runXorriso } from './run-xorriso.js';
import { writeSquashfs } from './squashfs/index.js';
import { xorrisoArgs } from './xorriso-args.js';
import { mkdirs } from '../fs-util.js';
import { withPath } from '../error-map.js';

/** Writes a file to `dest` (e.g. extracts /boot/vmlinuz from an image). */
export type FileExtractor = (dest: string, signal?: AbortSignal) => Promise<void>;

/** Writes an FsEntry stream as a squashfs image (the signature of `writeSquashfs`). */
export type SquashfsWriter = (
  entries: AsyncIterable<FsEntry>,
  outPath: string,
  opts?: { signal?: AbortSignal | undefined; mkfsTime?: number | undefined },
) => Promise<{ bytes: number }>;

/** What goes into the ISO. Give `rootfs` or `squashfsPath`. */
export interface BuildIsoInput {
  /** The merged iso-image rootfs (e.g. `mergeLayers(...)`); consumed once. */
  rootfs?: AsyncIterable<FsEntry> | undefined;
  /** A squashfs written beforehand; then `kernel` and `initrd` are required. */
  squashfsPath?: string | undefined;
  /** Kernel: host path or extractor. Default: the rootfs's /boot/vmlinuz (symlinks followed). */
  kernel?: string | FileExtractor | undefined;
  /** Initrd: host path or extractor. Default: the rootfs's /boot/initrd. */
  initrd?: string | FileExtractor | undefined;
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
  /** Grub menu timeout in seconds. Default: 5. */
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
  /** xorriso program. Default: env CANVOS_XORRISO, else 'xorriso'. */
  xorriso?: string | undefined;
  /** Environment for child processes (PATH lookup). Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: IsoProgress) => void) | undefined;
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
    throw new CanvosError('ERR_CONFIG', `invalid ISO name ${JSON.stringify(name)}`, { hint: 'use letters, digits, ".", "_" and "-"' });
  }
  if (!input.rootfs === !input.squashfsPath) {
    throw new CanvosError('ERR_USAGE', 'buildIso needs exactly one of rootfs or squashfsPath');
  }
  if (input.squashfsPath && (!input.kernel || !input.initrd)) {
    throw new CanvosError('ERR_USAGE', 'buildIso with squashfsPath also needs kernel and initrd');
  }
  // Validate every user input before the long steps.
  opts.onProgress?.({ phase: 'validate' });
  const userData = input.userData ? await readUserData(input.userData) : undefined;
  if (input.edgeCustomConfig) await requireFile(input.edgeCustomConfig, 'edge custom config');
  if (input.clusterConfig) await requireFile(input.clusterConfig, 'cluster config');
  if (input.squashfsPath) await requireFile(input.squashfsPath, 'squashfs');
  for (const k of [input.kernel, input.initrd]) if (typeof k === 'string') await requireFile(k, 'kernel/initrd');
  const bundles = await listContentBundles(input.contentDirs ?? []);
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env ?? process.env);

  const outDir = resolve(input.outputDir);
  // A directory made for this ISO is removed again when the build fails (rmdir: only while empty).
  const madeOutDir = !(await stat(outDir).then(() => true, () => false));
  await mkdirs(outDir);
  const isoPath = join(outDir, `${name}.iso`);
  const shaPath = `${isoPath}.sha256`;
  const partial = `${isoPath}.partial`;
  const staging = await mkdtemp(join(outDir, `.${name}.staging-`));
  const iso = join(staging, 'iso');
  try {
    const spool = join(staging, 'spool');
    await mkdir(spool);
    await mkdir(join(iso, 'boot', 'grub2'), { recursive: true });
    const capture = new RootfsCapture(spool, [...shimCandidates(arch), ...grubCandidates(arch), ...RELEASE_FILES], [
      'boot',
      'usr/lib/shim',
      `usr/lib/grub/${arch === 'arm64' ? 'arm64' : 'x86_64'}-efi-signed`,
    ]);

    opts.onProgress?.({ phase: 'squashfs' });
    const sqfs = join(iso, 'rootfs.squashfs');
    if (input.rootfs) {
      // writeSquashfs defaults match AuroraBoot's `mksquashfs -b 1024k` (gzip, 1 MiB blocks).
      const writer = opts.squashfsWriter ?? writeSquashfs;
      await writer(capture.wrap(input.rootfs, signal), sqfs, { signal, mkfsTime: epoch });
    } else if (input.squashfsPath) {
      await link(input.squashfsPath, sqfs).catch(() => copyFile(input.squashfsPath ?? '', sqfs));
    }
    signal?.throwIfAborted();

    opts.onProgress?.({ phase: 'boot' });
    await placeBootFile(input.kernel, capture, 'boot/vmlinuz', join(iso, 'boot', 'kernel'), signal);
    await placeBootFile(input.initrd, capture, 'boot/initrd', join(iso, 'boot', 'initrd'), signal);
    const ubuntu = await isUbuntu(capture);

    opts.onProgress?.({ phase: 'efi' });
    const efi = await efiBootFiles({ arch, ubuntu, fromRootfs: (p) => capture.resolve(p) });
    await writeFatImage(join(iso, 'boot', 'uefi.img'), { files: efi.files }, { label: 'EFI_LIVE', sourceDateEpoch: epoch, signal });
    // AuroraBoot also writes the chainload stubs into the ISO tree itself.
    for (const p of ['EFI/BOOT/grub.cfg', 'boot/grub/grub.cfg', ...(ubuntu ? ['EFI/ubuntu/grub.cfg'] : [])]) {
      await mkdir(join(iso, p, '..'), { recursive: true });
      await writeFile(join(iso, p), GRUB_CHAINLOAD_CFG);
    }
    await writeBiosImages(join(iso, 'boot'), { signal });
    await writeFile(
      join(iso, 'boot', 'grub2', 'grub.cfg'),
      canvosGrubMenu({ forceInteractive: input.forceInteractive, debug: input.debug, timeout: input.grubTimeout }),
    );

    opts.onProgress?.({ phase: 'overlay' });
    const content = join(iso, 'opt', 'spectrocloud', 'content');
    await mkdir(content, { recursive: true });
    await writeFile(join(content, 'Readme.txt'), '');
    if (userData) {
      await mkdir(join(iso, 'files-iso'));
      await writeFile(join(iso, 'files-iso', 'config.yaml'), userData);
      // AuroraBoot's --cloud-config location, read by Kairos from the live medium root.
      await writeFile(join(iso, 'config.yaml'), userData);
    }
    if (input.edgeCustomConfig) await copyFile(input.edgeCustomConfig, join(iso, '.edge_custom_config.yaml'));
    for (const b of bundles) await splitFile(b, content, opts.contentSplitBytes ?? DEFAULT_CONTENT_SPLIT_BYTES, signal);
    if (input.clusterConfig) await copyInto(input.clusterConfig, join(iso, 'opt', 'spectrocloud', 'clusterconfig', 'spc.tgz'));
    await rm(spool, { recursive: true, force: true });

    opts.onProgress?.({ phase: 'xorriso' });
    await rm(partial, { force: true });
    await runXorriso(xorrisoArgs({ isoDir: iso, outPath: partial, sourceDateEpoch: epoch > 0 ? epoch : undefined }), {
      xorriso: opts.xorriso,
      env: opts.env,
      signal,
      onProgress: (p) => opts.onProgress?.({ phase: 'xorriso', percent: p.percent }),
    });

    opts.onProgress?.({ phase: 'checksum' });
    const hash = createHash('sha256');
    await pipeline(createReadStream(partial), hash, { signal });
    const sha256 = hash.digest('hex');
    await rename(partial, isoPath);
    await writeFile(`${shaPath}.partial`, `${sha256}  ${basename(isoPath)}\n`);
    await rename(`${shaPath}.partial`, shaPath);
    return { isoPath, sha256Path: shaPath, sha256 };
  } catch (e) {
    await rm(partial, { force: true });
    await rm(`${shaPath}.partial`, { force: true });
    await rm(staging, { recursive: true, force: true });
    if (madeOutDir) await rmdir(outDir).catch(() => {});
    if (signal?.aborted && !(CanvosError.is(e) && e.code === 'ERR_ABORTED')) throw abortError(signal);
    throw withPath(e, partial);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function placeBootFile(
  given: string | FileExtractor | undefined,
  capture: RootfsCapture,
  rootfsPath: string,
  dest: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (typeof given === 'string') return copyFile(given, dest);
  if (given) return given(dest, signal);
  const host = capture.resolve(rootfsPath);
  if (!host) {
    throw new CanvosError('ERR_ISO', `the rootfs has no /${rootfsPath} (a Kairos image links it to the versioned file)`, {
      hint: 'use a Kairos base image, or pass the kernel/initrd explicitly',
    });
  }
  // The spool is deleted before xorriso runs; a rename keeps one copy on disk.
  await rename(host, dest).catch(() => copyFile(host, dest));
}

async function isUbuntu(capture: RootfsCapture): Promise<boolean> {
  for (const f of RELEASE_FILES) {
    const host = capture.resolve(f);
    if (!host) continue;
    const text = await readFile(host, 'utf8');
    const flavor = /^(?:KAIROS_FLAVOR|ID)="?([^"\n]*)"?/m.exec(text)?.[1] ?? '';
    return flavor.toLowerCase().includes('ubuntu');
  }
  return false;
}
