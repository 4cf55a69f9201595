/**
 * `canvos-lite build-all`: CanvOS's `./earthly.sh +build-all-images` (canvos.md §1.2): the provider images (as
 * `canvos-lite build`) then the installer ISO (as the configuration-driven `canvos-lite iso`), then the pack
 * snippet on stdout. ISO inputs are validated before anything is built, so a bad user-data file fails fast.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { twoNodeSourcesFromEnv } from '../../provider/two-node.js';
import { buildProviderImages } from '../../provider/build.js';
import { pushArtifact } from '../../artifact/artifact.js';
import { buildInstallerDisk, installerDiskInputs } from '../../disk/installer-disk.js';
import { sourceDateEpochFromEnv } from '../../layers/build.js';
import { buildInstallerIso, installerIsoInputs } from '../../provider/installer-iso.js';
import { packSnippet } from '../../provider/pack-snippet.js';
import { CONFIG_OPTIONS, CONFIG_USAGE, cliK8sVersions, loadCliConfig } from '../config-options.js';
import type { CliIo, CommandModule } from '../main.js';
import { createProgress, shortDigest } from '../progress.js';
import { LAYER_COMPRESSION_USAGE, parseLayerCompression, providerResultJson } from './build.js';
import { diskOutputPaths, parseDiskFormats } from './disk.js';
import type { RegistryTransportOptions } from '../../registry/transport.js';
import { TIMEOUT_OPTION, usageError as usageErrorFor } from '../flags.js';

const usage = `usage: canvos-lite build-all [options] (--push | --output oci:DIR) [--iso-output DIR]

Builds the provider images (one per Kubernetes version), then the installer ISO, like CanvOS +build-all-images.

${CONFIG_USAGE}

provider images (exactly one):
  --push                   push each image to IMAGE_REGISTRY/IMAGE_REPO:<K8S_DISTRIBUTION>-<version>-<PE_VERSION>[-<CUSTOM_TAG>]
  --output oci:DIR         write the images into an OCI layout directory

installer ISO (see canvos-lite iso --help):
  --iso-output DIR         directory of <ISO_NAME>.iso and <ISO_NAME>.iso.sha256 (default build)
  --user-data FILE         user-data (default: <project>/user-data if present)
  --content DIR            extra content bundle directory (repeatable; <project>/content-*/ are always used)
  --iso-push REF           also push the ISO as an OCI artifact (see canvos-lite iso --push)

disk image (see canvos-lite disk --help):
  --disk                   also build <ISO_NAME>.raw into the --iso-output directory
  --disk-format F          raw.gz (MAAS), qcow2 and/or vhd copies of it (repeatable or comma-separated)
  IS_CLOUD_IMAGE=true / IS_MAAS=true: the cloud / MAAS disk image is built into --iso-output instead of the ISO

  --json                   print one JSON result {provider, iso} on stdout instead of the pack snippet

${LAYER_COMPRESSION_USAGE}`;

const usageError = (message: string): CanvosError => usageErrorFor('build-all', message);

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
      'iso-output': { type: 'string' },
      'user-data': { type: 'string' },
      content: { type: 'string', multiple: true },
      'iso-push': { type: 'string' },
      disk: { type: 'boolean' },
      'disk-format': { type: 'string', multiple: true },
      json: { type: 'boolean' },
      'layer-compression': { type: 'string' },
    },
  });
  if ((values.push === true) === (values.output !== undefined))
    throw usageError('give exactly one of --push or --output oci:DIR');
  if (values.output !== undefined && !/^oci:.+/.test(values.output))
    throw usageError(`--output must be oci:DIR, not ${JSON.stringify(values.output)}`);
  const layerCompression = parseLayerCompression('build-all', values['layer-compression']);
  if (values['disk-format'] && !values.disk) throw usageError('--disk-format needs --disk');
  const diskFormats = parseDiskFormats('build-all', values['disk-format'] ?? []);
  const cli = await loadCliConfig(values, io, 'build-all');
  const { config, projectDir, registry } = cli;
  // The provider images and the ISO share CanvOS's base-image step: say each warning once.
  const said = new Set<string>();
  const warn: typeof cli.warn = (code, msg) => {
    if (!said.has(msg)) cli.warn(code, msg);
    said.add(msg);
  };
  const versions = await cliK8sVersions(cli, values, io);
  const isoOpts = {
    projectDir,
    userData: values['user-data'] ? resolve(io.cwd, values['user-data']) : undefined,
    contentDirs: (values.content ?? []).map((d) => resolve(io.cwd, d)),
  };
  // CanvOS builds the cloud / MAAS disk image from the installer rootfs for these args: that replaces the ISO.
  const flavourDisk = config.isCloudImage || config.isMaas;
  if (flavourDisk && values['iso-push'])
    throw usageError(`--iso-push: IS_${config.isMaas ? 'MAAS' : 'CLOUD_IMAGE'}=true builds a disk image, not the ISO`);
  await (flavourDisk ? installerDiskInputs(config, isoOpts) : installerIsoInputs(config, isoOpts));

  const progress = createProgress(io.stderr, { quiet: values.json === true, label: 'building' });
  let provider;
  try {
    provider = await buildProviderImages(config, {
      versions,
      output: values.push ? { push: true } : { ociDir: resolve(io.cwd, (values.output as string).slice(4)) },
      projectDir,
      registry,
      cacheDir: cli.cacheDir,
      layerCompression,
      signal: io.signal,
      onProgress: (e) => {
        progress.onProgress(e);
      },
      onWarning: warn,
      onLog: values.json ? undefined : (line) => io.stderr.write(`${line}\n`),
      twoNodeSources: twoNodeSourcesFromEnv(io.env),
    });
  } finally {
    progress.done();
  }
  const say = (s: string): void => {
    if (!values.json) io.stderr.write(`${s}\n`);
  };
  for (const i of provider.images)
    say(
      `${values.push ? 'pushed' : 'wrote'} ${i.destination.replace(/^docker:\/\//, '')} ${shortDigest(i.manifestDigest)}`,
    );
  const iso = flavourDisk
    ? undefined
    : await buildInstallerIso(config, {
        ...isoOpts,
        registry,
        cacheDir: cli.cacheDir,
        outputDir: resolve(io.cwd, values['iso-output'] ?? 'build'),
        env: io.env,
        signal: io.signal,
        onWarning: warn,
        onProgress: (m) => {
          say(`iso: ${m}`);
        },
        onIsoProgress: (p) => {
          if (p.percent === undefined) say(`iso: ${p.phase}`);
        },
      });
  const pushed = iso && values['iso-push'] ? await pushIso(iso, values['iso-push'], registry, io) : undefined;
  if (pushed) say(`pushed ${pushed.ref} ${shortDigest(pushed.digest)}`);
  const disk =
    values.disk || flavourDisk
      ? await buildInstallerDisk(config, {
          ...isoOpts,
          registry,
          cacheDir: cli.cacheDir,
          outputDir: resolve(io.cwd, values['iso-output'] ?? 'build'),
          formats: diskFormats,
          env: io.env,
          signal: io.signal,
          onWarning: warn,
          onDiskProgress: (p) => {
            say(`disk: ${p.phase}`);
          },
        })
      : undefined;
  const snippet = packSnippet(config);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(resultJson(providerResultJson(provider, snippet), iso, pushed, disk))}\n`);
    return 0;
  }
  if (iso) say(`wrote ${iso.isoPath} (sha256 ${iso.sha256})`);
  if (disk) say(`wrote ${diskOutputPaths(disk).join(', ')}`);
  io.stdout.write(snippet);
  return 0;
}

/** `--json`: {provider, iso (with `pushed`), disk}; no `iso` when the cloud/MAAS disk replaces it. */
function resultJson(
  provider: unknown,
  iso: object | undefined,
  pushed: { ref: string; digest: string } | undefined,
  disk: object | undefined,
): object {
  const isoJson = iso && pushed ? { ...iso, pushed: { ref: pushed.ref, digest: pushed.digest } } : iso;
  return { provider, ...(isoJson ? { iso: isoJson } : {}), ...(disk ? { disk } : {}) };
}

/** `--iso-push`: the ISO and its checksum as an OCI artifact. */
async function pushIso(
  iso: { isoPath: string; sha256Path: string },
  ref: string,
  registry: RegistryTransportOptions,
  io: CliIo,
): Promise<{ ref: string; digest: string }> {
  const r = await pushArtifact([iso.isoPath], ref, {
    sha256File: iso.sha256Path,
    registry,
    signal: io.signal,
    sourceDateEpoch: sourceDateEpochFromEnv(io.env),
  });
  return { ...r, ref };
}

const command: CommandModule = {
  summary: 'canvos-lite build-all: build the provider images and then the installer ISO (CanvOS +build-all-images)',
  usage,
  run,
};
export default command;
