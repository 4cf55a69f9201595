import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { itemsFromRefs } from '../../src/mirror/resolve.js';
import { mirrorPush, mirrorSave } from '../../src/mirror/operations.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, tmpDir } from '../helpers/tools.js';
import { sha256 } from '../../src/image/digest.js';

import { OciLayout } from '../../src/transports/oci-layout/oci-layout.js';
let a: TestRegistry;
let b: TestRegistry;
let proxy: FaultProxy;
let tmp: { path: string; cleanup(): Promise<void> };
let multi: Awaited<ReturnType<typeof makeOciLayout>>;
let single: Awaited<ReturnType<typeof makeOciLayout>>;

beforeAll(async () => {
  tmp = await tmpDir('canvos-mirror-resume-');
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  proxy = await startFaultProxy(a.url);
  multi = await makeOciLayout(join(tmp.path, 'multi'), {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
    layers: 3,
    layerBytes: 256 * 1024,
  });
  single = await makeOciLayout(join(tmp.path, 'single'), { tag: 'v1', layers: 2, layerBytes: 256 * 1024 });
  await pushLayout(join(tmp.path, 'multi'), a, 'apps/multi', { tag: 'v1' });
  await pushLayout(join(tmp.path, 'single'), a, 'apps/single', { tag: 'v1' });
  await pushLayout(join(tmp.path, 'multi'), a, 'other/multi', { tag: 'v1' });
});
afterAll(async () => {
  await proxy?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
  await tmp?.cleanup();
});

/** Blob GETs per digest seen by the proxy. */
function blobGets(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of proxy.requests) {
    const d = /\/blobs\/(sha256:[a-f0-9]{64})/.exec(r.path)?.[1];
    if (r.method === 'GET' && d) m.set(d, (m.get(d) ?? 0) + 1);
  }
  return m;
}

const srcOpts = () => ({
  insecureRegistries: [proxy.host],
  authFiles: [] as string[],
  retry: { attempts: 2, baseDelayMs: 10 },
});
const allBlobs = () => [...multi.images, ...single.images].flatMap((i) => [i.configDigest, ...i.layerDigests]);

describe('resume after failures and interruptions', () => {
  // A test that fails half-way must not leave its faults on for the next one.
  afterEach(() => proxy.clearRules());

  it('push: a blob whose connection always dies fails only its image; the rerun moves only what is missing', async () => {
    proxy.requests.length = 0;
    // A config: the smallest blobs, which a copy starts last (largest first), so blobs of the failing image land first.
    const victim = multi.images[1]!.configDigest;
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${victim}`), times: Infinity, action: { kind: 'reset' } });
    const items = itemsFromRefs([`${proxy.host}/apps/multi:v1`, `${proxy.host}/apps/single:v1`]);
    const opts = {
      sourceRegistry: srcOpts(),
      destRegistry: { insecureRegistries: [b.host], authFiles: [] },
      rewrite: { keepRegistry: false },
      concurrency: { blobs: 1 },
    };
    const first = await mirrorPush(items, `${b.host}/r`, opts);
    expect(first.failures).toEqual([
      expect.objectContaining({ source: `${proxy.host}/apps/multi:v1`, code: 'ERR_NETWORK' }),
    ]);
    expect(first.images.map((i) => i.source)).toEqual([`${proxy.host}/apps/single:v1`]);
    // Which blobs made it to the destination in run 1.
    const landed: string[] = [];
    for (const d of allBlobs()) {
      const repo = multi.images.some((i) => i.configDigest === d || i.layerDigests.includes(d))
        ? 'r/apps/multi'
        : 'r/apps/single';
      if ((await fetch(`${b.url}/v2/${repo}/blobs/${d}`, { method: 'HEAD' })).status === 200) landed.push(d);
    }
    expect(landed.length).toBeGreaterThan(single.images[0]!.layerDigests.length + 1);
    expect(landed).not.toContain(victim);

    proxy.clearRules();
    const second = await mirrorPush(items, `${b.host}/r`, opts);
    expect(second.failures).toEqual([]);
    const gets = blobGets();
    for (const d of landed) expect(gets.get(d), d).toBe(1);
    expect(sha256(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${b.host}/r/apps/multi:v1`]))).toBe(
      multi.indexDigest,
    );
    // The finished image was not touched again (its manifest was found at the destination).
    const singleBlobs = [single.images[0]!.configDigest, ...single.images[0]!.layerDigests];
    for (const d of singleBlobs) expect(gets.get(d)).toBe(1);
  });

  it('save: aborted after 3 blobs, the rerun downloads only the blobs the layout lacks', async () => {
    proxy.requests.length = 0;
    const dir = join(tmp.path, 'saved');
    // An existing layout keeps the blobs of an interrupted save (a new DIR is staged and removed instead).
    await new OciLayout(dir).init();
    const items = itemsFromRefs([`${proxy.host}/apps/multi:v1`, `${proxy.host}/apps/single:v1`]);
    const ac = new AbortController();
    let copied = 0;
    const run1 = mirrorSave(items, dir, {
      sourceRegistry: srcOpts(),
      concurrency: { blobs: 1, images: 1 },
      signal: ac.signal,
      onProgress: (e) => {
        if (e.status === 'copied' && ++copied === 3) ac.abort();
      },
    });
    await expect(run1).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const stored = allBlobs().filter((d) => existsSync(join(dir, 'blobs', 'sha256', d.slice(7))));
    expect(stored.length).toBeGreaterThanOrEqual(3);
    expect(stored.length).toBeLessThan(allBlobs().length);

    const run2 = await mirrorSave(items, dir, { sourceRegistry: srcOpts() });
    expect(run2.failures).toEqual([]);
    const gets = blobGets();
    for (const d of stored) expect(gets.get(d), d).toBe(1);
    for (const d of allBlobs()) expect(existsSync(join(dir, 'blobs', 'sha256', d.slice(7)))).toBe(true);
    expect(run2.images.map((i) => i.digest).sort()).toEqual([multi.indexDigest, single.indexDigest].sort());
  });

  it('push: blobs shared by images in different repositories are downloaded once and mounted at the destination', async () => {
    proxy.requests.length = 0;
    const items = itemsFromRefs([`${proxy.host}/apps/multi:v1`, `${proxy.host}/other/multi:v1`]);
    const r = await mirrorPush(items, `${b.host}/shared`, {
      sourceRegistry: srcOpts(),
      destRegistry: { insecureRegistries: [b.host], authFiles: [] },
    });
    expect(r.failures).toEqual([]);
    const gets = blobGets();
    for (const i of multi.images) for (const d of [i.configDigest, ...i.layerDigests]) expect(gets.get(d), d).toBe(1);
    const mounted = r.images.reduce((n, i) => n + i.blobs.mounted, 0);
    expect(mounted).toBe(8);
    for (const repo of ['apps/multi', 'other/multi']) {
      expect(
        sha256(
          await skopeo([
            'inspect',
            '--raw',
            '--tls-verify=false',
            `docker://${b.host}/shared/${proxy.host.replace(':', '-')}/${repo}:v1`,
          ]),
        ),
      ).toBe(multi.indexDigest);
    }
  });

  it('429 with Retry-After on manifests and a 503 on a blob are retried by the registry layer; the push completes', async () => {
    proxy.requests.length = 0;
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\/v1$/,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } },
    });
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/${single.images[0]!.layerDigests[0]}`),
      times: 1,
      action: { kind: 'status', status: 503 },
    });
    const t0 = Date.now();
    const r = await mirrorPush(itemsFromRefs([`${proxy.host}/apps/single:v1`]), `${b.host}/retry`, {
      sourceRegistry: { ...srcOpts(), retry: { attempts: 3, baseDelayMs: 10 } },
      destRegistry: { insecureRegistries: [b.host], authFiles: [] },
    });
    proxy.clearRules();
    expect(r.failures).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(
      proxy.requests
        .filter((q) => q.fault)
        .map((q) => q.fault)
        .sort(),
    ).toEqual(['status 429', 'status 503']);
  });
});
