/**
 * Copies sharing a CopyPool (what `mirror` does) write each blob and each child manifest once per destination:
 * two tags of one multi-platform index copied at once into one repository. Writing the same manifest twice at
 * once is not harmless on distribution (the revision link is rewritten in place, and a concurrent index PUT that
 * verifies its children can read it half-written: MANIFEST_BLOB_UNKNOWN), so the pool serialises it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { CopyPool, copyImage } from '../../src/copy/copy.js';
import { registryDestination, registrySource } from '../../src/registry/index.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, tmpDir } from '../helpers/tools.js';

describe('CopyPool', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let proxy: FaultProxy;
  let tmp: { path: string; cleanup(): Promise<void> };
  let fx: Awaited<ReturnType<typeof makeOciLayout>>;
  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(b.url);
    tmp = await tmpDir('canvos-pool-');
    fx = await makeOciLayout(join(tmp.path, 'multi'), {
      tag: 'v1',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 2,
      layerBytes: 64 * 1024,
    });
    await pushLayout(join(tmp.path, 'multi'), a, 'src/multi', { tag: 'v1' });
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await tmp?.cleanup();
  });

  it('two tags of one index copied at once into one repository: every blob and child manifest is written once', async () => {
    const opts = { insecureRegistries: [a.host, proxy.host], authFiles: [] as string[] };
    const pool = new CopyPool(8);
    const copy = (tag: string) =>
      copyImage(
        registrySource(`${a.host}/src/multi:v1`, opts),
        registryDestination(`${proxy.host}/dst/multi:${tag}`, opts),
        { pool, poolScope: `${proxy.host}/dst/multi` },
      );
    const [r1, r2] = await Promise.all([copy('t1'), copy('t2')]);
    expect([r1.rootDigest, r2.rootDigest]).toEqual([fx.indexDigest, fx.indexDigest]);
    const puts = proxy.requests.filter((r) => r.method === 'PUT').map((r) => r.path);
    const childPuts = puts.filter((p) => /\/manifests\/sha256:/.test(p)).map((p) => p.split('/manifests/')[1]);
    expect(childPuts.sort()).toEqual([...fx.manifestDigests].sort());
    expect(puts.filter((p) => /\/manifests\/t[12]$/.test(p))).toHaveLength(2);
    const blobPuts = puts.filter((p) => p.includes('/blobs/uploads/'));
    expect(blobPuts.length).toBe(new Set(blobPuts.map((p) => new URL(p, 'http://x').searchParams.get('digest'))).size);
    for (const tag of ['t1', 't2']) {
      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${b.host}/dst/multi:${tag}`]);
      expect(JSON.parse(raw)).toMatchObject({ manifests: expect.any(Array) });
    }
  });
});
