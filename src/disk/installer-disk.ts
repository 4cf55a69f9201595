/**
 * buildInstallerDisk: the disk image driven by the CanvOS configuration, from the same installer rootfs as the ISO
 * (BASE_IMAGE + edits + STYLUS_BASE + overlay/files): ISO_NAME names it, ARCH and EDGE_CUSTOM_CONFIG apply, the
 * project's user-data goes to COS_OEM. CLUSTERCONFIG and content bundles are reported (CanvOS's cloud image puts
 * them on a COS_CONTENT partition made with losetup; not done here).
 */
import { join, resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { openInstallerRootfs, type InstallerRootfsOptions } from '../provider/installer.js';
import { installerIsoInputs } from '../provider/installer-iso.js';
import type { BuildConfig } from '../provider/resolve.js';
import { buildDisk, type BuildDiskResult, type DiskPhase } from './build-disk.js';
import { convertAll, type DiskFormat } from './convert.js';

/** Options of {@link buildInstallerDisk}. */
export interface InstallerDiskOptions extends InstallerRootfsOptions {
  /** Output directory. Default: `<projectDir>/build`. */
  outputDir?: string | undefined;
  /** User-data file. Default: `<projectDir>/user-data` if it exists, else none. */
  userData?: string | undefined;
  /** Copies besides the raw image. Default: none. */
  formats?: readonly DiskFormat[] | undefined;
  /** Minimum disk size in MiB. Default: the partitions' size. */
  sizeMiB?: number | undefined;
  /** Disk phases. Default: none. */
  onDiskProgress?: ((p: { phase: DiskPhase }) => void) | undefined;
}

/** Result of {@link buildInstallerDisk}. */
export interface InstallerDiskResult extends BuildDiskResult, Partial<Record<DiskFormat, string>> {
  baseImage: string;
  stylusImage: string;
}

/** Builds `<ISO_NAME>.raw` (+ formats) for `config`. */
export async function buildInstallerDisk(
  config: BuildConfig,
  opts: InstallerDiskOptions = {},
): Promise<InstallerDiskResult> {
  if (config.isUki)
    throw new CanvosError('ERR_CONFIG', 'IS_UKI=true: canvos-lite disk builds no Trusted Boot (UKI) disk image', {
      hint: 'install from the UKI ISO (canvos-lite iso with IS_UKI=true), or set IS_UKI=false for the disk image',
    });
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const inputs = await installerIsoInputs(config, { projectDir, userData: opts.userData });
  const warn = opts.onWarning ?? ((): void => {});
  if (inputs.clusterConfig)
    warn(
      'W_DISK_CONTENT',
      `CLUSTERCONFIG ${inputs.clusterConfig} is not put on the disk image (CanvOS adds a COS_CONTENT partition; use the ISO)`,
    );
  if (inputs.contentDirs.length > 0)
    warn(
      'W_DISK_CONTENT',
      `content bundles in ${inputs.contentDirs.join(', ')} are not put on the disk image (use the ISO)`,
    );
  const installer = await openInstallerRootfs(config, { ...opts, projectDir });
  let r: BuildDiskResult;
  try {
    r = await buildDisk(
      {
        rootfs: installer.rootfs,
        outputDir: opts.outputDir ?? join(projectDir, 'build'),
        name: config.isoName,
        arch: config.arch,
        userData: inputs.userData,
        edgeCustomConfig: inputs.edgeCustomConfig,
        sizeMiB: opts.sizeMiB,
      },
      {
        env: opts.env,
        sourceDateEpoch: opts.sourceDateEpoch,
        signal: opts.signal,
        onProgress: opts.onDiskProgress,
        onWarning: warn,
      },
    );
  } finally {
    await installer.close();
  }
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env ?? process.env);
  const copies = await convertAll(r.rawPath, opts.formats ?? [], {
    env: opts.env,
    signal: opts.signal,
    sourceDateEpoch: epoch,
  });
  return { ...r, ...copies, baseImage: installer.baseImage, stylusImage: installer.stylusImage };
}
