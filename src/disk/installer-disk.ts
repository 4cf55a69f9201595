/**
 * buildInstallerDisk: the disk image driven by the CanvOS configuration, from the same installer rootfs as the ISO
 * (BASE_IMAGE + edits + STYLUS_BASE + overlay/files + local-ui.tar): ISO_NAME names it, ARCH and EDGE_CUSTOM_CONFIG
 * apply, the project's user-data goes to COS_OEM. IS_CLOUD_IMAGE=true builds CanvOS's cloud image (the cloud extras
 * in the rootfs, COS_CONTENT with the content bundles, CLUSTERCONFIG and EDGE_CUSTOM_CONFIG); IS_MAAS=true builds
 * its MAAS image (`<MAAS_IMAGE_NAME>.raw.gz`: UBUNTU_ROOTFS from the Ubuntu cloud image in the project, the curtin
 * hooks, COS_CONTENT). The plain flavour reports CLUSTERCONFIG and content bundles (CanvOS carries them only there).
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CanvosError } from '../errors.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { openInstallerRootfs, type InstallerRootfsOptions } from '../provider/installer.js';
import { installerIsoInputs, type InstallerIsoInputs } from '../provider/installer-iso.js';
import type { BuildConfig } from '../provider/resolve.js';
import { buildDisk, type BuildDiskResult, type DiskFlavour, type DiskPhase } from './build-disk.js';
import { contentBundles } from './content-partition.js';
import { convertAll, type DiskFormat } from './convert.js';
import { UBUNTU_CLOUD_IMAGE_URL, finishMaasImage } from './maas.js';

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
  /** Extra content bundle directories (cloud/MAAS COS_CONTENT), after the project's `content-*` ones. Default: none. */
  contentDirs?: readonly string[] | undefined;
  /**
   * IS_MAAS: the Ubuntu cloud image (`noble-server-cloudimg-amd64.tar.gz` or its `.img`). Default: that file (either
   * form) in the project directory.
   */
  maasUbuntuImage?: string | undefined;
  /** gzip level of the recovery squashfs (BuildDiskOptions.squashfsLevel). Default: the backend's. */
  squashfsLevel?: number | undefined;
  /** Disk phases. Default: none. */
  onDiskProgress?: ((p: { phase: DiskPhase }) => void) | undefined;
}

/** Result of {@link buildInstallerDisk}. */
export interface InstallerDiskResult extends BuildDiskResult, Partial<Record<DiskFormat, string>> {
  baseImage: string;
  stylusImage: string;
  flavour: DiskFlavour;
}

/** The flavour the configuration asks for. */
export function diskFlavourOf(config: Pick<BuildConfig, 'isCloudImage' | 'isMaas'>): DiskFlavour {
  if (config.isCloudImage && config.isMaas)
    throw new CanvosError('ERR_CONFIG', 'IS_CLOUD_IMAGE=true and IS_MAAS=true ask for two different disk images', {
      hint: 'set one of them to false',
    });
  return config.isMaas ? 'maas' : config.isCloudImage ? 'cloud' : 'kairos';
}

const isFile = (p: string): Promise<boolean> =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  );

/** The MAAS inputs (earthly.sh's checks): Ubuntu only, cloudconfigs/curtin-hooks, the Ubuntu cloud image. */
async function maasInputs(
  config: BuildConfig,
  projectDir: string,
  given: string | undefined,
): Promise<{ image: string; curtinHooks: string }> {
  if (config.osDistribution !== 'ubuntu')
    throw new CanvosError(
      'ERR_CONFIG',
      `IS_MAAS=true: the MAAS image supports only OS_DISTRIBUTION=ubuntu, not ${config.osDistribution}`,
      {
        hint: 'set OS_DISTRIBUTION=ubuntu (as CanvOS requires for +maas-image), or IS_MAAS=false',
      },
    );
  const curtinHooks = join(projectDir, 'cloudconfigs', 'curtin-hooks');
  if (!(await isFile(curtinHooks)))
    throw new CanvosError('ERR_CONFIG', `IS_MAAS=true: ${curtinHooks} does not exist`, {
      hint: "copy it from CanvOS's cloudconfigs/ (the MAAS image's /curtin/curtin-hooks)",
    });
  const base = UBUNTU_CLOUD_IMAGE_URL.slice(UBUNTU_CLOUD_IMAGE_URL.lastIndexOf('/') + 1);
  const candidates = given
    ? [resolve(given)]
    : [join(projectDir, base), join(projectDir, base.replace(/\.tar\.gz$/, '.img'))];
  for (const c of candidates) if (await isFile(c)) return { image: c, curtinHooks };
  throw new CanvosError(
    'ERR_CONFIG',
    `IS_MAAS=true needs the Ubuntu cloud image: ${candidates.join(' or ')} does not exist`,
    {
      hint: `download ${UBUNTU_CLOUD_IMAGE_URL} (CanvOS's build-kairos-maas.sh downloads it) into the project directory`,
    },
  );
}

/**
 * Resolves and validates the disk inputs of `config` (the ISO's, plus the MAAS ones) without reading any image, so
 * build-all can fail before its long steps.
 */
export async function installerDiskInputs(
  config: BuildConfig,
  opts: Pick<InstallerDiskOptions, 'projectDir' | 'userData' | 'contentDirs' | 'maasUbuntuImage' | 'signal'> = {},
): Promise<{
  flavour: DiskFlavour;
  inputs: InstallerIsoInputs;
  maas: { image: string; curtinHooks: string } | undefined;
}> {
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const flavour = diskFlavourOf(config);
  const inputs = await installerIsoInputs(config, {
    projectDir,
    userData: opts.userData,
    contentDirs: opts.contentDirs,
    signal: opts.signal,
    artefact: 'disk',
  });
  const maas = flavour === 'maas' ? await maasInputs(config, projectDir, opts.maasUbuntuImage) : undefined;
  return { flavour, inputs, maas };
}

/** Builds `<ISO_NAME>.raw` (+ formats), `<ISO_NAME>.raw` with COS_CONTENT (cloud) or `<MAAS_IMAGE_NAME>.raw.gz`. */
export async function buildInstallerDisk(
  config: BuildConfig,
  opts: InstallerDiskOptions = {},
): Promise<InstallerDiskResult> {
  if (config.isUki)
    throw new CanvosError('ERR_CONFIG', 'IS_UKI=true: canvos-lite disk builds no Trusted Boot (UKI) disk image', {
      hint: 'install from the UKI ISO (canvos-lite iso with IS_UKI=true), or set IS_UKI=false for the disk image',
    });
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const { flavour, inputs, maas } = await installerDiskInputs(config, { ...opts, projectDir });
  const warn = opts.onWarning ?? ((): void => {});
  if (flavour === 'kairos' && inputs.clusterConfig)
    warn(
      'W_DISK_CONTENT',
      `CLUSTERCONFIG ${inputs.clusterConfig} is not put on the disk image (CanvOS carries it only on the cloud and MAAS images' COS_CONTENT: set IS_CLOUD_IMAGE=true, or use the ISO)`,
    );
  if (flavour === 'kairos' && inputs.contentDirs.length > 0)
    warn(
      'W_DISK_CONTENT',
      `content bundles in ${inputs.contentDirs.join(', ')} are not put on the disk image (set IS_CLOUD_IMAGE=true for a COS_CONTENT partition, or use the ISO)`,
    );
  const content =
    flavour === 'kairos'
      ? undefined
      : { bundles: await contentBundles(inputs.contentDirs), clusterConfig: inputs.clusterConfig };
  const installer = await openInstallerRootfs(config, { ...opts, projectDir, localUi: inputs.localUi });
  let r: BuildDiskResult;
  try {
    r = await buildDisk(
      {
        rootfs: installer.rootfs,
        outputDir: opts.outputDir ?? join(projectDir, 'build'),
        name: flavour === 'maas' ? config.maasImageName.replace(/\.raw(\.gz)?$/, '') : config.isoName,
        arch: config.arch,
        userData: inputs.userData,
        edgeCustomConfig: inputs.edgeCustomConfig,
        sizeMiB: opts.sizeMiB,
        flavour,
        content,
        maas,
      },
      {
        env: opts.env,
        sourceDateEpoch: opts.sourceDateEpoch,
        squashfsLevel: opts.squashfsLevel,
        signal: opts.signal,
        onProgress: opts.onDiskProgress,
        onWarning: warn,
      },
    );
  } finally {
    await installer.close();
  }
  const base = { baseImage: installer.baseImage, stylusImage: installer.stylusImage, flavour };
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv(opts.env ?? process.env);
  const copies = await convertAll(
    r.rawPath,
    (opts.formats ?? []).filter((f) => flavour !== 'maas' || f !== 'raw.gz'),
    { env: opts.env, signal: opts.signal, sourceDateEpoch: epoch },
  );
  if (flavour === 'maas') {
    // CanvOS keeps only the .raw.gz (and its checksum): the .raw is removed, as build-kairos-maas.sh does.
    const gz = await finishMaasImage(r.rawPath, opts.signal);
    return { ...r, ...copies, ...base, 'raw.gz': gz.path, sha256Path: gz.sha256Path, sha256: gz.sha256 };
  }
  return { ...r, ...copies, ...base };
}
