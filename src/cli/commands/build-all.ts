/**
 * `canvos-lite build-all`: CanvOS's `./earthly.sh +build-all-images` (canvos.md §1.2): the provider images (as
 * `canvos-lite build`) then the installer ISO (as the configuration-driven `canvos-lite iso`), then the pack
 * snippet on stdout. ISO inputs are validated before anything is built, so a bad user-data file fails fast.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { pushArtifact } from '../../artifact/artifact.js';
import { buildInstallerDisk, installerDiskInputs, type InstallerDiskResult } from '../../disk/installer-disk.js';
import { sourceDateEpochFromEnv } from '../../layers/build.js';
import { installerIsoInputs } from '../../provider/installer-iso.js';
import { buildConfiguredIso } from '../../uki/config-iso.js';
import type { BuildIsoResult } from '../../iso/build-iso.js';
import { packSnippet } from '../../provider/pack-snippet.js';
import type { WarningHandler } from '../../provider/resolve.js';
import { CONFIG_USAGE, cliK8sVersions, loadCliConfig, PROJECT_OPTIONS, type CliConfig } from '../config-options.js';
import { commandOutput, JSON_OPTION, type CommandOutput } from '../flag-sets.js';
import { parseDiskFormats, usageError as usageErrorFor } from '../flags.js';
import { shortDigest } from '../progress.js';
import {
  buildProviderStep,
  checkProviderOutput,
  LAYER_COMPRESSION_USAGE,
  parseCompressionLevel,
  PROVIDER_OUTPUT_OPTIONS,
  providerImageLines,
  providerResultJson,
} from '../provider-step.js';
import { parseSquashfsLevel, SQUASHFS_LEVEL_OPTION } from '../squashfs-level.js';
import type { CliIo, CommandModule } from '../types.js';
import { diskOutputPaths } from './disk.js';

const usage = `usage: canvos-lite build-all [options] (--push | --output oci:DIR) [--iso-output DIR]

Builds the provider images (one per Kubernetes version), then the installer ISO, like CanvOS +build-all-images.
With IS_UKI=true: Trusted Boot provider images and the signed UKI ISO (keys from <project>/secure-boot).

${CONFIG_USAGE}

provider images (exactly one):
  --push                   push each image to IMAGE_REGISTRY/IMAGE_REPO:<K8S_DISTRIBUTION>-<version>-<PE_VERSION>[-<CUSTOM_TAG>]
  --output oci:DIR         write the images into an OCI layout directory

installer ISO (see canvos-lite iso --help):
  --iso-output DIR         directory of <ISO_NAME>.iso and <ISO_NAME>.iso.sha256 (default build)
  --user-data FILE         user-data (default: <project>/user-data if present)
  --content DIR            extra content bundle directory (repeatable; <project>/content-*/ are always used)
  --iso-push REF           also push the ISO as an OCI artifact (see canvos-lite iso --push)
  --squashfs-level N       gzip level of the ISO's (and disk's) squashfs (see canvos-lite iso --help)

disk image (see canvos-lite disk --help):
  --disk                   also build <ISO_NAME>.raw into the --iso-output directory
  --disk-format F          raw.gz (MAAS), qcow2 and/or vhd copies of it (repeatable or comma-separated)
  IS_CLOUD_IMAGE=true / IS_MAAS=true: the cloud / MAAS disk image is built into --iso-output instead of the ISO

  --json                   print one JSON result {provider, iso} on stdout instead of the pack snippet

${LAYER_COMPRESSION_USAGE}`;

const usageError = (message: string): CanvosError => usageErrorFor('build-all', message);

const OPTIONS = {
  ...PROJECT_OPTIONS,
  ...PROVIDER_OUTPUT_OPTIONS,
  ...JSON_OPTION,
  'iso-output': { type: 'string' },
  'user-data': { type: 'string' },
  content: { type: 'string', multiple: true },
  'iso-push': { type: 'string' },
  disk: { type: 'boolean' },
  'disk-format': { type: 'string', multiple: true },
  ...SQUASHFS_LEVEL_OPTION,
} as const;

/** What the ISO and disk steps share: the configuration, the ISO inputs, the output directory and reporting. */
interface InstallerJob {
  cli: CliConfig;
  /** `--compression-level` for gzip (the installer's Dockerfile layers share the RUN cache with the provider build). */
  gzipLevel: number | undefined;
  /** `--squashfs-level` of the ISO's and the disk's squashfs. */
  squashfsLevel: number | undefined;
  userData: string | undefined;
  contentDirs: string[];
  outputDir: string;
  warn: WarningHandler;
  out: CommandOutput;
  io: CliIo;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, allowPositionals: false, strict: true, options: OPTIONS });
  if ((values.push === true) === (values.output !== undefined))
    throw usageError('give exactly one of --push or --output oci:DIR');
  checkProviderOutput('build-all', values);
  if (values['disk-format'] && !values.disk) throw usageError('--disk-format needs --disk');
  const diskFormats = parseDiskFormats('build-all', values['disk-format'] ?? []);
  const squashfsLevel = parseSquashfsLevel(values['squashfs-level']);
  const cli = await loadCliConfig(values, io, 'build-all');
  const out = commandOutput(io, values.json);
  // The provider images and the ISO share CanvOS's base-image step: say each warning once.
  const said = new Set<string>();
  const warn: WarningHandler = (code, msg) => {
    if (!said.has(msg)) cli.warn(code, msg);
    said.add(msg);
  };
  const versions = await cliK8sVersions(cli, values, io);
  const job: InstallerJob = {
    cli,
    gzipLevel: values['layer-compression'] === 'zstd' ? undefined : parseCompressionLevel('build-all', values),
    squashfsLevel,
    userData: values['user-data'] ? resolve(io.cwd, values['user-data']) : undefined,
    contentDirs: (values.content ?? []).map((d) => resolve(io.cwd, d)),
    outputDir: resolve(io.cwd, values['iso-output'] ?? 'build'),
    warn,
    out,
    io,
  };
  // CanvOS builds the cloud / MAAS disk image from the installer rootfs for these args: that replaces the ISO.
  const flavourDisk = cli.config.isCloudImage || cli.config.isMaas;
  if (flavourDisk && values['iso-push'])
    throw usageError(
      `--iso-push: IS_${cli.config.isMaas ? 'MAAS' : 'CLOUD_IMAGE'}=true builds a disk image, not the ISO`,
    );
  // The installer inputs are checked before anything is built, so a bad user-data file fails fast.
  const inputs = { projectDir: cli.projectDir, userData: job.userData, contentDirs: job.contentDirs };
  await (flavourDisk ? installerDiskInputs(cli.config, inputs) : installerIsoInputs(cli.config, inputs));

  const provider = await buildProviderStep('build-all', cli, versions, values, io, warn);
  for (const line of providerImageLines(provider, values.push === true)) out.say(line);
  const iso = flavourDisk ? undefined : await isoStep(job, values['iso-push']);
  const disk = values.disk || flavourDisk ? await diskStep(job, diskFormats) : undefined;
  const snippet = packSnippet(cli.config);
  if (values.json) {
    const json = {
      provider: providerResultJson(provider, snippet),
      ...(iso ? { iso } : {}),
      ...(disk ? { disk } : {}),
    };
    io.stdout.write(`${JSON.stringify(json)}\n`);
    return 0;
  }
  if (iso) out.say(`wrote ${iso.isoPath} (sha256 ${iso.sha256})`);
  if (disk) out.say(`wrote ${diskOutputPaths(disk).join(', ')}`);
  io.stdout.write(snippet);
  return 0;
}

/** The installer ISO, pushed as an OCI artifact too when `--iso-push REF` is given. */
async function isoStep(
  job: InstallerJob,
  pushRef: string | undefined,
): Promise<BuildIsoResult & { pushed?: { ref: string; digest: string } }> {
  const { cli, io, out } = job;
  const iso = await buildConfiguredIso(cli.config, {
    ...installerInputs(job),
    onProgress: (m) => {
      out.say(`iso: ${m}`);
    },
    onIsoProgress: (p) => {
      if (p.percent === undefined) out.say(`iso: ${p.phase}`);
    },
  });
  if (!pushRef) return iso;
  const pushed = await pushArtifact([iso.isoPath], pushRef, {
    sha256File: iso.sha256Path,
    registry: cli.registry,
    signal: io.signal,
    sourceDateEpoch: sourceDateEpochFromEnv(io.env),
  });
  out.say(`pushed ${pushRef} ${shortDigest(pushed.digest)}`);
  return { ...iso, pushed: { ref: pushRef, digest: pushed.digest } };
}

/** The inputs the ISO and the disk step share: project, user-data, content, registry, cache, level, output. */
function installerInputs(job: InstallerJob) {
  const { cli, io } = job;
  return {
    projectDir: cli.projectDir,
    userData: job.userData,
    contentDirs: job.contentDirs,
    registry: cli.registry,
    cacheDir: cli.cacheDir,
    compressionLevel: job.gzipLevel,
    squashfsLevel: job.squashfsLevel,
    outputDir: job.outputDir,
    env: io.env,
    signal: io.signal,
    onWarning: job.warn,
  };
}

/** `--disk`: the raw disk image (and its conversions) next to the ISO. */
function diskStep(job: InstallerJob, formats: ReturnType<typeof parseDiskFormats>): Promise<InstallerDiskResult> {
  return buildInstallerDisk(job.cli.config, {
    ...installerInputs(job),
    formats,
    onDiskProgress: (p) => {
      job.out.say(`disk: ${p.phase}`);
    },
  });
}

const command: CommandModule = {
  summary: 'canvos-lite build-all: build the provider images and then the installer ISO (CanvOS +build-all-images)',
  usage,
  run,
};
export default command;
