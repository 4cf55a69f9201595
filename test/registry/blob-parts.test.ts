/**
 * Parallel ranged blob reads (src/registry/blob-parts.ts) against the real docker-registry through the fault proxy:
 * byte-exact and verified, really ranged and parallel, resumed per part after resets, falling back to one stream
 * when Range is ignored, bounded by the read-ahead budget, and releasing every connection when the reader stops.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/oci/digest.js';
import { ReadAheadBudget, Repository } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { readAll } from './image-util.js';
import { runCli } from '../helpers/cli.js';

const KiB = 1024;
const PART = 256 * KiB;

describe('ranged blob reads', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  const data = randomBytes(10 * PART + 12345); // 11 parts, the last one short
  const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
  const repos: Repository[] = [];
  const repo = (parts: ConstructorParameters<typeof Repository>[2] = {}): Repository => {
    const r = new Repository(proxy.host, 'parts/a', { insecureRegistries: [proxy.host], authFiles: [], retry: { baseDelayMs: 10 }, ...parts });
    repos.push(r);
    return r;
  };
  const gets = () => proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(desc.digest));
  const ranges = () => gets().map((r) => String(r.headers.range ?? ''));

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
    await repo({ blobParts: false }).pushBlob(desc, async () => Readable.from([data]));
  });
  afterAll(async () => {
    await Promise.all(repos.map((r) => r.close()));
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(() => {
    proxy.clearRules();
    proxy.requests.splice(0);
  });

  it('reads a large blob as consecutive Range parts, in parallel, byte-exact', async () => {
    const got = await readAll(await repo({ blobParts: { parallel: 4, partSize: PART, budget: new ReadAheadBudget(64 * PART) } }).getBlob(desc));
    expect(got.equals(data)).toBe(true);
    const want = Array.from({ length: 11 }, (_, i) => `bytes=${i * PART}-${Math.min(data.length, (i + 1) * PART) - 1}`);
    expect(ranges().sort()).toEqual(want.sort());
  });

  it('reads blobs under two parts, or with parts off, with one plain GET', async () => {
    expect((await readAll(await repo({ blobParts: { partSize: data.length } }).getBlob(desc))).equals(data)).toBe(true);
    expect((await readAll(await repo({ blobParts: false }).getBlob(desc))).equals(data)).toBe(true);
    expect(ranges()).toEqual(['', '']);
  });

  it('resumes a part whose connection breaks mid-body from its last byte', async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, skip: 2, times: 2, action: { kind: 'reset-mid-body', afterBytes: 100 * KiB } });
    const got = await readAll(await repo({ blobParts: { parallel: 3, partSize: PART, budget: new ReadAheadBudget(64 * PART) } }).getBlob(desc));
    expect(got.equals(data)).toBe(true);
    expect(gets().filter((r) => r.fault === 'reset-mid-body')).toHaveLength(2);
    // Each broken part is asked again for exactly its missing tail.
    const resumed = ranges().filter((r) => /^bytes=\d+-\d+$/.test(r) && Number(r.slice(6).split('-')[0]) % PART === 100 * KiB);
    expect(resumed).toHaveLength(2);
  });

  it('falls back to one stream when a proxy ignores Range on the first part', async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: 1, action: { kind: 'ignore-range' } });
    const got = await readAll(await repo({ blobParts: { parallel: 4, partSize: PART } }).getBlob(desc));
    expect(got.equals(data)).toBe(true);
    expect(gets()).toHaveLength(1);
  });

  it('fails with one clear error when Range is ignored on a later part', async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, skip: 1, times: Infinity, action: { kind: 'ignore-range' } });
    const err = await readAll(await repo({ blobParts: { parallel: 2, partSize: PART, budget: new ReadAheadBudget(64 * PART) } }).getBlob(desc)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_REGISTRY_HTTP' });
    expect(String((err as Error).message)).toMatch(/whole blob after honouring Range/);
  });

  it('verifies the joined bytes against the digest (a byte flipped in storage, inside a middle part)', async () => {
    const other = Buffer.from(data);
    other[0] = other[0]! ^ 1;
    const d2 = { ...desc, digest: sha256(other) };
    await repo({ blobParts: false }).pushBlob(d2, async () => Readable.from([other]));
    const file = (await readdir(reg.dataDir, { recursive: true })).find((f) => f.endsWith(`${d2.digest.slice(7)}/data`));
    expect(file).toBeDefined();
    const corrupt = Buffer.from(other);
    corrupt[5 * PART + 7] = corrupt[5 * PART + 7]! ^ 0xff;
    await writeFile(join(reg.dataDir, file!), corrupt);
    const err = await readAll(await repo({ blobParts: { parallel: 4, partSize: PART, budget: new ReadAheadBudget(64 * PART) } }).getBlob(d2)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
  });

  it('starts no read-ahead part the budget cannot hold, and returns the budget when done', async () => {
    const budget = new ReadAheadBudget(PART); // room for one part ahead of the head
    const r = repo({ blobParts: { parallel: 4, partSize: PART, budget } });
    const stream = await r.getBlob(desc);
    // Do not read yet: only the head and one part ahead may be requested.
    await new Promise((res) => setTimeout(res, 300));
    expect(gets().length).toBe(2);
    expect((await readAll(stream)).equals(data)).toBe(true);
    expect(budget.tryReserve(PART)).toBe(true);
    budget.release(PART);
  });

  it('a reader that stops early releases every connection, slot and reserved byte', async () => {
    const budget = new ReadAheadBudget(64 * PART);
    const r = repo({ concurrency: 4, blobParts: { parallel: 4, partSize: PART, budget } });
    const stream = await r.getBlob(desc);
    await new Promise<void>((res) => stream.once('readable', () => res()));
    stream.destroy();
    await new Promise((res) => setTimeout(res, 200));
    expect(budget.tryReserve(64 * PART)).toBe(true);
    budget.release(64 * PART);
    // All four request slots are free again: four more whole reads go through at once.
    const all = await Promise.all([0, 1, 2, 3].map(async () => readAll(await r.getBlob(desc))));
    for (const b of all) expect(b.equals(data)).toBe(true);
  });

  it('canvos-lite copy reads an 8 MiB+ layer in 4 MiB parts by default, and with one GET under --blob-parts 1; both byte-exact', async () => {
    const big = randomBytes(9 * 1024 * KiB);
    const bd = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(big), size: big.length };
    const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [bd.digest] } }));
    const cd = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length };
    const upstream = new Repository(reg.host, 'parts/img', { insecureRegistries: [reg.host], authFiles: [] });
    repos.push(upstream);
    await upstream.pushBlob(bd, async () => Readable.from([big]));
    await upstream.pushBlob(cd, async () => Readable.from([cfg]));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: cd, layers: [bd] }));
    await upstream.putManifest({ bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' }, 'v1');
    const dst = await startRegistry({ auth: 'none' });
    try {
      const layerGets = () => proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(bd.digest)).map((r) => String(r.headers.range ?? ''));
      const env = { HOME: '/nonexistent', PATH: process.env.PATH };
      const r1 = await runCli(['copy', '--json', '--src-insecure', '--dest-insecure', `docker://${proxy.host}/parts/img:v1`, `docker://${dst.host}/a/img:v1`], { env, cwd: '/' });
      expect(r1.stderr).toBe('');
      expect(r1.code).toBe(0);
      expect(layerGets().sort()).toEqual(['bytes=0-4194303', 'bytes=4194304-8388607', 'bytes=8388608-9437183']);
      proxy.requests.splice(0);
      const r2 = await runCli(['copy', '--blob-parts', '1', '--src-insecure', '--dest-insecure', `docker://${proxy.host}/parts/img:v1`, `docker://${dst.host}/b/img:v1`], { env, cwd: '/' });
      expect(r2.code).toBe(0);
      expect(layerGets()).toEqual(['']);
      for (const repoName of ['a/img', 'b/img']) {
        const back = new Repository(dst.host, repoName, { insecureRegistries: [dst.host], authFiles: [] });
        repos.push(back);
        expect((await readAll(await back.getBlob(bd))).equals(big)).toBe(true);
      }
    } finally {
      await dst.stop();
    }
  });
});
