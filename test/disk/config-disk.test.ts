/**
 * The configuration-driven disk image: `canvos-lite disk` without --base and `build-all --disk --iso-push` take the
 * installer rootfs from the CanvOS project (fixture base + stylus framework + overlay files from a real registry),
 * put the project's user-data into COS_OEM and report CLUSTERCONFIG as not carried; build-all's ISO artifact pulls
 * back identical. No boot here (test/disk/disk.test.ts boots the same layout).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, tmpDir } from '../helpers/tools.js';
import { makeProject, pushFixtureImages } from '../provider/fixture-images.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let project: string;
let base: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: tmp.path,
    PATH: process.env.PATH,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  };
  return runCli(args, { env, cwd: project });
}

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-config-disk-');
  base = `oci:${(await prepareBootFixture()).layoutDir}:latest`;
  const refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'));
  project = join(tmp.path, 'project');
  await makeProject(project, `${refs.argLines}ISO_NAME=edge-disk\nCLUSTERCONFIG=spc.tgz\n`);
  await writeFile(join(project, 'spc.tgz'), 'cluster');
  await writeFile(join(project, 'user-data'), '#cloud-config\nstylus:\n  site: {}\n');
}, 600_000);
afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

const oemFile = async (raw: string, oemLba: number, file: string): Promise<string> =>
  (await run('debugfs', ['-R', `cat ${file}`, `${raw}?offset=${oemLba * 512}`])).stdout;

describe('disk images from the CanvOS configuration', () => {
  it('canvos-lite disk: ISO_NAME names it, the project user-data lands in COS_OEM, CLUSTERCONFIG is reported', async () => {
    const r = await cli(
      'disk',
      '--insecure-registry',
      reg.host,
      '--set',
      `BASE_IMAGE=${base}`,
      '--output',
      join(tmp.path, 'd1'),
      '--format',
      'raw.gz',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      rawPath: string;
      'raw.gz': string;
      partitions: Array<{ label: string; firstLba: number }>;
    };
    expect(j.rawPath).toBe(join(tmp.path, 'd1', 'edge-disk.raw'));
    expect(r.stderr).toMatch(/CLUSTERCONFIG .*spc\.tgz is not put on the disk image.*\[W_DISK_CONTENT\]/);
    // MAAS ddgz: the raw image gzip'd.
    expect(j['raw.gz']).toBe(`${j.rawPath}.gz`);
    const gz = await run('sh', ['-c', `gzip -dc '${j.rawPath}.gz' | cmp - '${j.rawPath}' && echo same`]);
    expect(gz.stdout.trim(), gz.stderr).toBe('same');
    const oem = j.partitions.find((p) => p.label === 'COS_OEM')?.firstLba ?? 0;
    expect(await oemFile(j.rawPath, oem, '/90_custom.yaml')).toBe('#cloud-config\nstylus:\n  site: {}\n');
    // The stylus framework's files are in the recovery system (as in the ISO's squashfs).
    const rec = j.partitions.find((p) => p.label === 'COS_RECOVERY')?.firstLba ?? 0;
    const sq = join(tmp.path, 'recovery.squashfs');
    await run('debugfs', ['-R', `dump /cOS/recovery.squashfs ${sq}`, `${j.rawPath}?offset=${rec * 512}`]);
    const agent = await run('unsquashfs', ['-cat', sq, 'opt/spectrocloud/bin/stylus-agent']);
    expect(agent.stdout).toBe('not copied into provider images\n');
  }, 300_000);

  it('build-all --disk --disk-format qcow2 --iso-push REF: images, ISO, its artifact and the disk', async () => {
    const out = join(tmp.path, 'out');
    const ref = `${reg.host}/edge/installer-iso:v1`;
    const r = await cli(
      'build-all',
      '--insecure-registry',
      reg.host,
      '--set',
      'K8S_VERSION=1.30.4',
      '--set',
      `BASE_IMAGE=${base}`,
      '--output',
      `oci:${join(tmp.path, 'images')}`,
      '--iso-output',
      out,
      '--iso-push',
      ref,
      '--disk',
      '--disk-format',
      'qcow2',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      iso: { sha256: string; sha256Path: string; pushed: { digest: string } };
      disk: { rawPath: string; qcow2: string };
    };
    expect(j.disk.rawPath).toBe(join(out, 'edge-disk.raw'));
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', j.disk.rawPath, j.disk.qcow2]);
    expect(cmp.stdout).toContain('Images are identical');
    const p = await cli('pull-artifact', '--insecure', ref, join(tmp.path, 'pulled'));
    expect(p.code, p.stderr).toBe(0);
    expect(await readFile(join(tmp.path, 'pulled', 'edge-disk.iso.sha256'), 'utf8')).toBe(
      await readFile(j.iso.sha256Path, 'utf8'),
    );
    const sum = await run('sha256sum', ['-c', 'edge-disk.iso.sha256'], { cwd: join(tmp.path, 'pulled') });
    expect(sum.stdout).toContain('edge-disk.iso: OK');
  }, 400_000);

  it('refuses a bad --disk-format and --format before building anything', async () => {
    const a = await cli('disk', '--format', 'vmdk');
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('raw, raw.gz, qcow2 or vhd');
    const b = await cli('build-all', '--output', 'oci:x', '--disk-format', 'qcow2');
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--disk-format needs --disk');
  });
});
