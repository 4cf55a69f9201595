/**
 * End to end: the Kairos-shaped fixture image → buildIso → QEMU with SeaBIOS (El Torito grub2, i386-pc) and OVMF
 * (appended GPT ESP, EFI grub), as CD-ROM and as a raw disk (USB stick). Every boot must reach the test initramfs,
 * find the medium by LABEL=COS_LIVE, read /files-iso/config.yaml and loop-mount rootfs.squashfs.
 * Sequential: TCG on 2 cores (~15 s per boot).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIso, type BuildIsoResult } from '../../src/iso/build-iso.js';
import { layoutRootfs, prepareBootFixture, withHostShim, MARKER } from '../helpers/boot-fixture.js';
import { bootIso } from '../helpers/qemu.js';
import { run, tmpDir } from '../helpers/tools.js';

let dir: { path: string; cleanup(): Promise<void> };
let built: BuildIsoResult;
let shimmed: BuildIsoResult;
beforeAll(async () => {
  dir = await tmpDir('canvos-boot-');
  const fx = await prepareBootFixture();
  await writeFile(join(dir.path, 'user-data'), '#cloud-config\ninstall:\n  auto: true\n');
  built = await buildIso({
    rootfs: await layoutRootfs(fx.layoutDir),
    userData: join(dir.path, 'user-data'),
    outputDir: join(dir.path, 'build'),
    name: 'boot-test',
    grubTimeout: 1,
  });
  // A rootfs shipping shim + the signed CD grub (like Ubuntu-based Kairos images): the ESP must use those.
  shimmed = await buildIso({
    rootfs: withHostShim(await layoutRootfs(fx.layoutDir)),
    userData: join(dir.path, 'user-data'),
    outputDir: join(dir.path, 'build-shim'),
    name: 'boot-test-shim',
    grubTimeout: 1,
  });
}, 600_000);
afterAll(async () => {
  await dir.cleanup();
});

describe.sequential('installer ISO boots in QEMU', () => {
  const cases = [
    { name: 'bios cdrom', firmware: 'bios', media: 'cdrom', iso: () => built },
    { name: 'uefi cdrom (host CD grub)', firmware: 'uefi', media: 'cdrom', iso: () => built },
    { name: 'uefi cdrom (rootfs shim + signed CD grub)', firmware: 'uefi', media: 'cdrom', iso: () => shimmed },
    // The ISO written raw to a USB stick: MBR/GPT hybrid, ISO9660 reached through GPT partition 1 (offset 16).
    { name: 'bios disk (USB stick)', firmware: 'bios', media: 'disk', iso: () => built },
    { name: 'uefi disk (USB stick, rootfs shim)', firmware: 'uefi', media: 'disk', iso: () => shimmed },
  ] as const;
  for (const { name, firmware, media, iso } of cases) {
    it(`${name}: reaches the initramfs, reads config.yaml and the squashfs marker`, async () => {
      const r = await bootIso(iso().isoPath, { firmware, media, timeoutMs: 420_000, until: 'CANVOS-TEST: DONE' });
      const lines = r.log.split('\n').filter((l) => l.startsWith('CANVOS-TEST:'));
      const ctx = `${r.accel} ${r.seconds}s timedOut=${r.timedOut}\n${lines.join('\n')}\n--- log tail ---\n${r.log.slice(-3000)}`;
      expect(lines, ctx).toContain(`CANVOS-TEST: firmware=${firmware.toUpperCase()}`);
      expect(lines.join('\n'), ctx).toMatch(
        media === 'cdrom' ? /LABEL=COS_LIVE -> \/dev\/sr0$/m : /LABEL=COS_LIVE -> \/dev\/sda\d*$/m,
      );
      expect(lines, ctx).toContain('CANVOS-TEST: config.yaml: #cloud-config');
      expect(lines, ctx).toContain(`CANVOS-TEST: squashfs marker: ${MARKER}`);
      // The default menu entry (0) of CanvOS's menu booted, with the firmware's consoles on the command line.
      const consoles =
        firmware === 'uefi'
          ? 'console=ttyS0,115200n8 console=tty0 rd.cos.disable nodepair.enable'
          : 'console=tty1 console=ttyS0 rd.cos.disable vga=795 nomodeset nodepair.enable';
      expect(r.log, ctx).toMatch(
        new RegExp(
          `CANVOS-TEST: cmdline: .*root=live:CDLABEL=COS_LIVE .*${consoles.replaceAll('.', '\\.')} selinux=0 `,
        ),
      );
    }, 480_000);
  }

  it('took the ESP loaders from the rootfs when it ships shim and grub', async () => {
    const esp = join(dir.path, 'esp.img');
    const x = await run('xorriso', ['-osirrox', 'on', '-indev', shimmed.isoPath, '-extract', '/boot/uefi.img', esp]);
    expect(x.code, x.stderr).toBe(0);
    const ls = await run('mdir', ['-i', esp, '-b', '::EFI/BOOT']);
    expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual([
      '::/EFI/BOOT/bootx64.efi',
      '::/EFI/BOOT/grub.cfg',
      '::/EFI/BOOT/grubx64.efi',
    ]);
  });
});
