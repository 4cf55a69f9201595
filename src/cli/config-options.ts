/**
 * The configuration and registry flags shared by `build`, `iso` (config-driven) and `build-all`: where `.arg`,
 * canvos.yaml, k8s_version.json and the project directory are, `--set` overrides, and registry access. One parser
 * so the commands accept the same spellings and report the same errors.
 */
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { blobLocationsFromEnv } from '../cache/blob-locations.js';
import { CanvosError } from '../errors.js';
import { loadK8sVersions, selectK8sVersions } from '../provider/k8s-versions.js';
import { loadBuildConfig } from '../provider/load.js';
import { withPeVersionDefault } from '../provider/pe-version.js';
import type { BuildConfig, WarningHandler } from '../provider/resolve.js';
import { checkAccessPaths, parseTimeout, timeoutHelp, warningSink, TIMEOUT_OPTION, usageError } from './flags.js';
import { throwIfAborted } from '../util/abort.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import type { CliIo } from './types.js';

/** parseArgs option definitions of the configuration flags. */
export const CONFIG_OPTIONS = {
  'arg-file': { type: 'string' },
  config: { type: 'string' },
  'k8s-versions': { type: 'string' },
  set: { type: 'string', multiple: true },
  'project-dir': { type: 'string' },
  authfile: { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'cert-dir': { type: 'string' },
  'cache-dir': { type: 'string' },
} as const;

/** parseArgs options of the configuration-driven commands: {@link CONFIG_OPTIONS} and `--timeout`. */
export const PROJECT_OPTIONS = { ...CONFIG_OPTIONS, ...TIMEOUT_OPTION } as const;

/** Refuses the configuration flags (not --timeout) where a ready image is used as it is (`--base`). */
export function rejectConfigFlags(
  command: string,
  values: Partial<Record<keyof typeof CONFIG_OPTIONS, unknown>>,
): void {
  for (const k of Object.keys(CONFIG_OPTIONS) as (keyof typeof CONFIG_OPTIONS)[]) {
    if (values[k] !== undefined)
      throw usageError(command, `--${k} does not apply with --base (the image is used as it is)`);
  }
}

/** Usage lines of {@link PROJECT_OPTIONS}. */
export const CONFIG_USAGE = `configuration (CanvOS files are read as they are):
  --arg-file FILE          CanvOS .arg file (default: ./.arg if present)
  --config FILE            canvos.yaml: the same arguments in YAML, plus per-version k8s sources (default: ./canvos.yaml if present)
  --k8s-versions FILE      k8s_version.json, used when K8S_VERSION is empty (default: k8s_version.json or
                           k8s_versions.json next to the .arg/canvos.yaml)
  --set KEY=VALUE          override one argument (repeatable), e.g. --set K8S_VERSION=1.30.4
  --project-dir DIR        directory with overlay/, certs/, cloudconfigs/ (default: the .arg/canvos.yaml directory)

registry access:
  --authfile FILE          credentials (auth.json / Docker config.json); default: the usual locations
  --insecure-registry H    reach registry H (host[:port]) over plain HTTP (repeatable)
  --cert-dir DIR           extra CA certificates (*.crt, *.pem, HOST[:PORT]/ sub-directories)
  --cache-dir DIR          blob cache (default: $CANVOS_CACHE_DIR or ~/.cache/canvos-lite/blobs)
  ${timeoutHelp(25)}`;

/** The parsed values of {@link CONFIG_OPTIONS}. */
export interface ConfigFlagValues {
  'arg-file'?: string | undefined;
  config?: string | undefined;
  'k8s-versions'?: string | undefined;
  set?: string[] | undefined;
  'project-dir'?: string | undefined;
  authfile?: string | undefined;
  'insecure-registry'?: string[] | undefined;
  'cert-dir'?: string | undefined;
  'cache-dir'?: string | undefined;
  /** `--timeout SECONDS` (part of {@link PROJECT_OPTIONS}). */
  timeout?: string | undefined;
}

/** What {@link loadCliConfig} found. */
export interface CliConfig {
  config: BuildConfig;
  argFile: string | undefined;
  configFile: string | undefined;
  /** Directory of the .arg / canvos.yaml (k8s_version.json is looked up there). */
  configDir: string;
  projectDir: string;
  registry: RegistryTransportOptions;
  cacheDir: string | undefined;
  warn: WarningHandler;
}

const present = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Find and load the configuration; warnings go to stderr. No `.arg`/canvos.yaml throws `missingCode`.
 * Default `missingCode`: 'ERR_USAGE'.
 */
export async function loadCliConfig(
  values: ConfigFlagValues,
  io: CliIo,
  command: string,
  missingCode: 'ERR_USAGE' | 'ERR_CONFIG' = 'ERR_USAGE',
): Promise<CliConfig> {
  const cwd = io.cwd;
  const timeoutMs = parseTimeout(command, values.timeout);
  await checkAccessPaths(command, values, cwd);
  if (values['project-dir'] !== undefined) {
    const pd = resolve(cwd, values['project-dir']);
    if (
      !(await stat(pd).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    ) {
      throw new CanvosError('ERR_USAGE', `--project-dir ${values['project-dir']} is not an existing directory`, {
        hint: 'give the directory holding overlay/, certs/ and cloudconfigs/, or leave --project-dir out',
      });
    }
  }
  const argFile = values['arg-file']
    ? resolve(cwd, values['arg-file'])
    : (await present(resolve(cwd, '.arg')))
      ? resolve(cwd, '.arg')
      : undefined;
  const configFile = values.config
    ? resolve(cwd, values.config)
    : (await present(resolve(cwd, 'canvos.yaml')))
      ? resolve(cwd, 'canvos.yaml')
      : undefined;
  if (!argFile && !configFile) {
    throw new CanvosError(missingCode, `no configuration: neither ${resolve(cwd, '.arg')} nor canvos.yaml exists`, {
      hint: 'cp .arg.template .arg, or pass --arg-file FILE / --config FILE',
    });
  }
  const overrides: Record<string, string> = {};
  for (const s of values.set ?? []) {
    const i = s.indexOf('=');
    if (i <= 0) throw usageError(command, `--set must be KEY=VALUE, not ${JSON.stringify(s.slice(0, 40))}`);
    overrides[s.slice(0, i)] = s.slice(i + 1);
  }
  const sink = warningSink(io.stderr);
  const warn: WarningHandler = sink.warn;
  let loaded: BuildConfig;
  try {
    loaded = await loadBuildConfig({ argFile, configFile, overrides, onWarning: warn });
  } finally {
    sink.flush();
  }
  // A signal that arrived while the (synchronous) parse ran: stop before any network work.
  throwIfAborted(io.signal);
  const configDir = dirname(argFile ?? configFile ?? resolve(cwd, 'x'));
  const projectDir = values['project-dir'] ? resolve(cwd, values['project-dir']) : configDir;
  // earthly.sh's PE_VERSION default (git describe of the checkout); an ISO with its own STYLUS_BASE does not use it.
  const config =
    command === 'iso' && loaded.stylusBase ? loaded : await withPeVersionDefault(loaded, projectDir, io.signal);
  const proxy =
    config.httpProxy || config.httpsProxy
      ? {
          http: config.httpProxy || undefined,
          https: config.httpsProxy || undefined,
          noProxy: config.noProxy || undefined,
        }
      : undefined;
  const registry: RegistryTransportOptions = {
    env: io.env,
    timeoutMs,
    authFiles: values.authfile ? [values.authfile] : undefined,
    insecureRegistries: values['insecure-registry'],
    certsDir: values['cert-dir'],
    proxy,
    blobLocations: blobLocationsFromEnv(io.env, values['cache-dir'], warn),
  };
  return { config, argFile, configFile, configDir, projectDir, registry, cacheDir: values['cache-dir'], warn };
}

/** The Kubernetes versions to build: K8S_VERSION, else k8s_version.json (or k8s_versions.json) next to the config. */
export async function cliK8sVersions(c: CliConfig, values: ConfigFlagValues, io: CliIo): Promise<string[]> {
  // CanvOS names it k8s_version.json; some of its docs say k8s_versions.json: accept either next to the config.
  let versionsFile = values['k8s-versions'] ? resolve(io.cwd, values['k8s-versions']) : undefined;
  if (!versionsFile && !c.config.k8sVersion) {
    for (const n of ['k8s_version.json', 'k8s_versions.json'])
      if (!versionsFile && (await present(resolve(c.configDir, n)))) versionsFile = resolve(c.configDir, n);
  }
  const versionsJson = versionsFile ? await loadK8sVersions(versionsFile) : undefined;
  return [...selectK8sVersions(c.config, versionsJson, versionsFile)];
}
