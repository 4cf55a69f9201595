/**
 * The installer ISO of the configuration with IS_UKI=true, as CanvOS's build-uki-iso (canvos.md §3.6): the
 * iso-image rootfs (without /opt/spectrocloud/bin/* except agent-provider-stylus, and without /usr/bin/luet) becomes
 * the signed UKI; the overlay is overlay/files-iso, the user-data at /config.yaml, /luet (the installer image's),
 * /stylus-image.tar, .edge_custom_config.yaml, the split content bundles and spc.tgz. Keys from the project's secure-boot/; CMDLINE
 * is appended to enki's command line, BRANDING titles the loader entry, AUTO_ENROLL_SECUREBOOT_KEYS sets
 * `secure-boot-enroll force`. arm64 builds the plain ISO, as CanvOS does (the inventory warns).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { scanFilesIso, stageIsoOverlay, normalizeTreeModes, GRUB_MENU_PATH } from '../iso/files-iso.js';
import { DEFAULT_CONTENT_SPLIT_BYTES, listContentBundles, readUserData } from '../iso/iso-overlay.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import type { FsEntry } from '../tar/entry.js';
import { openInstallerRootfs } from '../provider/installer.js';
import {
  buildInstallerIsoOf,
  installerIsoInputs,
  type InstallerIsoOptions,
  type InstallerIsoResult,
} from '../provider/installer-iso.js';
import { copyImage } from '../copy/copy.js';
import { openDestination, openSource } from '../transports/resolve-location.js';
import { stylusImage, stylusPackageImage } from '../provider/derive.js';
import type { BuildConfig } from '../provider/resolve.js';
import { projectKeysDir } from './config-provider.js';
import { buildUkiIsoFromRootfs } from './uki-iso-image.js';

/** Result of {@link buildConfiguredIso}: the plain ISO's, plus what the UKI is made of with IS_UKI=true. */
export interface ConfiguredIsoResult extends InstallerIsoResult {
  uki?: { ukiPath: string; uname: string; cmdline: string; efiSource: 'image' | 'host'; systemdVersion?: number };
}

/** CanvOS's iso-image with IS_UKI: every agent binary but agent-provider-stylus and luet leave the rootfs. */
function ukiDropped(path: string): boolean {
  return (
    path === 'usr/bin/luet' ||
    (path.startsWith('opt/spectrocloud/bin/') && path !== 'opt/spectrocloud/bin/agent-provider-stylus')
  );
}

/** The installer rootfs without {@link ukiDropped} paths; /usr/bin/luet is saved to `luetOut` (the ISO's /luet). */
async function* ukiInstallerRootfs(rootfs: AsyncIterable<FsEntry>, luetOut: string): AsyncGenerator<FsEntry> {
  for await (const e of rootfs) {
    if (!ukiDropped(e.path)) {
      yield e;
      continue;
    }
    if (e.path === 'usr/bin/luet' && e.type === 'file' && e.content)
      await pipeline(e.content, createWriteStream(luetOut, { mode: 0o755 }));
    else e.content?.resume();
  }
}

/**
 * CanvOS's stylus-image-pack: the stylus package image (STYLUS_PACKAGE_BASE) as an image tarball tagged STYLUS_BASE,
 * which cloudconfigs/80_stylus_uki.yaml unpacks onto the OEM partition at install (CanvOS: `luet util pack`, one
 * layer; here the image's layers as they are, in the docker-archive format luet reads).
 */
async function packStylus(config: BuildConfig, file: string, opts: InstallerIsoOptions): Promise<void> {
  const ref = stylusPackageImage(config);
  opts.onProgress?.(`pack ${ref} -> /stylus-image.tar`);
  const src = openSource(`docker://${ref}`, { registry: opts.registry ?? {} });
  const dst = openDestination({ transport: 'docker-archive', file, ref: stylusImage(config) });
  try {
    await copyImage(src, dst, {
      platforms: [{ os: 'linux', architecture: config.arch }],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } finally {
    await Promise.allSettled([src.close(), dst.close()]);
  }
}

/** `iso` / `build-all`: the UKI ISO with IS_UKI=true on amd64, else the plain installer ISO. */
export async function buildConfiguredIso(
  config: BuildConfig,
  opts: InstallerIsoOptions = {},
): Promise<ConfiguredIsoResult> {
  if (!config.isUki || config.arch !== 'amd64') return buildInstallerIsoOf(config, opts);
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  if (opts.squashfsLevel !== undefined)
    opts.onWarning?.('W_SQUASHFS_LEVEL_UNUSED', 'the squashfs level has no effect on the UKI ISO (it has no squashfs)');
  const inputs = await installerIsoInputs(config, opts);
  const keysDir = projectKeysDir(projectDir);
  const outputDir = opts.outputDir ?? join(projectDir, 'build');
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env);
  const { signal } = opts;
  await mkdir(outputDir, { recursive: true });
  const stage = await mkdtemp(join(outputDir, `.${config.isoName}.uki-overlay-`));
  try {
    const filesIso = inputs.filesIso
      ? { dir: inputs.filesIso, entries: await scanFilesIso(inputs.filesIso) }
      : undefined;
    await stageIsoOverlay(stage, {
      filesIso,
      userData: inputs.userData ? await readUserData(inputs.userData) : undefined,
      edgeCustomConfig: inputs.edgeCustomConfig,
      bundles: await listContentBundles(inputs.contentDirs, opts.onWarning),
      contentSplitBytes: DEFAULT_CONTENT_SPLIT_BYTES,
      clusterConfig: inputs.clusterConfig,
      onWarning: opts.onWarning,
      signal,
    });
    // systemd-boot boots the UKI ISO: the grub menu stageIsoOverlay generates is not CanvOS's (a project one stays)
    if (!filesIso?.entries.some((e) => e.path === GRUB_MENU_PATH)) {
      await rm(join(stage, GRUB_MENU_PATH));
      for (const d of ['boot/grub2', 'boot']) await rmdir(join(stage, d)).catch(() => {}); // only when left empty
    }
    await normalizeTreeModes(stage);
    await packStylus(config, join(stage, 'stylus-image.tar'), opts);
    const installer = await openInstallerRootfs(config, { ...opts, projectDir, localUi: inputs.localUi });
    try {
      const r = await buildUkiIsoFromRootfs(ukiInstallerRootfs(installer.rootfs, join(stage, 'luet')), {
        keysDir,
        outputDir,
        name: config.isoName,
        version: 'norole',
        branding: config.branding,
        autoEnroll: config.autoEnrollSecurebootKeys,
        ...(config.cmdline ? { extendCmdline: config.cmdline } : {}),
        overlayDirs: [stage],
        sourceDateEpoch: epoch,
        ...(signal ? { signal } : {}),
        ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
      });
      return {
        isoPath: r.isoPath,
        sha256Path: r.sha256Path,
        sha256: r.sha256,
        baseImage: installer.baseImage,
        stylusImage: installer.stylusImage,
        layers: installer.layers,
        userData: inputs.userData ?? null,
        contentDirs: inputs.contentDirs,
        clusterConfig: inputs.clusterConfig ?? null,
        edgeCustomConfig: inputs.edgeCustomConfig ?? null,
        filesIso: inputs.filesIso ?? null,
        localUi: inputs.localUi ?? null,
        uki: {
          ukiPath: r.ukiPath,
          uname: r.uname,
          cmdline: r.cmdline,
          efiSource: r.efiSource,
          ...(r.systemdVersion !== undefined ? { systemdVersion: r.systemdVersion } : {}),
        },
      };
    } finally {
      await installer.close();
    }
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
