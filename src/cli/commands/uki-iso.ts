/**
 * `canvos-lite uki iso`: the signed UKI installer ISO (CanvOS +build-uki-iso), from an image (--base REF: the
 * installer rootfs becomes the UKI) or from explicit --kernel/--initrd/--os-release files.
 * @internal (loaded by uki.ts)
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CanvosError } from '../../errors.js';
import { mergeLayers } from '../../layers/merge.js';
import { buildUkiIso } from '../../uki/uki-iso.js';
import { ENKI_UKI_CMDLINE, buildUkiIsoFromRootfs } from '../../uki/uki-iso-image.js';
import { parseTimeout, timeoutHelp, usageError as usageErrorFor } from '../flags.js';
import { withBaseImage } from '../base-image.js';
import { BASE_IMAGE_OPTIONS, baseImageRegistry, commandOutput, JSON_OPTION } from '../flag-sets.js';
import type { CliIo } from '../types.js';

export const UKI_ISO_USAGE = `usage: canvos-lite uki iso --base REF [options]
       canvos-lite uki iso --kernel FILE --initrd FILE... --os-release FILE [--uname VERSION] [options]

iso: the Trusted Boot installer ISO as CanvOS's build-uki-iso (enki build-uki -t iso) makes it: a UKI (systemd
  stub + kernel + initrd + command line + os-release + the TPM PCR public key) and systemd-boot, both signed with
  the db key, loader entry, and PK/KEK/db .auth files in loader/keys/auto for enrolment. amd64 only.
  --base REF                 installer image (docker://…, oci:DIR[:TAG], docker-archive:FILE): its whole rootfs is
                             the UKI's initrd, /boot/vmlinuz the kernel, /etc/os-release the .osrel; its
                             /usr/kairos systemd-boot and stub are used when present
  --kernel/--initrd/--os-release/--uname   explicit UKI inputs instead of --base
  --keys DIR                 the secure-boot directory of uki genkey (default ./secure-boot)
  --cmdline S                replace enki's command line (default: ${ENKI_UKI_CMDLINE})
  --extend-cmdline S         append to it (CanvOS: "stylus.registration")
  --auto-enroll              AUTO_ENROLL_SECUREBOOT_KEYS=true: systemd-boot enrolls the keys in setup mode
                             (loader.conf secure-boot-enroll force); default manual (a menu entry)
  --user-data FILE           user-data -> /config.yaml on the ISO
  --name NAME                ISO_NAME (default palette-edge-installer)
  --version V                UKI file name and loader entry version (default norole, as enki)
  --branding TEXT            loader entry title (default "Palette eXtended Kubernetes Edge")
  --stub FILE, --systemd-boot FILE   EFI binaries (default: the image's, else systemd-boot-efi's in /usr/lib/systemd/boot/efi)
  --output DIR               output directory (default build)
  --insecure                 reach the base image's registry over plain HTTP
  ${timeoutHelp(27)}
  --json                     print only a JSON result on stdout`;

const usageError = (m: string): CanvosError => usageErrorFor('uki', m);

export async function ukiIsoCmd(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      base: { type: 'string' },
      kernel: { type: 'string' },
      initrd: { type: 'string', multiple: true },
      'os-release': { type: 'string' },
      uname: { type: 'string' },
      keys: { type: 'string' },
      cmdline: { type: 'string' },
      'extend-cmdline': { type: 'string' },
      'auto-enroll': { type: 'boolean' },
      'user-data': { type: 'string' },
      name: { type: 'string' },
      version: { type: 'string' },
      branding: { type: 'string' },
      stub: { type: 'string' },
      'systemd-boot': { type: 'string' },
      output: { type: 'string' },
      arch: { type: 'string' },
      ...BASE_IMAGE_OPTIONS,
      ...JSON_OPTION,
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  // Also bounds the tools this command spawns (sbsign, xorriso) when no --base registry options parse it.
  parseTimeout('uki iso', values.timeout);
  if (values.arch !== undefined && values.arch !== 'amd64') {
    throw new CanvosError('ERR_CONFIG', `UKI ISOs are amd64 only (--arch ${values.arch})`, {
      hint: 'CanvOS builds a plain ISO on arm64: use canvos-lite iso',
    });
  }
  const explicit =
    values.kernel !== undefined ||
    values.initrd !== undefined ||
    values['os-release'] !== undefined ||
    values.uname !== undefined;
  if (values.base && explicit) throw usageError('--base and --kernel/--initrd/--os-release/--uname exclude each other');
  if (!values.base && !(values.kernel && values.initrd && values['os-release']))
    throw usageError('give --base REF, or --kernel, --initrd and --os-release');
  const path = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(io.cwd, p));
  const out = commandOutput(io, values.json);
  const common = {
    keysDir: resolve(io.cwd, values.keys ?? 'secure-boot'),
    outputDir: resolve(io.cwd, values.output ?? 'build'),
    version: values.version ?? 'norole',
    ...(values.name !== undefined ? { name: values.name } : {}),
    ...(values.branding !== undefined ? { branding: values.branding } : {}),
    autoEnroll: values['auto-enroll'] === true,
    ...(values['user-data'] !== undefined ? { overlay: { 'config.yaml': path(values['user-data']) as string } } : {}),
    ...(values.stub !== undefined ? { stub: path(values.stub) as string } : {}),
    ...(values['systemd-boot'] !== undefined ? { systemdBoot: path(values['systemd-boot']) as string } : {}),
    signal: io.signal,
  };
  let result: { isoPath: string };
  if (values.base) {
    const registry = baseImageRegistry('uki', values, [values.base], io);
    result = await withBaseImage(values.base, 'amd64', registry, io, async (img) => {
      out.say(`uki iso: ${img.source.description} (${img.layers.length} layers) -> UKI initrd`);
      const r = await buildUkiIsoFromRootfs(mergeLayers(img.openers, { signal: io.signal }), {
        ...common,
        ...(values.cmdline !== undefined ? { cmdline: values.cmdline } : {}),
        ...(values['extend-cmdline'] !== undefined ? { extendCmdline: values['extend-cmdline'] } : {}),
        onWarning: out.warn,
      });
      out.say(`uki iso: kernel ${r.uname}, systemd-boot and stub from the ${r.efiSource}`);
      return r;
    });
    out.flush();
  } else {
    const osRelease = await readFile(path(values['os-release']) as string, 'utf8').catch((e: unknown) => {
      throw new CanvosError('ERR_CONFIG', `--os-release ${values['os-release']}: ${(e as Error).message}`, {
        cause: e,
        hint: 'pass the image os-release file',
      });
    });
    const cmdline = [values.cmdline ?? ENKI_UKI_CMDLINE, values['extend-cmdline']].filter(Boolean).join(' ');
    result = await buildUkiIso({
      ...common,
      kernel: path(values.kernel) as string,
      initrds: (values.initrd ?? []).map((p) => resolve(io.cwd, p)),
      osRelease,
      cmdline,
      ...(values.uname !== undefined ? { uname: values.uname } : {}),
    });
  }
  out.result(result, [result.isoPath]);
  return 0;
}
