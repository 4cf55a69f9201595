/**
 * Registry → registry copies hash each blob once (the source's verifying GET stream) and HEAD it once before the
 * upload. These tests pin down that nothing corrupt can still become visible at the destination: a corrupt source
 * blob fails the copy with no blob, manifest or tag written, and a lying "verified" stream is refused by the registry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { copyImage } from '../../src/copy/copy.js';
import { sha256 } from '../../src/image/digest.js';
import { RegistryRepository, registryDestination, registrySource } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry, findBlobData } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushTiny, tinyImage } from '../registry/image-util.js';

describe('copy: single hash, single HEAD, still verified', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let proxy: FaultProxy;
  const opts = () => ({ insecureRegistries: [a.host, b.host, proxy.host], authFiles: [], retry: { baseDelayMs: 10 } });

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry({ auth: 'none' }), startRegistry({ auth: 'none' })]);
    proxy = await startFaultProxy(b.url);
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('HEADs each new blob once before and once after its upload', async () => {
    const img = tinyImage('heads', 64 * 1024);
    const seed = registryDestination(`${a.host}/t/heads:1`, opts());
    await pushTiny(seed, img, '1');
    const src = registrySource(`${a.host}/t/heads:1`, opts());
    const dst = registryDestination(`${proxy.host}/t/heads:1`, opts());
    const from = proxy.requests.length;
    const r = await copyImage(src, dst);
    await Promise.all([seed.close(), src.close(), dst.close()]);
    expect(r.blobs.copied).toBe(2);
    const reqs = proxy.requests.slice(from);
    for (const d of [img.layerDesc.digest, img.configDesc.digest]) {
      // One existence check by the engine, one confirmation after the PUT (was three before).
      expect(reqs.filter((q) => q.method === 'HEAD' && q.path.endsWith(`/blobs/${d}`)).length).toBe(2);
    }
    const check = new RegistryRepository(b.host, 't/heads', opts());
    expect(await check.headBlob(img.layerDesc.digest)).toEqual({ size: img.layerDesc.size });
    await check.close();
  });

  it.each(['monolithic', 'chunked'] as const)(
    'a corrupt source blob fails the copy and never appears at the destination (%s)',
    async (uploadMode) => {
      const img = tinyImage(`corrupt-${uploadMode}`, 256 * 1024);
      const seed = registryDestination(`${a.host}/t/c-${uploadMode}:1`, opts());
      await pushTiny(seed, img, '1');
      await seed.close();
      const path = await findBlobData(a.dataDir, img.layerDesc.digest.slice(7));
      const bad = Buffer.from(img.layer);
      bad[bad.length - 10] = (bad[bad.length - 10]! + 1) & 0xff; // same size, last chunk differs
      await writeFile(path, bad);

      const src = registrySource(`${a.host}/t/c-${uploadMode}:1`, opts());
      const dst = registryDestination(`${b.host}/t/c-${uploadMode}:1`, { ...opts(), uploadMode, chunkSize: 64 * 1024 });
      await expect(copyImage(src, dst)).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
      await Promise.all([src.close(), dst.close()]);
      const check = new RegistryRepository(b.host, `t/c-${uploadMode}`, opts());
      expect(await check.headBlob(img.layerDesc.digest)).toBeUndefined();
      expect(await check.headManifest(img.manifestDigest)).toBeUndefined();
      await check.close();
    },
  );

  it('a stream wrongly claimed as verified is still refused by the registry on commit', async () => {
    const good = randomBytes(100_000);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(good), size: good.length };
    const lie = Buffer.from(good);
    lie[500] = (lie[500]! + 1) & 0xff;
    const repo = new RegistryRepository(b.host, 't/lie', opts());
    await expect(
      repo.pushBlob(desc, async () => Readable.from([lie]), { sourceVerified: true, skipExisting: false }),
    ).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(await repo.headBlob(desc.digest)).toBeUndefined();
    await repo.close();
  });
});
