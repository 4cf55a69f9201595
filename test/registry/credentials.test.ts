import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { CanvosError } from '../../src/errors.js';
import { RegistryRepository, resolveCredentials } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tmpDir } from '../helpers/tools.js';
import { pushTiny, tinyImage } from './image-util.js';
import { registryDestination } from '../../src/registry/index.js';

let tmp: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  tmp = await tmpDir('canvos-creds-');
});
afterAll(async () => tmp?.cleanup());

async function writeConfig(name: string, config: unknown): Promise<string> {
  const dir = join(tmp.path, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/** A real credential helper executable: answers for one server URL, logs every query. */
async function writeHelper(
  name: string,
  server: string,
  username: string,
  secret: string,
): Promise<{ bin: string; log: string }> {
  const bin = join(tmp.path, `bin-${name}`);
  await mkdir(bin, { recursive: true });
  const log = join(bin, 'queries.log');
  const script = `#!/bin/sh
[ "$1" = get ] || { echo "unsupported $1" >&2; exit 1; }
read -r url
echo "$url" >> '${log}'
if [ "$url" = '${server}' ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$url" '${username}' '${secret}'
else
  echo "credentials not found in native keychain"; exit 1
fi
`;
  await writeFile(join(bin, `docker-credential-${name}`), script);
  await chmod(join(bin, `docker-credential-${name}`), 0o755);
  return { bin, log };
}

describe('credential lookup (files only)', () => {
  it('normalises docker.io keys and decodes base64 auth; username/password fields too', async () => {
    const dir = await writeConfig('hub', {
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
        'https://ghcr.io/v2/': { username: 'gh', password: 'ghp' },
      },
    });
    const env = { HOME: tmp.path, DOCKER_CONFIG: dir };
    expect(await resolveCredentials('docker.io', { env })).toEqual(
      expect.objectContaining({ username: 'hubuser', password: 'hubpass' }),
    );
    expect(await resolveCredentials('index.docker.io', { env })).toEqual(
      expect.objectContaining({ username: 'hubuser' }),
    );
    expect(await resolveCredentials('ghcr.io', { env })).toEqual(
      expect.objectContaining({ username: 'gh', password: 'ghp' }),
    );
    expect(await resolveCredentials('quay.io', { env })).toBeUndefined();
  });

  it('REGISTRY_AUTH_FILE wins over DOCKER_CONFIG; explicit credentials win over both', async () => {
    const docker = await writeConfig('d1', { auths: { 'r.example': { username: 'docker', password: 'x' } } });
    const podman = join(
      await writeConfig('p1', { auths: { 'r.example': { username: 'podman', password: 'y' } } }),
      'config.json',
    );
    const env = { HOME: tmp.path, DOCKER_CONFIG: docker, REGISTRY_AUTH_FILE: podman };
    expect((await resolveCredentials('r.example', { env }))?.username).toBe('podman');
    expect(
      (await resolveCredentials('r.example', { env, credentials: { username: 'explicit', password: 'z' } }))?.username,
    ).toBe('explicit');
  });

  it('a helper missing from PATH gives a clear ERR_REGISTRY_AUTH', async () => {
    const dir = await writeConfig('missing', { credHelpers: { 'r.example': 'nosuchhelper' } });
    await expect(
      resolveCredentials('r.example', { env: { HOME: tmp.path, DOCKER_CONFIG: dir, PATH: '/nonexistent' } }),
    ).rejects.toMatchObject({
      code: 'ERR_REGISTRY_AUTH',
      message: expect.stringMatching(/docker-credential-nosuchhelper.*not on PATH/),
    });
  });

  it('a helper answering <token> yields an identity token', async () => {
    const h = await writeHelper('tok', 'r.example', '<token>', 'refresh-abc');
    const dir = await writeConfig('tok', { credHelpers: { 'r.example': 'tok' } });
    const creds = await resolveCredentials('r.example', {
      env: { HOME: tmp.path, DOCKER_CONFIG: dir, PATH: `${h.bin}:${process.env.PATH}` },
    });
    expect(creds).toEqual({ identityToken: 'refresh-abc' });
  });
});

describe('credentials against real registries', () => {
  let basic: TestRegistry;
  let bearer: TestRegistry;
  beforeAll(async () => {
    [basic, bearer] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'bearer' })]);
  });
  afterAll(async () => {
    await basic?.stop();
    await bearer?.stop();
  });

  it('uses docker config.json auths for a basic-auth registry', async () => {
    const dir = await writeConfig('basic-auths', {
      auths: {
        [`http://${basic.host}`]: { auth: Buffer.from(`${basic.username}:${basic.password}`).toString('base64') },
      },
    });
    const env = { HOME: tmp.path, DOCKER_CONFIG: dir };
    const dest = registryDestination(`${basic.host}/creds/a:v1`, { insecureRegistries: [basic.host], env });
    const img = tinyImage('auths');
    expect(await pushTiny(dest, img, 'v1')).toEqual(['uploaded', 'uploaded']);
    await dest.close();
    // And without the config the same push is refused.
    const anon = new RegistryRepository(basic.host, 'creds/a', {
      insecureRegistries: [basic.host],
      env: { HOME: tmp.path },
    });
    await expect(anon.headManifest('v1')).rejects.toMatchObject({ code: 'ERR_REGISTRY_AUTH' });
    await anon.close();
  });

  it('runs a credential helper from credHelpers (server URL on stdin) for a bearer registry', async () => {
    const h = await writeHelper('test', bearer.host, bearer.username!, bearer.password!);
    const dir = await writeConfig('helper', { credHelpers: { [bearer.host]: 'test' } });
    const env = { HOME: tmp.path, DOCKER_CONFIG: dir, PATH: `${h.bin}:${process.env.PATH}` };
    const dest = registryDestination(`${bearer.host}/creds/helper:v1`, { insecureRegistries: [bearer.host], env });
    const before = bearer.tokenServer!.requests.length;
    expect(await pushTiny(dest, tinyImage('helper'), 'v1')).toEqual(['uploaded', 'uploaded']);
    await dest.close();
    expect((await readFile(h.log, 'utf8')).trim().split('\n')).toEqual([bearer.host]);
    const reqs = bearer.tokenServer!.requests.slice(before);
    expect(reqs.length).toBeGreaterThan(0);
    expect(reqs.every((r) => r.authorized && r.account === bearer.username)).toBe(true);
    expect(reqs.some((r) => r.scopes.includes('repository:creds/helper:pull,push'))).toBe(true);
  });

  it('uses credsStore for every registry', async () => {
    const h = await writeHelper('store', basic.host, basic.username!, basic.password!);
    const dir = await writeConfig('store', { auths: { [basic.host]: {} }, credsStore: 'store' });
    const env = { HOME: tmp.path, DOCKER_CONFIG: dir, PATH: `${h.bin}:${process.env.PATH}` };
    const repo = new RegistryRepository(basic.host, 'creds/a', { insecureRegistries: [basic.host], env });
    expect(await repo.headManifest('v1')).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    await repo.close();
  });

  it('exchanges an identity token with an OAuth2 refresh_token POST', async () => {
    const ts = bearer.tokenServer!;
    // Get a refresh token the way `docker login` does for identity-token registries.
    const form = new URLSearchParams({
      grant_type: 'password',
      username: bearer.username!,
      password: bearer.password!,
      service: ts.service,
      client_id: 'test',
      access_type: 'offline',
    });
    const res = await request(ts.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    const body = (await res.body.json()) as { refresh_token?: string };
    expect(res.statusCode).toBe(200);
    expect(body.refresh_token).toBeTruthy();
    const dir = await writeConfig('idtoken', { auths: { [bearer.host]: { identitytoken: body.refresh_token } } });
    const before = ts.requests.length;
    const repo = new RegistryRepository(bearer.host, 'creds/helper', {
      insecureRegistries: [bearer.host],
      env: { HOME: tmp.path, DOCKER_CONFIG: dir },
    });
    expect(await repo.headManifest('v1')).toBeTruthy();
    await repo.close();
    const reqs = ts.requests.slice(before);
    expect(reqs.some((r) => r.method === 'POST' && r.grantType === 'refresh_token' && r.authorized)).toBe(true);
  });

  it('a broken credsStore does not break anonymous access to a public registry', async () => {
    const pub = await startRegistry({ auth: 'none' });
    try {
      const dir = await writeConfig('desktop', { credsStore: 'desktop' });
      const repo = new RegistryRepository(pub.host, 'creds/public', {
        insecureRegistries: [pub.host],
        env: { HOME: tmp.path, DOCKER_CONFIG: dir, PATH: '/nonexistent' },
      });
      expect(await repo.headManifest('v1')).toBeUndefined();
      await repo.close();
    } finally {
      await pub.stop();
    }
  });

  it('a helper failure never leaks the secret it printed', async () => {
    const bin = join(tmp.path, 'bin-leaky');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'docker-credential-leaky'), '#!/bin/sh\necho "oops SECRET-123"\nexit 3\n');
    await chmod(join(bin, 'docker-credential-leaky'), 0o755);
    const dir = await writeConfig('leaky', { credHelpers: { [basic.host]: 'leaky' } });
    let err: unknown;
    try {
      await resolveCredentials(basic.host, {
        env: { HOME: tmp.path, DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH}` },
      });
    } catch (e) {
      err = e;
    }
    expect(CanvosError.is(err) && err.code).toBe('ERR_REGISTRY_AUTH');
    expect((err as Error).message).not.toContain('SECRET-123');
  });
});
