import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyImage } from '../../src/copy/copy.js';
import { openDestination, openSource } from '../../src/transports/resolve-location.js';
import { CanvosError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';

let a: TestRegistry; // anonymous
let b: TestRegistry; // basic auth
let c: TestRegistry; // bearer tokens
let tmp: { path: string; cleanup(): Promise<void> };
let fx: Awaited<ReturnType<typeof makeOciLayout>>;
let home: string;

beforeAll(async () => {
  tmp = await tmpDir('canvos-copy-');
  home = join(tmp.path, 'home');
  await mkdir(home);
  [a, b, c] = await Promise.all([startRegistry(), startRegistry({ auth: 'basic' }), startRegistry({ auth: 'bearer' })]);
  fx = await makeOciLayout(join(tmp.path, 'fixture'), {
    tag: 'multi',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerBytes: 200 * 1024,
  });
  await skopeo([
    'copy',
    '--all',
    '--insecure-policy',
    '--dest-tls-verify=false',
    `oci:${join(tmp.path, 'fixture')}:multi`,
    `docker://${a.host}/src/multi:v1`,
  ]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  await tmp?.cleanup();
});

/** Run the CLI in-process with captured output and an environment without any credentials. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['copy', ...args], { env: { HOME: home, PATH: process.env.PATH }, cwd: tmp.path });
}

/** The digest of the raw manifest skopeo reads at a docker:// reference. */
async function skopeoDigest(ref: string, reg?: TestRegistry): Promise<string> {
  const raw = await skopeo([
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(reg?.username ? ['--creds', `${reg.username}:${reg.password}`] : []),
    `docker://${ref}`,
  ]);
  return sha256(raw);
}

const creds = (r: TestRegistry): { username: string; password: string } => ({
  username: r.username!,
  password: r.password!,
});

describe('copy between registries, layouts and archives', () => {
  it('registry → registry (basic auth) is byte-exact for a multi-platform index, with --json only on stdout', async () => {
    const r = await cli(
      '--json',
      '--src-insecure',
      '--dest-insecure',
      '--dest-creds',
      `${b.username}:${b.password}`,
      `docker://${a.host}/src/multi:v1`,
      `docker://${b.host}/dst/multi:v1`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      rootDigest: string;
      manifests: number;
      blobs: { copied: number };
      platforms: string[];
      rewritten: boolean;
    };
    expect(j).toMatchObject({
      rootDigest: fx.indexDigest,
      manifests: 3,
      rewritten: false,
      platforms: ['linux/amd64', 'linux/arm64'],
    });
    expect(j.blobs.copied).toBe(6);
    expect(r.stdout).not.toContain(b.password!);
    expect(await skopeoDigest(`${b.host}/dst/multi:v1`, b)).toBe(fx.indexDigest);
    expect(await skopeoDigest(`${b.host}/dst/multi@${fx.manifestDigests[1]}`, b)).toBe(fx.manifestDigests[1]);
  });

  it('--authfile supplies registry credentials (docker config.json format)', async () => {
    const file = join(tmp.path, 'auth.json');
    await writeFile(
      file,
      JSON.stringify({ auths: { [b.host]: { auth: Buffer.from(`${b.username}:${b.password}`).toString('base64') } } }),
    );
    const r = await cli(
      '--authfile',
      file,
      '--src-insecure',
      '--dest-insecure',
      `docker://${a.host}/src/multi:v1`,
      `docker://${b.host}/dst/authfile:v1`,
    );
    expect(r.code).toBe(0);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .every((l) => /^(copied|skipped|mounted) sha256:/.test(l)),
    ).toBe(true);
    expect(await skopeoDigest(`${b.host}/dst/authfile:v1`, b)).toBe(fx.indexDigest);
  });

  it('registry → registry with bearer tokens, both directions, via the library', async () => {
    const src = openSource(`docker://${a.host}/src/multi:v1`, {
      registry: { insecureRegistries: [a.host], authFiles: [] },
    });
    const dst = openDestination(`${c.host}/dst/multi:v2`, {
      registry: { insecureRegistries: [c.host], authFiles: [], credentials: creds(c) },
    });
    const r = await copyImage(src, dst);
    await Promise.all([src.close(), dst.close()]);
    expect(r.rootDigest).toBe(fx.indexDigest);
    expect(await skopeoDigest(`${c.host}/dst/multi:v2`, c)).toBe(fx.indexDigest);
    expect(
      c.tokenServer!.requests.some(
        (q) => q.authorized && q.scopes.some((s) => s.includes('dst/multi') && s.includes('push')),
      ),
    ).toBe(true);

    const back = await cli(
      '--src-insecure',
      '--dest-insecure',
      '--src-creds',
      `${c.username}:${c.password}`,
      `docker://${c.host}/dst/multi:v2`,
      `docker://${a.host}/back/multi:v2`,
    );
    expect(back.code).toBe(0);
    expect(back.stdout).toContain(fx.indexDigest);
    expect(back.stderr).not.toContain(c.password!);
    expect(await skopeoDigest(`${a.host}/back/multi:v2`)).toBe(fx.indexDigest);
  });

  it('--platform linux/arm64 copies just that manifest, keeping its digest', async () => {
    const r = await cli(
      '--json',
      '--platform',
      'linux/arm64',
      '--src-insecure',
      '--dest-insecure',
      '--dest-creds',
      `${b.username}:${b.password}`,
      `docker://${a.host}/src/multi:v1`,
      `docker://${b.host}/dst/arm:v1`,
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      rootDigest: string;
      mediaType: string;
      manifests: number;
      blobs: { copied: number; skipped: number; mounted: number };
    };
    expect(j.rootDigest).toBe(fx.manifestDigests[1]);
    expect(j.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(j.manifests).toBe(1);
    // Blobs an earlier test put into another repository of b are mounted from there (the blob-location cache).
    expect(j.blobs.copied + j.blobs.skipped + j.blobs.mounted).toBe(3);
    expect(await skopeoDigest(`${b.host}/dst/arm:v1`, b)).toBe(fx.manifestDigests[1]);
  });

  it('two platforms of three make a new index and say so', async () => {
    const three = await makeOciLayout(join(tmp.path, 'three'), {
      tag: 't',
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
      layers: 1,
      layerBytes: 1024,
    });
    const r = await cli(
      '--platform',
      'linux/arm/v7',
      '--platform',
      'linux/amd64',
      `oci:${join(tmp.path, 'three')}:t`,
      `oci:${join(tmp.path, 'two')}:t`,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /note: a new index of linux\/amd64, linux\/arm\/v7 was written; its digest differs from the source's sha256:/,
    );
    const raw = await skopeo(['inspect', '--raw', `oci:${join(tmp.path, 'two')}:t`]);
    const idx = JSON.parse(raw) as { manifests: Array<{ digest: string }> };
    expect(idx.manifests.map((m) => m.digest)).toEqual([three.manifestDigests[0], three.manifestDigests[2]]);
    const missing = await cli(
      '--platform',
      'linux/s390x',
      `oci:${join(tmp.path, 'three')}:t`,
      `oci:${join(tmp.path, 'two')}:u`,
    );
    expect(missing.code).toBe(6);
    expect(missing.stderr).toContain('available: linux/amd64, linux/arm64, linux/arm/v7');
  });

  it('registry → oci: → registry keeps every digest', async () => {
    const dir = join(tmp.path, 'layout');
    const r1 = await cli('--src-insecure', `docker://${a.host}/src/multi:v1`, `oci:${dir}:v1`);
    expect(r1.code).toBe(0);
    expect(sha256(await skopeo(['inspect', '--raw', `oci:${dir}:v1`]))).toBe(fx.indexDigest);
    const r2 = await cli('--json', '--dest-insecure', `oci:${dir}:v1`, `docker://${a.host}/roundtrip/multi:v1`);
    expect(r2.code).toBe(0);
    expect((JSON.parse(r2.stdout) as { rootDigest: string }).rootDigest).toBe(fx.indexDigest);
    expect(await skopeoDigest(`${a.host}/roundtrip/multi:v1`)).toBe(fx.indexDigest);
    // Copying again moves nothing: the destination already has every manifest.
    const again = JSON.parse(
      (await cli('--json', '--dest-insecure', `oci:${dir}:v1`, `docker://${a.host}/roundtrip/multi:v1`)).stdout,
    ) as { blobs: { copied: number; skipped: number } };
    expect(again.blobs).toMatchObject({ copied: 0, skipped: 6 });
  });

  it('registry → docker-archive: → registry is byte-exact (compressed layers stored as is); skopeo reads the archive', async () => {
    const tar = join(tmp.path, 'img.tar');
    const r1 = await cli(
      '--src-insecure',
      '--platform',
      'linux/amd64',
      `docker://${a.host}/src/multi:v1`,
      `docker-archive:${tar}:example.com/app:1.0`,
    );
    expect(r1.code).toBe(0);
    const info = JSON.parse(await skopeo(['inspect', `docker-archive:${tar}`])) as { Layers: string[] };
    // skopeo's docker-archive reader names layers by diff_id (it decompresses compressed members on read).
    expect(info.Layers).toEqual(fx.images[0]!.diffIds);
    const mj = JSON.parse((await run('tar', ['-xOf', tar, 'manifest.json'])).stdout) as Array<{
      RepoTags: string[];
      Layers: string[];
    }>;
    expect(mj).toHaveLength(1);
    expect(mj[0]!.RepoTags).toEqual(['example.com/app:1.0']);
    expect(mj[0]!.Layers).toEqual(fx.images[0]!.layerDigests.map((d) => `blobs/sha256/${d.slice(7)}`));
    await skopeo(['copy', '--insecure-policy', `docker-archive:${tar}`, `oci:${join(tmp.path, 'from-archive')}:x`]);
    const r2 = await cli(
      '--json',
      '--dest-insecure',
      `docker-archive:${tar}`,
      `docker://${a.host}/from-archive/app:1.0`,
    );
    expect(r2.code).toBe(0);
    const m = JSON.parse(
      await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${a.host}/from-archive/app:1.0`]),
    ) as { mediaType: string; config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
    // The archive is also an OCI layout holding the original manifest, so the image keeps its digest.
    expect((JSON.parse(r2.stdout) as { rootDigest: string }).rootDigest).toBe(fx.manifestDigests[0]);
    expect(
      sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${a.host}/from-archive/app:1.0`])),
    ).toBe(fx.manifestDigests[0]);
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.config.digest).toBe(fx.images[0]!.configDigest);
    expect(m.layers.map((l) => l.digest)).toEqual(fx.images[0]!.layerDigests);
    // A multi-platform source cannot go into a single-image archive without choosing, unless the host platform exists.
    const r3 = await cli(
      '--src-insecure',
      '--platform',
      'linux/amd64',
      '--platform',
      'linux/arm64',
      `docker://${a.host}/src/multi:v1`,
      `docker-archive:${join(tmp.path, 'two.tar')}`,
    );
    expect(r3.code).toBe(2);
    expect(r3.stderr).toContain('single image');
  });

  it('reads a skopeo docker-archive with uncompressed layers: pushed as OCI tar layers whose digests are the diff_ids', async () => {
    const tar = join(tmp.path, 'skopeo.tar');
    await skopeo([
      'copy',
      '--insecure-policy',
      '--src-tls-verify=false',
      '--override-arch',
      'arm64',
      `docker://${a.host}/src/multi:v1`,
      `docker-archive:${tar}:foo/bar:baz`,
    ]);
    const src = openSource(`docker-archive:${tar}:foo/bar:baz`);
    const dst = openDestination(`docker://${a.host}/from-skopeo/bar:baz`, {
      registry: { insecureRegistries: [a.host], authFiles: [] },
    });
    const r = await copyImage(src, dst);
    expect(r.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const m = JSON.parse(
      await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${a.host}/from-skopeo/bar:baz`]),
    ) as { config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
    expect(m.layers.map((l) => l.digest)).toEqual(fx.images[1]!.diffIds);
    expect(m.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar')).toBe(true);
    // skopeo verifies every digest while pulling it back.
    await skopeo([
      'copy',
      '--insecure-policy',
      '--src-tls-verify=false',
      `docker://${a.host}/from-skopeo/bar:baz`,
      `oci:${join(tmp.path, 'skopeo-back')}:x`,
    ]);
    const e = await openSource(`docker-archive:${tar}:nope:1`)
      .getManifest()
      .catch((x: unknown) => x);
    expect(CanvosError.is(e) && e.code).toBe('ERR_MANIFEST_UNKNOWN');
  });

  it('mounts blobs when source and destination share a registry', async () => {
    const src = openSource(`${a.host}/src/multi:v1`, { registry: { insecureRegistries: [a.host], authFiles: [] } });
    const dst = openDestination(`${a.host}/mounted/multi:v1`, {
      registry: { insecureRegistries: [a.host], authFiles: [] },
    });
    const r = await copyImage(src, dst);
    expect(r.blobs).toMatchObject({ mounted: 6, copied: 0, bytes: 0 });
    expect(await skopeoDigest(`${a.host}/mounted/multi:v1`)).toBe(fx.indexDigest);
  });
});

describe('copy through faults and failures', () => {
  let pa: FaultProxy;
  let pb: FaultProxy;
  beforeAll(async () => {
    [pa, pb] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
  });
  afterAll(async () => {
    await Promise.all([pa?.stop(), pb?.stop()]);
  });

  it('completes through resets, 503 and 429 on both sides with verified digests', async () => {
    pa.addRule({
      method: 'GET',
      path: /\/manifests\//,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } },
    });
    pa.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: 1, action: { kind: 'reset' } });
    pa.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: 1,
      action: { kind: 'reset-mid-body', afterBytes: 50_000 },
    });
    pa.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: 2, action: { kind: 'status', status: 503 } });
    pb.addRule({ method: 'POST', path: /\/blobs\/uploads\//, times: 1, action: { kind: 'status', status: 503 } });
    pb.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, action: { kind: 'reset' } });
    pb.addRule({
      method: 'HEAD',
      path: /\/blobs\//,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } },
    });
    pb.addRule({ method: 'PUT', path: /\/manifests\//, times: 1, action: { kind: 'status', status: 503 } });
    const r = await cli(
      '--json',
      '--src-insecure',
      '--dest-insecure',
      '--dest-creds',
      `${b.username}:${b.password}`,
      `docker://${pa.host}/src/multi:v1`,
      `docker://${pb.host}/faults/multi:v1`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { rootDigest: string }).rootDigest).toBe(fx.indexDigest);
    expect(
      pa.requests
        .filter((q) => q.fault)
        .map((q) => q.fault)
        .sort(),
    ).toEqual(['reset', 'reset-mid-body', 'status 429', 'status 503', 'status 503']);
    expect(pb.requests.filter((q) => q.fault)).toHaveLength(4);
    expect(await skopeoDigest(`${b.host}/faults/multi:v1`, b)).toBe(fx.indexDigest);
    // skopeo re-verifies every blob digest on the way out.
    await skopeo([
      'copy',
      '--all',
      '--insecure-policy',
      '--src-tls-verify=false',
      '--src-creds',
      `${b.username}:${b.password}`,
      `docker://${b.host}/faults/multi:v1`,
      `oci:${join(tmp.path, 'faults-out')}:x`,
    ]);
  });

  it('bad reference, unknown transport, bad flag and wrong credentials: one-line errors, distinct exits, nothing tagged', async () => {
    const bad = await cli(`docker://${a.host}/src/multi:v1`, `docker://${b.host}/Dst/x:v1`);
    expect(bad.code).toBe(4);
    expect(bad.stderr.split('\n')[0]).toMatch(
      /^canvos-lite: invalid image reference ".*Dst\/x:v1": repository name must be lowercase/,
    );
    const unknown = await cli('dir:/tmp/x', `oci:${join(tmp.path, 'never')}`);
    expect(unknown.code).toBe(17);
    expect(unknown.stderr.split('\n')[0]).toBe(
      'canvos-lite: unknown transport "dir" in "dir:/tmp/x" (valid: docker://, oci:, docker-archive:)',
    );
    const flag = await cli('--bogus', 'a', 'b');
    expect(flag.code).toBe(2);
    const usage = await cli('only-one');
    expect(usage.code).toBe(2);
    const wrong = await cli(
      '--src-insecure',
      '--dest-insecure',
      '--dest-creds',
      `${b.username}:not-the-password-xyz`,
      `docker://${a.host}/src/multi:v1`,
      `docker://${b.host}/dst/denied:v1`,
    );
    expect(wrong.code).toBe(8);
    expect(wrong.stderr.split('\n').filter(Boolean).length).toBeLessThanOrEqual(2);
    expect(wrong.stderr).not.toContain('not-the-password-xyz');
    expect(wrong.stdout).toBe('');
    await expect(skopeoDigest(`${b.host}/dst/denied:v1`, b)).rejects.toThrow(
      /manifest unknown|not found|name unknown/i,
    );
    for (const r of [bad, unknown, flag, usage, wrong]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('aborting mid-copy stops with ERR_ABORTED and tags nothing', async () => {
    pa.clearRules();
    pa.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: Infinity,
      action: { kind: 'slow', bytesPerSecond: 100 * 1024 },
    });
    const ac = new AbortController();
    const src = openSource(`${pa.host}/src/multi:v1`, { registry: { insecureRegistries: [pa.host], authFiles: [] } });
    const dst = openDestination(`${b.host}/dst/aborted:v1`, {
      registry: { insecureRegistries: [b.host], authFiles: [], credentials: creds(b) },
    });
    const e = await copyImage(src, dst, {
      signal: ac.signal,
      onProgress: (ev) => {
        if (ev.transferred > 20_000) ac.abort();
      },
    }).catch((x: unknown) => x);
    await Promise.all([src.close(), dst.close()]);
    pa.clearRules();
    expect(CanvosError.is(e) && e.code).toBe('ERR_ABORTED');
    await expect(skopeoDigest(`${b.host}/dst/aborted:v1`, b)).rejects.toThrow(
      /manifest unknown|not found|name unknown/i,
    );
  });
});
