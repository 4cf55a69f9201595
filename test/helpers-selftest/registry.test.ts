/**
 * Self-tests of the registry, token-server, fixtures and tools helpers against the real components: skopeo pushes a
 * hand-written multi-platform OCI layout into plain, basic-auth and bearer registries and reads back the same index
 * digest; wrong passwords are refused; umoci unpacks a fixture image.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';

let tmp: { path: string; cleanup(): Promise<void> };
let layout: string;
let fx: Awaited<ReturnType<typeof makeOciLayout>>;

beforeAll(async () => {
  tmp = await tmpDir('canvos-selftest-');
  layout = join(tmp.path, 'multi');
  fx = await makeOciLayout(layout, {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64/v8'],
    layers: 2,
    layerBytes: 32 * 1024,
    files: { 'etc/canvos-test': 'hello\n' },
  });
});
afterAll(async () => {
  await tmp?.cleanup();
});

/** The parts of an OCI index (index.json or an image index) these tests read. */
interface Index {
  mediaType?: string;
  manifests: { digest: string; annotations?: Record<string, string>; platform?: unknown }[];
}

describe('makeOciLayout', () => {
  it('writes a layout whose blobs match their digests and whose diff_ids match the uncompressed layers', async () => {
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.digest).toBe(fx.indexDigest);
    expect(index.manifests[0]!.annotations!['org.opencontainers.image.ref.name']).toBe('v1');
    for (const name of await readdir(join(layout, 'blobs', 'sha256'))) {
      const data = await readFile(join(layout, 'blobs', 'sha256', name));
      expect(createHash('sha256').update(data).digest('hex')).toBe(name);
    }
    const img = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', fx.indexDigest.slice(7)), 'utf8')) as Index;
    expect(img.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(img.manifests.map((m) => m.digest)).toEqual(fx.manifestDigests);
    expect(img.manifests[1]!.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    const layer = fx.images[0]!.layerDigests[0]!;
    expect((await stat(join(layout, 'blobs', 'sha256', layer.slice(7)))).size).toBeGreaterThan(32 * 1024);
    const gunzip = await run('sh', ['-c', `gzip -dc < ${join(layout, 'blobs', 'sha256', layer.slice(7))} | sha256sum`]);
    expect(`sha256:${gunzip.stdout.split(' ')[0]}`).toBe(fx.images[0]!.diffIds[0]);
  });

  it('single-platform Docker layouts point index.json at the manifest itself', async () => {
    const dir = join(tmp.path, 'docker');
    const r = await makeOciLayout(dir, { docker: true, layers: 1, layerBytes: 1000 });
    expect(r.indexDigest).toBe(r.manifestDigests[0]);
    const m = JSON.parse(await readFile(join(dir, 'blobs', 'sha256', r.indexDigest.slice(7)), 'utf8')) as {
      mediaType: string;
      layers: { mediaType: string }[];
    };
    expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(m.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  it('umoci unpacks a fixture image rootlessly with the extra files in place', async () => {
    const bundle = join(tmp.path, 'bundle');
    const dir = join(tmp.path, 'single');
    await makeOciLayout(dir, {
      tag: 'latest',
      layers: 2,
      layerBytes: 4096,
      files: { 'etc/os-release': 'ID=canvos-test\n' },
    });
    await umoci(['unpack', '--rootless', '--image', `${dir}:latest`, bundle]);
    expect(await readFile(join(bundle, 'rootfs', 'etc', 'os-release'), 'utf8')).toBe('ID=canvos-test\n');
    expect((await stat(join(bundle, 'rootfs', 'layer1', 'payload.bin'))).size).toBe(4096);
  });
});

describe.each(['none', 'basic', 'bearer'] as const)('startRegistry auth=%s', (auth) => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth });
  });
  afterAll(async () => {
    await reg?.stop();
  });
  const creds = (flag: string, pw = reg.password): string[] => (reg.username ? [flag, `${reg.username}:${pw}`] : []);

  it('accepts skopeo copy --all of a multi-platform layout and returns the same index digest', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(auth === 'none' ? 200 : 401);
    await skopeo([
      'copy',
      '--all',
      '--insecure-policy',
      '--dest-tls-verify=false',
      ...creds('--dest-creds'),
      `oci:${layout}:v1`,
      `docker://${reg.host}/self/multi:v1`,
    ]);
    const raw = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      ...creds('--creds'),
      `docker://${reg.host}/self/multi:v1`,
    ]);
    expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(fx.indexDigest);
    const repoDir = join(reg.dataDir, 'docker', 'registry', 'v2', 'repositories', 'self', 'multi');
    expect((await stat(repoDir)).isDirectory()).toBe(true);
    if (auth === 'bearer') {
      const reqs = reg.tokenServer!.requests;
      expect(
        reqs.some(
          (r) => r.authorized && r.account === reg.username && r.scopes.includes('repository:self/multi:pull,push'),
        ),
      ).toBe(true);
      expect(JSON.stringify(reqs)).not.toContain(reg.password!);
    }
  });

  it('pushLayout seeds a Docker manifest list layout digest-identically (skopeo cannot read it from oci:)', async () => {
    const dir = join(tmp.path, `docker-multi-${auth}`);
    const d = await makeOciLayout(dir, {
      docker: true,
      platforms: ['linux/amd64', 'linux/arm/v7'],
      layers: 1,
      layerBytes: 8192,
    });
    expect(await pushLayout(dir, reg, 'self/docker')).toBe(d.indexDigest);
    const raw = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      ...creds('--creds'),
      `docker://${reg.host}/self/docker:latest`,
    ]);
    expect((JSON.parse(raw) as { mediaType: string }).mediaType).toBe(
      'application/vnd.docker.distribution.manifest.list.v2+json',
    );
    expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(d.indexDigest);
    const back = join(tmp.path, `docker-back-${auth}`);
    await skopeo([
      'copy',
      '--all',
      '--insecure-policy',
      '--src-tls-verify=false',
      ...creds('--src-creds'),
      `docker://${reg.host}/self/docker:latest`,
      `oci:${back}:x`,
    ]);
  });

  it.skipIf(auth === 'none')('refuses a wrong password', async () => {
    await expect(
      skopeo([
        'inspect',
        '--raw',
        '--tls-verify=false',
        ...creds('--creds', 'wrong'),
        `docker://${reg.host}/self/multi:v1`,
      ]),
    ).rejects.toThrow(/401|unauthorized|authentication required|invalid/i);
    await expect(
      skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/self/multi:v1`]),
    ).rejects.toThrow();
  });
});

describe('startRegistry lifecycle', () => {
  it('stop() kills the registry and removes its storage', async () => {
    const reg = await startRegistry();
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);
    await reg.stop();
    await expect(fetch(`${reg.url}/v2/`)).rejects.toThrow();
    await expect(stat(reg.dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a registry that cannot start fails with the tail of its log', async () => {
    await expect(startRegistry({ config: { storage: { filesystem: null, nosuchdriver: {} } } })).rejects.toThrow(
      /failed to start[\s\S]*nosuchdriver/,
    );
  });

  it('passes extra config through (a read-only registry refuses uploads)', async () => {
    const reg = await startRegistry({ config: { storage: { maintenance: { readonly: { enabled: true } } } } });
    try {
      const res = await fetch(`${reg.url}/v2/ro/x/blobs/uploads/`, { method: 'POST' });
      expect(res.status).toBe(405);
    } finally {
      await reg.stop();
    }
  });
});

describe('tools', () => {
  it('run reports exit codes, stdin and timeouts', async () => {
    expect(await run('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'in' })).toEqual({
      code: 3,
      stdout: 'in',
      stderr: 'err\n',
    });
    const t0 = Date.now();
    const r = await run('sleep', ['10'], { timeoutMs: 200 });
    expect(r.code).toBe(-1);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
  it('skopeo throws with stderr on failure', async () => {
    await expect(skopeo(['inspect', 'oci:/nonexistent-canvos:x'])).rejects.toThrow(/skopeo inspect .* exited/);
  });
});
