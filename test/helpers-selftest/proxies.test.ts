/**
 * Self-tests of the fault and redirect proxies in front of a real registry: plain forwarding (skopeo push + pull
 * through the proxy, chunked PATCH uploads, HEAD, rewritten Locations), each injected fault observed with undici,
 * and the redirect proxy's 127.0.0.2 storage server receiving blob GETs without Authorization.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { request } from 'undici';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRedirectProxy } from '../helpers/redirect-proxy.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { skopeo, tmpDir } from '../helpers/tools.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Monolithic blob upload (POST then PUT ?digest=) straight to `base`, with optional Basic auth. */
async function pushBlob(base: string, repo: string, data: Buffer, authorization?: string): Promise<string> {
  const headers = authorization ? { authorization } : {};
  const post = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  await post.body.dump();
  expect(post.statusCode).toBe(202);
  const loc = new URL(String(post.headers.location), base);
  loc.searchParams.set('digest', digestOf(data));
  const put = await request(loc, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: data,
  });
  await put.body.dump();
  expect(put.statusCode).toBe(201);
  return digestOf(data);
}

async function readAll(body: AsyncIterable<Buffer>): Promise<{ bytes: number; error?: unknown }> {
  let bytes = 0;
  try {
    for await (const c of body) bytes += c.length;
  } catch (error) {
    return { bytes, error };
  }
  return { bytes };
}

describe('fault proxy', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let tmp: { path: string; cleanup(): Promise<void> };
  const blob = randomBytes(100_000);
  let digest: string;
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    tmp = await tmpDir('canvos-proxy-selftest-');
    digest = await pushBlob(reg.url, 'proxy/blob', blob);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    await tmp?.cleanup();
  });
  const blobUrl = () => `${proxy.url}/v2/proxy/blob/blobs/${digest}`;

  it('forwards skopeo push and pull (chunked PATCH uploads, HEAD, Location rewriting)', async () => {
    const layout = join(tmp.path, 'layout');
    const fx = await makeOciLayout(layout, { layers: 2, layerBytes: 200 * 1024 });
    await skopeo([
      'copy',
      '--insecure-policy',
      '--dest-tls-verify=false',
      `oci:${layout}:latest`,
      `docker://${proxy.host}/proxy/img:latest`,
    ]);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${proxy.host}/proxy/img:latest`]);
    expect(digestOf(Buffer.from(raw))).toBe(fx.indexDigest);
    await skopeo([
      'copy',
      '--insecure-policy',
      '--src-tls-verify=false',
      `docker://${proxy.host}/proxy/img:latest`,
      `oci:${join(tmp.path, 'back')}:x`,
    ]);
    const methods = new Set(proxy.requests.map((r) => r.method));
    for (const m of ['POST', 'PUT', 'HEAD', 'GET']) expect(methods).toContain(m);
    expect(proxy.requests.every((r) => r.fault === undefined)).toBe(true);
  });

  it('streams a chunked PATCH body and rewrites the upload Location to the proxy', async () => {
    const data = randomBytes(300_000);
    const post = await request(`${proxy.url}/v2/proxy/chunked/blobs/uploads/`, { method: 'POST' });
    await post.body.dump();
    expect(String(post.headers.location)).toMatch(new RegExp(`^(${proxy.url})?/v2/proxy/chunked/blobs/uploads/`));
    expect(String(post.headers.location)).not.toContain(reg.host);
    const patch = await request(new URL(String(post.headers.location), proxy.url), {
      method: 'PATCH',
      body: Readable.from([data.subarray(0, 150_000), data.subarray(150_000)]),
    });
    await patch.body.dump();
    expect(patch.statusCode).toBe(202);
    expect(patch.headers.range).toBe(`0-${data.length - 1}`);
    const loc = new URL(String(patch.headers.location), proxy.url);
    expect(loc.host).toBe(proxy.host);
    loc.searchParams.set('digest', digestOf(data));
    const put = await request(loc, { method: 'PUT' });
    await put.body.dump();
    expect(put.statusCode).toBe(201);
    const head = await request(`${proxy.url}/v2/proxy/chunked/blobs/${digestOf(data)}`, { method: 'HEAD' });
    expect(head.headers['content-length']).toBe(String(data.length));
  });

  it('reset destroys the socket before any response', async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\//, action: { kind: 'reset' } });
    await expect(request(blobUrl())).rejects.toMatchObject({
      code: expect.stringMatching(/ECONNRESET|UND_ERR_SOCKET/),
    });
    expect(proxy.requests.at(-1)?.fault).toBe('reset');
    const ok = await request(blobUrl());
    expect((await readAll(ok.body)).bytes).toBe(blob.length);
  });

  it('reset-mid-body sends headers and exactly N bytes, then drops the connection', async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\//, action: { kind: 'reset-mid-body', afterBytes: 30_000 } });
    const res = await request(blobUrl());
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(blob.length));
    const got = await readAll(res.body);
    expect(got.bytes).toBe(30_000);
    expect(got.error).toBeDefined();
  });

  it('status injects 429 + Retry-After, honouring skip and times', async () => {
    const rule = {
      method: 'HEAD',
      path: /\/blobs\//,
      skip: 1,
      times: 2,
      action: { kind: 'status' as const, status: 429, headers: { 'retry-after': '2' } },
    };
    proxy.addRule(rule);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await request(blobUrl(), { method: 'HEAD' });
      statuses.push(r.statusCode);
      if (r.statusCode === 429) expect(r.headers['retry-after']).toBe('2');
    }
    expect(statuses).toEqual([200, 429, 429, 200]);
    expect(rule).toMatchObject({ hits: 2 });
  });

  it('status answers an upload only after draining its body', async () => {
    proxy.addRule({ method: 'PUT', action: { kind: 'status', status: 500, body: '{"errors":[]}' } });
    const r = await request(`${proxy.url}/v2/proxy/x/blobs/uploads/none?digest=${digest}`, {
      method: 'PUT',
      body: randomBytes(200_000),
    });
    expect(r.statusCode).toBe(500);
    expect(await r.body.text()).toBe('{"errors":[]}');
  });

  it('slow throttles the body to the given rate', async () => {
    proxy.clearRules();
    proxy.addRule({ method: 'GET', path: /\/blobs\//, action: { kind: 'slow', bytesPerSecond: 200_000 } });
    const t0 = Date.now();
    const res = await request(blobUrl());
    const got = await readAll(res.body);
    expect(got).toEqual({ bytes: blob.length });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450); // 100 kB at 200 kB/s
    expect(proxy.requests.at(-1)?.fault).toBe('slow');
  });
});

describe('redirect proxy', () => {
  it('redirects authorized blob GETs to 127.0.0.2, which serves the bytes without seeing Authorization', async () => {
    const reg = await startRegistry({ auth: 'basic' });
    const rp = await startRedirectProxy(reg.url);
    try {
      const authorization = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;
      const data = randomBytes(70_000);
      const digest = await pushBlob(rp.url, 'redir/a', data, authorization);
      const anon = await request(`${rp.url}/v2/redir/a/blobs/${digest}`);
      await anon.body.dump();
      expect(anon.statusCode).toBe(401);
      const res = await request(`${rp.url}/v2/redir/a/blobs/${digest}`, { headers: { authorization } });
      await res.body.dump();
      expect(res.statusCode).toBe(307);
      const loc = new URL(String(res.headers.location));
      expect(loc.host).toBe(rp.storageHost);
      expect(loc.hostname).toBe('127.0.0.2');
      const blob = await request(loc);
      const body = Buffer.from(await blob.body.arrayBuffer());
      expect(body.equals(data)).toBe(true);
      const ranged = await request(loc, { headers: { range: 'bytes=60000-' } });
      expect(ranged.statusCode).toBe(206);
      expect(Buffer.from(await ranged.body.arrayBuffer()).equals(data.subarray(60_000))).toBe(true);
      expect(rp.storageRequests).toHaveLength(2);
      expect(rp.storageRequests[0]!.path).toContain(digest.slice(7));
      expect(rp.storageRequests[0]!.headers.authorization).toBeUndefined();
      const forged = await request(`http://${rp.storageHost}/storage/${digest}?sig=forged`);
      await forged.body.dump();
      expect(forged.statusCode).toBe(403);
    } finally {
      await rp.stop();
      await reg.stop();
    }
  });
});
