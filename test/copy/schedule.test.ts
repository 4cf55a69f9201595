/**
 * How a copy schedules its blobs, against real registries: the largest blobs start first (so small ones fill the
 * gaps at the end instead of a big one starting last and running alone), and each blob's source is opened while
 * the destination's upload session is being started (one round trip per blob instead of two), without leaking the
 * source when the destination refuses the session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { copyImage } from '../../src/copy/copy.js';
import { sha256 } from '../../src/image/digest.js';
import { registryDestination, registrySource, RegistryRepository } from '../../src/registry/index.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tmpDir } from '../helpers/tools.js';

describe('copy scheduling', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let srcProxy: FaultProxy;
  let dstProxy: FaultProxy;
  let tmp: { path: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry({ auth: 'none' }), startRegistry({ auth: 'none' })]);
    [srcProxy, dstProxy] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
    tmp = await tmpDir('canvos-schedule-');
  });
  afterAll(async () => {
    await Promise.all([srcProxy?.stop(), dstProxy?.stop()]);
    await Promise.all([a?.stop(), b?.stop()]);
    await tmp?.cleanup();
  });

  it('starts the largest blobs first', async () => {
    const dir = join(tmp.path, 'sizes');
    await makeOciLayout(dir, {
      tag: 'v1',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 3,
      layerBytes: 96 * 1024,
    });
    await pushLayout(dir, a, 'sched/img', { tag: 'v1' });
    const opts = { insecureRegistries: [srcProxy.host, b.host], authFiles: [] as string[] };
    srcProxy.requests.splice(0);
    const r = await copyImage(
      registrySource(`${srcProxy.host}/sched/img:v1`, opts),
      registryDestination(`${b.host}/sched/img:v1`, opts),
      { concurrency: 1 },
    );
    expect(r.blobs.copied).toBe(8); // 2 × (3 layers + config)
    // With one blob at a time the source sees the blob GETs in the order the copy started them.
    const order = srcProxy.requests
      .filter((q) => q.method === 'GET' && /\/blobs\/sha256:/.test(q.path))
      .map((q) => q.path.split('/blobs/')[1]!);
    const src = new RegistryRepository(a.host, 'sched/img', { insecureRegistries: [a.host], authFiles: [] });
    const sizes = new Map<string, number>();
    const index = JSON.parse((await src.getManifest('v1')).bytes.toString()) as {
      manifests: Array<{ digest: string }>;
    };
    for (const m of index.manifests) {
      const man = JSON.parse((await src.getManifest(m.digest)).bytes.toString()) as {
        config: { digest: string; size: number };
        layers: Array<{ digest: string; size: number }>;
      };
      for (const d of [man.config, ...man.layers]) sizes.set(d.digest, d.size);
    }
    await src.close();
    expect(order).toHaveLength(8);
    const got = order.map((d) => sizes.get(d)!);
    expect(got).toEqual([...got].sort((x, y) => y - x));
    // The configs (a few hundred bytes) come last, not first as in manifest order.
    expect(got.slice(-2).every((n) => n < 4096)).toBe(true);
  });

  it('opens the source while the upload session starts, once, and closes it when the destination refuses', async () => {
    const data = randomBytes(300 * 1024);
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    const repo = new RegistryRepository(dstProxy.host, 'sched/up', {
      insecureRegistries: [dstProxy.host],
      authFiles: [],
      retry: { attempts: 1 },
    });
    try {
      const events: string[] = [];
      let opened = 0;
      let last: Readable | undefined;
      const open = async (): Promise<Readable> => {
        opened++;
        events.push('open');
        last = Readable.from([data]);
        return last;
      };
      dstProxy.requests.splice(0);
      // POST answered 403: the session never starts, and the source opened early must not be left open.
      dstProxy.addRule({
        method: 'POST',
        path: /\/blobs\/uploads\//,
        times: 1,
        action: { kind: 'status', status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' },
      });
      await expect(repo.pushBlob(desc, open, { skipExisting: false })).rejects.toMatchObject({ status: 403 });
      expect(opened).toBe(1);
      await new Promise((res) => setImmediate(res));
      expect(last?.destroyed).toBe(true);
      // Accepted: the source is opened once, before the POST has been answered, and the blob lands.
      opened = 0;
      dstProxy.clearRules();
      dstProxy.requests.splice(0);
      dstProxy.addRule({ method: 'POST', path: /\/blobs\/uploads\//, times: 1, action: { kind: 'delay', ms: 400 } });
      const pushed = repo.pushBlob(desc, open, { skipExisting: false });
      await new Promise((res) => setTimeout(res, 200));
      expect(dstProxy.requests.map((q) => q.method)).toEqual(['POST']);
      expect(opened).toBe(1);
      expect(await pushed).toBe('uploaded');
      expect(opened).toBe(1);
      expect(await repo.headBlob(desc.digest)).toEqual({ size: data.length });
    } finally {
      dstProxy.clearRules();
      await repo.close();
    }
  });
});
