/**
 * The UKI installer ISO as CanvOS's build-uki-iso (enki build-uki -t iso) lays it out: an El Torito EFI image
 * efiboot.img (our FAT writer) holding systemd-boot signed with the db key as EFI/BOOT/BOOTX64.EFI, the signed UKI
 * in EFI/kairos/, loader.conf and one loader entry, and PK/KEK/db (.auth + .der) in loader/keys/auto for
 * systemd-boot's Secure Boot enrolment; the overlay files (user-data as /config.yaml, …) at the ISO root.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CanvosError } from '../errors.js';
import { writeFatImage, type FatFileSpec } from '../iso/fat.js';
import { runXorriso } from '../iso/run-xorriso.js';
import { pinnedDates } from '../iso/xorriso-args.js';
import { sourceDateEpochFromEnv } from '../layers/build.js';
import { publishWithSha256 } from '../image/digest.js';
import { publicPemOf } from './genkey.js';
import { signEfi } from './sign.js';
import { buildUki, type BuildUkiOptions } from './uki.js';

/** Where Debian's systemd-boot-efi puts systemd-boot. */
export const DEFAULT_SYSTEMD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
/** enki's volume label of UKI ISOs. */
export const UKI_ISO_LABEL = 'UKI_ISO_INSTALL';

/** Options of {@link buildUkiIso}. */
export interface BuildUkiIsoOptions extends Omit<BuildUkiOptions, 'pcrPublicKey' | 'pcrPrivateKey'> {
  /** The secure-boot directory of `uki genkey` (enrollment/, private-keys/, public-keys/). */
  keysDir: string;
  /** Output directory; the ISO is `<name>.iso`. */
  outputDir: string;
  /** ISO_NAME. Default: 'palette-edge-installer'. */
  name?: string;
  /** Version shown in the loader entry and used as the UKI's file name. Default: 'uki'. */
  version?: string;
  /** Loader entry title (enki --boot-branding). Default: 'Palette eXtended Kubernetes Edge'. */
  branding?: string;
  /** AUTO_ENROLL_SECUREBOOT_KEYS: `secure-boot-enroll force` in loader.conf. Default: false (manual). */
  autoEnroll?: boolean;
  /** Files at the ISO root: ISO path → host file (enki --overlay-iso). Default: none. */
  overlay?: Record<string, string>;
  /** Directories whose contents go onto the ISO root, after {@link overlay} (enki --overlay-iso). Default: none. */
  overlayDirs?: string[];
  /** Pins every ISO, FAT and file date, so the same inputs give the same ISO bytes. Default: env SOURCE_DATE_EPOCH, else none. */
  sourceDateEpoch?: number;
  /** systemd-boot binary. Default: {@link DEFAULT_SYSTEMD_BOOT}. */
  systemdBoot?: string;
  /** Menu timeout in seconds. Default: 5 (enki). */
  timeout?: number;
}

/** Result of {@link buildUkiIso}. */
export interface BuildUkiIsoResult {
  isoPath: string;
  /** `<isoPath>.sha256` (sha256sum format) and the hex digest. */
  sha256Path: string;
  sha256: string;
  /** The signed UKI's path inside the ESP. */
  ukiPath: string;
}

function keyFile(keysDir: string, sub: string, name: string): string {
  const p = join(keysDir, sub, name);
  if (!existsSync(p))
    throw new CanvosError('ERR_CONFIG', `${p} is missing`, {
      hint: 'run canvos-lite uki genkey first (or point --keys at the secure-boot directory)',
    });
  return p;
}

/** Builds and signs the UKI and systemd-boot in `work`; returns the ESP tree (enki's layout) and the UKI's ESP path. */
export async function signedEspFiles(
  opts: BuildUkiIsoOptions,
  work: string,
): Promise<{ files: FatFileSpec[]; ukiPath: string }> {
  const { keysDir, version = 'uki', branding = 'Palette eXtended Kubernetes Edge' } = opts;
  if (!/^[\w.+-]+$/.test(version))
    throw new CanvosError('ERR_CONFIG', `UKI version ${JSON.stringify(version)} is not usable as a file name`, {
      hint: 'use letters, digits, . + - _',
    });
  const key = keyFile(keysDir, 'private-keys', 'db.key');
  const cert = keyFile(keysDir, 'public-keys', 'db.pem');
  const auth = ['PK', 'KEK', 'db'].flatMap((k) =>
    [`${k}.auth`, `${k}.der`].map((f) => ({ f, p: keyFile(keysDir, 'enrollment', f) })),
  );
  const sdboot = opts.systemdBoot ?? DEFAULT_SYSTEMD_BOOT;
  if (!existsSync(sdboot))
    throw new CanvosError('ERR_CONFIG', `systemd-boot ${sdboot} not found`, {
      hint: 'install systemd-boot-efi (Debian/Ubuntu) or pass --systemd-boot FILE',
    });
  const pcrKey = join(keysDir, 'private-keys', 'tpm2-pcr-private.pem');
  const sig = opts.signal ? { signal: opts.signal } : {};
  const unsigned = join(work, 'uki.unsigned.efi');
  await buildUki(unsigned, {
    ...opts,
    ...(existsSync(pcrKey) ? { pcrPublicKey: await publicPemOf(pcrKey), pcrPrivateKey: pcrKey } : {}),
  });
  const uki = join(work, `${version}.efi`);
  await signEfi(unsigned, uki, { key, cert, ...sig });
  await rm(unsigned);
  const boot = join(work, 'BOOTX64.EFI');
  await signEfi(sdboot, boot, { key, cert, ...sig });
  const loaderConf = `default @saved\ntimeout ${opts.timeout ?? 5}\nconsole-mode max\neditor no\nsecure-boot-enroll ${opts.autoEnroll ? 'force' : 'manual'}\n`;
  const ukiPath = `EFI/kairos/${version}.efi`;
  const files: FatFileSpec[] = [
    { path: 'EFI/BOOT/BOOTX64.EFI', source: boot },
    { path: ukiPath, source: uki },
    { path: 'loader/loader.conf', source: Buffer.from(loaderConf) },
    {
      path: `loader/entries/${version}.conf`,
      source: Buffer.from(`title ${branding}\nefi /${ukiPath}\nversion ${version}\n`),
    },
    ...auth.map(({ f, p }) => ({ path: `loader/keys/auto/${f}`, source: p })),
  ];
  return { files, ukiPath };
}

/** Builds the signed UKI and the UKI installer ISO (`<name>.iso` and `<name>.iso.sha256`, published atomically). */
export async function buildUkiIso(opts: BuildUkiIsoOptions): Promise<BuildUkiIsoResult> {
  const { outputDir, name = 'palette-edge-installer' } = opts;
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv();
  await mkdir(outputDir, { recursive: true });
  const work = await mkdtemp(join(outputDir, '.uki-iso-'));
  try {
    const { files, ukiPath } = await signedEspFiles(opts, work);
    const isoRoot = join(work, 'iso');
    await mkdir(isoRoot);
    const img = join(isoRoot, 'efiboot.img');
    await writeFatImage(
      img,
      { files, dirs: ['EFI/tools'] },
      { label: 'UKI_EFI', roundTo: 1 << 20, sourceDateEpoch: epoch, signal: opts.signal },
    );
    const isoPath = join(outputDir, `${name}.iso`);
    const partial = join(work, `${name}.iso.partial`);
    const grafts = [
      ...Object.entries(opts.overlay ?? {}).map(([p, host]) => `${p.replace(/^\/+/, '').replace(/=/g, '\\=')}=${host}`),
      ...(opts.overlayDirs ?? []).map((d) => `/=${d}`),
    ];
    await runXorriso(
      [
        // native commands before the mkisofs emulation: the dates of the plain ISO path (xorriso-args.ts)
        ...(epoch > 0 ? pinnedDates(epoch) : []),
        '-as',
        'mkisofs',
        '-V',
        UKI_ISO_LABEL,
        '-r', // Rock Ridge with owner 0:0 and normalised modes, independent of the builder
        '-e',
        'efiboot.img',
        '-no-emul-boot',
        '-o',
        partial,
        '-graft-points',
        isoRoot,
        ...grafts,
      ],
      { signal: opts.signal },
    );
    const sha256 = await publishWithSha256(partial, isoPath, opts.signal);
    return { isoPath, sha256Path: `${isoPath}.sha256`, sha256, ukiPath };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
