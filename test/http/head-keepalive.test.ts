// undici closes the connection after every HEAD unless the request says `reset: false`; requestFollowing does, so
// existence checks (blob and manifest HEADs) reuse one connection like any other request (a TLS handshake saved each).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/http/undici.js';
import { requestFollowing } from '../../src/http/request.js';

describe('HEAD requests', () => {
  it('keep their connection for the next request (404 and 200 with Content-Length, as registries answer)', async () => {
    let connections = 0;
    const server = createServer((req, res) => {
      const found = req.url?.endsWith('/yes') === true;
      res.writeHead(found ? 200 : 404, { 'content-length': found ? '1048576' : '157' });
      res.end(req.method === 'HEAD' ? undefined : found ? Buffer.alloc(1048576) : 'x'.repeat(157));
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const agent = new Agent({ connections: 1 });
    try {
      const statuses: number[] = [];
      for (const [method, path] of [
        ['HEAD', '/no'],
        ['HEAD', '/yes'],
        ['GET', '/no'],
        ['HEAD', '/no'],
        ['HEAD', '/yes'],
      ] as const) {
        const r = await requestFollowing(agent, {
          method,
          url: `${base}${path}`,
          headers: {},
          maxRedirects: 0,
          errorCode: 'ERR_REGISTRY_HTTP',
          loopHint: '',
          label: 'test',
        });
        const body = Buffer.concat(await r.body.toArray());
        expect(body.length).toBe(method === 'HEAD' ? 0 : 157);
        statuses.push(r.status);
      }
      expect(statuses).toEqual([404, 200, 404, 404, 200]);
      expect(connections).toBe(1);
    } finally {
      await agent.close();
      await new Promise((r) => server.close(r));
    }
  });
});
