/**
 * `canvos-lite disk`: a Kairos raw disk image (and qcow2 / fixed-VHD copies) from the installer rootfs, the same
 * input the ISO uses: the CanvOS configuration by default (BASE_IMAGE + edits + stylus + overlay files, ISO_NAME,
 * ARCH, EDGE_CUSTOM_CONFIG, the project's user-data), or a ready installer image with --base REF.
 * Phases and warnings go to stderr; stdout gets the image paths.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { buildDisk, type BuildDiskResult, type DiskPhase } from '../../disk/build-disk.js';
import { convertAll, type DiskFormat } from '../../disk/convert.js';
import { buildInstallerDisk } from '../../disk/installer-disk.js';
import { sourceDateEpochFromEnv } from '../../layers/build.js';
import { mergeLayers } from '../../layers/merge.js';
import { CONFIG_USAGE, loadCliConfig, rejectConfigFlags } from '../config-options.js';
import { usageError as usageErrorFor, parseDiskFormats } from '../flags.js';
import { INSTALLER_SOURCE_OPTIONS, parseBaseArch, withBaseImage } from '../base-image.js';
import { baseImageRegistry, commandOutput, type CommandOutput } from '../flag-sets.js';
import { parseSquashfsLevel, SQUASHFS_LEVEL_OPTION, SQUASHFS_LEVEL_USAGE } from '../squashfs-level.js';
import type { CliIo, CommandModule } from '../types.js';

const usage = `usage: canvos-lite disk [configuration options] [--user-data FILE] [--format raw|raw.gz|qcow2|vhd]... [--size MiB]
                        [--maas-ubuntu-image FILE] [--output DIR] [--json]
       canvos-lite disk --base REF [--name NAME] [--arch amd64|arm64] [--edge-custom-config FILE] [--insecure] [options]

Writes <output>/<name>.raw (+ .sha256): a GPT disk with Kairos's partitions as AuroraBoot's raw image has them:
COS_GRUB (EFI system, 64 MiB), a BIOS boot partition (amd64: GRUB for legacy BIOS), COS_OEM (ext4, 64 MiB: user-data
as 90_custom.yaml, grubenv, the first-boot config that adds COS_STATE and COS_PERSISTENT and resets into them) and
COS_RECOVERY (ext4: cOS/recovery.squashfs of the installer rootfs). No root, no loop devices.

From the CanvOS configuration (default): the ISO's rootfs (BASE_IMAGE + edits + STYLUS_BASE + overlay/files/);
ISO_NAME names the image, ARCH and EDGE_CUSTOM_CONFIG apply, user-data from <project>/user-data if present.
IS_CLOUD_IMAGE=true: CanvOS's cloud image (its cloud-images/ and cloudconfigs/ files in the rootfs, a COS_CONTENT
partition with the content-*/ bundles, CLUSTERCONFIG and EDGE_CUSTOM_CONFIG). IS_MAAS=true: CanvOS's MAAS image
<MAAS_IMAGE_NAME>.raw.gz (EFI; UBUNTU_ROOTFS from the Ubuntu cloud image with cloudconfigs/curtin-hooks; COS_CONTENT).
  --maas-ubuntu-image FILE   IS_MAAS: noble-server-cloudimg-amd64.tar.gz or its .img (default: in the project)

${CONFIG_USAGE}

With --base REF: docker://HOST/REPO:TAG (or a bare reference), oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG];
  --name NAME                file name stem (default palette-edge-installer)
  --arch amd64|arm64         image platform (arm64: EFI only)
  --edge-custom-config FILE  -> COS_OEM/.edge_custom_config.yaml
  --insecure                 reach the base image's registry over plain HTTP

common options:
  --user-data FILE           user-data (first line #cloud-config) -> COS_OEM/90_custom.yaml
  --format F                 raw (always written), raw.gz (MAAS ddgz), qcow2, vhd (fixed VHD, Azure); repeatable
                             or comma-separated; qcow2/vhd need qemu-img (qemu-utils)
  --size MiB                 minimum disk size (free space after the partitions; Kairos grows COS_PERSISTENT)
  --output DIR               output directory (default build)
${SQUASHFS_LEVEL_USAGE}
  --json                     print only a JSON result on stdout`;

const BASE_ONLY = ['name', 'arch', 'edge-custom-config', 'insecure'] as const;
const CONFIG_ONLY = ['maas-ubuntu-image'] as const;
const usageError = (message: string): CanvosError => usageErrorFor('disk', message);

const OPTIONS = {
  ...INSTALLER_SOURCE_OPTIONS,
  format: { type: 'string', multiple: true },
  size: { type: 'string' },
  'maas-ubuntu-image': { type: 'string' },
  ...SQUASHFS_LEVEL_OPTION,
} as const;

type DiskValues = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** What both forms share: the output directory, user-data, conversion formats, size and reporting. */
interface DiskJob {
  outputDir: string;
  userData: string | undefined;
  formats: DiskFormat[];
  sizeMiB: number | undefined;
  squashfsLevel: number | undefined;
  out: CommandOutput;
  onProgress: (p: { phase: DiskPhase }) => void;
}

type DiskResult = BuildDiskResult & Partial<Record<DiskFormat, string>> & { flavour?: string };

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const formats = parseDiskFormats('disk', values.format ?? []);
  const size = values.size === undefined ? undefined : Number(values.size);
  if (size !== undefined && !(Number.isInteger(size) && size > 0))
    throw usageError(`--size must be a whole number of MiB, not ${JSON.stringify(values.size)}`);
  const out = commandOutput(io, values.json);
  const job: DiskJob = {
    outputDir: resolve(io.cwd, values.output ?? 'build'),
    userData: values['user-data'] ? resolve(io.cwd, values['user-data']) : undefined,
    formats,
    sizeMiB: size,
    squashfsLevel: parseSquashfsLevel(values['squashfs-level']),
    out,
    onProgress: (p) => {
      out.say(`disk: ${p.phase}`);
    },
  };
  const result = values.base ? await fromBase(values.base, values, job, io) : await fromConfig(values, job, io);
  out.result(result, diskOutputPaths(result));
  return 0;
}

/** The installer rootfs of the CanvOS configuration. */
async function fromConfig(values: DiskValues, job: DiskJob, io: CliIo): Promise<DiskResult> {
  for (const k of BASE_ONLY) {
    if (values[k] !== undefined)
      throw usageError(
        `--${k} only applies with --base; the configuration sets it (--set ISO_NAME=…, ARCH=…, EDGE_CUSTOM_CONFIG=…)`,
      );
  }
  const cli = await loadCliConfig(values, io, 'disk', 'ERR_CONFIG');
  return buildInstallerDisk(cli.config, {
    projectDir: cli.projectDir,
    registry: cli.registry,
    cacheDir: cli.cacheDir,
    outputDir: job.outputDir,
    userData: job.userData,
    formats: job.formats,
    sizeMiB: job.sizeMiB,
    squashfsLevel: job.squashfsLevel,
    maasUbuntuImage: values['maas-ubuntu-image'] ? resolve(io.cwd, values['maas-ubuntu-image']) : undefined,
    env: io.env,
    signal: io.signal,
    onWarning: cli.warn,
    onProgress: (m) => {
      job.out.say(`disk: ${m}`);
    },
    onDiskProgress: job.onProgress,
  });
}

/** A ready installer image (`--base REF`). */
async function fromBase(ref: string, values: DiskValues, job: DiskJob, io: CliIo): Promise<DiskResult> {
  rejectConfigFlags('disk', values);
  for (const k of CONFIG_ONLY) {
    if (values[k] !== undefined) throw usageError(`--${k} does not apply with --base (the image is used as it is)`);
  }
  const arch = parseBaseArch('disk', values.arch);
  const ecc = values['edge-custom-config'];
  const registry = baseImageRegistry('disk', values, [ref], io);
  const result: DiskResult = await withBaseImage(ref, arch, registry, io, (img) => {
    job.out.say(`disk: ${img.source.description} (${img.layers.length} layers)`);
    return buildDisk(
      {
        rootfs: mergeLayers(img.openers, { signal: io.signal }),
        outputDir: job.outputDir,
        userData: job.userData,
        sizeMiB: job.sizeMiB,
        name: values.name,
        arch,
        edgeCustomConfig: ecc ? resolve(io.cwd, ecc) : undefined,
      },
      {
        env: io.env,
        signal: io.signal,
        squashfsLevel: job.squashfsLevel,
        onWarning: job.out.warn,
        onProgress: job.onProgress,
      },
    );
  });
  job.out.flush();
  const env = { env: io.env, signal: io.signal, sourceDateEpoch: sourceDateEpochFromEnv(io.env) };
  return Object.assign(result, await convertAll(result.rawPath, job.formats, env));
}

/** The files a disk build wrote: the raw image (not for MAAS, which keeps only the .raw.gz, as CanvOS) and copies. */
export function diskOutputPaths(
  r: { rawPath: string; flavour?: string } & Partial<Record<DiskFormat, string>>,
): string[] {
  const copies = (['raw.gz', 'qcow2', 'vhd'] as const).map((f) => r[f]).filter((p) => p !== undefined);
  return [...(r.flavour === 'maas' ? [] : [r.rawPath]), ...copies];
}

const command: CommandModule = {
  summary:
    'canvos-lite disk: build a Kairos raw disk image (EFI + BIOS; qcow2/vhd copies) from the CanvOS configuration or an image',
  usage,
  run,
};
export default command;
