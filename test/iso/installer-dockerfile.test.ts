/**
 * `canvos-lite iso` with a project Dockerfile: the installer rootfs is CanvOS's iso-image, which is FROM base-image,
 * so the Dockerfile's layers sit right on the base and their files end up in rootfs.squashfs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { runCli } from '../helpers/cli.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { run, tmpDir } from '../helpers/tools.js';

let tmp: Awaited<ReturnType<typeof tmpDir>>;
let project: string;

beforeAll(async () => {
  tmp = await tmpDir('canvos-installer-dockerfile-');
  const fx = await prepareBootFixture();
  const stylus = join(tmp.path, 'stylus');
  await makeOciLayout(stylus, {
    platforms: ['linux/amd64'],
    layers: 1,
    layerBytes: 512,
    tag: 'v4.9.38',
    files: { 'opt/spectrocloud/bin/stylus-agent': '#!stylus-agent\n' },
  });
  project = join(tmp.path, 'project');
  await mkdir(join(project, 'extras'), { recursive: true });
  await writeFile(join(project, 'extras/site.conf'), 'site=edge-01\n');
  await writeFile(
    join(project, 'Dockerfile'),
    'ARG BASE\nFROM $BASE\nARG OS_DISTRIBUTION\nCOPY --chmod=0600 extras/ /etc/site/\nLABEL os=$OS_DISTRIBUTION\n',
  );
  await writeFile(
    join(project, '.arg'),
    [
      'CUSTOM_TAG=demo',
      'OS_DISTRIBUTION=ubuntu',
      'OS_VERSION=22.04',
      'K8S_DISTRIBUTION=k3s',
      'ISO_NAME=df',
      'ARCH=amd64',
      `BASE_IMAGE=oci:${fx.layoutDir}:${fx.tag}`,
      `STYLUS_BASE=oci:${stylus}:v4.9.38`,
      '',
    ].join('\n'),
  );
}, 600_000);

afterAll(async () => {
  await tmp?.cleanup();
});

describe('canvos-lite iso with a project Dockerfile', () => {
  it('puts the Dockerfile layer on the base, below the stylus framework, into rootfs.squashfs', async () => {
    const env = {
      HOME: tmp.path,
      PATH: process.env.PATH,
      CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
      SOURCE_DATE_EPOCH: '1700000000',
    };
    const r = await runCli(['iso', '--json'], { env, cwd: project });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { isoPath: string; layers: string[] };
    expect(j.layers).toEqual(['Dockerfile:4', 'os-config', 'stylus-framework', 'finalize']);
    const sq = join(tmp.path, 'rootfs.squashfs');
    const x = await run('xorriso', ['-osirrox', 'on', '-indev', j.isoPath, '-extract', '/rootfs.squashfs', sq]);
    expect(x.code, x.stderr).toBe(0);
    const ls = await run('unsquashfs', ['-lln', sq]);
    expect(ls.stdout).toMatch(/^-rw------- 0\/0\s+13 .*squashfs-root\/etc\/site\/site\.conf$/m);
    expect(ls.stdout).toContain('squashfs-root/opt/spectrocloud/bin/stylus-agent');
    expect((await run('unsquashfs', ['-cat', sq, 'etc/site/site.conf'])).stdout).toBe('site=edge-01\n');
  }, 300_000);
});
