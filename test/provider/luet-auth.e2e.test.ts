/** spectro-luet-auth.yaml authenticates the k8s package pulls from SPECTRO_LUET_REPO (a real htpasswd registry). */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { buildProviderImages } from '../../src/provider/build.js';
import { loadBuildConfig } from '../../src/provider/load.js';
import { loadLuetAuth } from '../../src/provider/luet-auth.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tmpDir, umoci } from '../helpers/tools.js';
import { makeProject, pushFixtureImages } from './fixture-images.js';

let reg: TestRegistry;
let luet: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let project: string;

async function build(): Promise<string> {
  const config = await loadBuildConfig({ argFile: join(project, '.arg') });
  const dir = join(tmp.path, `out-${Math.random().toString(36).slice(2)}`);
  await buildProviderImages(config, {
    versions: ['1.30.4'],
    output: { ociDir: dir },
    projectDir: project,
    registry: { insecureRegistries: [reg.host, luet.host], authFiles: [] },
    cacheDir: join(tmp.path, `cache-${Math.random().toString(36).slice(2)}`),
    sourceDateEpoch: 1_700_000_000,
  });
  return dir;
}

const failure = (p: Promise<unknown>): Promise<CanvosError> =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as CanvosError,
  );

beforeAll(async () => {
  reg = await startRegistry();
  luet = await startRegistry({ auth: 'basic', username: 'luet-user', password: 'S3cret-luet-pw' });
  tmp = await tmpDir('canvos-luet-auth-');
  const refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'));
  const layout = join(tmp.path, 'luet-k3s');
  await makeOciLayout(layout, {
    platforms: ['linux/amd64'],
    layers: 1,
    layerBytes: 512,
    files: { 'usr/bin/k3s': 'k3s 1.30.4 from the private luet repo\n' },
    tag: 't',
  });
  await pushLayout(layout, luet, 'edge/luet-repo-amd', { tag: 'k3s-k8s-1.30.4-k3s1' });
  project = join(tmp.path, 'project');
  await makeProject(project, refs.argLines.replace(/^SPECTRO_LUET_REPO=.*$/m, `SPECTRO_LUET_REPO=${luet.host}/edge`));
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await luet?.stop();
  await tmp?.cleanup();
});

describe('spectro-luet-auth.yaml', () => {
  it('without it, the luet pull fails with exit 8 and a hint naming the file', async () => {
    const e = await failure(build());
    expect(e.code).toBe('ERR_REGISTRY_AUTH');
    expect(e.hint).toBe(
      `put the credentials of SPECTRO_LUET_REPO in ${join(project, 'spectro-luet-auth.yaml')} (auth: {username, password, serveraddress}), as for CanvOS, or log in to ${luet.host}`,
    );
  });

  it('wrong credentials: exit 8, the hint names the file, the password is never shown', async () => {
    await writeFile(
      join(project, 'spectro-luet-auth.yaml'),
      `auth:\n  username: luet-user\n  password: Wrong-pw-123\n  serveraddress: ${luet.host}\n`,
    );
    const e = await failure(build());
    expect(e.code).toBe('ERR_REGISTRY_AUTH');
    expect(e.hint).toBe(
      `check the credentials in ${join(project, 'spectro-luet-auth.yaml')} (used for SPECTRO_LUET_REPO=${luet.host}/edge)`,
    );
    expect(`${e.message} ${e.hint}`).not.toContain('Wrong-pw-123');
  });

  it('with the right credentials (as CanvOS documents the file) the k8s layer comes from the private luet repo', async () => {
    await writeFile(
      join(project, 'spectro-luet-auth.yaml'),
      `auth:\n  username: luet-user\n  password: S3cret-luet-pw\n  serveraddress: ${luet.host}\n`,
    );
    const dir = await build();
    const bundle = join(tmp.path, 'bundle');
    await umoci(['unpack', '--rootless', '--image', `${dir}:k3s-1.30.4-v4.9.38-demo`, bundle]);
    expect(await readFile(join(bundle, 'rootfs/usr/bin/k3s'), 'utf8')).toBe('k3s 1.30.4 from the private luet repo\n');
  });

  it('a malformed file is exit 3 naming the file, never its values; a foreign serveraddress warns', async () => {
    await writeFile(join(project, 'spectro-luet-auth.yaml'), 'auth:\n  username: only-user-S3cret\n');
    const e = await failure(loadLuetAuth(project, { spectroLuetRepo: `${luet.host}/edge` }));
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toBe(
      `${join(project, 'spectro-luet-auth.yaml')}: auth: needs username and password (or auth, identitytoken, registrytoken)`,
    );
    expect(e.message).not.toContain('S3cret');
    await writeFile(
      join(project, 'spectro-luet-auth.yaml'),
      `auth:\n  auth: ${Buffer.from('u:p').toString('base64')}\n  serveraddress: other.example.com\n`,
    );
    const warnings: string[] = [];
    const a = await loadLuetAuth(project, { spectroLuetRepo: `${luet.host}/edge` }, (code) => warnings.push(code));
    expect(a?.credentials).toMatchObject({ username: 'u', password: 'p' });
    expect(warnings).toEqual(['W_LUET_AUTH_SERVER']);
  });
});
