/**
 * `canvos-lite iso --base REF …`: the CanvOS installer ISO from an image in any transport (registry, OCI layout,
 * docker-archive): its merged rootfs becomes rootfs.squashfs, kernel/initrd come from its /boot, user-data,
 * content bundles and cluster config go into the ISO overlay. Phases go to stderr; stdout gets the ISO path.
 */
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { buildIso, type BuildIsoResult } from '../../iso/build-iso.js';
import { mergeLayers } from '../../layers/merge.js';
import { BlobCache } from '../../oci/cache.js';
import { openImage } from '../../provider/image-reader.js';
import type { CliIo, CommandModule } from '../main.js';

const usage = `usage: canvos-lite iso --base REF [options]

REF: docker://HOST/REPO:TAG (or a bare reference), oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG]
     (normally the installer image: base + stylus framework + overlay files)

options:
  --user-data FILE           user-data (first line #cloud-config) -> /files-iso/config.yaml
  --content DIR              directory of *.zst content bundles (repeatable), split into 3 GB parts
  --cluster-config FILE      cluster definition -> /opt/spectrocloud/clusterconfig/spc.tgz
  --edge-custom-config FILE  -> /.edge_custom_config.yaml
  --name NAME                ISO_NAME (default palette-edge-installer)
  --output DIR               output directory (default build)
  --arch amd64|arm64         image platform and EFI loader names (default amd64)
  --force-interactive        boot the interactive installer entry by default
  --debug-cmdline            add rd.immucore.debug console=tty0 rd.debug to the boot entries
  --insecure                 reach the base image's registry over plain HTTP
  --json                     print only a JSON result on stdout`;

function usageError(message: string): CanvosError {
  return new CanvosError('ERR_USAGE', message, { hint: 'run canvos-lite iso --help for the options' });
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
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
  if (!values.base) throw usageError('--base is required');
  const arch = values.arch ?? 'amd64';
  if (arch !== 'amd64' && arch !== 'arm64') throw usageError(`--arch must be amd64 or arm64, not ${JSON.stringify(arch)}`);
  const say = (s: string): void => {
    if (!values.json) io.stderr.write(`${s}\n`);
  };
  const insecure = values.insecure === true;
  const img = await openImage(values.base, arch, {
    cache: new BlobCache({ env: io.env }),
    signal: io.signal,
    registry: { env: io.env, insecureRegistries: insecure ? [hostOf(values.base)] : undefined },
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
        onProgress: (p) => {
          if (p.percent === undefined) say(`iso: ${p.phase}`);
        },
      },
    );
  } finally {
    await img.source.close().catch(() => {});
  }
  if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
  else io.stdout.write(`${result.isoPath}\n`);
  return 0;
}

/** The registry host of a docker:// or bare reference (for --insecure). */
function hostOf(ref: string): string {
  const r = ref.replace(/^docker:\/\//, '');
  return r.split('/')[0] ?? r;
}

const command: CommandModule = {
  summary: 'canvos-lite iso: build the Palette Edge installer ISO (BIOS + UEFI hybrid) from an image',
  usage,
  run,
};
export default command;
