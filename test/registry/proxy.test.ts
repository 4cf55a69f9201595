import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import { RegistryRepository } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startForwardProxy } from '../helpers/forward-proxy.js';

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
    const viaProxy = new RegistryRepository(reg.host, 'proxy/a', { ...base, proxy: { http: proxy.url } });
    expect(await viaProxy.pushBlob(desc, async () => Readable.from([data]))).toBe('uploaded');
    await viaProxy.close();
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(proxy.seen.every((s) => s.includes(reg.host))).toBe(true);
    const n = proxy.seen.length;
    const bypass = new RegistryRepository(reg.host, 'proxy/a', {
      ...base,
      proxy: { http: proxy.url, noProxy: '127.0.0.1' },
    });
    expect(await bypass.headBlob(desc.digest)).toEqual({ size: data.length });
    await bypass.close();
    expect(proxy.seen.length).toBe(n);
  });
});
