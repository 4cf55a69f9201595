/**
 * IS_UKI=true through the configuration, against a real registry: `build` writes UKI provider images under the
 * provider images' own tags (umoci unpacks them; sbverify accepts /trusted-boot with db.pem; luet, kairos-agent,
 * stylus files, overlay etc files, /k8s + sentinel are carried), `iso` writes the signed UKI ISO (user-data at
 * /config.yaml, /luet, /stylus-image.tar, no agent binaries in the UKI) byte-identically twice with SOURCE_DATE_EPOCH, and a project
 * without secure-boot/ is refused with exit 3 and the genkey hint before anything is written.
 */
import { existsSync } from 'node:fs';
import { cp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genkey } from '../../src/uki/genkey.js';
import { DEFAULT_STUB } from '../../src/uki/uki.js';
import { runCli } from '../helpers/cli.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';
import {
  BASE_FILES,
  makeProject,
  pushFixtureImages,
  registryTags,
  type FixtureRefs,
} from '../provider/fixture-images.js';

const BIN = join(import.meta.dirname, '../../bin/canvos-lite.js');
const ready = existsSync(DEFAULT_STUB) && existsSync('/usr/bin/sbverify') && existsSync('/usr/bin/mcopy');
const KVER = '6.8.0-uki';
const UKI_BASE: Record<string, string> = {
  ...BASE_FILES,
  'usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-255.so': 'ELF',
  [`boot/vmlinuz-${KVER}`]: 'not a real kernel: the UKI only carries it\n',
  'etc/os-release': 'NAME="Kairos"\nID=kairos\n',
  'usr/bin/kairos-agent': '#!/bin/sh\necho kairos-agent\n',
  'usr/bin/luet': '#!/bin/sh\necho luet\n',
};
delete UKI_BASE['usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-249.so'];

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let refs: FixtureRefs;
let project: string;

async function ok(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function cli(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: tmp.path,
    PATH: process.env.PATH,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  };
  return runCli([args[0] as string, '--insecure-registry', reg.host, ...args.slice(1)], { env, cwd });
}

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-uki-config-');
  refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'), { baseFiles: UKI_BASE });
  const carrier = join(tmp.path, 'fixtures', 'ubuntu');
  await makeOciLayout(carrier, { files: { 'etc/carrier-release': 'ubuntu 22.04\n' }, tag: '22.04', layers: 1 });
  await pushLayout(carrier, reg, 'third-party/ubuntu', { tag: '22.04' });
  const stylusPkg = join(tmp.path, 'fixtures', 'stylus-linux');
  await makeOciLayout(stylusPkg, { files: { 'opt/spectrocloud/bin/stylus-agent': 'stylus\n' }, tag: 'v4.9.38' });
  await pushLayout(stylusPkg, reg, 'edge/stylus-linux-amd64', { tag: 'v4.9.38' });
  project = join(tmp.path, 'project');
  await makeProject(
    project,
    `${refs.argLines}IS_UKI=true\nK8S_VERSION=1.30.4\nBUNDLE_K8S_AND_AGENT_PROVIDER=true\nBRANDING="Edge UKI"\nAUTO_ENROLL_SECUREBOOT_KEYS=true\nCMDLINE="stylus.registration rd.extra=1"\n`,
  );
  await ok('mkdir', ['-p', join(project, 'cloudconfigs')]);
  await writeFile(join(project, 'cloudconfigs/80_stylus_uki.yaml'), 'stages: {uki: []}\n');
  await writeFile(join(project, 'user-data'), '#cloud-config\nstylus:\n  site: {}\n');
  await genkey({ dir: join(project, 'secure-boot'), skipMicrosoft: true });
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

describe.skipIf(!ready)('IS_UKI=true through .arg', () => {
  it('build: the UKI provider image under the provider tag, with CanvOS carrier files; pack snippet unchanged', async () => {
    const out = join(tmp.path, 'oci-out');
    const r = await cli(project, 'build', '--output', `oci:${out}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`wrote oci:${out}:k3s-1.30.4-v4.9.38-demo sha256:`);
    expect(r.stdout).toContain('system.customTag: demo'); // CanvOS's pack snippet
    const bundle = join(tmp.path, 'bundle');
    await umoci(['unpack', '--rootless', '--image', `${out}:k3s-1.30.4-v4.9.38-demo`, bundle]);
    const root = join(bundle, 'rootfs');
    expect(await readFile(join(root, 'etc/carrier-release'), 'utf8')).toBe('ubuntu 22.04\n'); // the carrier below
    for (const f of ['EFI/kairos/norole.efi', 'EFI/BOOT/BOOTX64.EFI'])
      expect(
        await ok('sbverify', [
          '--cert',
          join(project, 'secure-boot/public-keys/db.pem'),
          join(root, 'trusted-boot', f),
        ]),
      ).toContain('Signature verification OK');
    expect(await readFile(join(root, 'trusted-boot/loader/entries/norole.conf'), 'utf8')).toContain('title Edge UKI');
    expect(await readFile(join(root, 'usr/bin/luet'), 'utf8')).toContain('echo luet');
    expect(await readFile(join(root, 'usr/bin/kairos-agent'), 'utf8')).toContain('echo kairos-agent');
    expect(await readFile(join(root, 'etc/kairos/80_stylus.yaml'), 'utf8')).toBe('stages: {}\n');
    expect(await readFile(join(root, 'oem/.edge_custom_config.yaml'), 'utf8')).toContain('AAAA');
    expect(await readFile(join(root, 'etc/rsyslog.d/49-stylus.conf'), 'utf8')).toContain('stylus'); // overlay etc
    expect(await readFile(join(root, 'k8s/usr/bin/k3s'), 'utf8')).toBe('k3s 1.30.4 amd\n');
    expect(existsSync(join(root, 'k8s/var/cache'))).toBe(false);
    expect(existsSync(join(root, 'etc/spectro-sysext/k8s-and-agent-provider-bundled'))).toBe(true);
    expect(existsSync(join(root, 'boot'))).toBe(false); // a carrier, not a bootable rootfs
    // the UKI's initrd is the provider rootfs: the base-image step copied 80_stylus_uki.yaml, bootargs untouched
    await ok('objcopy', [
      '--dump-section',
      `.initrd=${join(tmp.path, 'initrd.gz')}`,
      join(root, 'trusted-boot/EFI/kairos/norole.efi'),
      join(tmp.path, 'scratch.efi'),
    ]);
    const cpio = gunzipSync(await readFile(join(tmp.path, 'initrd.gz'))).toString('latin1');
    expect(cpio).toContain('etc/kairos/80_stylus_uki.yaml');
    expect(cpio).toContain('stages: {uki: []}');
    expect(cpio).toContain('security=selinux selinux=1'); // IS_UKI: no bootargs.cfg edit
  });

  it('iso: the signed UKI ISO with the CanvOS overlay, byte-identical when built twice', async () => {
    const a = await cli(project, 'iso', '--output', join(tmp.path, 'iso-a'), '--json');
    expect(a.code, a.stderr).toBe(0);
    const res = JSON.parse(a.stdout) as { isoPath: string; sha256: string; uki: { cmdline: string } };
    expect(res.uki.cmdline).toMatch(/ install-mode stylus\.registration rd\.extra=1$/); // enki's + CMDLINE
    expect(await readFile(`${res.isoPath}.sha256`, 'utf8')).toBe(`${res.sha256}  palette-edge-installer.iso\n`);
    expect(a.stderr).not.toContain('W_SQUASHFS_LEVEL_UNUSED');
    // The UKI ISO has no squashfs: --squashfs-level is a warning (no silent drop) and changes no byte.
    const b = await cli(project, 'iso', '--output', join(tmp.path, 'iso-b'), '--squashfs-level', '9', '--json');
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/warning: the squashfs level has no effect on the UKI ISO .*\[W_SQUASHFS_LEVEL_UNUSED\]/);
    expect((JSON.parse(b.stdout) as { sha256: string }).sha256).toBe(res.sha256);
    const files = await ok('xorriso', ['-indev', res.isoPath, '-find', '/', '-type', 'f']);
    for (const f of ['/efiboot.img', '/config.yaml', '/luet', '/.edge_custom_config.yaml', '/stylus-image.tar'])
      expect(files).toContain(`'${f}'`);
    // /stylus-image.tar: the stylus package image as an image tarball tagged STYLUS_BASE, which skopeo reads
    const tar = join(tmp.path, 'stylus-image.tar');
    await ok('xorriso', ['-osirrox', 'on', '-indev', res.isoPath, '-extract', '/stylus-image.tar', tar]);
    const inspect = JSON.parse(await skopeo(['inspect', `docker-archive:${tar}`])) as { Layers: string[] };
    expect(inspect.Layers).toHaveLength(2);
    const manifest = JSON.parse(await ok('tar', ['-xOf', tar, 'manifest.json'])) as { RepoTags: string[] }[];
    expect(manifest[0]?.RepoTags).toEqual([`${reg.host}/edge/stylus-framework-linux-amd64:v4.9.38`]);
    expect(files).not.toContain('grub.cfg');
    // every date is SOURCE_DATE_EPOCH (2023-11-14), not the build's: what makes the two ISOs equal
    expect(await ok('xorriso', ['-indev', res.isoPath, '-lsdl', '/config.yaml', '/efiboot.img'])).toMatch(
      /Nov 14\s+2023 '\/config\.yaml'[\s\S]*Nov 14\s+2023 '\/efiboot\.img'/,
    );
    const img = join(tmp.path, 'efiboot.img');
    await ok('xorriso', ['-osirrox', 'on', '-indev', res.isoPath, '-extract', '/efiboot.img', img]);
    await ok('mcopy', ['-i', img, '::/loader/loader.conf', join(tmp.path, 'loader.conf')]);
    expect(await readFile(join(tmp.path, 'loader.conf'), 'utf8')).toContain('secure-boot-enroll force');
    await ok('mcopy', ['-i', img, '::/EFI/kairos/norole.efi', join(tmp.path, 'iso-uki.efi')]);
    await ok('objcopy', [
      '--dump-section',
      `.initrd=${join(tmp.path, 'iso-initrd.gz')}`,
      join(tmp.path, 'iso-uki.efi'),
      join(tmp.path, 'scratch2.efi'),
    ]);
    const cpio = gunzipSync(await readFile(join(tmp.path, 'iso-initrd.gz'))).toString('latin1');
    expect(cpio).toContain('etc/kairos/80_stylus.yaml'); // stylus framework merged at /
    expect(cpio).not.toContain('opt/spectrocloud/bin/stylus-agent'); // CanvOS removes the agent binaries
    expect(cpio).not.toContain('usr/bin/luet\0');
  });

  it('build-all: UKI provider image, then the UKI ISO; canvos-lite disk refuses IS_UKI', async () => {
    const r = await cli(
      project,
      'build-all',
      '--output',
      `oci:${join(tmp.path, 'all-oci')}`,
      '--iso-output',
      join(tmp.path, 'all-iso'),
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      provider: { images: { destination: string; appended: string[] }[] };
      iso: { isoPath: string; uki: { ukiPath: string } };
    };
    expect(j.provider.images.map((i) => [i.destination, i.appended])).toEqual([
      [`oci:${join(tmp.path, 'all-oci')}:k3s-1.30.4-v4.9.38-demo`, ['trusted-boot']],
    ]);
    expect(j.iso.uki.ukiPath).toBe('EFI/kairos/norole.efi');
    expect(existsSync(j.iso.isoPath)).toBe(true);
    const disk = await cli(project, 'disk', '--output', join(tmp.path, 'all-disk'));
    expect(disk.code).toBe(3);
    expect(disk.stderr).toContain('IS_UKI=true: canvos-lite disk builds no Trusted Boot (UKI) disk image');
  });

  it.skipIf(!unprivilegedIdentity())(
    'rootless: build and iso with IS_UKI=true as the unprivileged user',
    async () => {
      const work = unprivilegedTempDir('canvos-uki-config-rootless-');
      try {
        await cp(project, join(work, 'project'), { recursive: true });
        const id = unprivilegedIdentity();
        await ok('chown', ['-R', `${id?.uid}:${id?.gid}`, work]);
        const cli = (...args: string[]): string[] =>
          asUnprivileged([
            'env',
            `HOME=${work}`,
            `PATH=${process.env.PATH}`,
            `CANVOS_CACHE_DIR=${join(work, 'cache')}`,
            'SOURCE_DATE_EPOCH=1700000000',
            process.execPath,
            BIN,
            args[0] as string,
            '--insecure-registry',
            reg.host,
            ...args.slice(1),
          ]);
        const b = cli('build', '--output', `oci:${join(work, 'oci')}`, '--json');
        const rb = await run(b[0] as string, b.slice(1), { cwd: join(work, 'project') });
        expect(rb.code, rb.stderr).toBe(0);
        const i = cli('iso', '--output', join(work, 'iso'), '--json');
        const ri = await run(i[0] as string, i.slice(1), { cwd: join(work, 'project') });
        expect(ri.code, ri.stderr).toBe(0);
        const { isoPath } = JSON.parse(ri.stdout) as { isoPath: string };
        expect((await stat(isoPath)).uid).toBe(id?.uid);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
    300_000,
  );

  it('without secure-boot/: exit 3 naming the directory, hint uki genkey, nothing pushed', async () => {
    const bare = join(tmp.path, 'bare');
    await cp(project, bare, { recursive: true });
    await rm(join(bare, 'secure-boot'), { recursive: true });
    const r = await cli(bare, 'build', '--push');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`IS_UKI=true needs the Secure Boot keys in ${join(bare, 'secure-boot')}`);
    expect(r.stderr).toMatch(/hint: create them with canvos-lite uki genkey/);
    expect(await registryTags(reg, 'out/ubuntu')).toEqual([]);
    const iso = await cli(bare, 'iso', '--output', join(tmp.path, 'iso-bare'));
    expect(iso.code).toBe(3);
    expect(existsSync(join(tmp.path, 'iso-bare', 'palette-edge-installer.iso'))).toBe(false);
  });
});
