// URL file sources: streamed download verified against sha256 (served by a real node:http server on 127.0.0.1).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildLayer } from '../../src/layers/build.js';
import { readLayer } from '../../src/layers/read.js';
import { tempDir } from './helpers.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';

const BODY = Buffer.from('#!/bin/sh\necho etcdctl\n'.repeat(5000));
const GOOD = createHash('sha256').update(BODY).digest('hex');
const WRONG = 'a'.repeat(64);

let server: Server;
let base: string;
let t: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  t = await tempDir('download');
  server = createServer((req, res) => {
    if (req.url?.startsWith('/etcdctl')) {
      res.writeHead(200, { 'content-length': BODY.length });
      res.end(BODY);
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/etcdctl' });
      res.end();
    } else {
      res.writeHead(404);
      res.end('not here');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await t.cleanup();
});

const layerWith = (url: string, sha256: string, dir: string) =>
  buildLayer(
    { entries: [{ type: 'file', path: '/usr/bin/etcdctl', source: { url, sha256 }, mode: 0o755 }] },
    { dir: join(t.dir, dir) },
  );

describe('url file source', () => {
  it('downloads, verifies and stores the file (also through a redirect, sha256: prefix accepted)', async () => {
    for (const [url, sha, dir] of [
      [`${base}/etcdctl`, GOOD, 'ok'],
      [`${base}/moved`, `sha256:${GOOD}`, 'ok2'],
    ] as const) {
      const r = await layerWith(url, sha, dir);
      const files: Array<[string, string]> = [];
      for await (const e of readLayer(createReadStream(r.path))) {
        const h = createHash('sha256');
        for await (const c of e.content ?? []) h.update(c as Buffer);
        if (e.type === 'file') files.push([e.path, h.digest('hex')]);
      }
      expect(files).toEqual([['usr/bin/etcdctl', GOOD]]);
    }
  });

  it('fails with ERR_DOWNLOAD naming the URL (redacted) and both digests on a checksum mismatch, leaving no files', async () => {
    const err = await layerWith(`${base}/etcdctl?token=s3cr3t`, WRONG, 'bad').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DOWNLOAD' });
    const msg = (err as Error).message;
    expect(msg).toContain(`${base}/etcdctl`);
    expect(msg).toContain(`sha256:${GOOD}`);
    expect(msg).toContain(`sha256:${WRONG}`);
    expect(msg).not.toContain('s3cr3t');
    expect((err as { hint?: string }).hint).toMatch(/sha256/);
    expect(await readdir(join(t.dir, 'bad'))).toEqual([]);
  });

  it('fails with ERR_DOWNLOAD on HTTP errors and ERR_CONFIG on a malformed sha256', async () => {
    await expect(layerWith(`${base}/missing`, GOOD, 'e404')).rejects.toMatchObject({
      code: 'ERR_DOWNLOAD',
      message: expect.stringContaining('HTTP 404'),
    });
    await expect(layerWith(`${base}/etcdctl`, 'md5:abc', 'emal')).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });
});

describe('url file source behind an HTTP proxy', () => {
  it('goes through HTTP_PROXY from the environment, redirect included', async () => {
    const fwd = await startForwardProxy();
    const saved = {
      HTTP_PROXY: process.env.HTTP_PROXY,
      http_proxy: process.env.http_proxy,
      NO_PROXY: process.env.NO_PROXY,
      no_proxy: process.env.no_proxy,
    };
    process.env.HTTP_PROXY = fwd.url;
    for (const k of ['http_proxy', 'NO_PROXY', 'no_proxy']) Reflect.deleteProperty(process.env, k);
    try {
      const layer = await layerWith(`${base}/moved`, GOOD, 'proxied');
      const files: string[] = [];
      for await (const e of readLayer(createReadStream(layer.path))) {
        files.push(e.path);
        if ('content' in e && e.content) e.content.resume();
      }
      expect(files).toContain('usr/bin/etcdctl');
      // undici tunnels plain-HTTP targets through the proxy with CONNECT.
      expect(fwd.seen.length).toBeGreaterThan(0);
      expect(new Set(fwd.seen)).toEqual(new Set([`CONNECT ${new URL(base).host}`]));
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) Reflect.deleteProperty(process.env, k);
        else process.env[k] = v;
      }
      fwd.server.closeAllConnections();
      await new Promise((r) => fwd.server.close(r));
    }
  });
});

describe('url file source over a faulty link (the registry client’s retry and timeout)', () => {
  const fast = { retry: { baseDelayMs: 10 } };

  it('retries a download that fails twice (reset mid-body, then 503) and then succeeds', async () => {
    const proxy = await startFaultProxy(base, [
      { path: /^\/etcdctl/, times: 1, action: { kind: 'reset-mid-body', afterBytes: 1000 } },
      { path: /^\/etcdctl/, skip: 1, times: 1, action: { kind: 'status', status: 503 } },
    ]);
    try {
      const layer = await buildLayer(
        {
          entries: [{ type: 'file', path: '/usr/bin/etcdctl', source: { url: `${proxy.url}/etcdctl`, sha256: GOOD } }],
        },
        { dir: join(t.dir, 'flaky'), download: fast },
      );
      const h = createHash('sha256');
      for await (const e of readLayer(createReadStream(layer.path))) {
        if ('content' in e && e.content) for await (const c of e.content) h.update(c as Buffer);
      }
      expect(h.digest('hex')).toBe(GOOD);
      expect(proxy.requests.map((r) => r.fault ?? 'ok')).toEqual(['reset-mid-body', 'status 503', 'ok']);
      expect((await readdir(join(t.dir, 'flaky'))).filter((f) => f.startsWith('.'))).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('a stalled download (no headers, or a body that stops) ends within the timeout with ERR_DOWNLOAD', async () => {
    for (const action of [{ kind: 'stall' }, { kind: 'stall-mid-body', afterBytes: 1000 }] as const) {
      const proxy = await startFaultProxy(base, [{ path: /^\/etcdctl/, times: Infinity, action }]);
      const t0 = Date.now();
      try {
        await expect(
          buildLayer(
            { entries: [{ type: 'file', path: '/e', source: { url: `${proxy.url}/etcdctl`, sha256: GOOD } }] },
            { dir: join(t.dir, `stall-${action.kind}`), download: { ...fast, timeoutMs: 400 } },
          ),
        ).rejects.toMatchObject({ code: 'ERR_DOWNLOAD', message: expect.stringMatching(/no progress within \d+ s/) });
        // undici checks its timeouts on a ~0.5 s tick: an attempt ends 0.4–1.1 s in; the retry budget (twice the
        // timeout) leaves room for one more attempt at most.
        expect(Date.now() - t0).toBeLessThan(3500);
        expect(proxy.requests.length).toBeGreaterThanOrEqual(1);
        expect(proxy.requests.length).toBeLessThanOrEqual(2);
        expect(await readdir(join(t.dir, `stall-${action.kind}`))).toEqual([]);
      } finally {
        await proxy.stop();
      }
    }
  });

  it('does not retry a 404 or a digest mismatch', async () => {
    const proxy = await startFaultProxy(base);
    try {
      await expect(layerWith(`${proxy.url}/missing`, GOOD, 'n404')).rejects.toMatchObject({ code: 'ERR_DOWNLOAD' });
      await expect(layerWith(`${proxy.url}/etcdctl`, WRONG, 'nbad')).rejects.toMatchObject({ code: 'ERR_DOWNLOAD' });
      expect(proxy.requests.length).toBe(2);
    } finally {
      await proxy.stop();
    }
  });
});
