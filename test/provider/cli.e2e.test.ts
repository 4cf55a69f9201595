import { execFileSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, tmpDir } from '../helpers/tools.js';
import { K3S_VERSIONS, makeProject, pushFixtureImages, type FixtureRefs } from './fixture-images.js';
import { runCli } from '../helpers/cli.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let refs: FixtureRefs;
let project: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    HOME: tmp.path,
    PATH: process.env.PATH,
    CANVOS_CACHE_DIR: join(tmp.path, 'cache'),
    SOURCE_DATE_EPOCH: '1700000000',
  };
  return runCli(['build', '--insecure-registry', reg.host, ...args], { env, cwd: project });
}

/** The project's certs/README.md is copied as CanvOS does, but update-ca-certificates ignores it: the only warning. */
let CERT_WARNING = '';

async function tags(repo: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

beforeAll(async () => {
  reg = await startRegistry();
  tmp = await tmpDir('canvos-build-cli-');
  refs = await pushFixtureImages(reg, join(tmp.path, 'fixtures'));
  project = join(tmp.path, 'project');
  await makeProject(project, refs.argLines);
  CERT_WARNING = `warning: ${join(project, 'certs/README.md')} is copied to /usr/local/share/ca-certificates but not trusted: update-ca-certificates only reads *.crt files (rename it to .crt) [W_CERT_IGNORED]\n`;
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

describe('canvos-lite build', () => {
  it('--push builds every k8s_version.json version, prints progress to stderr and the pack snippet to stdout', async () => {
    const r = await cli('--push');
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    for (const v of K3S_VERSIONS)
      expect(r.stderr).toContain(`pushed ${reg.host}/out/ubuntu:k3s-${v}-v4.9.38-demo sha256:`);
    const golden = (
      await readFile(new URL('../../fixtures/config/pack-snippet.golden.txt', import.meta.url), 'utf8')
    ).replace('system.registry: ttl.sh', `system.registry: ${reg.host}/out`);
    expect(r.stdout).toBe(golden);
    expect((await tags('out/ubuntu')).sort()).toEqual(K3S_VERSIONS.map((v) => `k3s-${v}-v4.9.38-demo`).sort());
  });

  it('--set and --json: one version, machine-readable result', async () => {
    const r = await cli('--push', '--json', '--set', 'K8S_VERSION=1.31.2', '--set', 'CUSTOM_TAG=');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(CERT_WARNING); // --json: no progress, only warnings
    const j = JSON.parse(r.stdout) as {
      images: { tag: string; digest: string; appended: string[] }[];
      bundled: boolean;
      systemdVersion: number;
      packSnippet: string;
    };
    expect(j.images.map((i) => i.tag)).toEqual(['k3s-1.31.2-v4.9.38']); // no trailing dash without CUSTOM_TAG
    expect(j.bundled).toBe(true);
    expect(j.systemdVersion).toBe(249);
    expect(j.packSnippet).toContain('{{ .spectro.pack.edge-native-byoi.options.system.peVersion }}"\n');
    const inspect = JSON.parse(
      await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/out/ubuntu:k3s-1.31.2-v4.9.38`]),
    ) as { Digest: string };
    expect(inspect.Digest).toBe(j.images[0]?.digest);
  });

  it('--dry-run prints the plan with sizes and writes nothing', async () => {
    const r = await cli('--dry-run', '--set', 'IMAGE_REPO=dry');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^base image: ${refs.base.replace(/[.]/g, '\\.')}  2 layers, \\d`, 'm'));
    expect(r.stdout).toContain('shared layers (built once):\n  os-config');
    expect(r.stdout).toContain(
      `images (3):\n  ${reg.host}/out/dry:k3s-1.29.8-v4.9.38-demo  + k3s/k3s@1.29.8-k3s1`.replace(
        'k3s/k3s@',
        'k8s/k3s@',
      ),
    );
    expect(r.stdout).toMatch(/edge\/luet-repo-amd:k3s-k8s-1\.31\.2-k3s1 {2}1 layers, /);
    expect(await tags('out/dry')).toEqual([]);
    const missing = await cli('--dry-run', '--set', 'PE_VERSION=v9.9.9');
    expect(missing.code).toBe(6);
    expect(missing.stdout).toMatch(/stylus-framework-linux-amd64:v9\.9\.9 {2}UNAVAILABLE: /);
    expect(missing.stderr).toContain('1 image(s) unavailable; the build would fail');
  });

  it('a bad .arg line fails with file:line, the allowed values and a hint, exit 3, nothing pushed', async () => {
    const bad = join(tmp.path, 'bad.arg');
    await writeFile(
      bad,
      refs.argLines.replace('IMAGE_REPO=$OS_DISTRIBUTION', 'IMAGE_REPO=badrepo').replace('ARCH=amd64', 'ARCH=x86'),
    );
    const r = await cli('--push', '--arg-file', bad, '--project-dir', project);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `canvos-lite: ${bad}:7: ARCH="x86" is invalid: must be one of: amd64, arm64\nhint: write ARCH=amd64 (or another allowed value) on line 7 of ${bad}\n`,
    );
    expect(await tags('out/badrepo')).toEqual([]);
  });

  it('--layer-compression zstd: appended layers are OCI zstd (zstd -t, tar lists them), base layers reused as they are', async () => {
    const out = join(tmp.path, 'zstd-out');
    const r = await cli(
      '--output',
      `oci:${out}`,
      '--json',
      '--layer-compression',
      'zstd',
      '--set',
      'K8S_VERSION=1.30.4',
    );
    expect(r.stderr).toBe(CERT_WARNING); // --json: no progress, only warnings
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { images: { tag: string; digest: string; appended: string[] }[] };
    const raw = JSON.parse(await skopeo(['inspect', '--raw', `oci:${out}:${j.images[0]!.tag}`])) as {
      layers: { mediaType: string; digest: string }[];
    };
    const types = raw.layers.map((l) => l.mediaType);
    expect(types.slice(0, 2)).toEqual([
      'application/vnd.oci.image.layer.v1.tar+gzip',
      'application/vnd.oci.image.layer.v1.tar+gzip',
    ]);
    expect(new Set(types.slice(2))).toEqual(new Set(['application/vnd.oci.image.layer.v1.tar+zstd']));
    expect(types.length - 2).toBe(j.images[0]!.appended.length);
    const listing: string[] = [];
    for (const l of raw.layers.slice(2)) {
      const blob = join(out, 'blobs', 'sha256', l.digest.slice(7));
      execFileSync('zstd', ['-q', '-t', blob]);
      listing.push(...execFileSync('tar', ['--zstd', '-tf', blob], { encoding: 'utf8' }).split('\n'));
    }
    expect(listing).toContain('usr/bin/k3s');
    expect(listing).toContain('etc/kairos-release');
  });

  it('--compression-level: 1 and 9 give other layer digests (same diff_ids), the same level the same digests; bad levels exit 2', async () => {
    const build = async (level: string) => {
      const r = await cli(
        '--output',
        `oci:${join(tmp.path, `level-${level}`)}`,
        '--json',
        '--set',
        'K8S_VERSION=1.30.4',
        '--compression-level',
        level,
      );
      expect(r.stderr).toBe(CERT_WARNING);
      expect(r.code).toBe(0);
      const tag = (JSON.parse(r.stdout) as { images: { tag: string }[] }).images[0]!.tag;
      const ref = `oci:${join(tmp.path, `level-${level}`)}:${tag}`;
      const m = JSON.parse(await skopeo(['inspect', '--raw', ref])) as { layers: { digest: string; size: number }[] };
      const c = JSON.parse(await skopeo(['inspect', '--config', ref])) as { rootfs: { diff_ids: string[] } };
      return { layers: m.layers, diffIds: c.rootfs.diff_ids };
    };
    const fast = await build('1');
    const small = await build('9');
    expect(fast.diffIds).toEqual(small.diffIds);
    expect(fast.layers.slice(0, 2)).toEqual(small.layers.slice(0, 2)); // the base's own layers are reused as they are
    for (const [i, l] of fast.layers.entries()) if (i >= 2) expect(l.digest).not.toBe(small.layers[i]!.digest);
    const total = (x: typeof fast) => x.layers.slice(2).reduce((n, l) => n + l.size, 0);
    expect(total(fast)).toBeGreaterThan(total(small));
    await rm(join(tmp.path, 'level-1'), { recursive: true });
    expect(await build('1')).toEqual(fast); // same inputs, level and SOURCE_DATE_EPOCH: same digests
    for (const bad of ['0', '12', 'fast', '2.5']) {
      const r = await cli('--push', '--compression-level', bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain(`--compression-level ${JSON.stringify(bad)} is not a gzip level from 1 to 9`);
      expect(r.stderr).toContain('use 1 (fastest) to 9 (smallest)');
    }
    const z = await cli('--push', '--layer-compression', 'zstd', '--compression-level', '20');
    expect(z.code).toBe(2);
    expect(z.stderr).toContain('is not a zstd level from 1 to 19');
  });

  it('usage errors exit 2', async () => {
    expect((await cli('--push', '--layer-compression', 'xz')).code).toBe(2);
    expect((await cli()).code).toBe(2);
    expect((await cli('--push', '--dry-run')).code).toBe(2);
    const r = await cli('--output', 'dir:/x');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--output must be oci:DIR');
  });
});

describe('canvos-lite build against an authenticating registry with a Docker-typed base', () => {
  let auth: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    auth = await startRegistry({ auth: 'bearer' });
    dir = join(tmp.path, 'auth');
    const r = await pushFixtureImages(auth, join(dir, 'fixtures'));
    // Replace the base with a Docker v2s2 manifest list (Docker media types throughout).
    await makeOciLayout(join(dir, 'docker-base'), {
      docker: true,
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerBytes: 1024,
      files: { 'etc/kairos-release': 'KAIROS_NAME="x"\n' },
      tag: 'docker',
    });
    await pushLayout(join(dir, 'docker-base'), auth, 'kairos/base', { tag: 'docker' });
    await makeProject(join(dir, 'project'), r.argLines.replace(':22.04\n', ':docker\n'));
    await writeFile(
      join(dir, 'auth.json'),
      JSON.stringify({
        auths: { [auth.host]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } },
      }),
    );
  }, 300_000);
  afterAll(async () => auth?.stop());

  it('pushes with --authfile credentials, keeps the Docker media-type family, never prints the password', async () => {
    const env = { HOME: tmp.path, PATH: process.env.PATH, CANVOS_CACHE_DIR: join(dir, 'cache') };
    const { code, stdout, stderr } = await runCli(
      [
        'build',
        '--push',
        '--insecure-registry',
        auth.host,
        '--authfile',
        join(dir, 'auth.json'),
        '--set',
        'K8S_VERSION=1.30.4',
      ],
      { env, cwd: join(dir, 'project') },
    );
    expect(stderr).not.toContain(auth.password!);
    expect(stdout).not.toContain(auth.password!);
    expect(code).toBe(0);
    const raw = JSON.parse(
      await skopeo([
        'inspect',
        '--raw',
        '--tls-verify=false',
        '--creds',
        `${auth.username}:${auth.password}`,
        `docker://${auth.host}/out/ubuntu:k3s-1.30.4-v4.9.38-demo`,
      ]),
    ) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string }[] };
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(raw.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(new Set(raw.layers.map((l) => l.mediaType))).toEqual(
      new Set(['application/vnd.docker.image.rootfs.diff.tar.gzip']),
    );
    expect(raw.layers).toHaveLength(1 + 6);
  });

  it('--layer-compression zstd on a Docker-typed base fails with one line naming the media type, exit 3, nothing pushed', async () => {
    const env = { HOME: tmp.path, PATH: process.env.PATH, CANVOS_CACHE_DIR: join(dir, 'cache') };
    const r = await runCli(
      [
        'build',
        '--push',
        '--layer-compression',
        'zstd',
        '--insecure-registry',
        auth.host,
        '--authfile',
        join(dir, 'auth.json'),
        '--set',
        'K8S_VERSION=1.31.2',
        '--set',
        'IMAGE_REPO=zstd',
      ],
      { env, cwd: join(dir, 'project') },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /zstd layers need an OCI base image, but the base manifest is application\/vnd\.docker\.distribution\.manifest\.v2\+json/,
    );
    // The repository was never created: skopeo (authenticated) finds no tags there, while the earlier push is listed.
    const list = (repo: string) =>
      skopeo([
        'list-tags',
        '--tls-verify=false',
        '--creds',
        `${auth.username}:${auth.password}`,
        `docker://${auth.host}/${repo}`,
      ]);
    await expect(list('out/zstd')).rejects.toThrow(/404 \(Not Found\)/);
    expect(await list('out/ubuntu')).toContain('k3s-1.30.4-v4.9.38-demo');
  });
});
