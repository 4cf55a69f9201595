import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../../src/image/types.js';
import { CanvosError } from '../../src/errors.js';
import { loadBuildConfig } from '../../src/provider/load.js';
import { buildProviderImages, type BuildProviderResult } from '../../src/provider/build.js';
import { loadK8sVersions, selectK8sVersions } from '../../src/provider/k8s-versions.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir, umoci } from '../helpers/tools.js';
import { imageLayerDigests, registryBlobPath, registryTags, whiteoutProblems } from '../helpers/whiteouts.js';
import { BASE_FILES, K3S_VERSIONS, makeProject, pushFixtureImages, type FixtureRefs } from './fixture-images.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let refs: FixtureRefs;
let project: string;
let first: BuildProviderResult;
const events: ProgressEvent[] = [];
const EPOCH = 1_700_000_000;

const registry = () => ({ insecureRegistries: [reg.host], authFiles: [] as string[] });

async function build(
  overrides: Record<string, string> = {},
  extra: Partial<Parameters<typeof buildProviderImages>[1]> = {},
  configFile?: string,
): Promise<BuildProviderResult> {
  const config = await loadBuildConfig({ argFile: join(project, '.arg'), configFile, overrides });
  const versions = selectK8sVersions(config, await loadK8sVersions(join(project, 'k8s_version.json')));
  return buildProviderImages(config, {
    versions,
    output: { push: true },
    projectDir: project,
    registry: registry(),
    cacheDir: join(tmp.path, `cache-${Math.random().toString(36).slice(2)}`),
    sourceDateEpoch: EPOCH,
    ...extra,
  });
}

async function tags(repo: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

async function unpack(ref: string, name: string): Promise<string> {
  const layout = join(tmp.path, `layout-${name}`);
  await skopeo(['copy', '--insecure-policy', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:img`]);
  const bundle = join(tmp.path, `bundle-${name}`);
  await umoci(['unpack', '--rootless', '--image', `${layout}:img`, bundle]);
  return join(bundle, 'rootfs');
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-provider-e2e-');
  refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'));
  project = join(tmp.path, 'project');
  await makeProject(project, refs.argLines);
  first = await build({}, { onProgress: (e) => events.push(e) });
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

describe('buildProviderImages against a real registry', () => {
  it('pushes one image per k3s version, tagged as CanvOS tags them, on top of the untouched amd64 base layers', async () => {
    expect(first.images.map((i) => i.tag)).toEqual(K3S_VERSIONS.map((v) => `k3s-${v}-v4.9.38-demo`));
    expect(first.systemdVersion).toBe(249);
    for (const img of first.images) {
      const out = JSON.parse(
        await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/out/ubuntu:${img.tag}`]),
      ) as { Digest: string; Layers: string[]; Architecture: string; Env: string[]; Labels: Record<string, string> };
      expect(out.Digest).toBe(img.manifestDigest);
      expect(out.Architecture).toBe('amd64');
      expect(out.Layers.slice(0, 2)).toEqual(refs.baseDigests.amd64); // base layers reused as blobs
      expect(out.Layers).toHaveLength(2 + 6);
      expect(out.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
      expect(out.Labels['canvos.test/platform']).toBe('linux/amd64');
      expect(img.appended).toEqual([
        'os-config',
        'overlay',
        'agent-provider',
        'stylus',
        'finalize',
        `k8s-${img.k8sVersion}`,
      ]);
    }
    const cfg = JSON.parse(
      await skopeo([
        'inspect',
        '--config',
        '--tls-verify=false',
        `docker://${reg.host}/out/ubuntu:${first.images[1]!.tag}`,
      ]),
    ) as { history: { created_by: string; created?: string }[]; rootfs: { diff_ids: string[] }; created: string };
    expect(cfg.history.map((h) => h.created_by)).toEqual([
      'makeOciLayout layer 0',
      'makeOciLayout layer 1',
      ...first.images[1]!.appended.map((n): unknown =>
        expect.stringMatching(new RegExp(`^canvos-lite provider ${n}: `)),
      ),
    ]);
    expect(cfg.history.at(-1)?.created).toBe('2023-11-14T22:13:20Z');
    expect(cfg.created).toBe('2023-11-14T22:13:20Z');
    expect(cfg.rootfs.diff_ids).toHaveLength(8);
    // Shared layers are the same blobs in every image; only the k8s layer differs.
    const layerSets = first.images.map((i) => i.layers.map((l) => l.digest));
    expect(new Set(layerSets.map((l) => l.slice(0, 7).join()))).toHaveProperty('size', 1);
    expect(new Set(layerSets.map((l) => l[7]))).toHaveProperty('size', 3);
  });

  it('base layers are mounted from the base repository (never uploaded), shared layers uploaded once, manifest last', () => {
    const writes = events.filter((e) => e.phase === 'write-blob' || e.phase === 'write');
    const status = (d: string) => writes.filter((e) => e.item === d).map((e) => e.status);
    for (const d of refs.baseDigests.amd64) expect(status(d)).toEqual(['mounted', 'exists', 'exists']);
    // Every new layer is uploaded once, as soon as it is built; each image's write then finds it there.
    const shared = first.images[0]!.layers[2]!.digest;
    expect(status(shared)).toEqual(['uploaded', 'exists', 'exists', 'exists']);
    for (const img of first.images) expect(status(img.layers.at(-1)!.digest)).toEqual(['uploaded', 'exists']);
    // each image's blobs come before its manifest ('write' event)
    const firstWrite = writes.findIndex((e) => e.phase === 'write');
    expect(writes.slice(0, firstWrite).every((e) => e.phase === 'write-blob')).toBe(true);
    expect(events.some((e) => e.phase === 'build-layer' && e.status === 'built' && e.item === 'k8s-1.29.8')).toBe(true);
  });

  it('every new blob is uploaded before the first manifest PUT (a proxy records the requests in order)', async () => {
    const proxy = await startFaultProxy(reg.url);
    try {
      const r = await build(
        { IMAGE_REGISTRY: `${proxy.host}/out`, IMAGE_REPO: 'order' },
        { registry: { ...registry(), insecureRegistries: [reg.host, proxy.host] } },
      );
      const reqs = proxy.requests.map((q) => `${q.method} ${decodeURIComponent(q.path)}`);
      const firstManifest = reqs.findIndex((q) => /^PUT \/v2\/out\/order\/manifests\//.test(q));
      expect(firstManifest).toBeGreaterThan(0);
      const newLayers = new Set(r.images.flatMap((i) => i.layers.slice(2).map((l) => l.digest)));
      expect(newLayers.size).toBe(5 + 3); // 5 shared + one k8s layer per version
      for (const d of newLayers) {
        const put = reqs.findIndex(
          (q) => q.startsWith('PUT /v2/out/order/blobs/uploads/') && q.includes(`digest=${d}`),
        );
        expect(put, d).toBeGreaterThanOrEqual(0);
        expect(put, d).toBeLessThan(firstManifest);
      }
      expect(r.images.map((i) => i.manifestDigest)).toEqual(first.images.map((i) => i.manifestDigest));
    } finally {
      await proxy.stop();
    }
  });

  /**
   * A k3s download server that answers only once `ready()` holds (or after 20 s, which the tests treat as failure):
   * the k8s layers are built last, so `ready` seeing an upload proves the uploads run while layers are built.
   */
  async function gatedK3s(ready: () => boolean): Promise<{ yaml: string; timedOut: () => boolean; close: () => void }> {
    let timedOut = false;
    const body = 'k3s from a gated url\n';
    const server: Server = createServer((_req, res) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        timedOut ||= Date.now() - t0 > 20_000;
        if (!ready() && !timedOut) return;
        clearInterval(poll);
        setTimeout(() => res.end(body), 200);
      }, 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/k3s`;
    const sha = createHash('sha256').update(body).digest('hex');
    const yaml = join(tmp.path, `gated-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(yaml, `k8s:\n  "1.29.8": { url: "${url}", sha256: "${sha}" }\n`);
    return { yaml, timedOut: () => timedOut, close: () => server.close() };
  }

  it('uploads the built layers while the k8s layer is still being built (its download waits for an upload)', async () => {
    const proxy = await startFaultProxy(reg.url);
    const uploaded = () =>
      proxy.requests.some((q) => q.method === 'PUT' && q.path.includes('/out/overlap/blobs/uploads/'));
    const k3s = await gatedK3s(uploaded);
    try {
      await build(
        { IMAGE_REGISTRY: `${proxy.host}/out`, IMAGE_REPO: 'overlap', K8S_VERSION: '1.29.8' },
        { registry: { ...registry(), insecureRegistries: [reg.host, proxy.host] } },
        k3s.yaml,
      );
      expect(k3s.timedOut()).toBe(false);
      expect(await tags('out/overlap')).toEqual(['k3s-1.29.8-v4.9.38-demo']);
    } finally {
      k3s.close();
      await proxy.stop();
    }
  });

  it('a failing early upload stops the build at the next layer: the registry error, no tag, no manifest', async () => {
    const proxy = await startFaultProxy(reg.url, [
      { method: 'POST', path: /\/blobs\/uploads\//, times: Infinity, action: { kind: 'status', status: 400 } },
    ]);
    const seen: ProgressEvent[] = [];
    const k3s = await gatedK3s(() => proxy.requests.some((q) => q.fault === 'status 400'));
    try {
      const err = (await build(
        { IMAGE_REGISTRY: `${proxy.host}/out`, IMAGE_REPO: 'upfail' },
        { registry: { ...registry(), insecureRegistries: [reg.host, proxy.host] }, onProgress: (e) => seen.push(e) },
        k3s.yaml,
      ).then(
        () => undefined,
        (e: unknown) => e as CanvosError,
      )) as CanvosError;
      expect(CanvosError.is(err)).toBe(true);
      expect(err.code).toBe('ERR_REGISTRY_HTTP');
      expect(proxy.requests.some((q) => q.method === 'PUT' && q.path.includes('/manifests/'))).toBe(false);
      const built = seen.filter((e) => e.phase === 'build-layer' && e.status === 'built').map((e) => e.item);
      expect(k3s.timedOut()).toBe(false);
      // The first version's k8s layer waits for the failed upload; the build stops at the next layer at the latest.
      expect(built).not.toContain('k8s-1.30.4');
    } finally {
      k3s.close();
      await proxy.stop();
    }
    expect(await tags('out/upfail')).toEqual([]);
  });

  it('the unpacked image (umoci) has the CanvOS provider files, modes and deletions', async () => {
    const root = await unpack(`${reg.host}/out/ubuntu:k3s-1.30.4-v4.9.38-demo`, 'a');
    const read = (p: string) => readFile(join(root, p), 'utf8');
    const mode = async (p: string) => (await stat(join(root, p))).mode & 0o7777;
    expect(await read('etc/kairos-release')).toBe(
      'KAIROS_ID="kairos"\nKAIROS_NAME="kairos-core-ubuntu-22.04"\nKAIROS_VERSION="v4.1.2"\nKAIROS_IMAGE_LABEL="22.04-standard-amd64-generic"\n',
    );
    expect(await read('etc/cos/bootargs.cfg')).toContain(
      'set baseCmd="console=tty1 selinux=0 panic=5 systemd.unified_cgroup_hierarchy=1 rd.driver.blacklist=nouveau modprobe.blacklist=nouveau nouveau.modeset=0"',
    );
    for (const gone of [
      'etc/ssh/ssh_host_rsa_key',
      'etc/ssh/ssh_host_rsa_key.pub',
      'etc/ssh/ssh_host_ed25519_key',
      'etc/ssh/moduli',
      'var/lib/dbus/machine-id',
      'usr/local/system/providers',
      'var/cache/luet/junk',
      'opt/spectrocloud/bin/stylus-agent',
    ]) {
      expect(await exists(join(root, gone)), gone).toBe(false);
    }
    expect(await read('etc/ssh/sshd_config')).toBe(BASE_FILES['etc/ssh/sshd_config']);
    expect(await read('etc/machine-id')).toBe('');
    expect(await mode('etc/machine-id')).toBe(0o444);
    expect(await read('system/providers/agent-provider-k3s')).toBe('#!agent-provider-k3s\n');
    expect(await read('opt/k3s/scripts/install.sh')).toContain('echo k3s');
    expect(await exists(join(root, 'etc/spectro-sysext/k8s-and-agent-provider-bundled'))).toBe(true);
    expect(await read('etc/kairos/branding/grub_menu.cfg')).toBe('menu\n');
    expect(await read('etc/kairos/branding/stylus_config.yaml')).toBe('stylus: {}\n');
    expect(await read('etc/kairos/80_stylus.yaml')).toBe('stages: {}\n');
    expect(await read('etc/elemental/config.yaml')).toBe('install: {}\n');
    expect(await read('oem/.edge_custom_config.yaml')).toContain('base64EncodedValue');
    expect(await read('usr/bin/etcdctl')).toBe('#!etcdctl\n');
    expect(await read('usr/bin/k3s')).toBe('k3s 1.30.4 amd\n');
    expect(await read('etc/systemd/system/k3s.service')).toContain('k3s 1.30.4');
    expect(await read('etc/rsyslog.d/49-stylus.conf')).toContain('stylus');
    expect(await mode('etc/logrotate.d/stylus.conf')).toBe(0o644);
    expect(await read('usr/local/share/ca-certificates/corp-proxy.crt')).toContain('CORP');
    // cp -a /certs/. copies everything; update-ca-certificates trusts only *.crt (a warning says so).
    expect(await read('usr/local/share/ca-certificates/README.md')).toBe('not a certificate\n');
    expect(await readlink(join(root, 'etc/ssl/certs/corp-proxy.pem'))).toBe(
      '/usr/local/share/ca-certificates/corp-proxy.crt',
    );
    expect(await read('etc/ssl/certs/ca-certificates.crt')).toBe(
      `${BASE_FILES['etc/ssl/certs/ca-certificates.crt']}-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n`,
    );
    expect(await read('layer1/payload.bin').then((s) => s.length)).toBeGreaterThan(0); // base content is all there
    expect(await mode('etc')).toBe(0o755);
  });

  it('appended layers are owned by root:root with fixed mtimes (GNU tar listing)', async () => {
    const img = first.images[0]!;
    const blobs = join(reg.dataDir, 'docker/registry/v2/blobs/sha256');
    const k8s = img.layers.at(-1)!.digest.slice(7);
    const listing = await run('tar', [
      '-tvzf',
      join(blobs, k8s.slice(0, 2), k8s, 'data'),
      '--full-time',
      '--numeric-owner',
    ]);
    expect(listing.code).toBe(0);
    const lines = listing.stdout.trim().split('\n');
    expect(lines.some((l) => l.endsWith(' usr/bin/k3s'))).toBe(true);
    for (const l of lines) expect(l, l).toMatch(/^\S+ 0\/0 .* 2023-11-14 22:13:20 /);
    expect(lines.some((l) => l.includes('var/cache'))).toBe(false);
  });

  it('building the same configuration twice gives identical digests', async () => {
    const again = await build();
    expect(again.images.map((i) => i.manifestDigest)).toEqual(first.images.map((i) => i.manifestDigest));
  });

  it('writes an arm64 build to an OCI layout (--output oci:DIR) on top of the arm64 base layers', async () => {
    const dir = join(tmp.path, 'oci-out');
    const r = await build({ ARCH: 'arm64', K8S_VERSION: '1.30.4' }, { output: { ociDir: dir } });
    expect(r.images).toHaveLength(1);
    const out = JSON.parse(await skopeo(['inspect', `oci:${dir}:k3s-1.30.4-v4.9.38-demo`])) as {
      Layers: string[];
      Architecture: string;
    };
    expect(out.Architecture).toBe('arm64');
    expect(out.Layers.slice(0, 2)).toEqual(refs.baseDigests.arm64);
    const bundle = join(tmp.path, 'bundle-arm');
    await umoci(['unpack', '--rootless', '--image', `${dir}:k3s-1.30.4-v4.9.38-demo`, bundle]);
    expect(await readFile(join(bundle, 'rootfs/usr/bin/k3s'), 'utf8')).toBe('k3s 1.30.4 arm\n');
    expect(await readFile(join(bundle, 'rootfs/usr/bin/etcdctl'), 'utf8')).toBe('#!etcdctl arm64\n');
    expect(await readFile(join(bundle, 'rootfs/etc/kairos-release'), 'utf8')).toContain(
      'KAIROS_IMAGE_LABEL="22.04-standard-arm64-generic"',
    );
  });

  it('writes every version into one new OCI layout: the digests of the push, blobs staged as built, no leftovers', async () => {
    const dir = join(tmp.path, 'oci-all');
    const r = await build({}, { output: { ociDir: dir } });
    expect(r.images.map((i) => i.manifestDigest)).toEqual(first.images.map((i) => i.manifestDigest));
    for (const img of r.images) {
      const out = JSON.parse(await skopeo(['inspect', `oci:${dir}:${img.tag}`])) as { Digest: string };
      expect(out.Digest).toBe(img.manifestDigest);
    }
    expect((await readdir(tmp.path)).filter((n) => n.includes('oci-all') && n !== 'oci-all')).toEqual([]);
  });

  it('a single-arch source image of the wrong architecture is refused before anything is written', async () => {
    const dir = join(tmp.path, 'oci-out-bad');
    const r = (await build(
      { ARCH: 'arm64', K8S_VERSION: '1.30.4', SPECTRO_THIRD_PARTY_IMAGE: `${reg.host}/third-party/amd64-only:1` },
      { output: { ociDir: dir } },
    ).then(
      () => undefined,
      (e: unknown) => e as CanvosError,
    )) as CanvosError;
    expect(CanvosError.is(r)).toBe(true);
    expect(r.message).toBe(`docker://${reg.host}/third-party/amd64-only:1 is a linux/amd64 image, but ARCH=arm64`);
    expect(await exists(join(dir, 'index.json'))).toBe(false);
  });

  it('a systemd ≥ 255 base gets neither k8s nor the agent provider (sysext delivery), unless bundling is forced', async () => {
    const dir = join(tmp.path, 'base255');
    const files: Record<string, string> = { ...BASE_FILES, 'usr/lib/systemd/libsystemd-shared-255.5-1.so': 'ELF' };
    delete files['usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-249.so'];
    await makeOciLayout(dir, { platforms: ['linux/amd64'], layers: 1, layerBytes: 1024, files, tag: '24.04' });
    await pushLayout(dir, reg, 'kairos/base255', { tag: '24.04' });
    const warnings: string[] = [];
    const r = await build(
      { BASE_IMAGE: `${reg.host}/kairos/base255:24.04`, IMAGE_REPO: 'sysext' },
      { onWarning: (c) => warnings.push(c) },
    );
    expect(r.systemdVersion).toBe(255);
    expect(r.plan.bundled).toBe(false);
    expect(warnings).toContain('W_SYSEXT');
    expect(r.images[0]?.appended).toEqual(['os-config', 'overlay', 'stylus', 'finalize']);
    expect(new Set(r.images.map((i) => i.manifestDigest)).size).toBe(1); // identical images under three tags
    const forced = await build({
      BASE_IMAGE: `${reg.host}/kairos/base255:24.04`,
      IMAGE_REPO: 'sysext',
      BUNDLE_K8S_AND_AGENT_PROVIDER: 'true',
      K8S_VERSION: '1.30.4',
    });
    expect(forced.images[0]?.appended).toContain('k8s-1.30.4');
  });

  it('unreachable base or wrong sha256: clear error, nothing pushed', async () => {
    const before = await tags('out/ubuntu');
    const unreachable = (await build(
      { BASE_IMAGE: '127.0.0.1:1/nothing/here:1', IMAGE_REPO: 'fail1' },
      {
        registry: {
          ...registry(),
          insecureRegistries: [reg.host, '127.0.0.1:1'],
          retry: { attempts: 2, baseDelayMs: 10 },
        },
      },
    ).then(
      () => undefined,
      (e: unknown) => e as CanvosError,
    )) as CanvosError;
    expect(CanvosError.is(unreachable)).toBe(true);
    expect(unreachable.code).toBe('ERR_NETWORK');
    expect(await tags('out/fail1')).toEqual([]);

    const server: Server = createServer((_req, res) => res.end('k3s from url\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const good = createHash('sha256').update('k3s from url\n').digest('hex');
      const yaml = join(project, 'canvos.yaml');
      await writeFile(
        yaml,
        `imageRepo: fail2\nk8s:\n  "1.30.4": { url: "http://127.0.0.1:${port}/k3s", sha256: "${'0'.repeat(64)}" }\n  "1.29.8": { url: "http://127.0.0.1:${port}/k3s", sha256: "${good}" }\n`,
      );
      const bad = (await build({}, {}, yaml).then(
        () => undefined,
        (e: unknown) => e as CanvosError,
      )) as CanvosError;
      expect(CanvosError.is(bad)).toBe(true);
      expect(bad.code).toBe('ERR_DOWNLOAD');
      expect(bad.message).toBe(
        `http://127.0.0.1:${port}/k3s: downloaded content has sha256:${good}, expected sha256:${'0'.repeat(64)}`,
      );
      expect(await tags('out/fail2')).toEqual([]); // 1.29.8 was fine, but nothing is pushed when any version fails
      // The layers built before the failure were uploaded as they were built: blobs only, never a manifest.
      const repoDir = join(reg.dataDir, 'docker/registry/v2/repositories/out/fail2');
      expect(await exists(join(repoDir, '_layers'))).toBe(true);
      expect(await exists(join(repoDir, '_manifests'))).toBe(false);
    } finally {
      server.close();
    }
    expect(await tags('out/ubuntu')).toEqual(before);
  });

  it('every whiteout in every layer of every image built above hides something a lower layer has (GNU tar listing)', async () => {
    const built = (await registryTags(reg.url)).filter((t) => t.startsWith('out/'));
    expect(built.length).toBeGreaterThanOrEqual(5);
    const problems: string[] = [];
    for (const t of built) {
      const layers = await imageLayerDigests(`docker://${reg.host}/${t}`);
      problems.push(
        ...(await whiteoutProblems(
          layers.map((d) => registryBlobPath(reg.dataDir, d)),
          `${t} `,
        )),
      );
    }
    expect(problems).toEqual([]);
  });

  it('a base that has /usr/local/system/providers gets it removed by a whiteout (CanvOS rm -rf), and only then', async () => {
    const dir = join(tmp.path, 'base-providers');
    await makeOciLayout(dir, {
      platforms: ['linux/amd64'],
      layers: 1,
      layerBytes: 1024,
      files: { ...BASE_FILES, 'usr/local/system/providers/agent-provider-old': 'old\n' },
      tag: '1',
    });
    await pushLayout(dir, reg, 'kairos/base-providers', { tag: '1' });
    const r = await build({
      BASE_IMAGE: `${reg.host}/kairos/base-providers:1`,
      IMAGE_REPO: 'providers',
      K8S_VERSION: '1.30.4',
    });
    const layers = r.images[0]!.layers.map((l) => registryBlobPath(reg.dataDir, l.digest));
    expect(await whiteoutProblems(layers)).toEqual([]);
    const root = await unpack(`${reg.host}/out/providers:k3s-1.30.4-v4.9.38-demo`, 'providers');
    expect(await exists(join(root, 'usr/local/system/providers'))).toBe(false);
    expect(await readFile(join(root, 'system/providers/agent-provider-k3s'), 'utf8')).toBe('#!agent-provider-k3s\n');
  });
});
