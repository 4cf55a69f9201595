/**
 * `canvos-lite uki iso --base oci:…`: the image rootfs becomes the UKI. Checked with the reference tools: xorriso
 * and mtools take the UKI out of the ISO's El Torito image, sbverify accepts it with db.pem, objcopy dumps its
 * sections, and GNU cpio lists and unpacks the gzip'd initrd (hard link kept, /proc emptied, /dev/console made).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genkey } from '../../src/uki/genkey.js';
import { rootfsUkiInputs } from '../../src/uki/rootfs-initrd.js';
import { DEFAULT_STUB } from '../../src/uki/uki.js';
import { ENKI_UKI_CMDLINE } from '../../src/uki/uki-iso-image.js';
import { prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { runCli } from '../helpers/cli.js';
import { run, tmpDir } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';
import { OS_RELEASE, UKI_MARKER, makeUkiImage } from './uki-fixture.js';

const bin = join(import.meta.dirname, '../../bin/canvos-lite.js');
const ready = existsSync(DEFAULT_STUB) && existsSync('/usr/bin/sbsign') && existsSync('/usr/bin/mcopy');
let tmp: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;

async function ok(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, { cwd });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-uki-img-');
  fx = await prepareBootFixture();
  await genkey({ dir: join(tmp.path, 'secure-boot'), skipMicrosoft: true });
  await makeUkiImage(join(tmp.path, 'image'), fx);
  await makeUkiImage(join(tmp.path, 'nokernel'), fx, false);
  await makeUkiImage(join(tmp.path, 'systemd252'), fx, true, 252);
}, 600_000);
afterAll(async () => tmp.cleanup());

describe.skipIf(!ready)('uki iso --base', () => {
  it('builds the ISO; the UKI inside is signed and carries the image rootfs as its initrd', async () => {
    const env = { PATH: process.env.PATH, HOME: tmp.path, CANVOS_CACHE_DIR: join(tmp.path, 'cache') };
    const r = await runCli(
      [
        'uki',
        'iso',
        '--base',
        `oci:${join(tmp.path, 'image')}:latest`,
        '--extend-cmdline',
        'stylus.registration',
        '--name',
        'edge',
        '--json',
      ],
      { env, cwd: tmp.path },
    );
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as {
      isoPath: string;
      ukiPath: string;
      uname: string;
      cmdline: string;
      efiSource: string;
      systemdVersion: number;
    };
    expect(res.isoPath).toBe(join(tmp.path, 'build', 'edge.iso'));
    expect(res).toMatchObject({
      ukiPath: 'EFI/kairos/norole.efi',
      uname: fx.kver,
      efiSource: 'host',
      systemdVersion: 255,
      cmdline: `${ENKI_UKI_CMDLINE} stylus.registration`,
    });
    expect((await readdir(join(tmp.path, 'build'))).filter((f) => f.startsWith('.'))).toEqual([]);
    const x = join(tmp.path, 'x');
    await ok('xorriso', [
      '-osirrox',
      'on',
      '-indev',
      res.isoPath,
      '-extract',
      '/efiboot.img',
      join(tmp.path, 'efiboot.img'),
    ]);
    expect(await ok('xorriso', ['-indev', res.isoPath, '-report_el_torito', 'plain'])).toMatch(
      /El Torito boot img :\s+1\s+UEFI\s+y\s+none/,
    );
    const listing = await ok('mdir', ['-/', '-b', '-i', join(tmp.path, 'efiboot.img'), '::']);
    for (const f of [
      '::/EFI/BOOT/BOOTX64.EFI',
      '::/EFI/kairos/norole.efi',
      '::/loader/loader.conf',
      '::/loader/entries/norole.conf',
      '::/loader/keys/auto/PK.auth',
      '::/loader/keys/auto/db.auth',
      '::/loader/keys/auto/KEK.der',
    ]) {
      expect(listing).toContain(f);
    }
    await ok('mcopy', ['-i', join(tmp.path, 'efiboot.img'), '::/EFI/kairos/norole.efi', join(tmp.path, 'norole.efi')]);
    await ok('mcopy', ['-i', join(tmp.path, 'efiboot.img'), '::/EFI/BOOT/BOOTX64.EFI', join(tmp.path, 'BOOTX64.EFI')]);
    await ok('mcopy', ['-i', join(tmp.path, 'efiboot.img'), '::/loader/loader.conf', join(tmp.path, 'loader.conf')]);
    expect(await readFile(join(tmp.path, 'loader.conf'), 'utf8')).toContain('secure-boot-enroll manual');
    for (const f of ['norole.efi', 'BOOTX64.EFI']) {
      expect(
        await ok('sbverify', ['--cert', join(tmp.path, 'secure-boot', 'public-keys', 'db.pem'), join(tmp.path, f)]),
      ).toContain('Signature verification OK');
    }
    const dump = async (s: string): Promise<Buffer> => {
      await ok('objcopy', [
        '--dump-section',
        `${s}=${join(tmp.path, `sec${s}`)}`,
        join(tmp.path, 'norole.efi'),
        join(tmp.path, 'scratch.efi'),
      ]);
      return readFile(join(tmp.path, `sec${s}`));
    };
    expect((await dump('.osrel')).toString().replace(/\0+$/, '')).toBe(OS_RELEASE);
    expect((await dump('.uname')).toString().replace(/\0+$/, '')).toBe(fx.kver);
    expect((await dump('.linux')).subarray(0, (await stat(fx.kernel)).size).equals(await readFile(fx.kernel))).toBe(
      true,
    );
    expect((await dump('.pcrpkey')).toString()).toContain('BEGIN PUBLIC KEY');
    // the initrd: gzip'd newc that GNU cpio lists and unpacks
    const initrd = await dump('.initrd');
    await writeFile(join(tmp.path, 'initrd.cpio'), gunzipSync(initrd));
    const list = (await ok('cpio', ['-t', '-v', '-F', join(tmp.path, 'initrd.cpio')])).split('\n');
    const names = list.map((l) => l.split(/\s+/).pop());
    for (const n of [
      'init',
      'bin/busybox',
      'etc/canvos-uki-marker',
      'usr/share/marker-link',
      'proc',
      'sys',
      'dev/console',
      'oem',
      'efi',
      'usr/local/cloud-config',
    ])
      expect(names).toContain(n);
    expect(names).not.toContain('proc/should-not-be-copied');
    expect(list.find((l) => l.endsWith('dev/console'))).toMatch(/^crw-------/);
    expect(list.find((l) => / etc\/os-release -> /.test(l))).toMatch(/-> \.\.\/usr\/lib\/os-release$/);
    await mkdir(x);
    await ok(
      'cpio',
      [
        '-i',
        '-d',
        '--no-absolute-filenames',
        '-F',
        join(tmp.path, 'initrd.cpio'),
        'etc/canvos-uki-marker',
        'usr/share/marker-link',
        'init',
      ],
      x,
    );
    expect(await readFile(join(x, 'usr/share/marker-link'), 'utf8')).toBe(`${UKI_MARKER}\n`);
    expect((await stat(join(x, 'usr/share/marker-link'))).ino).toBe((await stat(join(x, 'etc/canvos-uki-marker'))).ino);
  });

  it('an image without /init gets /init -> /usr/bin/immucore (enki); no kernel, or systemd < 255, is exit 3', async () => {
    const entries = Readable.from([
      { path: 'boot', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 },
      {
        path: 'boot/vmlinuz-9.9',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        size: 3,
        content: Readable.from([Buffer.from('abc')]),
      },
      {
        path: 'etc/os-release',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        size: 5,
        content: Readable.from([Buffer.from('ID=x\n')]),
      },
    ]);
    const inp = await rootfsUkiInputs(entries, tmp.path);
    expect(inp).toMatchObject({ uname: '9.9', osRelease: 'ID=x\n' });
    expect(inp.systemdVersion).toBeUndefined();
    expect(await readFile(inp.kernel, 'utf8')).toBe('abc');
    await writeFile(join(tmp.path, 'i2.cpio'), gunzipSync(await readFile(inp.initrd)));
    expect(await ok('cpio', ['-t', '-v', '-F', join(tmp.path, 'i2.cpio')])).toMatch(/ init -> \/usr\/bin\/immucore\n/);
    const env = { PATH: process.env.PATH, HOME: tmp.path, CANVOS_CACHE_DIR: join(tmp.path, 'cache') };
    const r = await runCli(
      ['uki', 'iso', '--base', `oci:${join(tmp.path, 'nokernel')}:latest`, '--output', join(tmp.path, 'out2')],
      { env, cwd: tmp.path },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no usable kernel/);
    const old = await runCli(
      ['uki', 'iso', '--base', `oci:${join(tmp.path, 'systemd252')}:latest`, '--output', join(tmp.path, 'out3')],
      { env, cwd: tmp.path },
    );
    expect(old.code).toBe(3);
    expect(old.stderr).toMatch(
      /systemd 252; Trusted Boot \(UKI\) needs systemd >= 255\nhint: use a Kairos UKI base image/,
    );
    expect(existsSync(join(tmp.path, 'out3', 'palette-edge-installer.iso'))).toBe(false);
    const arm = await runCli(['uki', 'iso', '--base', 'oci:x', '--arch', 'arm64'], { env, cwd: tmp.path });
    expect(arm.code).toBe(3);
    expect(arm.stderr).toMatch(/amd64 only/);
  });

  it.skipIf(!existsSync(bin) || !unprivilegedIdentity())(
    'runs rootless from the bundle (keys, UKI, FAT image, ISO as the unprivileged user)',
    async () => {
      const work = unprivilegedTempDir('canvos-uki-iso-rootless-');
      try {
        // the fixture cache may sit in root's home: hand the user its own copies
        for (const f of [fx.kernel, fx.initrd]) await run('cp', [f, work]);
        const id = unprivilegedIdentity();
        await run('chown', ['-R', `${id?.uid}:${id?.gid}`, work]);
        const base = [
          `HOME=${work}`,
          `PATH=${process.env.PATH}`,
          `CANVOS_CACHE_DIR=${join(work, 'cache')}`,
          process.execPath,
          bin,
          'uki',
        ];
        const g = asUnprivileged([
          'env',
          ...base,
          'genkey',
          '--dir',
          join(work, 'sb'),
          '--skip-microsoft-keys',
          '--json',
        ]);
        expect((await run(g[0] as string, g.slice(1))).code).toBe(0);
        const argv = asUnprivileged([
          'env',
          ...base,
          'iso',
          '--kernel',
          join(work, basename(fx.kernel)),
          '--initrd',
          join(work, basename(fx.initrd)),
          '--os-release',
          join(work, 'sb', 'public-keys', 'db.pem'),
          '--keys',
          join(work, 'sb'),
          '--output',
          join(work, 'out'),
          '--json',
        ]);
        const r = await run(argv[0] as string, argv.slice(1));
        expect(r.code, r.stderr).toBe(0);
        const { isoPath } = JSON.parse(r.stdout) as { isoPath: string };
        expect((await stat(isoPath)).uid).toBe(unprivilegedIdentity()?.uid);
        expect(await ok('xorriso', ['-indev', isoPath, '-report_el_torito', 'plain'])).toMatch(/UEFI/);
      } finally {
        await run('rm', ['-rf', work]);
      }
    },
  );
});
