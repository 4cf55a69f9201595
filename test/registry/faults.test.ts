import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { sha256 } from '../../src/image/digest.js';
import { RegistryRepository, registryDestination } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry, findBlobData } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRedirectProxy } from '../helpers/redirect-proxy.js';
import { tmpDir } from '../helpers/tools.js';
import { readAll } from './image-util.js';

const blob = (n: number) => {
  const data = randomBytes(n);
  return { data, desc: { mediaType: 'application/octet-stream', digest: sha256(data), size: n } };
};

describe('registry faults', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: { path: string; cleanup(): Promise<void> };
  let repo: RegistryRepository;
  const repoOpts = () => ({ insecureRegistries: [proxy.host], authFiles: [], retry: { baseDelayMs: 20 } });

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
    tmp = await tmpDir('canvos-faults-');
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    await tmp?.cleanup();
  });
  beforeEach(async () => {
    proxy.clearRules();
    await repo?.close();
    repo = new RegistryRepository(proxy.host, 'faults/a', repoOpts());
  });
  const count = (method: string, re: RegExp) =>
    proxy.requests.filter((r) => r.method === method && re.test(r.path)).length;

  it('retries a 503 and then succeeds', async () => {
    const b = blob(1000);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    const before = count('GET', /\/blobs\/sha256:/);
    proxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: 2, action: { kind: 'status', status: 503 } });
    expect((await readAll(await repo.getBlob(b.desc))).equals(b.data)).toBe(true);
    expect(count('GET', /\/blobs\/sha256:/) - before).toBe(3);
  });

  it('honours Retry-After on 429', async () => {
    const b = blob(500);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    proxy.addRule({
      method: 'HEAD',
      path: /\/blobs\/sha256:/,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'retry-after': '2' } },
    });
    const t0 = Date.now();
    expect(await repo.headBlob(b.desc.digest)).toEqual({ size: 500 });
    // baseDelayMs is 20 ms: only Retry-After explains a wait of ~2 s.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
  });

  it('gives up after the bounded number of attempts with ERR_REGISTRY_HTTP', async () => {
    proxy.addRule({ method: 'GET', path: /\/tags\/list/, times: Infinity, action: { kind: 'status', status: 502 } });
    const before = count('GET', /\/tags\/list/);
    const r = new RegistryRepository(proxy.host, 'faults/a', { ...repoOpts(), retry: { attempts: 3, baseDelayMs: 5 } });
    await expect(r.listTags()).rejects.toMatchObject({ code: 'ERR_REGISTRY_HTTP', status: 502 });
    expect(count('GET', /\/tags\/list/) - before).toBe(3);
    await r.close();
  });

  it('resumes a streamed blob with Range after a connection reset mid-body', async () => {
    const b = blob(1024 * 1024);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    const from = proxy.requests.length;
    proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: 1,
      action: { kind: 'reset-mid-body', afterBytes: 300_000 },
    });
    const seen: number[] = [];
    const s = await repo.getBlob(b.desc, { onProgress: (e) => seen.push(e.transferred) });
    expect((await readAll(s)).equals(b.data)).toBe(true);
    // Progress never goes backwards across the resume and ends at the full size.
    expect(seen.every((v, i) => i === 0 || v >= seen[i - 1]!)).toBe(true);
    expect(seen.at(-1)).toBe(b.desc.size);
    const gets = proxy.requests.slice(from).filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
    expect(gets).toHaveLength(2);
    expect(gets[0]?.headers.range).toBeUndefined();
    expect(String(gets[1]?.headers.range)).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('fetchBlobToFile resumes into the .partial file with Range and renames at the end', async () => {
    const b = blob(2 * 1024 * 1024);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    const from = proxy.requests.length;
    proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: 2,
      action: { kind: 'reset-mid-body', afterBytes: 700_000 },
    });
    const out = join(tmp.path, 'resumed.bin');
    await repo.fetchBlobToFile(b.desc, out);
    expect((await readFile(out)).equals(b.data)).toBe(true);
    await expect(stat(`${out}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
    const gets = proxy.requests.slice(from).filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
    expect(gets).toHaveLength(3);
    const offsets = gets.slice(1).map((g) => Number(/^bytes=(\d+)-$/.exec(String(g.headers.range))?.[1]));
    expect(offsets[0]).toBeGreaterThan(0);
    expect(offsets[1]).toBeGreaterThan(offsets[0]!);
  });

  it('continues a leftover .partial from an earlier run', async () => {
    const b = blob(300_000);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    const out = join(tmp.path, 'leftover.bin');
    await writeFile(`${out}.partial`, b.data.subarray(0, 100_000));
    const from = proxy.requests.length;
    await repo.fetchBlobToFile(b.desc, out);
    expect((await readFile(out)).equals(b.data)).toBe(true);
    const gets = proxy.requests.slice(from).filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
    expect(gets.map((g) => g.headers.range)).toEqual(['bytes=100000-']);
  });

  it('detects a corrupted blob in the registry storage (stream and file)', async () => {
    const b = blob(64 * 1024);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    const path = await findBlobData(reg.dataDir, b.desc.digest.slice(7));
    const bad = Buffer.from(b.data);
    bad[1000] = (bad[1000]! + 1) & 0xff;
    await writeFile(path, bad);
    await expect(readAll(await repo.getBlob(b.desc))).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    const out = join(tmp.path, 'corrupt.bin');
    await expect(repo.fetchBlobToFile(b.desc, out)).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${out}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('forced chunked upload uses PATCH chunks and survives a reset PATCH', async () => {
    const b = blob(200 * 1024);
    const r = new RegistryRepository(proxy.host, 'faults/chunked', {
      ...repoOpts(),
      uploadMode: 'chunked',
      chunkSize: 64 * 1024,
    });
    const from = proxy.requests.length;
    proxy.addRule({ method: 'PATCH', skip: 1, times: 1, action: { kind: 'reset' } });
    const seen: number[] = [];
    expect(
      await r.pushBlob(b.desc, async () => Readable.from([b.data]), { onProgress: (e) => seen.push(e.transferred) }),
    ).toBe('uploaded');
    expect(seen).toEqual([65536, 131072, 196608, 204800]);
    const reqs = proxy.requests.slice(from);
    expect(reqs.filter((q) => q.method === 'PATCH').length).toBeGreaterThanOrEqual(4);
    expect(reqs.filter((q) => q.method === 'PATCH' && !q.fault).length).toBe(4);
    expect(
      reqs.filter((q) => q.method === 'PUT' && /digest=/.test(q.path)).map((q) => q.headers['content-length']),
    ).toEqual(['0']);
    expect((await readAll(await r.getBlob(b.desc))).equals(b.data)).toBe(true);
    await r.close();
  });

  it('shrinks PATCH parts when a proxy answers 413', async () => {
    const b = blob(200 * 1024);
    const r = new RegistryRepository(proxy.host, 'faults/413', {
      ...repoOpts(),
      uploadMode: 'chunked',
      chunkSize: 128 * 1024,
    });
    const from = proxy.requests.length;
    proxy.addRule({ method: 'PATCH', times: 1, action: { kind: 'status', status: 413 } });
    expect(await r.pushBlob(b.desc, async () => Readable.from([b.data]))).toBe('uploaded');
    const patches = proxy.requests.slice(from).filter((q) => q.method === 'PATCH');
    // 413, then 64 KiB parts: 128 KiB chunk as 2 parts, the last 72 KiB chunk as 64 + 8.
    expect(patches.map((q) => q.headers['content-length'])).toEqual(['131072', '65536', '65536', '65536', '8192']);
    expect((await readAll(await r.getBlob(b.desc))).equals(b.data)).toBe(true);
    await r.close();
  });

  it('falls back to chunked when the monolithic PUT is refused, and retries a reset PUT in a new session', async () => {
    const b = blob(100 * 1024);
    const from = proxy.requests.length;
    proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, action: { kind: 'reset' } });
    proxy.addRule({
      method: 'PUT',
      path: /\/blobs\/uploads\//,
      skip: 1,
      times: 1,
      action: { kind: 'status', status: 405 },
    });
    expect(await repo.pushBlob(b.desc, async () => Readable.from([b.data]))).toBe('uploaded');
    const reqs = proxy.requests.slice(from);
    expect(reqs.filter((q) => q.method === 'POST').length).toBe(3);
    expect(reqs.filter((q) => q.method === 'PATCH').length).toBeGreaterThanOrEqual(1);
    expect((await readAll(await repo.getBlob(b.desc))).equals(b.data)).toBe(true);
  });

  it('mounts across repositories without sending the blob data', async () => {
    const b = blob(150 * 1024);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    const dest = registryDestination(`${proxy.host}/faults/mounted:v1`, repoOpts());
    const from = proxy.requests.length;
    let opened = 0;
    const result = await dest.putBlob(
      b.desc,
      async () => {
        opened++;
        return Readable.from([b.data]);
      },
      { mountFrom: { registry: proxy.host, repository: 'faults/a' } },
    );
    expect(result).toBe('mounted');
    expect(opened).toBe(0);
    const reqs = proxy.requests.slice(from);
    expect(
      reqs.filter((q) => q.method === 'POST' && /mount=sha256/.test(q.path) && /from=faults%2Fa/.test(q.path)),
    ).toHaveLength(1);
    expect(reqs.filter((q) => q.method === 'PATCH' || q.method === 'PUT')).toHaveLength(0);
    expect(await dest.hasBlob(b.desc)).toBe(true);
    await dest.close();
  });

  it('a refused mount (202) continues in the session the mount opened', async () => {
    const b = blob(50 * 1024);
    const dest = registryDestination(`${proxy.host}/faults/refused:v1`, repoOpts());
    const from = proxy.requests.length;
    // faults/empty does not hold the blob, so distribution answers the mount POST with 202 and an upload session.
    expect(
      await dest.putBlob(b.desc, async () => Readable.from([b.data]), {
        mountFrom: { registry: proxy.host, repository: 'faults/empty' },
      }),
    ).toBe('uploaded');
    const reqs = proxy.requests.slice(from);
    expect(reqs.filter((q) => q.method === 'POST').map((q) => /mount=/.test(q.path))).toEqual([true]);
    expect(reqs.filter((q) => q.method === 'PUT')).toHaveLength(1);
    // A mount from another registry is never attempted.
    const c = blob(10);
    const n = proxy.requests.length;
    expect(
      await dest.putBlob(c.desc, async () => Readable.from([c.data]), {
        mountFrom: { registry: 'elsewhere.example', repository: 'faults/a' },
      }),
    ).toBe('uploaded');
    expect(proxy.requests.slice(n).filter((q) => /mount=/.test(q.path))).toHaveLength(0);
    await dest.close();
  });

  it('bounds the requests in flight per registry (an unread body keeps its slot)', async () => {
    const b = blob(512 * 1024);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    const r = new RegistryRepository(proxy.host, 'faults/a', { ...repoOpts(), concurrency: 2 });
    const s1 = await r.getBlob(b.desc);
    const s2 = await r.getBlob(b.desc);
    let third = false;
    const p3 = r.getBlob(b.desc).then((s) => {
      third = true;
      return s;
    });
    await new Promise((res) => setTimeout(res, 300));
    expect(third).toBe(false);
    expect((await readAll(s1)).equals(b.data)).toBe(true);
    const s3 = await p3;
    expect(third).toBe(true);
    expect((await readAll(s2)).length).toBe(b.data.length);
    expect((await readAll(s3)).length).toBe(b.data.length);
    await r.close();
  });

  it('aborts a slow download with ERR_ABORTED', async () => {
    const b = blob(256 * 1024);
    await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
    proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: 1,
      action: { kind: 'slow', bytesPerSecond: 16 * 1024 },
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await expect(
      repo.fetchBlobToFile(b.desc, join(tmp.path, 'aborted.bin'), { signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});

describe('redirects to blob storage', () => {
  it('never sends Authorization to a redirect target on another host', async () => {
    const reg = await startRegistry({ auth: 'basic' });
    const rp = await startRedirectProxy(reg.url);
    try {
      const opts = { insecureRegistries: [rp.host], credentials: { username: reg.username, password: reg.password } };
      const b = blob(100 * 1024);
      const repo = new RegistryRepository(rp.host, 'redir/a', opts);
      await repo.pushBlob(b.desc, async () => Readable.from([b.data]));
      expect((await readAll(await repo.getBlob(b.desc))).equals(b.data)).toBe(true);
      await repo.close();
      expect(rp.storageRequests.length).toBeGreaterThanOrEqual(1);
      for (const r of rp.storageRequests) {
        expect(r.headers.authorization).toBeUndefined();
        expect(r.path).toContain(b.desc.digest.slice(7));
      }
    } finally {
      await rp.stop();
      await reg.stop();
    }
  });
});
