/**
 * `canvos-lite iso` driven by a CanvOS `.arg`: the bootable fixture base (OCI layout, plus a layer of SSH host keys), a stylus framework image (OCI layout), overlay/files, certs, user-data, content-*, CLUSTERCONFIG.
 * Checks the ISO layout with xorriso, the installer rootfs with unsquashfs, and boots it once with SeaBIOS.
 */
import { cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLayer } from '../../src/layers/build.js';
import { appendLayerToLayout } from '../helpers/append-layer.js';
import { MARKER, prepareBootFixture } from '../helpers/boot-fixture.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { bootIso } from '../helpers/qemu.js';
import { run, tmpDir } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
let project: string;

async function cli(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: tmp.path,
    PATH: process.env.PATH,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  };
  return runCli(args, { env, cwd });
}

/**
 * The bootable fixture base plus a layer with /etc/ssh host keys, moduli and sshd_config (written with buildLayer;
 * umoci 0.4.7's insert writes a tar without its end-of-archive blocks, which GNU tar rejects too).
 */
async function baseWithSshKeys(dir: string): Promise<string> {
  const fx = await prepareBootFixture();
  const layout = join(dir, 'base');
  await cp(fx.layoutDir, layout, { recursive: true });
  const blobs = join(layout, 'blobs', 'sha256');
  const layer = await buildLayer(
    {
      entries: [
        { type: 'dir', path: 'etc/ssh', mode: 0o755 },
        { type: 'file', path: 'etc/ssh/ssh_host_rsa_key', source: { inline: 'PRIVATE\n' }, mode: 0o600 },
        { type: 'file', path: 'etc/ssh/ssh_host_rsa_key.pub', source: { inline: 'PUBLIC\n' } },
        { type: 'file', path: 'etc/ssh/moduli', source: { inline: 'MODULI\n' } },
        { type: 'file', path: 'etc/ssh/sshd_config', source: { inline: 'PermitRootLogin no\n' } },
      ],
    },
    { dir: blobs, sourceDateEpoch: 1_700_000_000 },
  );
  await appendLayerToLayout(layout, layer);
  return `oci:${layout}:${fx.tag}`;
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-installer-cli-');
  const base = await baseWithSshKeys(tmp.path);
  const stylus = join(tmp.path, 'stylus');
  await makeOciLayout(stylus, {
    platforms: ['linux/amd64'],
    layers: 2,
    layerBytes: 1024,
    tag: 'v4.9.38',
    files: {
      'opt/spectrocloud/bin/stylus-agent': '#!stylus-agent\n',
      'etc/kairos/branding/grub_menu.cfg': 'menu\n',
      'system/oem/80_stylus.yaml': 'stages: {}\n',
    },
  });
  project = join(tmp.path, 'project');
  await mkdir(join(project, 'overlay/files/etc/spectrocloud'), { recursive: true });
  await writeFile(join(project, 'overlay/files/etc/spectrocloud/overlay-marker.conf'), 'from-overlay\n');
  await mkdir(join(project, 'certs'));
  await writeFile(join(project, 'certs/corp.crt'), '-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n');
  await mkdir(join(project, 'content-demo'));
  await writeFile(join(project, 'content-demo/core.zst'), 'zstd-bundle-bytes');
  await writeFile(join(project, 'spc.tgz'), 'cluster-definition');
  await writeFile(join(project, '.edge-custom-config.yaml'), 'signing: {}\n');
  await writeFile(join(project, 'user-data'), '#cloud-config\ninstall:\n  auto: true\n');
  await writeFile(
    join(project, '.arg'),
    [
      'CUSTOM_TAG=demo',
      'OS_DISTRIBUTION=ubuntu',
      'OS_VERSION=22.04',
      'K8S_DISTRIBUTION=k3s',
      'ISO_NAME=canvos-test',
      'ARCH=amd64',
      `BASE_IMAGE=${base}`,
      `STYLUS_BASE=oci:${stylus}:v4.9.38`,
      'CLUSTERCONFIG=spc.tgz',
      '',
    ].join('\n'),
  );
}, 600_000);

afterAll(async () => {
  await tmp?.cleanup();
});

describe.sequential('canvos-lite iso from the CanvOS configuration', () => {
  let isoPath = '';

  it('builds build/<ISO_NAME>.iso with the CanvOS layout and the iso-image rootfs', async () => {
    const r = await cli(project, 'iso', '--json');
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      isoPath: string;
      sha256: string;
      layers: string[];
      userData: string;
      contentDirs: string[];
    };
    isoPath = j.isoPath;
    expect(isoPath).toBe(join(project, 'build', 'canvos-test.iso'));
    expect(j.layers).toEqual(['os-config', 'stylus-framework', 'overlay', 'finalize']);
    expect(j.userData).toBe(join(project, 'user-data'));
    expect(j.contentDirs).toEqual([join(project, 'content-demo')]);
    expect(await readFile(`${isoPath}.sha256`, 'utf8')).toBe(`${j.sha256}  canvos-test.iso\n`);
    expect((await readdir(join(project, 'build'))).sort()).toEqual(['canvos-test.iso', 'canvos-test.iso.sha256']);

    const find = await run('xorriso', ['-indev', isoPath, '-find', '/', '-type', 'f']);
    expect(find.code, find.stderr).toBe(0);
    const files = find.stdout.split('\n').map((l) => l.replace(/^'|'$/g, ''));
    for (const f of [
      '/rootfs.squashfs',
      '/boot/kernel',
      '/boot/initrd',
      '/boot/uefi.img',
      '/boot/grub2/grub.cfg',
      '/files-iso/config.yaml',
      '/.edge_custom_config.yaml',
      '/opt/spectrocloud/content/core.zst_part00',
      '/opt/spectrocloud/content/Readme.txt',
      '/opt/spectrocloud/clusterconfig/spc.tgz',
    ]) {
      expect(files).toContain(f);
    }

    const sq = join(tmp.path, 'rootfs.squashfs');
    const x = await run('xorriso', ['-osirrox', 'on', '-indev', isoPath, '-extract', '/rootfs.squashfs', sq]);
    expect(x.code, x.stderr).toBe(0);
    const ls = await run('unsquashfs', ['-lln', sq]);
    expect(ls.code, ls.stderr).toBe(0);
    const names = ls.stdout
      .split('\n')
      .map((l) => /squashfs-root(\/\S*)/.exec(l)?.[1])
      .filter((n): n is string => !!n);
    for (const p of [
      '/opt/spectrocloud/bin/stylus-agent', // the whole stylus framework image
      '/system/oem/80_stylus.yaml',
      '/etc/spectrocloud/overlay-marker.conf', // overlay/files
      '/usr/local/share/ca-certificates/corp.crt', // certs/
      '/etc/ssh/sshd_config',
      '/boot/vmlinuz',
      '/etc/canvos-test-marker',
    ]) {
      expect(names).toContain(p);
    }
    for (const p of ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub', '/etc/ssh/moduli'])
      expect(names).not.toContain(p);
    expect(ls.stdout).toMatch(/^-r--r--r-- 0\/0\s+0 .*squashfs-root\/etc\/machine-id$/m);
    const release = await run('unsquashfs', ['-cat', sq, 'etc/kairos-release']);
    expect(release.stdout).toContain('KAIROS_NAME="kairos-core-ubuntu-22.04"');
    expect(release.stdout).toContain('KAIROS_IMAGE_LABEL="22.04-standard-amd64-generic"');
    expect(release.stdout).toContain('KAIROS_FLAVOR="debian"'); // the base's lines are kept
    const cfg = await run('xorriso', [
      '-osirrox',
      'on',
      '-indev',
      isoPath,
      '-extract',
      '/files-iso/config.yaml',
      join(tmp.path, 'config.yaml'),
    ]);
    expect(cfg.code).toBe(0);
    expect(await readFile(join(tmp.path, 'config.yaml'), 'utf8')).toBe('#cloud-config\ninstall:\n  auto: true\n');
  }, 300_000);

  it('boots with SeaBIOS: reaches the initramfs, reads config.yaml and the squashfs marker', async () => {
    expect(isoPath).not.toBe('');
    const r = await bootIso(isoPath, { firmware: 'bios', timeoutMs: 240_000, until: 'CANVOS-TEST: DONE' });
    const lines = r.log.split('\n').filter((l) => l.startsWith('CANVOS-TEST:'));
    const ctx = `${r.accel} ${r.seconds}s timedOut=${r.timedOut}\n${lines.join('\n')}\n--- log tail ---\n${r.log.slice(-3000)}`;
    expect(lines, ctx).toContain('CANVOS-TEST: config.yaml: #cloud-config');
    expect(lines, ctx).toContain(`CANVOS-TEST: squashfs marker: ${MARKER}`);
  }, 300_000);

  it('--set FORCE_INTERACTIVE_INSTALL/DEBUG/ISO_NAME, --content and --user-data on the command line', async () => {
    await mkdir(join(tmp.path, 'extra'));
    await writeFile(join(tmp.path, 'extra', 'addon.zst'), 'more-bundle-bytes');
    await writeFile(join(tmp.path, 'ud2'), '#cloud-config\nstylus: {}\n');
    const r = await cli(
      project,
      'iso',
      '--set',
      'FORCE_INTERACTIVE_INSTALL=true',
      '--set',
      'DEBUG=true',
      '--set',
      'ISO_NAME=custom',
      '--content',
      '../extra',
      '--user-data',
      '../ud2',
      '--output',
      '../out2',
    );
    expect(r.code, r.stderr).toBe(0);
    const iso = join(tmp.path, 'out2', 'custom.iso');
    expect(r.stdout).toBe(`${iso}\n`);
    expect(r.stderr).toMatch(/^iso: layer stylus-framework \(streamed from oci:/m);
    const find = await run('xorriso', ['-indev', iso, '-find', '/opt/spectrocloud/content', '-type', 'f']);
    expect(find.stdout).toContain('/opt/spectrocloud/content/core.zst_part00');
    expect(find.stdout).toContain('/opt/spectrocloud/content/addon.zst_part00');
    const out = join(tmp.path, 'x');
    await mkdir(out);
    const x = await run('xorriso', [
      '-osirrox',
      'on',
      '-indev',
      iso,
      '-extract',
      '/boot/grub2/grub.cfg',
      join(out, 'grub.cfg'),
      '-extract',
      '/files-iso/config.yaml',
      join(out, 'config.yaml'),
    ]);
    expect(x.code, x.stderr).toBe(0);
    const grub = await readFile(join(out, 'grub.cfg'), 'utf8');
    expect(grub).toMatch(/^set default=2$/m);
    expect(grub).toContain('rd.immucore.debug console=tty0 rd.debug');
    expect(await readFile(join(out, 'config.yaml'), 'utf8')).toBe('#cloud-config\nstylus: {}\n');
  }, 120_000);

  it('flags of the other mode are refused: --name without --base, --arg-file with --base', async () => {
    const a = await cli(project, 'iso', '--name', 'x');
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--name only applies with --base/);
    const b = await cli(project, 'iso', '--base', 'oci:/nonexistent:latest', '--arg-file', '.arg');
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--arg-file does not apply with --base/);
  });

  it('a bad .arg line fails with exit 3 before anything is written', async () => {
    const bad = join(tmp.path, 'bad');
    await mkdir(bad);
    await writeFile(join(bad, '.arg'), 'OS_DISTRIBUTION=ubuntu\nARCH=sparc\n');
    const r = await cli(bad, 'iso');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\.arg:2/);
    await expect(stat(join(bad, 'build'))).rejects.toThrow();
  });

  it('no configuration and no --base: ERR_CONFIG one-liner', async () => {
    const empty = join(tmp.path, 'empty');
    await mkdir(empty);
    const r = await cli(empty, 'iso');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no configuration/);
    expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
  });
});
