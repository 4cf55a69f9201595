/**
 * `canvos-lite build`: CanvOS's `./earthly.sh +build-provider-images` without Docker or root. Reads `.arg` and/or
 * canvos.yaml, builds one provider image per Kubernetes version and pushes them (or writes an OCI layout), then prints
 * the Palette cluster-profile snippet on stdout. Progress, warnings and the per-image summary go to stderr, so
 * `canvos-lite build --push > profile.yaml` captures just the snippet.
 */
import { parseArgs } from 'node:util';
import { CanvosError, EXIT_CODES } from '../../errors.js';
import { describeProviderBuild, type DryRunReport } from '../../provider/dry-run.js';
import { packSnippet } from '../../provider/pack-snippet.js';
import { CONFIG_USAGE, cliK8sVersions, loadCliConfig, PROJECT_OPTIONS, type CliConfig } from '../config-options.js';
import { JSON_OPTION } from '../flag-sets.js';
import { usageError as usageErrorFor } from '../flags.js';
import { formatBytes } from '../progress.js';
import {
  buildProviderStep,
  checkProviderOutput,
  LAYER_COMPRESSION_USAGE,
  PROVIDER_OUTPUT_OPTIONS,
  providerImageLines,
  providerResultJson,
} from '../provider-step.js';
import type { CliIo, CommandModule } from '../types.js';

const usage = `usage: canvos-lite build [options] (--push | --output oci:DIR | --dry-run)

Builds the CanvOS provider images (one per Kubernetes version) by appending layers to the Kairos base image.
With IS_UKI=true they are Trusted Boot provider images (keys from <project>/secure-boot, see canvos-lite uki).

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
    options: { ...PROJECT_OPTIONS, ...PROVIDER_OUTPUT_OPTIONS, 'dry-run': { type: 'boolean' }, ...JSON_OPTION },
  });
  const modes = [values.push, values.output !== undefined, values['dry-run']].filter(Boolean).length;
  if (modes !== 1) throw usageError('give exactly one of --push, --output oci:DIR or --dry-run');
  checkProviderOutput('build', values);
  const cli = await loadCliConfig(values, io, 'build');
  const versions = await cliK8sVersions(cli, values, io);
  if (values['dry-run']) return dryRun(cli, versions, values.json === true, io);
  const result = await buildProviderStep('build', cli, versions, values, io, cli.warn);
  const snippet = packSnippet(cli.config);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(providerResultJson(result, snippet))}\n`);
    return 0;
  }
  for (const line of providerImageLines(result, values.push === true)) io.stderr.write(`${line}\n`);
  io.stdout.write(snippet);
  return 0;
}

/** `--dry-run`: the plan with sizes; exits like the real build would, with the code of the first unreadable image. */
async function dryRun(cli: CliConfig, versions: string[], json: boolean, io: CliIo): Promise<number> {
  const report = await describeProviderBuild(cli.config, {
    versions,
    projectDir: cli.projectDir,
    registry: cli.registry,
    cacheDir: cli.cacheDir,
    signal: io.signal,
    onWarning: cli.warn,
  });
  io.stdout.write(json ? `${JSON.stringify(report)}\n` : dryRunText(report));
  const failed = [report.base, ...report.sources].filter((i) => i.error);
  if (failed.length)
    io.stderr.write(
      `canvos-lite: ${failed.length} image(s) unavailable; the build would fail\n` +
        'hint: the images marked UNAVAILABLE above cannot be read: check their references in .arg / canvos.yaml, the credentials and the network\n',
    );
  return failed[0]?.errorCode ? EXIT_CODES[failed[0].errorCode] : 0;
}

const command: CommandModule = {
  summary: 'canvos-lite build: build CanvOS provider images (one per Kubernetes version) without Docker',
  usage,
  run,
};
export default command;
