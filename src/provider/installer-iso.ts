/**
 * buildInstallerIso: CanvOS's `iso-image` + `iso` targets driven by the build configuration (canvos.md §1.7, §3.1):
 * ISO_NAME, ARCH, FORCE_INTERACTIVE_INSTALL, DEBUG, CLUSTERCONFIG and EDGE_CUSTOM_CONFIG from `.arg`/canvos.yaml,
 * content bundles from every `content-*` directory of the project (CanvOS copies their `.zst` files), user-data
 * from `user-data` next to the configuration unless given, `overlay/files-iso/` onto the ISO and `local-ui.tar` into
 * the rootfs's /opt/spectrocloud when the project has them. The installer rootfs is streamed into buildIso.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildIso, type BuildIsoResult, type IsoProgress } from '../iso/build-iso.js';
import { scanFilesIso } from '../iso/files-iso.js';
import { readUserData } from '../iso/iso-overlay.js';
import { checkLocalUi } from '../iso/local-ui.js';
import { applyInventory } from './inventory.js';
import { openInstallerRootfs, type InstallerRootfsOptions } from './installer.js';
import { formatLoc, type BuildConfig } from './resolve.js';

/** Options of {@link buildInstallerIso}. */
export interface InstallerIsoOptions extends InstallerRootfsOptions {
  /** Output directory of `<ISO_NAME>.iso` and `.sha256`. Default: `<projectDir>/build`. */
  outputDir?: string | undefined;
  /** User-data file. Default: `<projectDir>/user-data` if it exists, else none. */
  userData?: string | undefined;
  /** local-ui.tar, extracted into the rootfs's /opt/spectrocloud. Default: `<projectDir>/local-ui.tar` if it exists. */
  localUi?: string | undefined;
  /** Extra content bundle directories, after the project's `content-*` ones. Default: none. */
  contentDirs?: readonly string[] | undefined;
  /** gzip level of rootfs.squashfs (BuildIsoOptions.squashfsLevel). Default: the backend's. */
  squashfsLevel?: number | undefined;
  /** ISO phases. Default: none. */
  onIsoProgress?: ((p: IsoProgress) => void) | undefined;
}

/** Result of {@link buildInstallerIso}. */
export interface InstallerIsoResult extends BuildIsoResult {
  baseImage: string;
  stylusImage: string;
  /** Layers stacked on the base image, bottom first. */
  layers: string[];
  /** The inputs taken from the project directory and configuration. */
  userData: string | null;
  contentDirs: string[];
  clusterConfig: string | null;
  edgeCustomConfig: string | null;
  /** The project's overlay/files-iso directory when it exists. */
  filesIso: string | null;
  localUi: string | null;
}

/** EDGE_CUSTOM_CONFIG's default (CanvOS Earthfile and .arg.template). */
const DEFAULT_EDGE_CUSTOM_CONFIG = '.edge-custom-config.yaml';

const isFile = (p: string): Promise<boolean> =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  );

/** The project's `content-*` directories, sorted (CanvOS copies the `.zst` files of every `content-*` directory). */
export async function projectContentDirs(projectDir: string): Promise<string[]> {
  const names = await readdir(projectDir, { withFileTypes: true }).catch(() => []);
  return names
    .filter((d) => d.isDirectory() && d.name.startsWith('content-'))
    .map((d) => join(projectDir, d.name))
    .sort();
}

/** The ISO inputs taken from the project directory and the configuration. */
export interface InstallerIsoInputs {
  userData: string | undefined;
  contentDirs: string[];
  clusterConfig: string | undefined;
  edgeCustomConfig: string | undefined;
  filesIso: string | undefined;
  localUi: string | undefined;
}

/**
 * Resolve and validate the ISO inputs of `config` (user-data YAML, overlay/files-iso, local-ui.tar; a missing
 * CLUSTERCONFIG or chosen EDGE_CUSTOM_CONFIG is a warning, as CanvOS skips them) without reading any image, so
 * callers such as build-all can fail before their long steps.
 */
export async function installerIsoInputs(
  config: BuildConfig,
  opts: Pick<InstallerIsoOptions, 'projectDir' | 'userData' | 'contentDirs' | 'localUi' | 'signal' | 'onWarning'> & {
    /** What is built from the rootfs: the ISO (default) or a disk image (IS_CLOUD_IMAGE / IS_MAAS allowed). */
    artefact?: 'iso' | 'disk';
  } = {},
): Promise<InstallerIsoInputs> {
  const warn = opts.onWarning ?? (() => {});
  // Refusals only (UKI; cloud/MAAS images for the ISO): before anything is built.
  applyInventory(config, opts.artefact === 'disk' ? ['base', 'iso'] : ['base', 'iso', 'iso-only']);
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const defaultUserData = join(projectDir, 'user-data');
  const userData = opts.userData
    ? resolve(opts.userData)
    : (await isFile(defaultUserData))
      ? defaultUserData
      : undefined;
  const contentDirs = [...(await projectContentDirs(projectDir)), ...(opts.contentDirs ?? []).map((d) => resolve(d))];
  // CanvOS copies CLUSTERCONFIG and EDGE_CUSTOM_CONFIG with `COPY --if-exists` (and .arg.template sets
  // CLUSTERCONFIG=spc.tgz): a missing file is skipped, loudly here.
  const cc = config.clusterconfig ? resolve(projectDir, config.clusterconfig) : undefined;
  const clusterConfig = cc && (await isFile(cc)) ? cc : undefined;
  if (cc && !clusterConfig) {
    const at = formatLoc(config.origins.CLUSTERCONFIG);
    warn(
      'W_CLUSTERCONFIG_MISSING',
      `${at ? `${at}: ` : ''}CLUSTERCONFIG=${config.clusterconfig}: ${cc} does not exist, so the ISO has no /opt/spectrocloud/clusterconfig/spc.tgz (CanvOS copies it only if it exists)`,
    );
  }
  const ecc = config.edgeCustomConfig ? resolve(projectDir, config.edgeCustomConfig) : undefined;
  const edgeCustomConfig = ecc && (await isFile(ecc)) ? ecc : undefined;
  // The default name (.arg.template's) usually does not exist; a name the user chose should.
  if (ecc && !edgeCustomConfig && config.edgeCustomConfig !== DEFAULT_EDGE_CUSTOM_CONFIG) {
    const at = formatLoc(config.origins.EDGE_CUSTOM_CONFIG);
    warn(
      'W_EDGE_CUSTOM_CONFIG_MISSING',
      `${at ? `${at}: ` : ''}EDGE_CUSTOM_CONFIG=${config.edgeCustomConfig}: ${ecc} does not exist, so the ISO has no /.edge_custom_config.yaml (CanvOS copies it only if it exists)`,
    );
  }
  if (userData) await readUserData(userData);
  // CanvOS: `COPY overlay/files-iso/ /overlay/` and `COPY --if-exists local-ui.tar`.
  const fi = join(projectDir, 'overlay', 'files-iso');
  const filesIso = (await stat(fi).then(
    (s) => s.isDirectory(),
    () => false,
  ))
    ? fi
    : undefined;
  if (filesIso) await scanFilesIso(filesIso);
  const defaultLocalUi = join(projectDir, 'local-ui.tar');
  const localUi = opts.localUi ? resolve(opts.localUi) : (await isFile(defaultLocalUi)) ? defaultLocalUi : undefined;
  if (localUi) await checkLocalUi(localUi, opts.signal);
  return { userData, contentDirs, clusterConfig, edgeCustomConfig, filesIso, localUi };
}

/** Build `<ISO_NAME>.iso` for `config` (see the file header). Inputs are validated before any image is read. */
export async function buildInstallerIso(
  config: BuildConfig,
  opts: InstallerIsoOptions = {},
): Promise<InstallerIsoResult> {
  if (config.isUki)
    opts.onWarning?.(
      'W_UKI_PLAIN_BUILD',
      'IS_UKI=true: buildInstallerIso builds the plain installer ISO; buildConfiguredIso (what canvos-lite iso runs) builds the signed UKI ISO',
    );
  return buildInstallerIsoOf(config, opts);
}

/** {@link buildInstallerIso} without the IS_UKI warning (the UKI path's arm64 fallback warns on its own). */
export async function buildInstallerIsoOf(
  config: BuildConfig,
  opts: InstallerIsoOptions = {},
): Promise<InstallerIsoResult> {
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const { userData, contentDirs, clusterConfig, edgeCustomConfig, filesIso, localUi } = await installerIsoInputs(
    config,
    opts,
  );
  const installer = await openInstallerRootfs(config, { ...opts, projectDir, localUi });
  try {
    const r = await buildIso(
      {
        rootfs: installer.rootfs,
        filesIsoDir: filesIso,
        userData,
        contentDirs,
        clusterConfig,
        edgeCustomConfig,
        outputDir: opts.outputDir ?? join(projectDir, 'build'),
        name: config.isoName,
        arch: config.arch,
        forceInteractive: config.forceInteractiveInstall,
        debug: config.debug,
      },
      {
        env: opts.env,
        sourceDateEpoch: opts.sourceDateEpoch,
        squashfsLevel: opts.squashfsLevel,
        signal: opts.signal,
        onProgress: opts.onIsoProgress,
        onWarning: opts.onWarning,
      },
    );
    return {
      ...r,
      baseImage: installer.baseImage,
      stylusImage: installer.stylusImage,
      layers: installer.layers,
      userData: userData ?? null,
      contentDirs,
      clusterConfig: clusterConfig ?? null,
      edgeCustomConfig: edgeCustomConfig ?? null,
      filesIso: filesIso ?? null,
      localUi: localUi ?? null,
    };
  } finally {
    await installer.close();
  }
}
