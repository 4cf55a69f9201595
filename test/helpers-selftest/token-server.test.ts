/**
 * Self-tests of the token server against a real bearer-auth distribution registry: anonymous tokens carry no
 * access (the registry refuses them), tokens grant exactly the requested actions, wrong passwords are refused,
 * and the OAuth2 POST flow issues and honours refresh tokens. Secrets never appear in the request log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { libtrustKeyId } from '../helpers/token-server.js';
import { run } from '../helpers/tools.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry({ auth: 'bearer', username: 'alice' });
});
afterAll(async () => {
  await reg?.stop();
});

const basic = () => `Basic ${Buffer.from(`alice:${reg.password}`).toString('base64')}`;
const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as { access: unknown[] } & Record<
    string,
    unknown
  >;
async function getToken(scopes: string[], authorization?: string): Promise<Response> {
  const q = new URLSearchParams({ service: reg.tokenServer!.service });
  for (const s of scopes) q.append('scope', s);
  return fetch(`${reg.tokenServer!.realm}?${q.toString()}`, { headers: authorization ? { authorization } : {} });
}
const catalog = (token: string) => fetch(`${reg.url}/v2/_catalog`, { headers: { authorization: `Bearer ${token}` } });

describe('token server', () => {
  it('the registry challenges with the token server realm and service', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer realm="${reg.tokenServer!.realm}",service="${reg.tokenServer!.service}"`,
    );
  });

  it('grants authenticated users exactly the requested actions, which the registry accepts', async () => {
    const res = await getToken(
      ['repository:a/b:pull', 'registry:catalog:*', 'repository:c/d:pull,push,bogus'],
      basic(),
    );
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(300);
    const c = claims(body.token);
    expect(c).toMatchObject({ sub: 'alice', aud: reg.tokenServer!.service, iss: reg.tokenServer!.issuer });
    expect(c.access).toEqual([
      { type: 'repository', name: 'a/b', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'c/d', actions: ['pull', 'push'] },
    ]);
    expect((await catalog(body.token)).status).toBe(200);
    // A pull-only token cannot start an upload.
    const up = await fetch(`${reg.url}/v2/a/b/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${body.token}` },
    });
    expect(up.status).toBe(401);
    expect(up.headers.get('www-authenticate')).toContain('insufficient_scope');
    const last = reg.tokenServer!.requests.at(-1)!;
    expect(last).toEqual({
      method: 'GET',
      scopes: ['repository:a/b:pull', 'registry:catalog:*', 'repository:c/d:pull,push,bogus'],
      account: 'alice',
      authorized: true,
    });
  });

  it('anonymous callers get a token without access; wrong passwords get 401', async () => {
    const anon = (await (await getToken(['registry:catalog:*'])).json()) as { token: string };
    expect(claims(anon.token).access).toEqual([]);
    expect((await catalog(anon.token)).status).toBe(401);
    expect(
      (await getToken(['registry:catalog:*'], `Basic ${Buffer.from('alice:nope').toString('base64')}`)).status,
    ).toBe(401);
    expect(reg.tokenServer!.requests.slice(-2).map((r) => r.authorized)).toEqual([false, false]);
  });

  it('POST password grant with access_type=offline issues a refresh token usable for later grants', async () => {
    const post = (form: Record<string, string>) =>
      fetch(reg.tokenServer!.realm, {
        method: 'POST',
        body: new URLSearchParams({ service: reg.tokenServer!.service, client_id: 'selftest', ...form }),
      });
    const first = (await (
      await post({
        grant_type: 'password',
        username: 'alice',
        password: reg.password!,
        access_type: 'offline',
        scope: 'registry:catalog:*',
      })
    ).json()) as {
      access_token: string;
      refresh_token: string;
    };
    expect(first.refresh_token).toMatch(/^[0-9a-f]{48}$/);
    expect((await catalog(first.access_token)).status).toBe(200);
    const noOffline = (await (
      await post({ grant_type: 'password', username: 'alice', password: reg.password! })
    ).json()) as Record<string, unknown>;
    expect(noOffline.refresh_token).toBeUndefined();
    const refreshed = await post({
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token,
      scope: 'registry:catalog:* repository:x/y:pull',
    });
    const body = (await refreshed.json()) as { access_token: string };
    expect(claims(body.access_token).access).toHaveLength(2);
    expect((await catalog(body.access_token)).status).toBe(200);
    expect((await post({ grant_type: 'refresh_token', refresh_token: 'forged' })).status).toBe(401);
    expect((await post({ grant_type: 'password', username: 'alice', password: 'nope' })).status).toBe(401);
    const log = JSON.stringify(reg.tokenServer!.requests);
    expect(log).not.toContain(reg.password!);
    expect(log).not.toContain(first.refresh_token);
    expect(
      reg.tokenServer!.requests.filter((r) => r.method === 'POST').map((r) => [r.grantType, r.authorized]),
    ).toEqual([
      ['password', true],
      ['password', true],
      ['refresh_token', true],
      ['refresh_token', false],
      ['password', false],
    ]);
  });

  it('signs with a libtrust kid that distribution resolves from its rootcertbundle', async () => {
    const r = await startRegistry({ auth: 'bearer', tokenKeyHeader: 'kid', tokenExpiresIn: 60 });
    try {
      const q = new URLSearchParams({ service: r.tokenServer!.service, scope: 'registry:catalog:*' });
      const auth = `Basic ${Buffer.from(`${r.username}:${r.password}`).toString('base64')}`;
      const body = (await (
        await fetch(`${r.tokenServer!.realm}?${q.toString()}`, { headers: { authorization: auth } })
      ).json()) as { token: string; expires_in: number };
      expect(body.expires_in).toBe(60);
      const header = JSON.parse(Buffer.from(body.token.split('.')[0]!, 'base64url').toString('utf8')) as {
        x5c?: unknown;
        kid?: string;
      };
      expect(header.x5c).toBeUndefined();
      // Independent check of the kid: openssl's DER SubjectPublicKeyInfo of the bundle certificate.
      const spki = await run('sh', [
        '-c',
        `openssl x509 -in ${r.tokenServer!.certPath} -pubkey -noout | openssl pkey -pubin -outform DER | base64 -w0`,
      ]);
      expect(header.kid).toBe(libtrustKeyId(Buffer.from(spki.stdout, 'base64')));
      expect(header.kid).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
      expect((await fetch(`${r.url}/v2/_catalog`, { headers: { authorization: `Bearer ${body.token}` } })).status).toBe(
        200,
      );
    } finally {
      await r.stop();
    }
  });
});
