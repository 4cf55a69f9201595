/**
 * Must-show of issue #16, under enforced Secure Boot (QEMU + OVMF_CODE_4M.secboot.fd, SMM): a fresh variable store
 * is in setup mode; the UKI ISO's systemd-boot enrolls OUR PK/KEK/db .auth files (secure-boot-enroll force) and
 * resets; the next boot, now in user mode, reaches the fixture initramfs through the signed systemd-boot and UKI
 * with the kernel reporting Secure Boot on. The same ISO with one flipped byte in the UKI, and an ISO signed with
 * other keys, are refused by the firmware. An ISO made from an image by the CLI boots that image's rootfs. Sequential TCG boots: run this file alone.
 */
import { existsSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genkey } from '../../src/uki/genkey.js';
import { buildUkiIso } from '../../src/uki/uki-iso.js';
import { DEFAULT_STUB } from '../../src/uki/uki.js';
import { prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { bootIso, type BootResult } from '../helpers/qemu.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tools.js';
import { UKI_MARKER, makeUkiImage } from './uki-fixture.js';

const OVMF = '/usr/share/OVMF';
const ready =
  existsSync(DEFAULT_STUB) && existsSync('/usr/bin/sbsign') && existsSync(join(OVMF, 'OVMF_CODE_4M.secboot.fd'));
const OSREL_MARK = 'CANVOS_UKI_TEST_MARK=signed-osrel';

let tmp: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;
let iso: string;
let vars: string;
const ctx = (r: BootResult): string =>
  `${r.accel} ${r.seconds}s timedOut=${r.timedOut} exit=${r.exitCode}\n--- log tail ---\n${r.log.slice(-4000)}`;

async function makeIso(keysDir: string, out: string): Promise<string> {
  const r = await buildUkiIso({
    keysDir,
    outputDir: out,
    name: 'uki-test',
    version: 'v0.0.0-test',
    kernel: fx.kernel,
    initrds: [fx.initrd],
    cmdline: `console=ttyS0 root=live:CDLABEL=UKI_ISO_INSTALL`,
    osRelease: `NAME="Kairos"\nID=kairos\n${OSREL_MARK}\n`,
    uname: fx.kver,
    autoEnroll: true,
    timeout: 1,
  });
  return r.isoPath;
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-uki-sb-');
  fx = await prepareBootFixture();
  await genkey({ dir: join(tmp.path, 'sb'), skipMicrosoft: true, org: 'canvos-lite test' });
  iso = await makeIso(join(tmp.path, 'sb'), join(tmp.path, 'out'));
  vars = join(tmp.path, 'OVMF_VARS_4M.fd');
  await copyFile(join(OVMF, 'OVMF_VARS_4M.fd'), vars); // empty store: Secure Boot setup mode
}, 600_000);
afterAll(async () => tmp.cleanup());

describe.skipIf(!ready).sequential('UKI ISO under Secure Boot', () => {
  it('setup mode: systemd-boot enrolls our PK, KEK and db from loader/keys/auto and resets', async () => {
    const r = await bootIso(iso, { firmware: 'uefi', secureBoot: true, varsFile: vars, timeoutMs: 240_000 });
    expect(r.timedOut, ctx(r)).toBe(false);
    expect(r.log, ctx(r)).not.toContain('CANVOS-TEST: initramfs reached');
    expect(r.log, ctx(r)).toContain('Enrolling secure boot keys from directory: \\loader\\keys\\auto');
    const store = await readFile(vars);
    // the store now holds our certificates (UCS-2 variable names PK / KEK / db and the db certificate's DER)
    const dbDer = await readFile(join(tmp.path, 'sb', 'enrollment', 'db.der'));
    expect(store.includes(dbDer), 'db certificate in the variable store').toBe(true);
  });

  it('user mode: the signed systemd-boot and UKI boot to the initramfs with Secure Boot enabled', async () => {
    const r = await bootIso(iso, {
      firmware: 'uefi',
      secureBoot: true,
      varsFile: vars,
      timeoutMs: 300_000,
      until: 'CANVOS-TEST: DONE',
    });
    expect(r.log, ctx(r)).toContain('CANVOS-TEST: initramfs reached');
    expect(r.log, ctx(r)).toContain('CANVOS-TEST: firmware=UEFI');
    expect(r.log, ctx(r)).toMatch(/CANVOS-TEST: cmdline: console=ttyS0 root=live:CDLABEL=UKI_ISO_INSTALL/);
    expect(r.log, ctx(r)).toMatch(/LABEL=UKI_ISO_INSTALL -> \/dev\/sr0/);
    expect(r.log, ctx(r)).toMatch(/secureboot: Secure boot enabled/);
  });

  it('an ISO made from an image (uki iso --base): its rootfs boots as the UKI initrd under Secure Boot', async () => {
    await makeUkiImage(join(tmp.path, 'image'), fx);
    const env = { PATH: process.env.PATH, HOME: tmp.path, CANVOS_CACHE_DIR: join(tmp.path, 'cache') };
    const built = await runCli(
      [
        'uki',
        'iso',
        '--base',
        `oci:${join(tmp.path, 'image')}:latest`,
        '--keys',
        join(tmp.path, 'sb'),
        '--extend-cmdline',
        'stylus.registration',
        '--output',
        join(tmp.path, 'out-image'),
      ],
      { env, cwd: tmp.path },
    );
    expect(built.code, built.stderr).toBe(0);
    const r = await bootIso(built.stdout.trim(), {
      firmware: 'uefi',
      secureBoot: true,
      varsFile: vars,
      timeoutMs: 300_000,
      until: 'CANVOS-UKI: DONE',
    });
    expect(r.log, ctx(r)).toContain('CANVOS-UKI: rootfs initrd reached');
    expect(r.log, ctx(r)).toContain(`CANVOS-UKI: marker ${UKI_MARKER}`);
    expect(r.log, ctx(r)).toContain(`CANVOS-UKI: hardlink ${UKI_MARKER}`);
    expect(r.log, ctx(r)).toMatch(
      /CANVOS-UKI: cmdline console=ttyS0 console=tty1 .* install-mode stylus\.registration/,
    );
    expect(r.log, ctx(r)).toMatch(/secureboot: Secure boot enabled/);
  });

  it('one flipped byte in the UKI: the firmware refuses it', async () => {
    const bytes = await readFile(iso);
    const at = bytes.indexOf(OSREL_MARK);
    expect(at).toBeGreaterThan(0);
    expect(bytes.indexOf(OSREL_MARK, at + 1)).toBe(-1);
    bytes.writeUInt8((bytes[at] as number) ^ 0x20, at); // 'C' -> 'c' inside the signed .osrel section
    const flipped = join(tmp.path, 'flipped.iso');
    await writeFile(flipped, bytes);
    const r = await bootIso(flipped, {
      firmware: 'uefi',
      secureBoot: true,
      varsFile: vars,
      timeoutMs: 150_000,
      until: /Error loading .*: (Access Denied|Security Violation)/,
    });
    expect(r.log, ctx(r)).not.toContain('CANVOS-TEST: initramfs reached');
    // systemd-boot (still intact and signed) ran its menu; the firmware's LoadImage refused the altered UKI
    expect(r.log, ctx(r)).toContain('Palette eXtended Kubernetes Edge');
    expect(r.log, ctx(r)).toMatch(
      /Error loading \\EFI\\kairos\\v0\.0\.0-test\.efi: (Access Denied|Security Violation)/,
    );
  });

  it('an ISO signed with other keys: the firmware refuses it', async () => {
    await genkey({ dir: join(tmp.path, 'other'), skipMicrosoft: true, org: 'someone else' });
    const other = await makeIso(join(tmp.path, 'other'), join(tmp.path, 'out-other'));
    const r = await bootIso(other, {
      firmware: 'uefi',
      secureBoot: true,
      varsFile: vars,
      timeoutMs: 150_000,
      until: /failed to load Boot0001 .*: Access Denied/,
    });
    expect(r.log, ctx(r)).not.toContain('CANVOS-TEST: initramfs reached');
    // the firmware refuses the ISO's systemd-boot already: it is signed by a db key that is not enrolled
    expect(r.log, ctx(r)).toMatch(/BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM[^"]*" from .*: Access Denied/);
  });
});
