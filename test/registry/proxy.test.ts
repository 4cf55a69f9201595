import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/oci/digest.js';
import { Repository } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

// A minimal forward proxy (CONNECT tunnels + absolute-URI requests) that records what went through it:
// HTTP(S)_PROXY / NO_PROXY handling is undici EnvHttpProxyAgent's, this checks we wire it up.
function startForwardProxy(): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const u = new URL(req.url ?? '');
    const up = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const up = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    for (const s of [up, client]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({ url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`, seen, server });
  }));
}

describe('HTTP proxies', () => {
  let reg: TestRegistry;
  let proxy: Awaited<ReturnType<typeof startForwardProxy>>;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'basic' });
    proxy = await startForwardProxy();
  });
  afterAll(async () => {
    proxy?.server.closeAllConnections();
    await new Promise((r) => proxy?.server.close(r));
    await reg?.stop();
  });

  it('goes through the proxy, and around it for NO_PROXY hosts', async () => {
    const data = Buffer.from('through the proxy');
    const desc = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };
    const base = { insecureRegistries: [reg.host], credentials: { username: reg.username, password: reg.password } };
    const viaProxy = new Repository(reg.host, 'proxy/a', { ...base, proxy: { http: proxy.url } });
    expect(await viaProxy.pushBlob(desc, async () => Readable.from([data]))).toBe('uploaded');
    await viaProxy.close();
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(proxy.seen.every((s) => s.includes(reg.host))).toBe(true);
    const n = proxy.seen.length;
    const bypass = new Repository(reg.host, 'proxy/a', { ...base, proxy: { http: proxy.url, noProxy: '127.0.0.1' } });
    expect(await bypass.headBlob(desc.digest)).toEqual({ size: data.length });
    await bypass.close();
    expect(proxy.seen.length).toBe(n);
  });
});
