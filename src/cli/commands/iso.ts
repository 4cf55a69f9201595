/**
 * `canvos-lite iso`: the CanvOS installer ISO. Without --base the CanvOS configuration drives it (`+iso-image` +
 * `+iso`: BASE_IMAGE + base edits + stylus framework + overlay/files, ISO_NAME, ARCH, CLUSTERCONFIG…, content-*
 * bundles and user-data from the project). With --base REF a ready installer image in any transport is used.
 * Phases go to stderr; stdout gets the ISO path.
 */
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { pushArtifact } from '../../artifact/artifact.js';
import { pushIsoImage } from '../../artifact/iso-image.js';
import { buildIso, type BuildIsoResult, type IsoProgress } from '../../iso/build-iso.js';
import { checkLocalUi, localUiLayer } from '../../iso/local-ui.js';
import { sourceDateEpochFromEnv } from '../../layers/build.js';
import type { RegistryTransportOptions } from '../../transports/registry/registry-image.js';
import { mergeLayers } from '../../layers/merge.js';
import { BlobCache } from '../../cache/blob-cache.js';
import { openImage } from '../../provider/image-reader.js';
import { buildConfiguredIso } from '../../uki/config-iso.js';
import { CONFIG_OPTIONS, CONFIG_USAGE, loadCliConfig, type ConfigFlagValues } from '../config-options.js';
import type { CliIo, CommandModule } from '../main.js';
import { parseTimeout, TIMEOUT_OPTION, usageError as usageErrorFor } from '../flags.js';

const usage = `usage: canvos-lite iso [configuration options] [--user-data FILE] [--content DIR]... [--output DIR] [--json]
       canvos-lite iso --base REF [options]

From the CanvOS configuration (default): the installer rootfs is BASE_IMAGE (for ARCH) + the base-image edits +
the whole stylus framework image (STYLUS_BASE) + overlay/files/; ISO_NAME, FORCE_INTERACTIVE_INSTALL, DEBUG,
CLUSTERCONFIG and EDGE_CUSTOM_CONFIG come from the configuration, content bundles from every content-*/
directory of the project, user-data from <project>/user-data, overlay/files-iso/ (ISO files, grub.cfg) and
local-ui.tar (-> /opt/spectrocloud of the rootfs) from the project, each if present. With IS_UKI=true (amd64)
it is the signed UKI ISO of CanvOS's build-uki-iso, keys from <project>/secure-boot (see canvos-lite uki).

${CONFIG_USAGE}

With --base REF: docker://HOST/REPO:TAG (or a bare reference), oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG]
     (a ready installer image: base + stylus framework + overlay files); then these options apply:
  --files-iso DIR            files copied onto the ISO first, as CanvOS's overlay/files-iso/ (its
                             boot/grub2/grub.cfg replaces the built-in menu)
  --local-ui FILE            local-ui.tar, extracted into the rootfs's /opt/spectrocloud
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
  --push REF                 also push the ISO as an OCI artifact (one layer, the .sha256 as an annotation) to REF
                             (docker://HOST/REPO:TAG or a bare reference, oci:DIR:TAG); pull-artifact restores it
  --push-as artifact|image   image: CanvOS's iso-disk-image form instead (the ISO at /disk/<name>.iso in a scratch
                             image, one gzip layer)
  --json                     print only a JSON result on stdout`;

const BASE_ONLY = [
  'files-iso',
  'local-ui',
  'cluster-config',
  'edge-custom-config',
  'name',
  'arch',
  'force-interactive',
  'debug-cmdline',
  'insecure',
] as const;

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
      'files-iso': { type: 'string' },
      'local-ui': { type: 'string' },
      'cluster-config': { type: 'string' },
      'edge-custom-config': { type: 'string' },
      name: { type: 'string' },
      output: { type: 'string' },
      arch: { type: 'string' },
      'force-interactive': { type: 'boolean' },
      'debug-cmdline': { type: 'boolean' },
      insecure: { type: 'boolean' },
      push: { type: 'string' },
      'push-as': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const pushAs = values['push-as'] ?? 'artifact';
  if (pushAs !== 'artifact' && pushAs !== 'image')
    throw usageError(`--push-as must be artifact or image, not ${JSON.stringify(pushAs)}`);
  if (values['push-as'] && !values.push) throw usageError('--push-as needs --push REF');
  if (!values.base) return fromConfig(values, io);
  for (const k of Object.keys(CONFIG_OPTIONS) as (keyof typeof CONFIG_OPTIONS)[]) {
    if (values[k] !== undefined) throw usageError(`--${k} does not apply with --base (the image is used as it is)`);
  }
  const arch = values.arch ?? 'amd64';
  if (arch !== 'amd64' && arch !== 'arm64')
    throw usageError(`--arch must be amd64 or arm64, not ${JSON.stringify(arch)}`);
  const say = (s: string): void => {
    if (!values.json) io.stderr.write(`${s}\n`);
  };
  const insecure = values.insecure === true;
  const at = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(io.cwd, p));
  const localUi = at(values['local-ui']);
  if (localUi) await checkLocalUi(localUi, io.signal);
  const img = await openImage(values.base, arch, {
    cache: new BlobCache({ env: io.env }),
    signal: io.signal,
    registry: {
      env: io.env,
      timeoutMs: parseTimeout('iso', values.timeout),
      insecureRegistries: insecure ? [hostOf(values.base)] : undefined,
    },
  });
  let result: BuildIsoResult;
  try {
    say(`iso: ${img.source.description} (${img.layers.length} layers)`);
    result = await buildIso(
      {
        rootfs: mergeLayers(localUi ? [...img.openers, localUiLayer(localUi, io.signal)] : img.openers, {
          signal: io.signal,
        }),
        filesIsoDir: at(values['files-iso']),
        userData: at(values['user-data']),
        contentDirs: values.content?.map((d) => resolve(io.cwd, d)),
        clusterConfig: at(values['cluster-config']),
        edgeCustomConfig: at(values['edge-custom-config']),
        name: values.name,
        outputDir: resolve(io.cwd, values.output ?? 'build'),
        arch,
        forceInteractive: values['force-interactive'],
        debug: values['debug-cmdline'],
      },
      {
        env: io.env,
        signal: io.signal,
        onProgress: phaseLogger(say),
        onWarning: (code, msg) => io.stderr.write(`warning: ${msg} [${code}]\n`),
      },
    );
  } finally {
    await img.source.close().catch(() => {});
  }
  const insecureHosts = insecure ? [hostOf(values.base), ...(values.push ? [hostOf(values.push)] : [])] : undefined;
  const pushed = await pushIso(
    result,
    values.push,
    pushAs,
    { env: io.env, insecureRegistries: insecureHosts },
    io,
    say,
  );
  if (values.json) io.stdout.write(`${JSON.stringify({ ...result, ...pushed })}\n`);
  else io.stdout.write(`${result.isoPath}\n`);
  return 0;
}

/** `--push REF`: the built ISO as an OCI artifact. */
async function pushIso(
  r: BuildIsoResult,
  ref: string | undefined,
  as: 'artifact' | 'image',
  registry: RegistryTransportOptions,
  io: CliIo,
  say: (s: string) => void,
): Promise<{ pushed?: { ref: string; digest: string } }> {
  if (!ref) return {};
  say(`iso: push ${ref} (${as})`);
  const sourceDateEpoch = sourceDateEpochFromEnv(io.env);
  const p =
    as === 'image'
      ? await pushIsoImage(r.isoPath, ref, {
          workDir: dirname(r.isoPath),
          registry,
          signal: io.signal,
          sourceDateEpoch,
        })
      : await pushArtifact([r.isoPath], ref, {
          sha256File: r.sha256Path,
          registry,
          signal: io.signal,
          sourceDateEpoch,
        });
  say(`iso: pushed ${p.digest}`);
  return { pushed: { ref, digest: p.digest } };
}

/** Logs ISO phase changes (not percentages). */
function phaseLogger(say: (s: string) => void): (p: IsoProgress) => void {
  return (p) => {
    if (p.percent === undefined) say(`iso: ${p.phase}`);
  };
}

type IsoValues = ConfigFlagValues & { [K in (typeof BASE_ONLY)[number]]?: string | boolean | undefined } & {
  'user-data'?: string | undefined;
  push?: string | undefined;
  'push-as'?: string | undefined;
  content?: string[] | undefined;
  output?: string | undefined;
  json?: boolean | undefined;
};

/** The configuration-driven ISO (no --base). */
async function fromConfig(values: IsoValues, io: CliIo): Promise<number> {
  for (const k of BASE_ONLY) {
    if (values[k] !== undefined) {
      const project = k === 'files-iso' || k === 'local-ui';
      throw new CanvosError(
        'ERR_USAGE',
        `--${k} only applies with --base; ${project ? 'the project provides it' : 'the configuration sets it'}`,
        {
          hint: project
            ? 'put the files in <project>/overlay/files-iso/ and <project>/local-ui.tar (as CanvOS)'
            : 'use --set (e.g. --set ISO_NAME=x, --set ARCH=arm64, --set CLUSTERCONFIG=spc.tgz, --set FORCE_INTERACTIVE_INSTALL=true, --set DEBUG=true)',
        },
      );
    }
  }
  const cli = await loadCliConfig(values, io, 'iso', 'ERR_CONFIG');
  const say = (s: string): void => {
    if (!values.json) io.stderr.write(`${s}\n`);
  };
  const r = await buildConfiguredIso(cli.config, {
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
  const pushed = await pushIso(
    r,
    values.push,
    values['push-as'] === 'image' ? 'image' : 'artifact',
    cli.registry,
    io,
    say,
  );
  if (values.json) io.stdout.write(`${JSON.stringify({ ...r, ...pushed })}\n`);
  else io.stdout.write(`${r.isoPath}\n`);
  return 0;
}

/** The registry host of a docker:// or bare reference (for --insecure). */
function hostOf(ref: string): string {
  const r = ref.replace(/^docker:\/\//, '');
  return r.split('/')[0] ?? r;
}

const command: CommandModule = {
  summary:
    'canvos-lite iso: build the Palette Edge installer ISO (BIOS + UEFI hybrid) from the CanvOS configuration or an image',
  usage,
  run,
};
export default command;
