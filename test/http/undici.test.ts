// src/http/undici.ts loads undici's Agent, EnvHttpProxyAgent and request API from undici's own files instead of its
// index (README "CLI start-up": ~60 ms CPU and ~6 MiB RSS per CLI run). These tests pin that shortcut: they fail
// when an undici update moves those files, changes what they export, or changes what the index adds to Dispatcher.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Agent, EnvHttpProxyAgent, request } from '../../src/http/undici.js';

const require = createRequire(import.meta.url);

describe('undici internals used by src/http/undici.ts', () => {
  it('are the very classes undici’s public index exports', async () => {
    const undici = await import('undici');
    expect(Agent).toBe(undici.Agent);
    expect(EnvHttpProxyAgent).toBe(undici.EnvHttpProxyAgent);
  });

  it('give Dispatcher.prototype the same request API the index installs', async () => {
    const undici = await import('undici');
    const api = require('undici/lib/api/index.js') as Record<string, unknown>;
    expect(Object.keys(api).sort()).toEqual(['connect', 'pipeline', 'request', 'stream', 'upgrade']);
    const proto = undici.Dispatcher.prototype as unknown as Record<string, unknown>;
    for (const [name, fn] of Object.entries(api)) expect(proto[name], name).toBe(fn);
  });

  it('is pinned to the undici minor it was written against (package.json "~7.30")', () => {
    const pkg = require('undici/package.json') as { version: string };
    expect(pkg.version).toMatch(/^7\.30\./);
  });

  it('makes a real request through an Agent (method, headers, body, status)', async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(201, { 'x-seen': `${req.method ?? ''} ${req.url ?? ''} ${String(req.headers['x-test'])}` });
        res.end(body.toUpperCase());
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = new Agent();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/p?q=1`;
      const res = await request(url, { dispatcher: agent, method: 'PUT', headers: { 'x-test': 'yes' }, body: 'abc' });
      expect(res.statusCode).toBe(201);
      expect(res.headers['x-seen']).toBe('PUT /p?q=1 yes');
      expect(await res.body.text()).toBe('ABC');
    } finally {
      await agent.close();
      await new Promise((r) => server.close(r));
    }
  });
});
