import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryHttp, repoScope } from '../../src/registry/index.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';

// Token exchange and caching against the real token server, driven through RegistryAuth exactly as the
// transport does after a 401 (no registry needed: the challenge is the one distribution sends).
// The registry's name is on the token server's host: credentials go to a plain-http realm only there.
const REGISTRY = '127.0.0.1:9';

describe('bearer tokens', () => {
  let ts: TokenServer;
  beforeAll(async () => {
    ts = await startTokenServer({ users: { alice: 's3cret' }, expiresIn: 2 });
  });
  afterAll(async () => ts?.stop());

  const challenge = (realm: string) => `Bearer realm="${realm}",service="${ts.service}",scope="repository:x/y:pull"`;

  it('caches a token per scope set and renews it when expires_in runs out', async () => {
    const http = new RegistryHttp(REGISTRY, { credentials: { username: 'alice', password: 's3cret' } });
    const pull = [repoScope('x/y', 'pull')];
    const before = ts.requests.length;
    const scopes = await http.auth.onUnauthorized(challenge(ts.realm), pull, undefined, 'test');
    expect(scopes).toEqual(pull);
    const a1 = await http.auth.authorization(pull);
    const a2 = await http.auth.authorization(pull);
    expect(a1).toMatch(/^Bearer ey/);
    expect(a2).toBe(a1);
    // Concurrent callers share one token request.
    const push = [repoScope('x/y', 'pull,push'), repoScope('other/src', 'pull')];
    const [p1, p2] = await Promise.all([http.auth.authorization(push), http.auth.authorization(push)]);
    expect(p1).toBe(p2);
    expect(p1).not.toBe(a1);
    const reqs = ts.requests.slice(before);
    expect(reqs.map((r) => r.scopes.sort())).toEqual([
      ['repository:x/y:pull'],
      ['repository:other/src:pull', 'repository:x/y:pull,push'],
    ]);
    expect(reqs.every((r) => r.authorized && r.account === 'alice')).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    await http.auth.authorization(pull);
    expect(ts.requests.length - before).toBe(3);
    await http.close();
  });

  it('wrong password: ERR_REGISTRY_AUTH without the password', async () => {
    const http = new RegistryHttp(REGISTRY, { credentials: { username: 'alice', password: 'nope-nope-42' } });
    await http.auth.onUnauthorized(challenge(ts.realm), ['repository:x/y:pull'], undefined, 'test');
    let err: (Error & { code?: string; hint?: string }) | undefined;
    try {
      await http.auth.authorization(['repository:x/y:pull']);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toMatchObject({ code: 'ERR_REGISTRY_AUTH' });
    expect(`${err?.message} ${err?.hint}`).not.toContain('nope-nope-42');
    await http.close();
  });

  it('identity tokens use the OAuth2 refresh_token POST, and fall back to GET + Basic when POST is 404', async () => {
    const form = new URLSearchParams({
      grant_type: 'password',
      username: 'alice',
      password: 's3cret',
      service: ts.service,
      client_id: 't',
      access_type: 'offline',
    });
    const r = await fetch(ts.realm, { method: 'POST', body: form });
    const refresh = ((await r.json()) as { refresh_token: string }).refresh_token;
    const before = ts.requests.length;
    const http = new RegistryHttp(REGISTRY, { credentials: { identityToken: refresh } });
    await http.auth.onUnauthorized(challenge(ts.realm), ['repository:x/y:pull'], undefined, 'test');
    expect(await http.auth.authorization(['repository:x/y:pull'])).toMatch(/^Bearer /);
    expect(ts.requests.slice(before)).toEqual([
      expect.objectContaining({ method: 'POST', grantType: 'refresh_token', authorized: true }),
    ]);
    await http.close();

    // A token endpoint without OAuth2 (older ACR): POST answers 404, the client retries with GET.
    const proxy = await startFaultProxy(ts.url, [
      { method: 'POST', times: Infinity, action: { kind: 'status', status: 404 } },
    ]);
    try {
      const h2 = new RegistryHttp(REGISTRY, {
        credentials: { username: 'alice', password: 's3cret', identityToken: refresh },
      });
      await h2.auth.onUnauthorized(challenge(`${proxy.url}/token`), ['repository:x/y:pull'], undefined, 'test');
      const from = ts.requests.length;
      expect(await h2.auth.authorization(['repository:x/y:pull'])).toMatch(/^Bearer /);
      expect(proxy.requests.map((q) => q.method)).toEqual(['POST', 'GET']);
      expect(ts.requests.slice(from)).toEqual([
        expect.objectContaining({ method: 'GET', authorized: true, account: 'alice' }),
      ]);
      await h2.close();
    } finally {
      await proxy.stop();
    }
  });
});

describe('token realm policy', () => {
  it('credentials never go to a plain-http realm on another host; a non-http realm is refused', async () => {
    const ts = await startTokenServer({ users: { alice: 's3cret' } });
    try {
      const http = new RegistryHttp('reg.example', { credentials: { username: 'alice', password: 's3cret' } });
      const c = `service="${ts.service}",scope="repository:x/y:pull"`;
      await http.auth.onUnauthorized(`Bearer realm="${ts.realm}",${c}`, ['repository:x/y:pull'], undefined, 'test');
      await http.auth.authorization(['repository:x/y:pull']).catch(() => undefined);
      expect(ts.requests.length).toBeGreaterThan(0);
      expect(ts.requests.every((q) => !q.authorized)).toBe(true);
      const bad = new RegistryHttp('reg.example', { credentials: { username: 'alice', password: 's3cret' } });
      await bad.auth.onUnauthorized(`Bearer realm="file:///etc/passwd",${c}`, ['repository:x/y:pull'], undefined, 't');
      await expect(bad.auth.authorization(['repository:x/y:pull'])).rejects.toMatchObject({
        code: 'ERR_REGISTRY_AUTH',
        message: expect.stringMatching(/token realm with scheme file:/) as unknown,
      });
      await Promise.all([http.close(), bad.close()]);
    } finally {
      await ts.stop();
    }
  });
});
