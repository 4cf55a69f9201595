/**
 * `canvos-lite build`: CanvOS's `./earthly.sh +build-provider-images` without Docker or root. Reads `.arg` and/or
 * canvos.yaml, builds one provider image per Kubernetes version and pushes them (or writes an OCI layout), then prints
 * the Palette cluster-profile snippet on stdout. Progress, warnings and the per-image summary go to stderr, so
 * `canvos-lite build --push > profile.yaml` captures just the snippet.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError, EXIT_CODES } from '../../errors.js';
import { twoNodeSourcesFromEnv } from '../../provider/two-node.js';
import { buildProviderImages, type BuildProviderResult } from '../../provider/build.js';
import { describeProviderBuild, type DryRunReport } from '../../provider/dry-run.js';
import { packSnippet } from '../../provider/pack-snippet.js';
import { CONFIG_OPTIONS, CONFIG_USAGE, cliK8sVersions, loadCliConfig } from '../config-options.js';
import type { CliIo, CommandModule } from '../main.js';
import { createProgress, formatBytes, shortDigest } from '../progress.js';
import { checkOciOutput, TIMEOUT_OPTION, usageError as usageErrorFor } from '../flags.js';

/** `--layer-compression` (build and build-all). */
export const LAYER_COMPRESSION_USAGE = `layers:
  --layer-compression C    gzip (default) or zstd for the appended layers (zstd: OCI base images; needs libzstd)`;

/** Parse `--layer-compression`; undefined when not given. */
export function parseLayerCompression(command: string, v: string | undefined): 'gzip' | 'zstd' | undefined {
  if (v === undefined || v === 'gzip' || v === 'zstd') return v;
  throw usageErrorFor(command, `--layer-compression must be gzip or zstd, not ${JSON.stringify(v)}`);
}

const usage = `usage: canvos-lite build [options] (--push | --output oci:DIR | --dry-run)

Builds the CanvOS provider images (one per Kubernetes version) by appending layers to the Kairos base image.

${CONFIG_USAGE}

output (exactly one):
  --push                   push each image to IMAGE_REGISTRY/IMAGE_REPO:<K8S_DISTRIBUTION>-<version>-<PE_VERSION>[-<CUSTOM_TAG>]
  --output oci:DIR         write the images into an OCI layout directory, tagged <distribution>-<version>-...
  --dry-run                print the plan with sizes; build and write nothing (fails if an image is unavailable)
  --json                   print a JSON result on stdout instead of the pack snippet

${LAYER_COMPRESSION_USAGE}`;

const usageError = (message: string): CanvosError => usageErrorFor('build', message);

function dryRunText(r: DryRunReport): string {
  const size = (b: number | undefined) => (b === undefined ? '?' : formatBytes(b));
  const img = (i: DryRunReport['base']) =>
    i.error ? `${i.ref}  UNAVAILABLE: ${i.error}` : `${i.ref}  ${i.layers} layers, ${size(i.bytes)}`;
  const lines = [
    `base image: ${img(r.base)}`,
    `k8s and agent provider bundled: ${r.plan.bundled ? 'yes' : 'no (systemd-extension capable base)'}`,
    '',
  ];
  if (r.dockerfileSteps.length) {
    lines.push('Dockerfile steps (on the base, shared):');
    for (const st of r.dockerfileSteps)
      lines.push(`  ${st.name.padEnd(15)} ${st.createdBy.replace(/ # (buildkit|canvos-lite [\w ]+)$/, '')}`);
    lines.push('');
  }
  lines.push('shared layers (built once):');
  for (const l of r.plan.sharedLayers) lines.push(`  ${l.name.padEnd(15)} ${l.description}`);
  lines.push('', `images (${r.plan.images.length}):`);
  for (const p of r.plan.images) {
    const own = p.layers.filter((l) => !l.shared).map((l) => l.description);
    lines.push(`  ${p.imageRef}${own.length ? `  + ${own.join('; ')}` : ''}`);
  }
  lines.push('', 'images read:');
  for (const s of r.sources) lines.push(`  ${img(s)}`);
  return `${lines.join('\n')}\n`;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      ...CONFIG_OPTIONS,
      ...TIMEOUT_OPTION,
      push: { type: 'boolean' },
      output: { type: 'string' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
      'layer-compression': { type: 'string' },
    },
  });
  const modes = [values.push, values.output !== undefined, values['dry-run']].filter(Boolean).length;
  if (modes !== 1) throw usageError('give exactly one of --push, --output oci:DIR or --dry-run');
  checkOciOutput('build', values.output);
  const layerCompression = parseLayerCompression('build', values['layer-compression']);
  const cwd = io.cwd;
  const cli = await loadCliConfig(values, io, 'build');
  const { config, projectDir, registry, warn } = cli;
  const versions = await cliK8sVersions(cli, values, io);

  if (values['dry-run']) {
    const report = await describeProviderBuild(config, {
      versions,
      projectDir,
      registry,
      cacheDir: values['cache-dir'],
      signal: io.signal,
      onWarning: warn,
    });
    io.stdout.write(values.json ? `${JSON.stringify(report)}\n` : dryRunText(report));
    // Exit like the real build would: with the code of the first image it could not read.
    const failed = [report.base, ...report.sources].filter((i) => i.error);
    if (failed.length)
      io.stderr.write(
        `canvos-lite: ${failed.length} image(s) unavailable; the build would fail\n` +
          'hint: the images marked UNAVAILABLE above cannot be read: check their references in .arg / canvos.yaml, the credentials and the network\n',
      );
    return failed[0]?.errorCode ? EXIT_CODES[failed[0].errorCode] : 0;
  }
  const progress = createProgress(io.stderr, { quiet: values.json === true, label: 'building' });
  let result;
  try {
    result = await buildProviderImages(config, {
      versions,
      output: values.push ? { push: true } : { ociDir: resolve(cwd, (values.output as string).slice(4)) },
      projectDir,
      registry,
      cacheDir: values['cache-dir'],
      layerCompression,
      signal: io.signal,
      onProgress: (e) => progress.onProgress(e),
      onWarning: warn,
      // Dockerfile steps and RUN output, like `docker build --progress=plain` (not with --json).
      onLog: values.json ? undefined : (line) => io.stderr.write(`${line}\n`),
      twoNodeSources: twoNodeSourcesFromEnv(io.env),
    });
  } finally {
    progress.done();
  }
  const snippet = packSnippet(config);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(providerResultJson(result, snippet))}\n`);
    return 0;
  }
  for (const i of result.images)
    io.stderr.write(
      `${values.push ? 'pushed' : 'wrote'} ${i.destination.replace(/^docker:\/\//, '')} ${shortDigest(i.manifestDigest)}\n`,
    );
  io.stdout.write(snippet);
  return 0;
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

const command: CommandModule = {
  summary: 'canvos-lite build: build CanvOS provider images (one per Kubernetes version) without Docker',
  usage,
  run,
};
export default command;
