/**
 * The provider-image step shared by `build` and `build-all`: the output flags (`--push` | `--output oci:DIR`,
 * `--layer-compression`), the build with progress on stderr, the per-image summary lines and the `--json` form.
 */
import { resolve } from 'node:path';
import { compressionLevel, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL } from '../layers/compress.js';
import type { BuildProviderOptions, BuildProviderResult } from '../provider/build.js';
import { buildConfiguredProviderImages } from '../uki/config-provider.js';
import { twoNodeSourcesFromEnv } from '../provider/two-node.js';
import type { WarningHandler } from '../provider/resolve.js';
import type { CliConfig } from './config-options.js';
import { asUsageError, checkOciOutput, usageError } from './flags.js';
import { createProgress, shortDigest } from './progress.js';
import type { CliIo } from './types.js';

/** parseArgs options of the provider output: `--push`, `--output oci:DIR`, `--layer-compression`. */
export const PROVIDER_OUTPUT_OPTIONS = {
  push: { type: 'boolean' },
  output: { type: 'string' },
  'layer-compression': { type: 'string' },
  'compression-level': { type: 'string' },
} as const;

/** Usage lines of `--layer-compression`. */
export const LAYER_COMPRESSION_USAGE = `layers:
  --layer-compression C    gzip (default) or zstd for the appended layers (zstd: OCI base images; needs libzstd)
  --compression-level N    gzip 1 (fastest) to 9 (smallest), default ${DEFAULT_GZIP_LEVEL}; zstd 1 to 19, default ${DEFAULT_ZSTD_LEVEL}.
                           Changes the layer and manifest digests`;

/** The parsed values of {@link PROVIDER_OUTPUT_OPTIONS} (and `--json`). */
export interface ProviderOutputValues {
  push?: boolean | undefined;
  output?: string | undefined;
  'layer-compression'?: string | undefined;
  'compression-level'?: string | undefined;
  json?: boolean | undefined;
}

/**
 * Checks `--output oci:DIR`, `--layer-compression` and `--compression-level` (the caller checks that exactly one
 * output is given).
 */
export function checkProviderOutput(command: string, values: ProviderOutputValues): void {
  checkOciOutput(command, values.output);
  parseCompressionLevel(command, values);
}

/** `--compression-level` as a number for the chosen compression (a usage error, exit 2, when out of range). */
export function parseCompressionLevel(command: string, values: ProviderOutputValues): number | undefined {
  const c = parseLayerCompression(command, values['layer-compression']) ?? 'gzip';
  return compressionLevelFlag(c, values['compression-level']);
}

/**
 * A `--compression-level` value checked as the library checks `compressionLevel`, but refused as a usage error
 * (exit 2, like every other bad flag value) with the library's message and range hint; undefined when not given.
 */
export function compressionLevelFlag(c: 'gzip' | 'zstd', v: string | undefined): number | undefined {
  return v === undefined ? undefined : asUsageError(() => compressionLevel(c, v, '--compression-level'));
}

/** Parse `--layer-compression`; undefined when not given. */
function parseLayerCompression(command: string, v: string | undefined): 'gzip' | 'zstd' | undefined {
  if (v === undefined || v === 'gzip' || v === 'zstd') return v;
  throw usageError(command, `--layer-compression must be gzip or zstd, not ${JSON.stringify(v)}`);
}

/** Builds the provider images of `versions` as the flags say, with progress (and Dockerfile logs) on stderr. */
export async function buildProviderStep(
  command: string,
  cli: CliConfig,
  versions: string[],
  values: ProviderOutputValues,
  io: CliIo,
  onWarning: WarningHandler,
): Promise<BuildProviderResult> {
  const output: BuildProviderOptions['output'] = values.push
    ? { push: true }
    : { ociDir: resolve(io.cwd, (values.output ?? '').slice(4)) };
  const progress = createProgress(io.stderr, { quiet: values.json === true, label: 'building' });
  try {
    return await buildConfiguredProviderImages(cli.config, {
      versions,
      output,
      projectDir: cli.projectDir,
      registry: cli.registry,
      cacheDir: cli.cacheDir,
      layerCompression: parseLayerCompression(command, values['layer-compression']),
      compressionLevel: parseCompressionLevel(command, values),
      signal: io.signal,
      onProgress: (e) => {
        progress.onProgress(e);
      },
      onWarning,
      // Dockerfile steps and RUN output, like `docker build --progress=plain` (not with --json).
      onLog: values.json ? undefined : (line) => io.stderr.write(`${line}\n`),
      twoNodeSources: twoNodeSourcesFromEnv(io.env),
    });
  } finally {
    progress.done();
  }
}

/** One `pushed|wrote DESTINATION DIGEST` line per image. */
export function providerImageLines(result: BuildProviderResult, pushed: boolean): string[] {
  return result.images.map(
    (i) =>
      `${pushed ? 'pushed' : 'wrote'} ${i.destination.replace(/^docker:\/\//, '')} ${shortDigest(i.manifestDigest)}`,
  );
}

/** The `--json` form of a provider build result (also part of `build-all --json`). */
export function providerResultJson(result: BuildProviderResult, snippet: string): Record<string, unknown> {
  const images = result.images.map((i) => ({
    k8sVersion: i.k8sVersion,
    tag: i.tag,
    destination: i.destination,
    digest: i.manifestDigest,
    layers: i.layers.length,
    appended: i.appended,
  }));
  return {
    baseImage: result.baseImage,
    systemdVersion: result.systemdVersion ?? null,
    bundled: result.plan.bundled,
    dockerfileRuns: result.dockerfileRuns,
    images,
    packSnippet: snippet,
  };
}
