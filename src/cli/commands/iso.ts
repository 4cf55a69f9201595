/**
 * `canvos-lite iso`: the CanvOS installer ISO. Without --base the CanvOS configuration drives it (`+iso-image` +
 * `+iso`: BASE_IMAGE + base edits + stylus framework + overlay/files, ISO_NAME, ARCH, CLUSTERCONFIG…, content-*
 * bundles and user-data from the project). With --base REF a ready installer image in any transport is used.
 * Phases go to stderr; stdout gets the ISO path.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { buildIso, type BuildIsoResult, type IsoProgress } from '../../iso/build-iso.js';
import { mergeLayers } from '../../layers/merge.js';
import { BlobCache } from '../../oci/cache.js';
import { openImage } from '../../provider/image-reader.js';
import { buildInstallerIso } from '../../provider/installer-iso.js';
import { CONFIG_OPTIONS, CONFIG_USAGE, loadCliConfig, type ConfigFlagValues } from '../config-options.js';
import type { CliIo, CommandModule } from '../main.js';
import { parseTimeout, TIMEOUT_OPTION, usageError as usageErrorFor } from '../flags.js';

const usage = `usage: canvos-lite iso [configuration options] [--user-data FILE] [--content DIR]... [--output DIR] [--json]
       canvos-lite iso --base REF [options]

From the CanvOS configuration (default): the installer rootfs is BASE_IMAGE (for ARCH) + the base-image edits +
the whole stylus framework image (STYLUS_BASE) + overlay/files/; ISO_NAME, FORCE_INTERACTIVE_INSTALL, DEBUG,
CLUSTERCONFIG and EDGE_CUSTOM_CONFIG come from the configuration, content bundles from every content-*/
directory of the project, user-data from <project>/user-data if present.

${CONFIG_USAGE}

With --base REF: docker://HOST/REPO:TAG (or a bare reference), oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG]
     (a ready installer image: base + stylus framework + overlay files); then these options apply:
  --cluster-config FILE      cluster definition -> /opt/spectrocloud/clusterconfig/spc.tgz
  --edge-custom-config FILE  -> /.edge_custom_config.yaml
  --name NAME                ISO_NAME (default palette-edge-installer)
  --arch amd64|arm64         image platform and EFI loader names (default amd64)
  --force-interactive        boot the interactive installer entry by default
  --debug-cmdline            add rd.immucore.debug console=tty0 rd.debug to the boot entries
  --insecure                 reach the base image's registry over plain HTTP

common options:
  --user-data FILE           user-data (first line #cloud-config) -> /files-iso/config.yaml
  --content DIR              directory of *.zst content bundles (repeatable), split into 3 GB parts
  --output DIR               output directory (default build)
  --json                     print only a JSON result on stdout`;

const BASE_ONLY = ['cluster-config', 'edge-custom-config', 'name', 'arch', 'force-interactive', 'debug-cmdline', 'insecure'] as const;

const usageError = (message: string): CanvosError => usageErrorFor('iso', message);

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...CONFIG_OPTIONS,
      ...TIMEOUT_OPTION,
      base: { type: 'string' },
      'user-data': { type: 'string' },
      content: { type: 'string', multiple: true },
      'cluster-config': { type: 'string' },
      'edge-custom-config': { type: 'string' },
      name: { type: 'string' },
      output: { type: 'string' },
      arch: { type: 'string' },
      'force-interactive': { type: 'boolean' },
      'debug-cmdline': { type: 'boolean' },
      insecure: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!values.base) return fromConfig(values, io);
  for (const k of Object.keys(CONFIG_OPTIONS) as (keyof typeof CONFIG_OPTIONS)[]) {
    if (values[k] !== undefined) throw usageError(`--${k} does not apply with --base (the image is used as it is)`);
  }
  const arch = values.arch ?? 'amd64';
  if (arch !== 'amd64' && arch !== 'arm64') throw usageError(`--arch must be amd64 or arm64, not ${JSON.stringify(arch)}`);
  const say = (s: string): void => {
    if (!values.json) io.stderr.write(`${s}\n`);
  };
  const insecure = values.insecure === true;
  const img = await openImage(values.base, arch, {
    cache: new BlobCache({ env: io.env }),
    signal: io.signal,
    registry: { env: io.env, timeoutMs: parseTimeout('iso', values.timeout), insecureRegistries: insecure ? [hostOf(values.base)] : undefined },
  });
  let result: BuildIsoResult;
  try {
    say(`iso: ${img.source.description} (${img.layers.length} layers)`);
    result = await buildIso(
      {
        rootfs: mergeLayers(img.openers, { signal: io.signal }),
        userData: values['user-data'],
        contentDirs: values.content,
        clusterConfig: values['cluster-config'],
        edgeCustomConfig: values['edge-custom-config'],
        name: values.name,
        outputDir: values.output ?? 'build',
        arch,
        forceInteractive: values['force-interactive'],
        debug: values['debug-cmdline'],
      },
      {
        env: io.env,
        signal: io.signal,
        onProgress: phaseLogger(say),
      },
    );
  } finally {
    await img.source.close().catch(() => {});
  }
  if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
  else io.stdout.write(`${result.isoPath}\n`);
  return 0;
}

/** Logs ISO phase changes (not percentages). */
function phaseLogger(say: (s: string) => void): (p: IsoProgress) => void {
  return (p) => {
    if (p.percent === undefined) say(`iso: ${p.phase}`);
  };
}

type IsoValues = ConfigFlagValues & { [K in (typeof BASE_ONLY)[number]]?: string | boolean | undefined } & {
  'user-data'?: string | undefined;
  content?: string[] | undefined;
  output?: string | undefined;
  json?: boolean | undefined;
};

/** The configuration-driven ISO (no --base). */
async function fromConfig(values: IsoValues, io: CliIo): Promise<number> {
  for (const k of BASE_ONLY) {
    if (values[k] !== undefined) {
      throw new CanvosError('ERR_USAGE', `--${k} only applies with --base; the configuration sets it`, {
        hint: 'use --set (e.g. --set ISO_NAME=x, --set ARCH=arm64, --set CLUSTERCONFIG=spc.tgz, --set FORCE_INTERACTIVE_INSTALL=true, --set DEBUG=true)',
      });
    }
  }
  const cli = await loadCliConfig(values, io, 'iso', 'ERR_CONFIG');
  const say = (s: string): void => {
    if (!values.json) io.stderr.write(`${s}\n`);
  };
  const r = await buildInstallerIso(cli.config, {
    projectDir: cli.projectDir,
    registry: cli.registry,
    cacheDir: cli.cacheDir,
    outputDir: resolve(io.cwd, values.output ?? 'build'),
    userData: values['user-data'] ? resolve(io.cwd, values['user-data']) : undefined,
    contentDirs: (values.content ?? []).map((d) => resolve(io.cwd, d)),
    env: io.env,
    signal: io.signal,
    onWarning: cli.warn,
    onProgress: (m) => say(`iso: ${m}`),
    onIsoProgress: phaseLogger(say),
  });
  if (values.json) io.stdout.write(`${JSON.stringify(r)}\n`);
  else io.stdout.write(`${r.isoPath}\n`);
  return 0;
}

/** The registry host of a docker:// or bare reference (for --insecure). */
function hostOf(ref: string): string {
  const r = ref.replace(/^docker:\/\//, '');
  return r.split('/')[0] ?? r;
}

const command: CommandModule = {
  summary: 'canvos-lite iso: build the Palette Edge installer ISO (BIOS + UEFI hybrid) from the CanvOS configuration or an image',
  usage,
  run,
};
export default command;
