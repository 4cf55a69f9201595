/**
 * The UKI installer ISO from an image rootfs (CanvOS build-uki-iso: enki build-uki dir:<installer rootfs>
 * --extend-cmdline … -t iso): the rootfs becomes the UKI's initrd, kernel, .uname and .osrel, with enki's
 * default command line; the image's own /usr/kairos systemd-boot and stub are preferred over the host's.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import type { FsEntry } from '../tar/entry.js';
import { rootfsUkiInputs } from './rootfs-initrd.js';
import { buildUkiIso, type BuildUkiIsoOptions, type BuildUkiIsoResult } from './uki-iso.js';

/** enki's UKI command line (constants.UkiCmdline + " " + UkiCmdlineInstall). */
export const ENKI_UKI_CMDLINE =
  'console=ttyS0 console=tty1 net.ifnames=1 rd.immucore.oemlabel=COS_OEM rd.immucore.oemtimeout=2 rd.immucore.uki selinux=0 panic=5 rd.shell=0 systemd.crash_reboot=yes install-mode';

/** Options of {@link buildUkiIsoFromRootfs}: those of {@link buildUkiIso} minus what the rootfs provides. */
export interface UkiIsoFromRootfsOptions extends Omit<
  BuildUkiIsoOptions,
  'kernel' | 'initrds' | 'osRelease' | 'uname' | 'cmdline'
> {
  /** Replaces enki's command line. Default: {@link ENKI_UKI_CMDLINE}. */
  cmdline?: string;
  /** Appended to the command line (enki --extend-cmdline; CanvOS passes "stylus.registration"). Default: none. */
  extendCmdline?: string;
  /** Called with UKI_SYSTEMD_UNKNOWN when the image's systemd version cannot be told. */
  onWarning?: (code: string, message: string) => void;
}

/** Trusted Boot bases (CanvOS's `-uki` Kairos images, Ubuntu 24.04) have systemd 255 or newer. */
export const MIN_UKI_SYSTEMD = 255;

/** Result of {@link buildUkiIsoFromRootfs}. */
export interface UkiIsoFromRootfsResult extends BuildUkiIsoResult {
  uname: string;
  cmdline: string;
  /** Where systemd-boot and the stub came from. */
  efiSource: 'image' | 'host';
  systemdVersion?: number;
}

/** Refuses a base whose systemd is older than {@link MIN_UKI_SYSTEMD}; warns when the version is unknown. */
export function checkUkiSystemd(
  version: number | undefined,
  onWarning?: (code: string, message: string) => void,
): void {
  if (version === undefined) {
    onWarning?.(
      'UKI_SYSTEMD_UNKNOWN',
      `no libsystemd-shared-NNN.so in the image: cannot check for systemd >= ${MIN_UKI_SYSTEMD}, which Trusted Boot needs`,
    );
  } else if (version < MIN_UKI_SYSTEMD) {
    throw new CanvosError(
      'ERR_CONFIG',
      `the base image has systemd ${version}; Trusted Boot (UKI) needs systemd >= ${MIN_UKI_SYSTEMD}`,
      {
        hint: 'use a Kairos UKI base image (CanvOS: the "-uki" tag, Ubuntu 24.04)',
      },
    );
  }
}

/** Builds the UKI ISO from a merged rootfs stream. */
export async function buildUkiIsoFromRootfs(
  rootfs: AsyncIterable<FsEntry>,
  opts: UkiIsoFromRootfsOptions,
): Promise<UkiIsoFromRootfsResult> {
  await mkdir(opts.outputDir, { recursive: true });
  const work = await mkdtemp(join(opts.outputDir, '.uki-rootfs-'));
  try {
    const inp = await rootfsUkiInputs(rootfs, work, opts.signal);
    checkUkiSystemd(inp.systemdVersion, opts.onWarning);
    const cmdline = [opts.cmdline ?? ENKI_UKI_CMDLINE, opts.extendCmdline].filter(Boolean).join(' ');
    const fromImage =
      inp.stub !== undefined &&
      inp.systemdBoot !== undefined &&
      opts.stub === undefined &&
      opts.systemdBoot === undefined;
    const r = await buildUkiIso({
      ...opts, // onWarning and extendCmdline are not buildUkiIso's: it ignores them
      kernel: inp.kernel,
      initrds: [inp.initrd],
      osRelease: inp.osRelease,
      uname: inp.uname,
      cmdline,
      ...(fromImage ? { stub: inp.stub, systemdBoot: inp.systemdBoot } : {}),
    });
    return {
      ...r,
      uname: inp.uname,
      cmdline,
      efiSource: fromImage ? 'image' : 'host',
      ...(inp.systemdVersion !== undefined ? { systemdVersion: inp.systemdVersion } : {}),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
