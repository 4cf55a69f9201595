/**
 * One entry point for the CLI and library callers: read `.arg` and/or canvos.yaml (YAML values override `.arg`
 * ones, explicit overrides win over both) into one BuildConfig, validated once so errors cite the file that set
 * the bad value.
 */
import { parseArgEntries, readConfigText } from './arg-file.js';
import { INPUT_LIMITS } from '../text-input.js';
import { parseConfigEntries } from './config-file.js';
import { resolveBuildConfig, type BuildConfig, type ConfigEntry, type WarningHandler } from './resolve.js';
import type { K8sSource } from './schema.js';

/** Options of {@link loadBuildConfig}. */
export interface LoadConfigOptions {
  /** Path of a CanvOS `.arg` file. Default: none. */
  argFile?: string | undefined;
  /** Path of a canvos.yaml file. Default: none. */
  configFile?: string | undefined;
  /** Final overrides, e.g. from `--set K8S_VERSION=1.30.4` (UPPER or camelCase keys). Default: {}. */
  overrides?: Record<string, string> | undefined;
  onWarning?: WarningHandler | undefined;
}

/** Read and validate the configuration from the given files (none: CanvOS defaults). */
export async function loadBuildConfig(opts: LoadConfigOptions = {}): Promise<BuildConfig> {
  const entries: ConfigEntry[] = [];
  let k8sSources: Record<string, K8sSource> = {};
  let k8sImagePattern: string | undefined;
  if (opts.argFile) {
    const text = await readConfigText(opts.argFile, 'cp .arg.template .arg, or pass --arg-file <path>');
    entries.push(...parseArgEntries(text, opts.argFile)); // marked upperOnly: CanvOS spelling only
  }
  if (opts.configFile) {
    const y = parseConfigEntries(
      await readConfigText(
        opts.configFile,
        'pass --config <path> of an existing canvos.yaml',
        INPUT_LIMITS.configYaml,
        'canvos.yaml',
      ),
      opts.configFile,
    );
    entries.push(...y.entries);
    k8sSources = y.k8sSources;
    k8sImagePattern = y.k8sImagePattern;
  }
  for (const [key, value] of Object.entries(opts.overrides ?? {}))
    entries.push({ key, value, loc: { file: '(command line)', line: 1 } });
  return resolveBuildConfig(entries, { keys: 'any', k8sSources, k8sImagePattern, onWarning: opts.onWarning });
}
