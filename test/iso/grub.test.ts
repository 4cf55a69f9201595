/**
 * GRUB artefacts: the CanvOS menu text (default entry, DEBUG, consoles), EFI loader selection (rootfs shim +
 * CD grub in AuroraBoot order, host fallback, arm64 without host grub) and the BIOS El Torito image built with the
 * real grub-mkimage.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { GRUB_CHAINLOAD_CFG, canvosGrubMenu } from '../../src/iso/grub-cfg.js';
import { efiBootFiles, grubMkimageArgs, writeBiosImages } from '../../src/iso/grub.js';
import { tmpDir } from '../helpers/tools.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tmpDir('canvos-grub-');
});
afterAll(async () => {
  await dir.cleanup();
});

describe('canvosGrubMenu', () => {
  it('defaults to entry 0, or 2 with forceInteractive, and keeps the CanvOS entries', () => {
    const m = canvosGrubMenu();
    expect(m).toMatch(/^set default=0$/m);
    expect(canvosGrubMenu({ forceInteractive: true })).toMatch(/^set default=2$/m);
    expect(m).not.toContain('{{');
    const entries = [...m.matchAll(/^menuentry "([^"]+)"/gm)].map((x) => x[1]);
    expect(entries).toEqual([
      'Palette eXtended Kubernetes Edge Installer',
      'Palette eXtended Kubernetes Edge Installer (manual)',
      'Palette Edge Interactive Installer',
    ]);
    expect(m).toContain('root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs');
    expect(m).toContain('console=ttyS0,115200n8 console=tty0');
    expect(m).toMatch(/interactive-install/);
    expect(m).toMatch(/search --no-floppy --file --set=root \/boot\/kernel/);
  });

  it('adds the DEBUG parameters only when asked', () => {
    expect(canvosGrubMenu()).not.toContain('rd.immucore.debug');
    expect(canvosGrubMenu({ debug: true })).toContain('nouveau.modeset=0 rd.immucore.debug console=tty0 rd.debug\n');
    expect(canvosGrubMenu({ debug: true })).toContain('interactive-install rd.immucore.debug console=tty0 rd.debug\n');
  });
});

describe('efiBootFiles', () => {
  it('takes shim as bootx64.efi and prefers the CD grub from the rootfs', async () => {
    const rootfs = new Map([
      ['usr/lib/shim/shimx64.efi.signed', '/h/shim'],
      ['usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed', '/h/grub'],
      ['usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed', '/h/gcd'],
    ]);
    const r = await efiBootFiles({ arch: 'amd64', ubuntu: true, fromRootfs: (p) => rootfs.get(p) });
    expect(r.source).toBe('rootfs');
    expect(r.files.map((f) => [f.path, typeof f.source === 'string' ? f.source : 'stub'])).toEqual([
      ['EFI/BOOT/bootx64.efi', '/h/shim'],
      ['EFI/BOOT/grubx64.efi', '/h/gcd'],
      ['EFI/BOOT/grub.cfg', 'stub'],
      ['boot/grub/grub.cfg', 'stub'],
      ['EFI/ubuntu/grub.cfg', 'stub'],
    ]);
    expect(String(r.files[2]?.source)).toBe(GRUB_CHAINLOAD_CFG);
    const arm = await efiBootFiles({
      arch: 'arm64',
      fromRootfs: (p) => (p.includes('aa64') || p.includes('aarch64') ? `/h/${p}` : undefined),
    });
    expect(arm.files.slice(0, 2).map((f) => f.path)).toEqual(['EFI/BOOT/bootaa64.efi', 'EFI/BOOT/grubaa64.efi']);
    expect(arm.files[1]?.source).toBe('/h/usr/lib/grub/arm64-efi-signed/gcdaa64.efi.signed');
  });

  it("falls back to the host's monolithic CD grub, and fails clearly without one", async () => {
    const r = await efiBootFiles({ arch: 'amd64', fromRootfs: () => undefined });
    expect(r.source).toBe('host');
    expect(r.files[0]).toEqual({
      path: 'EFI/BOOT/BOOTX64.EFI',
      source: '/usr/lib/grub/x86_64-efi/monolithic/gcdx64.efi',
    });
    expect(r.files.map((f) => f.path)).not.toContain('EFI/ubuntu/grub.cfg');
    const err = await efiBootFiles({
      arch: 'arm64',
      fromRootfs: () => undefined,
      hostGrubDir: join(dir.path, 'none'),
    }).catch((e: unknown) => e);
    expect(CanvosError.is(err) && err.code).toBe('ERR_ISO');
    expect((err as CanvosError).hint).toContain('grub-efi-arm64-bin');
  });
});

describe('writeBiosImages', () => {
  it('builds eltorito.img = cdboot.img + an i386-pc core image with prefix /boot/grub2, and copies boot_hybrid.img', async () => {
    expect(grubMkimageArgs('/o/core.img').slice(0, 6)).toEqual([
      '-O',
      'i386-pc',
      '-p',
      '/boot/grub2',
      '-o',
      '/o/core.img',
    ]);
    await writeBiosImages(dir.path);
    const cdboot = await readFile('/usr/lib/grub/i386-pc/cdboot.img');
    const el = await readFile(join(dir.path, 'eltorito.img'));
    expect(el.subarray(0, cdboot.length).equals(cdboot)).toBe(true);
    expect(el.length).toBeGreaterThan(cdboot.length + 20_000);
    expect(
      (await readFile(join(dir.path, 'boot_hybrid.img'))).equals(
        await readFile('/usr/lib/grub/i386-pc/boot_hybrid.img'),
      ),
    ).toBe(true);
    await expect(stat(join(dir.path, 'core.img.tmp'))).rejects.toThrow();
  });

  it('reports a missing grub-mkimage with the package to install', async () => {
    const err = await writeBiosImages(dir.path, { grubMkimage: join(dir.path, 'no-such-grub-mkimage') }).catch(
      (e: unknown) => e,
    );
    expect(CanvosError.is(err) && err.code).toBe('ERR_ISO');
    expect((err as CanvosError).hint).toContain('grub-pc-bin');
  });
});
