/**
 * CanvOS's disk flavours from the configuration, built by the unprivileged user canvostest on the bootable disk
 * fixture (test/helpers/disk-fixture.ts) with the stylus framework from a real registry:
 * - IS_CLOUD_IMAGE=true (through build-all, which builds it instead of the ISO): the cloud extras in the rootfs,
 *   `#cloud-config` user-data, COS_CONTENT (content bundle, CLUSTERCONFIG, EDGE_CUSTOM_CONFIG) after COS_RECOVERY;
 *   boots with SeaBIOS and finds COS_CONTENT (its EFI path is the plain image's, booted with OVMF in disk.test.ts);
 * - IS_MAAS=true: `<MAAS_IMAGE_NAME>.raw.gz` only, EFI-only GPT with UBUNTU_ROOTFS (from a cloud-image-shaped
 *   .tar.gz, with curtin-hooks and the first-boot unit) before COS_OEM; OVMF boots the `ubuntu-firstboot` entry
 *   from COS_OEM's grubcustom into UBUNTU_ROOTFS's kernel;
 * - `iso` refuses both with the reason; build-all checks the MAAS inputs before building anything.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeExt4Image } from '../../src/disk/ext4.js';
import { partitionLabels, prepareDiskFixture, writeDiskLayout } from '../helpers/disk-fixture.js';
import { bootIso } from '../helpers/qemu.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';
import { makeProject, pushFixtureImages } from '../provider/fixture-images.js';

const BIN = resolve(__dirname, '../../bin/canvos-lite.js');
let reg: TestRegistry;
let work: string;
let project: string;
type Part = { number: number; name: string; label: string; firstLba: number };
let cloud: { rawPath: string; flavour: string; partitions: Part[] };
let maas: { rawPath: string; 'raw.gz': string; sha256: string; flavour: string; partitions: Part[] };
let cloudStderr = '';

/** canvos-lite as canvostest in the project. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = ['env', 'SOURCE_DATE_EPOCH=1700000000', `CANVOS_CACHE_DIR=${join(work, 'cache')}`, `HOME=${work}`];
  const [cmd = '', ...rest] = asUnprivileged([...env, process.execPath, BIN, ...args]);
  return run(cmd, rest, { cwd: project, timeoutMs: 600_000 });
}
const configArgs = (): string[] => [
  '--insecure-registry',
  reg.host,
  '--set',
  `BASE_IMAGE=oci:${join(work, 'layout')}:latest`,
];

/** The MAAS flavour on the cloud project. */
const MAAS = ['--set', 'IS_CLOUD_IMAGE=false', '--set', 'IS_MAAS=true'];

const at = (raw: string, parts: Part[], label: string): string =>
  `${raw}?offset=${(parts.find((p) => p.label === label)?.firstLba ?? 0) * 512}`;
const debugfs = async (img: string, cmd: string): Promise<string> => (await run('debugfs', ['-R', cmd, img])).stdout;

/** A file of the recovery squashfs: `unsquashfs -lls` line or content. */
async function fromRecovery(raw: string, parts: Part[], path: string, how: 'cat' | 'lls'): Promise<string> {
  const sq = join(work, `rec-${createHash('sha1').update(raw).digest('hex').slice(0, 8)}.squashfs`);
  if (!(await stat(sq).catch(() => null)))
    await debugfs(at(raw, parts, 'COS_RECOVERY'), `dump /cOS/recovery.squashfs ${sq}`);
  return (await run('unsquashfs', how === 'cat' ? ['-cat', sq, path] : ['-lls', sq, path])).stdout;
}

/** What the Ubuntu cloud image's tarball holds: an ext4 root file system with a kernel and initrd in /boot. */
async function ubuntuCloudImage(fx: { kernel: string; diskInitrd: string }, dest: string): Promise<void> {
  const tree = join(work, 'ubuntu-tree');
  await mkdir(join(tree, 'boot'), { recursive: true });
  await mkdir(join(tree, 'etc', 'systemd', 'system'), { recursive: true });
  await mkdir(join(tree, 'opt'));
  await run('cp', [fx.kernel, join(tree, 'boot', 'vmlinuz')]);
  await run('cp', [fx.diskInitrd, join(tree, 'boot', 'initrd.img')]);
  const img = join(work, 'noble-server-cloudimg-amd64.img');
  await writeExt4Image(tree, img, {
    label: 'cloudimg-rootfs',
    uuid: '5d2ef1c8-2c1e-4c59-9d5e-4d1a0a0b0c0d',
    sizeBytes: 96 * 1024 * 1024,
    sourceDateEpoch: 1_700_000_000,
  });
  await run('tar', ['-czSf', dest, '-C', work, 'noble-server-cloudimg-amd64.img']);
  await rm(img);
}

beforeAll(async () => {
  reg = await startRegistry();
  work = unprivilegedTempDir('canvos-flavours-');
  const fx = await prepareDiskFixture();
  await writeDiskLayout(fx, join(work, 'layout'));
  const refs = await pushFixtureImages(reg, join(work, 'fixtures'));
  project = join(work, 'project');
  await makeProject(project, `${refs.argLines}ISO_NAME=edge-cloud\nIS_CLOUD_IMAGE=true\nCLUSTERCONFIG=spc.tgz\n`);
  await writeFile(join(project, 'spc.tgz'), 'cluster profile\n');
  await mkdir(join(project, 'content-1a2b'));
  await writeFile(join(project, 'content-1a2b', 'core-images.zst'), 'bundle\n');
  await writeFile(join(project, 'content-1a2b', 'notes.txt'), 'not a bundle\n');
  const files: Record<string, string> = {
    'cloud-images/workaround/grubmenu.cfg': 'menuentry "registration" --id registration {}\n',
    'cloud-images/workaround/custom-post-reset.yaml': 'stages: {}\n',
    'cloudconfigs/cloud-content.sh': '#!/bin/bash\necho cloud content\n',
    'cloudconfigs/cloud-extend-persistent.sh': '#!/bin/bash\necho grow\n',
    'cloudconfigs/maas-content.sh': '#!/bin/bash\necho maas content\n',
    'cloudconfigs/80_stylus_maas.yaml': '#cloud-config\nstages: {}\n',
    'cloudconfigs/curtin-hooks': '#!/usr/bin/env python3\nprint("hook")\n',
  };
  for (const [p, text] of Object.entries(files)) {
    await mkdir(join(project, p, '..'), { recursive: true });
    await writeFile(join(project, p), text);
  }
  await ubuntuCloudImage(fx, join(project, 'noble-server-cloudimg-amd64.tar.gz'));
  const id = unprivilegedIdentity();
  if (id && process.getuid?.() === 0) await run('chown', ['-R', `${id.uid}:${id.gid}`, work]);

  // build-all with IS_CLOUD_IMAGE=true: the provider images, then the cloud image instead of the ISO.
  const c = await cli(
    'build-all',
    ...configArgs(),
    '--set',
    'K8S_VERSION=1.30.4',
    '--output',
    `oci:${join(work, 'images')}`,
    '--iso-output',
    join(work, 'cloud'),
    '--json',
  );
  expect(c.code, c.stderr).toBe(0);
  const all = JSON.parse(c.stdout) as { iso?: unknown; disk: typeof cloud; provider: { images: unknown[] } };
  expect(all.iso).toBeUndefined();
  expect(all.provider.images).toHaveLength(1);
  cloud = all.disk;
  cloudStderr = c.stderr;
  const m = await cli(
    'disk',
    ...configArgs(),
    ...MAAS,
    '--set',
    'MAAS_IMAGE_NAME=edge-maas.raw.gz',
    '--output',
    join(work, 'maas'),
    '--json',
  );
  expect(m.code, m.stderr).toBe(0);
  maas = JSON.parse(m.stdout) as typeof maas;
  // The raw image MAAS gets after decompression (sparse, for the checks and the boot).
  await run('sh', ['-c', `gzip -dc '${maas['raw.gz']}' | cp --sparse=always /dev/stdin '${join(work, 'maas.raw')}'`]);
}, 900_000);
afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.sequential('IS_CLOUD_IMAGE=true: CanvOS cloud image', () => {
  it('adds COS_CONTENT after COS_RECOVERY (GPT name and label COS_CONTENT) and keeps the BIOS boot partition', async () => {
    expect(cloud.flavour).toBe('cloud');
    expect(cloud.rawPath).toBe(join(work, 'cloud', 'edge-cloud.raw'));
    const p = await run('sgdisk', ['-p', cloud.rawPath]);
    expect(p.stdout).toMatch(/2\s+133120\s+135167\s+1024\.0 KiB\s+EF02\s+bios/);
    expect(p.stdout).toMatch(/4\s+266240\s+\d+\s+.*8300\s+recovery/);
    // content bundle + spc + edge config + 20 % + 100 MiB → 101 MiB.
    expect(p.stdout).toMatch(/5\s+\d+\s+\d+\s+101\.0 MiB\s+8300\s+COS_CONTENT/);
    expect((await run('sgdisk', ['-v', cloud.rawPath])).stdout).toContain('No problems found');
    expect(await partitionLabels(cloud.rawPath, cloud.partitions)).toEqual({
      COS_GRUB: 'vfat',
      COS_OEM: 'ext4',
      COS_RECOVERY: 'ext4',
      COS_CONTENT: 'ext4',
    });
  });

  it('puts the bundles, CLUSTERCONFIG and EDGE_CUSTOM_CONFIG in add-content-partition.sh folders, owned by root', async () => {
    const img = at(cloud.rawPath, cloud.partitions, 'COS_CONTENT');
    expect(await debugfs(img, 'ls -p /bundle-content')).toMatch(/\/0\/0\/core-images\.zst\/7\//);
    expect(await debugfs(img, 'ls -p /bundle-content')).not.toContain('notes.txt');
    expect(await debugfs(img, 'cat /spc-config/spc.tgz')).toBe('cluster profile\n');
    expect(await debugfs(img, 'cat /edge-config/.edge_custom_config.yaml')).toContain('base64EncodedValue: "AAAA"');
    expect(cloudStderr).not.toContain('W_DISK_CONTENT');
  });

  it('writes #cloud-config as user-data when the project has none (the cloud provides it), without a warning', async () => {
    const oem = at(cloud.rawPath, cloud.partitions, 'COS_OEM');
    expect(await debugfs(oem, 'cat /90_custom.yaml')).toBe('#cloud-config\n');
    expect(await debugfs(oem, 'ls /')).not.toContain('.edge_custom_config.yaml');
    expect(cloudStderr).not.toContain('W_DISK_NO_USER_DATA');
  });

  it("has CanvOS's cloud files in the recovery system, the scripts executable", async () => {
    expect(await fromRecovery(cloud.rawPath, cloud.partitions, 'etc/kairos/branding/grubmenu.cfg', 'cat')).toContain(
      '--id registration',
    );
    expect(await fromRecovery(cloud.rawPath, cloud.partitions, 'system/oem/custom-post-reset.yaml', 'cat')).toBe(
      'stages: {}\n',
    );
    for (const s of ['cloud-content.sh', 'cloud-extend-persistent.sh'])
      expect(await fromRecovery(cloud.rawPath, cloud.partitions, `opt/spectrocloud/scripts/${s}`, 'lls')).toMatch(
        /-rwxr-xr-x root\/root/,
      );
  });

  // OVMF: the same EFI partition and GRUB path as the plain image (disk.test.ts); one boot keeps CI time down.
  for (const firmware of ['bios'] as const) {
    it(`boots (SeaBIOS) to the initramfs, which finds COS_RECOVERY and COS_CONTENT`, async () => {
      const r = await bootIso(cloud.rawPath, {
        firmware,
        media: 'disk',
        timeoutMs: 420_000,
        until: 'CANVOS-TEST: DONE',
      });
      const lines = r.log.split('\n').filter((l) => l.startsWith('CANVOS-TEST:'));
      const ctx = `${r.accel} ${r.seconds}s timedOut=${r.timedOut}\n${lines.join('\n')}\n--- log tail ---\n${r.log.slice(-3000)}`;
      expect(lines, ctx).toContain(`CANVOS-TEST: firmware=${firmware.toUpperCase()}`);
      expect(lines.join('\n'), ctx).toMatch(/LABEL=COS_RECOVERY -> \/dev\/sda4$/m);
      expect(lines.join('\n'), ctx).toMatch(/LABEL=COS_CONTENT -> \/dev\/sda5$/m);
      expect(lines, ctx).toContain('CANVOS-TEST: oem: #cloud-config');
    }, 480_000);
  }
});

describe.sequential('IS_MAAS=true: CanvOS MAAS image', () => {
  it('writes only <MAAS_IMAGE_NAME>.raw.gz and its .sha256', async () => {
    expect(maas.flavour).toBe('maas');
    expect(maas['raw.gz']).toBe(join(work, 'maas', 'edge-maas.raw.gz'));
    expect(await stat(maas.rawPath).catch(() => 'absent')).toBe('absent');
    const h = createHash('sha256');
    await pipeline(createReadStream(maas['raw.gz']), h);
    expect(h.digest('hex')).toBe(maas.sha256);
    const sum = await run('sha256sum', ['-c', 'edge-maas.raw.gz.sha256'], { cwd: join(work, 'maas') });
    expect(sum.stdout).toContain('edge-maas.raw.gz: OK');
  });

  it('is EFI only: efi, ubuntu_rootfs (3 GiB), oem, recovery, content, labels read back', async () => {
    const raw = join(work, 'maas.raw');
    const p = await run('sgdisk', ['-p', raw]);
    expect(p.stdout).not.toMatch(/EF02/);
    expect(p.stdout).toMatch(/1\s+2048\s+133119\s+64\.0 MiB\s+EF00\s+efi/);
    expect(p.stdout).toMatch(/2\s+133120\s+6424575\s+3\.0 GiB\s+8300\s+ubuntu_rootfs/);
    expect(p.stdout).toMatch(/3\s+6424576\s+\d+\s+64\.0 MiB\s+8300\s+oem/);
    expect(p.stdout).toMatch(/4\s+\d+\s+\d+\s+.*8300\s+recovery/);
    expect(p.stdout).toMatch(/5\s+\d+\s+\d+\s+.*8300\s+content/);
    expect(await partitionLabels(raw, maas.partitions)).toEqual({
      COS_GRUB: 'vfat',
      UBUNTU_ROOTFS: 'ext4',
      COS_OEM: 'ext4',
      COS_RECOVERY: 'ext4',
      COS_CONTENT: 'ext4',
    });
  });

  it('adds curtin-hooks (0750) and the first-boot unit to UBUNTU_ROOTFS, the firstboot entry to COS_OEM', async () => {
    const raw = join(work, 'maas.raw');
    const u = at(raw, maas.partitions, 'UBUNTU_ROOTFS');
    expect(await debugfs(u, 'stat /curtin/curtin-hooks')).toMatch(/Mode:\s+0750[\s\S]*User:\s+0\s+Group:\s+0/);
    expect(await debugfs(u, 'cat /curtin/curtin-hooks')).toBe('#!/usr/bin/env python3\nprint("hook")\n');
    expect(await debugfs(u, 'stat /opt/spectrocloud/scripts/setup-recovery.sh')).toMatch(/Mode:\s+0755/);
    expect(await debugfs(u, 'stat /etc/systemd/system/multi-user.target.wants/setup-recovery.service')).toContain(
      'Fast link dest: "/etc/systemd/system/setup-recovery.service"',
    );
    expect(await debugfs(u, 'cat /etc/systemd/system/setup-recovery.service')).toContain(
      'ExecStart=/opt/spectrocloud/scripts/setup-recovery.sh',
    );
    const oem = at(raw, maas.partitions, 'COS_OEM');
    expect(await debugfs(oem, 'cat /grubcustom')).toContain("--id 'ubuntu-firstboot'");
    expect(await debugfs(oem, 'cat /grubenv')).toContain('next_entry=ubuntu-firstboot\n');
    const content = at(raw, maas.partitions, 'COS_CONTENT');
    expect(await debugfs(content, 'cat /spc-config/spc.tgz')).toBe('cluster profile\n');
  });

  it('has maas-content.sh, 80_stylus_maas.yaml and the -maas image label in the recovery system', async () => {
    const raw = join(work, 'maas.raw');
    expect(await fromRecovery(raw, maas.partitions, 'opt/spectrocloud/scripts/maas-content.sh', 'lls')).toMatch(
      /-rwxr-xr-x root\/root/,
    );
    expect(await fromRecovery(raw, maas.partitions, 'system/oem/80_stylus_maas.yaml', 'cat')).toContain('stages');
    expect(await fromRecovery(raw, maas.partitions, 'etc/kairos-release', 'cat')).toMatch(
      /KAIROS_IMAGE_LABEL="[^"]*-generic-maas"/,
    );
  });

  it('boots (OVMF) the ubuntu-firstboot entry: the kernel of UBUNTU_ROOTFS with root=LABEL=UBUNTU_ROOTFS', async () => {
    const r = await bootIso(join(work, 'maas.raw'), {
      firmware: 'uefi',
      media: 'disk',
      timeoutMs: 420_000,
      until: 'CANVOS-TEST: DONE',
    });
    const lines = r.log.split('\n').filter((l) => l.startsWith('CANVOS-TEST:'));
    const ctx = `${r.accel} ${r.seconds}s timedOut=${r.timedOut}\n${lines.join('\n')}\n--- log tail ---\n${r.log.slice(-3000)}`;
    expect(lines.join('\n'), ctx).toMatch(/cmdline: .*root=LABEL=UBUNTU_ROOTFS rw/);
    expect(lines.join('\n'), ctx).toMatch(/LABEL=UBUNTU_ROOTFS -> \/dev\/sda2$/m);
    expect(lines, ctx).toContain('CANVOS-TEST: grubenv: next_entry=ubuntu-firstboot');
  }, 480_000);
});

describe('refusals', () => {
  it('iso refuses IS_CLOUD_IMAGE / IS_MAAS with the reason; build-all checks the MAAS inputs first; MAAS is Ubuntu only', async () => {
    const a = await cli('iso', ...configArgs());
    expect(a.code).toBe(3);
    expect(a.stderr).toMatch(
      /IS_CLOUD_IMAGE=true is not supported by canvos-lite: .*cloud raw image .*not the installer ISO/,
    );
    const b = await cli('iso', ...configArgs(), ...MAAS);
    expect(b.code).toBe(3);
    expect(b.stderr).toMatch(/canvos-lite disk/);
    const tarball = join(project, 'noble-server-cloudimg-amd64.tar.gz');
    await rename(tarball, `${tarball}.away`);
    const c = await cli(
      'build-all',
      ...configArgs(),
      ...MAAS,
      '--output',
      `oci:${join(work, 'never')}`,
      '--iso-output',
      join(work, 'never'),
    ).finally(() => rename(`${tarball}.away`, tarball));
    expect(c.code, c.stderr).toBe(3);
    expect(c.stderr).toMatch(/IS_MAAS=true needs the Ubuntu cloud image/);
    expect(await stat(join(work, 'never')).catch(() => 'absent')).toBe('absent');
    const d = await cli(
      'disk',
      ...configArgs(),
      ...MAAS,
      '--set',
      'OS_DISTRIBUTION=opensuse-leap',
      '--set',
      'OS_VERSION=15.6',
    );
    expect(d.code).toBe(3);
    expect(d.stderr).toMatch(/only OS_DISTRIBUTION=ubuntu/);
  }, 120_000);
});
