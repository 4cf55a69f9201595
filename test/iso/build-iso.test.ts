/**
 * buildIso on the boot fixture (a Kairos-shaped OCI layout): the ISO's file list is the CanvOS layout (§3.5) as
 * xorriso itself reads it back, content bundles are split, the .sha256 matches, and every failure (bad user-data,
 * missing xorriso) leaves nothing behind in the output directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { buildIso } from '../../src/iso/build-iso.js';
import { readUserData, splitFile } from '../../src/iso/iso-overlay.js';
import type { FsEntry } from '../../src/tar/entry.js';
import { layoutRootfs, prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { run, tmpDir } from '../helpers/tools.js';

let dir: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;
beforeAll(async () => {
  dir = await tmpDir('canvos-iso-');
  fx = await prepareBootFixture();
}, 600_000);
afterAll(async () => {
  await dir.cleanup();
});

async function isoFiles(iso: string): Promise<string[]> {
  const r = await run('xorriso', ['-indev', iso, '-find', '/', '-type', 'f']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith("'"))
    .map((l) => l.slice(1, -1))
    .sort();
}

async function extract(iso: string, path: string): Promise<Buffer> {
  const dest = join(dir.path, `x-${randomBytes(4).toString('hex')}`);
  const r = await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', path, dest]);
  expect(r.code, r.stderr).toBe(0);
  return readFile(dest);
}

describe('buildIso', () => {
  it('lays out the CanvOS installer ISO (§3.5), splits content bundles and writes a sha256sum file', async () => {
    const inputs = join(dir.path, 'in');
    await mkdir(join(inputs, 'content-a'), { recursive: true });
    await writeFile(join(inputs, 'user-data'), '#cloud-config\nstylus:\n  site:\n    name: edge-1\n');
    await writeFile(join(inputs, 'edge.yaml'), 'signing:\n  publicKey: abc\n');
    await writeFile(join(inputs, 'spc.tgz'), randomBytes(100));
    const bundle = randomBytes(2500);
    await writeFile(join(inputs, 'content-a', 'core-images.zst'), bundle);
    await writeFile(join(inputs, 'content-a', 'ignored.txt'), 'not a bundle');
    const out = join(dir.path, 'build');
    const phases: string[] = [];
    const res = await buildIso(
      {
        rootfs: await layoutRootfs(fx.layoutDir),
        userData: join(inputs, 'user-data'),
        edgeCustomConfig: join(inputs, 'edge.yaml'),
        clusterConfig: join(inputs, 'spc.tgz'),
        contentDirs: [join(inputs, 'content-a')],
        outputDir: out,
        forceInteractive: true,
      },
      { contentSplitBytes: 1000, onProgress: (p) => phases.push(p.phase) },
    );
    expect(res.isoPath).toBe(join(out, 'palette-edge-installer.iso'));
    expect((await readdir(out)).sort()).toEqual(['palette-edge-installer.iso', 'palette-edge-installer.iso.sha256']);
    const iso = await readFile(res.isoPath);
    const hex = createHash('sha256').update(iso).digest('hex');
    expect(res.sha256).toBe(hex);
    expect(await readFile(res.sha256Path, 'utf8')).toBe(`${hex}  palette-edge-installer.iso\n`);
    expect(phases).toContain('xorriso');

    expect(await isoFiles(res.isoPath)).toEqual(
      [
        '/.edge_custom_config.yaml',
        '/EFI/BOOT/grub.cfg',
        '/boot/boot_hybrid.img',
        '/boot/eltorito.img',
        '/boot/grub/grub.cfg',
        '/boot/grub2/grub.cfg',
        '/boot/initrd',
        '/boot/kernel',
        '/boot/uefi.img',
        '/config.yaml',
        '/files-iso/config.yaml',
        '/opt/spectrocloud/clusterconfig/spc.tgz',
        '/opt/spectrocloud/content/Readme.txt',
        '/opt/spectrocloud/content/core-images.zst_part00',
        '/opt/spectrocloud/content/core-images.zst_part01',
        '/opt/spectrocloud/content/core-images.zst_part02',
        '/rootfs.squashfs',
      ].sort(),
    );
    // Volume id, kernel resolved through the /boot/vmlinuz symlink, parts re-assemble, menu default.
    const pvd = await run('xorriso', ['-indev', res.isoPath, '-pvd_info']);
    expect(pvd.stdout).toMatch(/Volume Id\s*:\s*COS_LIVE/);
    expect((await extract(res.isoPath, '/boot/kernel')).equals(await readFile(fx.kernel))).toBe(true);
    const parts = await Promise.all(
      ['00', '01', '02'].map((n) => extract(res.isoPath, `/opt/spectrocloud/content/core-images.zst_part${n}`)),
    );
    expect(parts.map((p) => p.length)).toEqual([1000, 1000, 500]);
    expect(Buffer.concat(parts).equals(bundle)).toBe(true);
    expect((await extract(res.isoPath, '/files-iso/config.yaml')).toString()).toMatch(/^#cloud-config\nstylus:/);
    expect((await extract(res.isoPath, '/boot/grub2/grub.cfg')).toString()).toMatch(/^set default=2$/m);
    // The squashfs holds the rootfs (unsquashfs lists it).
    const sq = join(dir.path, 'rootfs.squashfs');
    await writeFile(sq, await extract(res.isoPath, '/rootfs.squashfs'));
    const ls = await run('unsquashfs', ['-l', sq]);
    expect(ls.stdout).toContain('squashfs-root/etc/canvos-test-marker');
    expect(ls.stdout).toContain(`squashfs-root/boot/vmlinuz-${fx.kver}`);
    // The ESP inside the ISO is a clean EFI_LIVE FAT with the host CD grub (the fixture has no shim/grub).
    const esp = join(dir.path, 'uefi.img');
    await writeFile(esp, await extract(res.isoPath, '/boot/uefi.img'));
    expect((await run('fsck.fat', ['-n', esp])).code).toBe(0);
    const mdir = await run('mdir', ['-i', esp, '-/', '-b', '::']);
    expect(mdir.stdout.split('\n').filter(Boolean).sort()).toEqual([
      '::/EFI/',
      '::/EFI/BOOT/',
      '::/EFI/BOOT/BOOTX64.EFI',
      '::/EFI/BOOT/grub.cfg',
      '::/boot/',
      '::/boot/grub/',
      '::/boot/grub/grub.cfg',
    ]);
  });

  it('rejects user-data without #cloud-config or with invalid YAML (ERR_CONFIG, file and line) before writing anything', async () => {
    const bad1 = join(dir.path, 'ud-nohdr.yaml');
    await writeFile(bad1, 'install:\n  auto: true\n');
    const e1 = await readUserData(bad1).catch((e: unknown) => e);
    expect(CanvosError.is(e1) && e1.code).toBe('ERR_CONFIG');
    expect((e1 as Error).message).toContain(`${bad1}:1:`);
    const bad2 = join(dir.path, 'ud-badyaml.yaml');
    await writeFile(bad2, '#cloud-config\ninstall:\n  auto: true\n bad: [\n');
    const e2 = await readUserData(bad2).catch((e: unknown) => e);
    expect(CanvosError.is(e2) && e2.code).toBe('ERR_CONFIG');
    expect((e2 as Error).message).toMatch(new RegExp(`${bad2}:[2-5]: invalid YAML`));
    const out = join(dir.path, 'out-bad');
    const e3 = await buildIso({ rootfs: await layoutRootfs(fx.layoutDir), userData: bad1, outputDir: out }).catch(
      (e: unknown) => e,
    );
    expect(CanvosError.is(e3) && e3.code).toBe('ERR_CONFIG');
    await expect(readdir(out)).rejects.toThrow(); // never created
  });

  it('fails with ERR_XORRISO_MISSING when xorriso is not on PATH and removes the output dir it made', async () => {
    const out = join(dir.path, 'out-noxorriso');
    const env = { ...process.env, PATH: '/nonexistent-bin' };
    const err = await buildIso(
      { squashfsPath: fx.initrd, kernel: fx.kernel, initrd: fx.initrd, outputDir: out },
      { env, sourceDateEpoch: 0 },
    ).catch((e: unknown) => e);
    expect(CanvosError.is(err) && err.code).toBe('ERR_XORRISO_MISSING');
    expect(await readdir(out).catch(() => null)).toBeNull(); // the output directory the build made is removed again
  });

  it('takes a ready squashfs with explicit kernel/initrd (path and extractor)', async () => {
    const tree = join(dir.path, 'sqtree');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc', 'canvos-test-marker'), 'premade\n');
    const sq = join(dir.path, 'premade.squashfs');
    const mk = await run('mksquashfs', [tree, sq, '-b', '1024k', '-noappend', '-no-progress']);
    expect(mk.code, mk.stderr).toBe(0);
    const out = join(dir.path, 'out-premade');
    const res = await buildIso({
      squashfsPath: sq,
      kernel: fx.kernel,
      initrd: async (dest) => copyFile(fx.initrd, dest),
      outputDir: out,
      name: 'premade',
    });
    expect((await extract(res.isoPath, '/rootfs.squashfs')).equals(await readFile(sq))).toBe(true);
    expect((await extract(res.isoPath, '/boot/initrd')).equals(await readFile(fx.initrd))).toBe(true);
    expect(await isoFiles(res.isoPath)).not.toContain('/files-iso/config.yaml');
  });

  it('adds EFI/ubuntu/grub.cfg for an Ubuntu flavor, and fails clearly for arm64 without any arm64 grub', async () => {
    async function* ubuntu(): AsyncGenerator<FsEntry> {
      for await (const e of await layoutRootfs(fx.layoutDir)) {
        if (e.path !== 'etc/kairos-release') yield e;
        else {
          e.content?.resume();
          const body = Buffer.from('KAIROS_FLAVOR="ubuntu"\n');
          yield { ...e, size: body.length, content: Readable.from([body]) };
        }
      }
    }
    const res = await buildIso({ rootfs: ubuntu(), outputDir: join(dir.path, 'out-ubuntu'), name: 'ubuntu' });
    expect(await isoFiles(res.isoPath)).toContain('/EFI/ubuntu/grub.cfg');
    const out = join(dir.path, 'out-arm64');
    const err = await buildIso({ rootfs: await layoutRootfs(fx.layoutDir), outputDir: out, arch: 'arm64' }).catch(
      (e: unknown) => e,
    );
    expect(CanvosError.is(err) && err.code).toBe('ERR_ISO');
    expect((err as CanvosError).hint).toContain('grub-efi-arm64-bin');
    expect(await readdir(out).catch(() => null)).toBeNull(); // the output directory the build made is removed again
  });

  it('picks the kernel and initrd as AuroraBoot does: first /boot/{uImage,Image,zImage,vmlinuz,image}*, links followed, dangling ones skipped', async () => {
    async function* armLike(): AsyncGenerator<FsEntry> {
      for await (const e of await layoutRootfs(fx.layoutDir)) {
        if (e.path === 'boot/vmlinuz') continue;
        if (e.path === `boot/vmlinuz-${fx.kver}`) yield { ...e, path: `boot/Image-${fx.kver}` };
        else if (e.path === 'boot/initrd') yield { ...e, path: 'boot/initramfs-6.1.img' };
        else yield e;
      }
      yield {
        path: 'boot/Image',
        type: 'symlink',
        linkname: 'Image-missing',
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 0,
        size: 0,
      };
      yield {
        path: 'boot/initrd.img',
        type: 'symlink',
        linkname: 'initramfs-6.1.img',
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 0,
        size: 0,
      };
    }
    const res = await buildIso({ rootfs: armLike(), outputDir: join(dir.path, 'out-image'), name: 'image' });
    expect((await extract(res.isoPath, '/boot/kernel')).equals(await readFile(fx.kernel))).toBe(true);
    expect((await extract(res.isoPath, '/boot/initrd')).equals(await readFile(fx.initrd))).toBe(true);
    async function* noKernel(): AsyncGenerator<FsEntry> {
      for await (const e of await layoutRootfs(fx.layoutDir)) if (!e.path.startsWith('boot/vmlinuz')) yield e;
    }
    const err = await buildIso({ rootfs: noKernel(), outputDir: join(dir.path, 'out-nokernel') }).catch(
      (e: unknown) => e,
    );
    expect(CanvosError.is(err) && err.code).toBe('ERR_ISO');
    expect((err as Error).message).toContain('/boot/vmlinuz*');
  });

  it('splits at the boundary like GNU split (exact multiple, empty file)', async () => {
    const f = join(dir.path, 'exact.zst');
    await writeFile(f, randomBytes(2000));
    const parts = await splitFile(f, join(dir.path, 'split'), 1000);
    expect(parts.map((p) => p.slice(-16))).toEqual(['exact.zst_part00', 'exact.zst_part01']);
    const empty = join(dir.path, 'empty.zst');
    await writeFile(empty, '');
    expect(await splitFile(empty, join(dir.path, 'split'), 1000)).toEqual([]);
  });
});
