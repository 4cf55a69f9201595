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
import { CONFIG_USAGE, loadCliConfig, rejectConfigFlags } from '../config-options.js';
import { usageError as usageErrorFor } from '../flags.js';
import { buildConfiguredIso } from '../../uki/config-iso.js';
import { INSTALLER_SOURCE_OPTIONS, parseBaseArch, withBaseImage } from '../base-image.js';
import { baseImageRegistry, commandOutput, registryHosts, type CommandOutput } from '../flag-sets.js';
import { parseSquashfsLevel, SQUASHFS_LEVEL_OPTION, SQUASHFS_LEVEL_USAGE } from '../squashfs-level.js';
import type { CliIo, CommandModule } from '../types.js';

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
${SQUASHFS_LEVEL_USAGE}
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

const OPTIONS = {
  ...INSTALLER_SOURCE_OPTIONS,
  content: { type: 'string', multiple: true },
  'files-iso': { type: 'string' },
  'local-ui': { type: 'string' },
  'cluster-config': { type: 'string' },
  'force-interactive': { type: 'boolean' },
  'debug-cmdline': { type: 'boolean' },
  push: { type: 'string' },
  'push-as': { type: 'string' },
  ...SQUASHFS_LEVEL_OPTION,
} as const;

type IsoValues = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const pushAs = values['push-as'] ?? 'artifact';
  if (pushAs !== 'artifact' && pushAs !== 'image')
    throw usageError(`--push-as must be artifact or image, not ${JSON.stringify(pushAs)}`);
  if (values['push-as'] && !values.push) throw usageError('--push-as needs --push REF');
  const level = parseSquashfsLevel(values['squashfs-level']);
  const out = commandOutput(io, values.json);
  const { result, registry } = values.base
    ? await fromBase(values.base, values, level, out, io)
    : await fromConfig(values, level, out, io);
  const pushed = await pushIso(result, values.push, pushAs, registry, io, out.say);
  out.result({ ...result, ...pushed }, [result.isoPath]);
  return 0;
}

/** The ISO of a ready installer image (`--base REF`), and the registry options its --push uses. */
async function fromBase(
  ref: string,
  values: IsoValues,
  squashfsLevel: number | undefined,
  out: CommandOutput,
  io: CliIo,
): Promise<{ result: BuildIsoResult; registry: RegistryTransportOptions }> {
  rejectConfigFlags('iso', values);
  const arch = parseBaseArch('iso', values.arch);
  const at = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(io.cwd, p));
  const localUi = at(values['local-ui']);
  if (localUi) await checkLocalUi(localUi, io.signal);
  const registry = baseImageRegistry('iso', values, [ref], io);
  const result = await withBaseImage(ref, arch, registry, io, (img) => {
    out.say(`iso: ${img.source.description} (${img.layers.length} layers)`);
    const layers = localUi ? [...img.openers, localUiLayer(localUi, io.signal)] : img.openers;
    return buildIso(
      {
        rootfs: mergeLayers(layers, { signal: io.signal }),
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
        squashfsLevel,
        onProgress: phaseLogger(out.say),
        onWarning: out.warn,
      },
    );
  });
  out.flush();
  // The push goes without --timeout, and with --insecure to the base's and the push's registries.
  const hosts = values.insecure ? registryHosts([ref, ...(values.push ? [values.push] : [])]) : undefined;
  return { result, registry: { env: io.env, insecureRegistries: hosts } };
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

/** The configuration-driven ISO (no --base), and the registry options its --push uses. */
async function fromConfig(
  values: IsoValues,
  squashfsLevel: number | undefined,
  out: CommandOutput,
  io: CliIo,
): Promise<{ result: BuildIsoResult; registry: RegistryTransportOptions }> {
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
  const result = await buildConfiguredIso(cli.config, {
    projectDir: cli.projectDir,
    registry: cli.registry,
    cacheDir: cli.cacheDir,
    outputDir: resolve(io.cwd, values.output ?? 'build'),
    userData: values['user-data'] ? resolve(io.cwd, values['user-data']) : undefined,
    contentDirs: (values.content ?? []).map((d) => resolve(io.cwd, d)),
    squashfsLevel,
    env: io.env,
    signal: io.signal,
    onWarning: cli.warn,
    onProgress: (m) => {
      out.say(`iso: ${m}`);
    },
    onIsoProgress: phaseLogger(out.say),
  });
  return { result, registry: cli.registry };
}

const command: CommandModule = {
  summary:
    'canvos-lite iso: build the Palette Edge installer ISO (BIOS + UEFI hybrid) from the CanvOS configuration or an image',
  usage,
  run,
};
export default command;
