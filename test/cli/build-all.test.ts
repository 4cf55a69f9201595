/**
 * `canvos-lite build-all`: provider images into an OCI layout (read back with skopeo) and then the installer ISO
 * from the same configuration (bootable fixture base as oci:, stylus/provider/k8s images in a real registry);
 * a bad `.arg` fails with exit 3 before anything is written.
 */
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';
import { makeProject, pushFixtureImages } from '../provider/fixture-images.js';
import { runCli } from '../helpers/cli.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let project: string;
let base: string;

async function cli(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: tmp.path,
    PATH: process.env.PATH,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  };
  return runCli(['build-all', '--insecure-registry', reg.host, ...args], { env, cwd });
}

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-build-all-');
  const fx = await prepareBootFixture();
  base = `oci:${fx.layoutDir}:${fx.tag}`;
  const refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'));
  project = join(tmp.path, 'project');
  await makeProject(project, `${refs.argLines}ISO_NAME=palette-edge-installer\n`);
  await writeFile(join(project, 'user-data'), '#cloud-config\nstylus:\n  site: {}\n');
}, 600_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

describe('canvos-lite build-all', () => {
  it('--output oci:DIR writes the provider image, then the ISO and its .sha256; --json combines both', async () => {
    const oci = join(tmp.path, 'images');
    const isoDir = join(tmp.path, 'iso');
    const r = await cli(
      project,
      '--output',
      `oci:${oci}`,
      '--iso-output',
      isoDir,
      '--set',
      'K8S_VERSION=1.30.4',
      '--set',
      `BASE_IMAGE=${base}`,
      '--json',
    );
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      provider: { images: { tag: string; digest: string; appended: string[] }[]; packSnippet: string };
      iso: { isoPath: string; sha256Path: string; sha256: string; userData: string; stylusImage: string };
    };
    expect(j.provider.images.map((i) => i.tag)).toEqual(['k3s-1.30.4-v4.9.38-demo']);
    expect(j.provider.packSnippet).toContain('system.peVersion');
    const inspect = JSON.parse(await skopeo(['inspect', `oci:${oci}:k3s-1.30.4-v4.9.38-demo`])) as {
      Digest: string;
      Layers: string[];
    };
    expect(inspect.Digest).toBe(j.provider.images[0]?.digest);

    expect(j.iso.isoPath).toBe(join(isoDir, 'palette-edge-installer.iso'));
    expect(j.iso.userData).toBe(join(project, 'user-data'));
    expect(j.iso.stylusImage).toBe(`${reg.host}/edge/stylus-framework-linux-amd64:v4.9.38`);
    const hash = createHash('sha256')
      .update(await readFile(j.iso.isoPath))
      .digest('hex');
    expect(j.iso.sha256).toBe(hash);
    expect(await readFile(j.iso.sha256Path, 'utf8')).toBe(`${hash}  palette-edge-installer.iso\n`);
    // The stylus framework's files (also the ones provider images leave out) are in the installer rootfs.
    const sq = join(tmp.path, 'rootfs.squashfs');
    const x = await run('xorriso', ['-osirrox', 'on', '-indev', j.iso.isoPath, '-extract', '/rootfs.squashfs', sq]);
    expect(x.code, x.stderr).toBe(0);
    const agent = await run('unsquashfs', ['-cat', sq, 'opt/spectrocloud/bin/stylus-agent']);
    expect(agent.stdout).toBe('not copied into provider images\n');
    const rsyslog = await run('unsquashfs', ['-cat', sq, 'etc/rsyslog.d/49-stylus.conf']);
    expect(rsyslog.stdout).toContain('stylus.log');
  }, 300_000);

  it('a bad .arg line: exit 3 and nothing in the output directories', async () => {
    const bad = join(tmp.path, 'bad');
    await makeProject(bad, 'OS_DISTRIBUTION=ubuntu\nK8S_DISTRIBUTION=k3s\nTHIS LINE IS NOT AN ARG\n');
    const oci = join(tmp.path, 'bad-images');
    const isoDir = join(tmp.path, 'bad-iso');
    const r = await cli(bad, '--output', `oci:${oci}`, '--iso-output', isoDir);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/\.arg:3/);
    expect(r.stdout).toBe('');
    expect(await exists(oci)).toBe(false);
    expect(await exists(isoDir)).toBe(false);
  });

  it('an invalid user-data fails before the provider images are built', async () => {
    const p = join(tmp.path, 'bad-user-data');
    await makeProject(p, await readFile(join(project, '.arg'), 'utf8'));
    await writeFile(join(p, 'user-data'), 'install: {}\n');
    const oci = join(tmp.path, 'ud-images');
    const r = await cli(
      p,
      '--output',
      `oci:${oci}`,
      '--iso-output',
      join(tmp.path, 'ud-iso'),
      '--set',
      'K8S_VERSION=1.30.4',
      '--set',
      `BASE_IMAGE=${base}`,
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/user-data:1: user-data must start with a "#cloud-config" line/);
    expect(await exists(oci)).toBe(false);
  });
});
