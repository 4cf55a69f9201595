/**
 * buildInstallerIso: CanvOS's `iso-image` + `iso` targets driven by the build configuration (canvos.md §1.7, §3.1):
 * ISO_NAME, ARCH, FORCE_INTERACTIVE_INSTALL, DEBUG, CLUSTERCONFIG and EDGE_CUSTOM_CONFIG from `.arg`/canvos.yaml,
 * content bundles from every `content-*` directory of the project (CanvOS copies their `.zst` files), user-data
 * from `user-data` next to the configuration unless given. The installer rootfs is streamed into buildIso.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildIso, type BuildIsoResult, type IsoProgress } from '../iso/build-iso.js';
import { readUserData, requireFile } from '../iso/iso-overlay.js';
import { applyInventory } from './inventory.js';
import { openInstallerRootfs, type InstallerRootfsOptions } from './installer.js';
import { formatLoc, type BuildConfig } from './resolve.js';

/** Options of {@link buildInstallerIso}. */
export interface InstallerIsoOptions extends InstallerRootfsOptions {
  /** Output directory of `<ISO_NAME>.iso` and `.sha256`. Default: `<projectDir>/build`. */
  outputDir?: string | undefined;
  /** User-data file. Default: `<projectDir>/user-data` if it exists, else none. */
  userData?: string | undefined;
  /** Extra content bundle directories, after the project's `content-*` ones. Default: none. */
  contentDirs?: readonly string[] | undefined;
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
}

const isFile = (p: string): Promise<boolean> => stat(p).then((s) => s.isFile(), () => false);

/** The project's `content-*` directories, sorted (CanvOS copies the `.zst` files of every `content-*` directory). */
export async function projectContentDirs(projectDir: string): Promise<string[]> {
  const names = await readdir(projectDir, { withFileTypes: true }).catch(() => []);
  return names.filter((d) => d.isDirectory() && d.name.startsWith('content-')).map((d) => join(projectDir, d.name)).sort();
}

/** The ISO inputs taken from the project directory and the configuration. */
export interface InstallerIsoInputs {
  userData: string | undefined;
  contentDirs: string[];
  clusterConfig: string | undefined;
  edgeCustomConfig: string | undefined;
}

/**
 * Resolve and validate the ISO inputs of `config` (user-data YAML, CLUSTERCONFIG present) without reading any
 * image, so callers such as build-all can fail before their long steps.
 */
export async function installerIsoInputs(config: BuildConfig, opts: Pick<InstallerIsoOptions, 'projectDir' | 'userData' | 'contentDirs' | 'onWarning'> = {}): Promise<InstallerIsoInputs> {
  applyInventory(config, ['base', 'iso']); // refusals only (UKI, MAAS/cloud images): before anything is built
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const defaultUserData = join(projectDir, 'user-data');
  const userData = opts.userData ? resolve(opts.userData) : (await isFile(defaultUserData)) ? defaultUserData : undefined;
  const contentDirs = [...(await projectContentDirs(projectDir)), ...(opts.contentDirs ?? []).map((d) => resolve(d))];
  let clusterConfig = config.clusterconfig ? resolve(projectDir, config.clusterconfig) : undefined;
  // CanvOS copies CLUSTERCONFIG --if-exists (and .arg.template sets CLUSTERCONFIG=spc.tgz): a missing file only warns.
  if (clusterConfig && (await stat(clusterConfig).catch(() => undefined)) === undefined) {
    const at = formatLoc(config.origins.CLUSTERCONFIG);
    opts.onWarning?.('W_CLUSTERCONFIG_MISSING', `${at ? `${at}: ` : ''}CLUSTERCONFIG=${config.clusterconfig}: ${clusterConfig} does not exist, so the ISO has no cluster configuration (CanvOS copies it only if it exists)`);
    clusterConfig = undefined;
  }
  // EDGE_CUSTOM_CONFIG has a default file name; CanvOS copies it only when present.
  const ecc = config.edgeCustomConfig ? resolve(projectDir, config.edgeCustomConfig) : undefined;
  const edgeCustomConfig = ecc && (await isFile(ecc)) ? ecc : undefined;
  const eccAt = formatLoc(config.origins.EDGE_CUSTOM_CONFIG);
  if (ecc && !edgeCustomConfig && eccAt && config.edgeCustomConfig !== '.edge-custom-config.yaml') {
    opts.onWarning?.('W_EDGE_CUSTOM_CONFIG_MISSING', `${eccAt}: EDGE_CUSTOM_CONFIG=${config.edgeCustomConfig}: ${ecc} does not exist, so the ISO has no edge custom config (CanvOS copies it only if it exists)`);
  }
  if (userData) await readUserData(userData);
  if (clusterConfig) await requireFile(clusterConfig, 'CLUSTERCONFIG');
  return { userData, contentDirs, clusterConfig, edgeCustomConfig };
}

/** Build `<ISO_NAME>.iso` for `config` (see the file header). Inputs are validated before any image is read. */
export async function buildInstallerIso(config: BuildConfig, opts: InstallerIsoOptions = {}): Promise<InstallerIsoResult> {
  const projectDir = resolve(opts.projectDir ?? process.cwd());
  const { userData, contentDirs, clusterConfig, edgeCustomConfig } = await installerIsoInputs(config, opts);
  const installer = await openInstallerRootfs(config, { ...opts, projectDir });
  try {
    const r = await buildIso(
      {
        rootfs: installer.rootfs,
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
      { env: opts.env, sourceDateEpoch: opts.sourceDateEpoch, signal: opts.signal, onProgress: opts.onIsoProgress },
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
    };
  } finally {
    await installer.close();
  }
}
