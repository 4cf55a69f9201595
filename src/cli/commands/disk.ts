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
import { BlobCache } from '../../oci/cache.js';
import { openImage } from '../../provider/image-reader.js';
import { CONFIG_OPTIONS, CONFIG_USAGE, loadCliConfig } from '../config-options.js';
import { usageError as usageErrorFor } from '../flags.js';
import type { CliIo, CommandModule } from '../main.js';

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
  --json                     print only a JSON result on stdout`;

const BASE_ONLY = ['name', 'arch', 'edge-custom-config', 'insecure'] as const;
const CONFIG_ONLY = ['maas-ubuntu-image'] as const;
const usageError = (message: string): CanvosError => usageErrorFor('disk', message);

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...CONFIG_OPTIONS,
      base: { type: 'string' },
      'user-data': { type: 'string' },
      'edge-custom-config': { type: 'string' },
      name: { type: 'string' },
      arch: { type: 'string' },
      format: { type: 'string', multiple: true },
      size: { type: 'string' },
      'maas-ubuntu-image': { type: 'string' },
      output: { type: 'string' },
      insecure: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const formats = parseDiskFormats('disk', values.format ?? []);
  const size = values.size === undefined ? undefined : Number(values.size);
  if (size !== undefined && !(Number.isInteger(size) && size > 0))
    throw usageError(`--size must be a whole number of MiB, not ${JSON.stringify(values.size)}`);
  const say = (s: string): void => {
    if (!values.json) io.stderr.write(`${s}\n`);
  };
  const warn = (code: string, msg: string): void => {
    io.stderr.write(`warning: ${msg} [${code}]\n`);
  };
  const outputDir = resolve(io.cwd, values.output ?? 'build');
  const userData = values['user-data'] ? resolve(io.cwd, values['user-data']) : undefined;
  const onProgress = (p: { phase: DiskPhase }): void => {
    say(`disk: ${p.phase}`);
  };
  let result: BuildDiskResult & Partial<Record<DiskFormat, string>> & { flavour?: string };
  if (!values.base) {
    for (const k of BASE_ONLY) {
      if (values[k] !== undefined)
        throw usageError(
          `--${k} only applies with --base; the configuration sets it (--set ISO_NAME=…, ARCH=…, EDGE_CUSTOM_CONFIG=…)`,
        );
    }
    const cli = await loadCliConfig(values, io, 'disk', 'ERR_CONFIG');
    result = await buildInstallerDisk(cli.config, {
      projectDir: cli.projectDir,
      registry: cli.registry,
      cacheDir: cli.cacheDir,
      outputDir,
      userData,
      formats,
      sizeMiB: size,
      maasUbuntuImage: values['maas-ubuntu-image'] ? resolve(io.cwd, values['maas-ubuntu-image']) : undefined,
      env: io.env,
      signal: io.signal,
      onWarning: cli.warn,
      onProgress: (m) => {
        say(`disk: ${m}`);
      },
      onDiskProgress: onProgress,
    });
  } else {
    for (const k of [...(Object.keys(CONFIG_OPTIONS) as (keyof typeof CONFIG_OPTIONS)[]), ...CONFIG_ONLY]) {
      if (values[k] !== undefined) throw usageError(`--${k} does not apply with --base (the image is used as it is)`);
    }
    const arch = values.arch ?? 'amd64';
    if (arch !== 'amd64' && arch !== 'arm64')
      throw usageError(`--arch must be amd64 or arm64, not ${JSON.stringify(arch)}`);
    const ref = values.base;
    const img = await openImage(ref, arch, {
      cache: new BlobCache({ env: io.env }),
      signal: io.signal,
      registry: {
        env: io.env,
        insecureRegistries: values.insecure ? [ref.replace(/^docker:\/\//, '').split('/')[0] ?? ref] : undefined,
      },
    });
    say(`disk: ${img.source.description} (${img.layers.length} layers)`);
    try {
      const ecc = values['edge-custom-config'];
      result = await buildDisk(
        {
          rootfs: mergeLayers(img.openers, { signal: io.signal }),
          outputDir,
          userData,
          sizeMiB: size,
          name: values.name,
          arch,
          edgeCustomConfig: ecc ? resolve(io.cwd, ecc) : undefined,
        },
        { env: io.env, signal: io.signal, onWarning: warn, onProgress },
      );
    } finally {
      await img.source.close().catch(() => {});
    }
    Object.assign(
      result,
      await convertAll(result.rawPath, formats, {
        env: io.env,
        signal: io.signal,
        sourceDateEpoch: sourceDateEpochFromEnv(io.env),
      }),
    );
  }
  if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
  else
    io.stdout.write(
      diskOutputPaths(result)
        .map((p) => `${p}\n`)
        .join(''),
    );
  return 0;
}

/** The files a disk build wrote: the raw image (not for MAAS, which keeps only the .raw.gz, as CanvOS) and copies. */
export function diskOutputPaths(
  r: { rawPath: string; flavour?: string } & Partial<Record<DiskFormat, string>>,
): string[] {
  const copies = (['raw.gz', 'qcow2', 'vhd'] as const).map((f) => r[f]).filter((p) => p !== undefined);
  return [...(r.flavour === 'maas' ? [] : [r.rawPath]), ...copies];
}

/** `--format` / `--disk-format` values (repeatable, comma-separated) as conversion formats; `raw` is implied. */
export function parseDiskFormats(cmd: string, given: readonly string[]): DiskFormat[] {
  const out = new Set<DiskFormat>();
  for (const f of given
    .flatMap((g) => g.split(','))
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (f === 'raw') continue;
    if (f !== 'qcow2' && f !== 'vhd' && f !== 'raw.gz')
      throw usageErrorFor(cmd, `the disk format must be raw, raw.gz, qcow2 or vhd, not ${JSON.stringify(f)}`);
    out.add(f);
  }
  return [...out];
}

const command: CommandModule = {
  summary:
    'canvos-lite disk: build a Kairos raw disk image (EFI + BIOS; qcow2/vhd copies) from the CanvOS configuration or an image',
  usage,
  run,
};
export default command;
