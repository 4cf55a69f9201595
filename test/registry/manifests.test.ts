import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sha256, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { RegistryRepository, registryDestination, registrySource } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry, findBlobData } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { skopeo, tmpDir } from '../helpers/tools.js';
import { pushLayout } from '../helpers/push-layout.js';
import { pushTiny, readImage, tinyImage } from './image-util.js';

describe('manifests, tags and referrers', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: { path: string; cleanup(): Promise<void> };
  const opts = () => ({ insecureRegistries: [reg.host, proxy.host], authFiles: [] });

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
    tmp = await tmpDir('canvos-manifests-');
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    await tmp?.cleanup();
  });

  it('reads a multi-platform index pushed by skopeo --all, and every child manifest by digest', async () => {
    const layout = join(tmp.path, 'multi');
    const fx = await makeOciLayout(layout, { platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerBytes: 8192 });
    await skopeo([
      'copy',
      '--all',
      '--insecure-policy',
      '--dest-tls-verify=false',
      `oci:${layout}:latest`,
      `docker://${reg.host}/m/multi:latest`,
    ]);
    const src = registrySource(`${reg.host}/m/multi:latest`, opts());
    const root = await src.getManifest();
    expect(root.digest).toBe(fx.indexDigest);
    expect(root.mediaType).toBe(MediaType.OciIndex);
    const idx = JSON.parse(root.bytes.toString('utf8')) as { manifests: Array<{ digest: Digest }> };
    expect(idx.manifests.map((m) => m.digest)).toEqual(fx.manifestDigests);
    for (const d of fx.manifestDigests) {
      const img = await readImage(src, d as Digest);
      expect(img.manifestDigest).toBe(d);
    }
    // HEAD agrees with GET.
    expect(await src.repo.headManifest('latest')).toEqual({
      digest: fx.indexDigest,
      mediaType: MediaType.OciIndex,
      size: root.bytes.length,
    });
    await src.close();
  });

  it('reads a Docker v2s2 manifest list with its media types intact', async () => {
    const layout = join(tmp.path, 'docker');
    const fx = await makeOciLayout(layout, {
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerBytes: 4096,
      docker: true,
    });
    // skopeo 1.9's oci: transport skips Docker media types, so the independent pushLayout helper seeds it.
    await pushLayout(layout, reg, 'm/docker', { tag: 'latest' });
    const src = registrySource(`${reg.host}/m/docker:latest`, opts());
    const root = await src.getManifest();
    expect(root.digest).toBe(fx.indexDigest);
    expect(root.mediaType).toBe(MediaType.DockerManifestList);
    const child = await src.getManifest(fx.manifestDigests[1] as Digest);
    expect(child.mediaType).toBe(MediaType.DockerManifest);
    // Round trip: PUT the same bytes elsewhere with their own media type; the digest must not change.
    const dest = registryDestination(`${reg.host}/m/docker-copy:latest`, opts());
    for (const d of fx.manifestDigests) {
      const m = await src.getManifest(d as Digest);
      const j = JSON.parse(m.bytes.toString('utf8')) as {
        config: { digest: Digest; size: number; mediaType: string };
        layers: Array<{ digest: Digest; size: number; mediaType: string }>;
      };
      for (const b of [j.config, ...j.layers])
        await dest.putBlob(b, () => src.getBlob(b), { mountFrom: src.mountOrigin });
      await dest.putManifest(m, undefined);
    }
    await dest.putManifest(root, 'latest');
    expect(await dest.repo.headManifest('latest')).toEqual({
      digest: fx.indexDigest,
      mediaType: MediaType.DockerManifestList,
      size: root.bytes.length,
    });
    await dest.close();
    await src.close();
  });

  it('missing manifests are ERR_MANIFEST_UNKNOWN; HEAD says undefined', async () => {
    const repo = new RegistryRepository(reg.host, 'm/multi', opts());
    await expect(repo.getManifest('nope')).rejects.toMatchObject({
      code: 'ERR_MANIFEST_UNKNOWN',
      message: expect.stringContaining(`${reg.host}/m/multi:nope`),
    });
    expect(await repo.headManifest(`sha256:${'0'.repeat(64)}`)).toBeUndefined();
    await repo.close();
  });

  it('detects a manifest whose stored bytes no longer match its digest (by digest and by tag)', async () => {
    const img = tinyImage('corrupt-manifest');
    const dest = registryDestination(`${reg.host}/m/corrupt:v1`, opts());
    await pushTiny(dest, img, 'v1');
    await dest.close();
    const path = await findBlobData(reg.dataDir, img.manifestDigest.slice(7));
    const bytes = await readFile(path);
    await writeFile(path, Buffer.from(bytes.toString('utf8').replace('"schemaVersion":2', '"schemaVersion":2 ')));
    const repo = new RegistryRepository(reg.host, 'm/corrupt', opts());
    await expect(repo.getManifest(img.manifestDigest)).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    await expect(repo.getManifest('v1')).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    await repo.close();
  });

  it('lists tags and follows Link pages', async () => {
    const img = tinyImage('tags');
    const dest = registryDestination(`${reg.host}/m/tags:a`, opts());
    for (const t of ['a', 'b', 'c']) await pushTiny(dest, img, t);
    await dest.close();
    const repo = new RegistryRepository(reg.host, 'm/tags', opts());
    expect((await repo.listTags()).sort()).toEqual(['a', 'b', 'c']);
    await repo.close();
    // distribution 2.8 does not paginate: the proxy serves a first page with a Link to the real list.
    proxy.addRule({
      method: 'GET',
      path: /\/tags\/list\?n=1$/,
      times: 1,
      action: {
        kind: 'status',
        status: 200,
        headers: { 'content-type': 'application/json', link: '</v2/m/tags/tags/list?n=1&last=zz>; rel="next"' },
        body: '{"name":"m/tags","tags":["zz"]}',
      },
    });
    const viaProxy = new RegistryRepository(proxy.host, 'm/tags', opts());
    const tags = await viaProxy.listTags({ pageSize: 1 });
    expect(tags[0]).toBe('zz');
    expect(tags.slice(1).sort()).toEqual(['a', 'b', 'c']);
    expect(proxy.requests.filter((r) => /\/tags\/list/.test(r.path)).map((r) => r.path)).toEqual([
      '/v2/m/tags/tags/list?n=1',
      '/v2/m/tags/tags/list?n=1&last=zz',
    ]);
    await viaProxy.close();
  });

  it('finds referrers through the sha256-<hex> tag fallback when the API is missing', async () => {
    const img = tinyImage('subject');
    const dest = registryDestination(`${reg.host}/m/ref:v1`, opts());
    await pushTiny(dest, img, 'v1');
    const repo = dest.repo;
    expect((await repo.referrers(img.manifestDigest)).manifests).toEqual([]);
    // An artifact whose subject is the image, and the fallback index a 1.0 registry needs.
    const empty = Buffer.from('{}');
    const emptyDesc = { mediaType: MediaType.OciEmpty, digest: sha256(empty), size: 2 };
    await repo.pushBlob(emptyDesc, async () => Readable.from([empty]));
    const art = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: 'application/vnd.example.sbom',
        config: emptyDesc,
        layers: [emptyDesc],
        subject: { mediaType: MediaType.OciManifest, digest: img.manifestDigest, size: img.manifest.length },
      }),
    );
    const artDigest = await repo.putManifest({ bytes: art, mediaType: MediaType.OciManifest });
    const fallback = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            mediaType: MediaType.OciManifest,
            digest: artDigest,
            size: art.length,
            artifactType: 'application/vnd.example.sbom',
          },
        ],
      }),
    );
    await repo.putManifest({ bytes: fallback, mediaType: MediaType.OciIndex }, img.manifestDigest.replace(':', '-'));
    const refs = await repo.referrers(img.manifestDigest);
    expect(refs.manifests.map((m) => m.digest)).toEqual([artDigest]);
    expect((await repo.referrers(img.manifestDigest, { artifactType: 'application/vnd.other' })).manifests).toEqual([]);
    await dest.close();
  });
});
