/**
 * Docker/OCI bearer token exchange: GET `realm?service=&scope=` (anonymous or Basic), and OAuth2 POST
 * `grant_type=refresh_token` for identity tokens with a GET fallback when the server answers 404/405 (ACR, ggcr#421).
 * Tokens are cached per scope set until shortly before `expires_in` runs out.
 */
import { debuglog } from 'node:util';
import { CanvosError, RegistryHttpError } from '../errors.js';
import type { AuthChallenge } from './auth-challenge.js';
import type { Credentials } from './credentials.js';

const debug = debuglog('canvos');

/** Minimal HTTP function the token exchange runs on (provided by the registry transport, so proxy/TLS apply). */
export type TokenRequester = (
  url: string,
  init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal?: AbortSignal | undefined },
) => Promise<{ status: number; text: string }>;

/** A bearer token and when it stops being usable (epoch ms). */
export interface BearerToken {
  token: string;
  expiresAt: number;
}

/** Token cache keyed by a caller-chosen key (registry + sorted scopes). */
export class TokenCache {
  private readonly map = new Map<string, BearerToken>();
  /** A token still valid for at least the safety margin, else undefined. */
  get(key: string, now = Date.now()): BearerToken | undefined {
    const t = this.map.get(key);
    if (!t) return undefined;
    if (t.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    return t;
  }
  set(key: string, token: BearerToken): void {
    this.map.set(key, token);
  }
  clear(): void {
    this.map.clear();
  }
}

/** Cache key for a scope set. */
export function scopeKey(registry: string, scopes: readonly string[]): string {
  return `${registry} ${[...new Set(scopes)].sort().join(' ')}`;
}

/** Basic authorization header value for user:password. */
export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** The most a token server may answer (real tokens are a few kB; a bigger one could not be sent as a header). */
export const TOKEN_MAX_BYTES = 1024 * 1024;

/** Read a token server's answer, refusing one larger than {@link TOKEN_MAX_BYTES} (ERR_REGISTRY_AUTH). */
export async function readTokenBody(body: AsyncIterable<unknown> & { destroy(): void }, url: string): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    n += b.length;
    if (n > TOKEN_MAX_BYTES) {
      body.destroy();
      throw new CanvosError('ERR_REGISTRY_AUTH', `token server ${new URL(url).host} answered more than 1 MiB`, {
        hint: 'check the registry token realm (a proxy or captive portal may be answering instead)',
      });
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Whether credentials may go to the token realm of `registry`: always over https, over plain http only on the
 * registry's own host (a challenge naming a foreign http realm must not collect the password in clear text).
 */
function mayReceiveCredentials(realm: URL, registry: string): boolean {
  if (realm.protocol === 'https:') return true;
  const host = new URL(`http://${registry}`).hostname;
  return realm.hostname === host;
}

/** Parse a token server JSON response into a BearerToken (default lifetime 60 s per the token spec). */
function parseTokenResponse(text: string, realmHost: string, now: number): BearerToken {
  let body: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new CanvosError('ERR_REGISTRY_AUTH', `token server ${realmHost} returned a response that is not JSON`, {
      hint: 'check the registry token realm (a proxy or captive portal may be answering instead)',
    });
  }
  const token = body.token || body.access_token;
  if (!token)
    throw new CanvosError('ERR_REGISTRY_AUTH', `token server ${realmHost} returned no token`, {
      hint: 'check the registry auth setup',
    });
  const lifetimeS = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
  const issued = body.issued_at ? Date.parse(body.issued_at) : NaN;
  // Trust the server's issue time only when the clocks roughly agree.
  const start = !Number.isNaN(issued) && Math.abs(issued - now) < 5 * 60_000 ? issued : now;
  // Renew a bit early: 10 % of the lifetime, at most 30 s, so a token never expires mid-request.
  const margin = Math.min(30_000, lifetimeS * 100);
  return { token, expiresAt: start + lifetimeS * 1000 - margin };
}

/**
 * Fetch a bearer token for `scopes` from the challenge's realm. Credentials, when given, go only to the realm
 * (Basic on GET, or the refresh token on POST). Errors name the registry and realm host, never a secret.
 */
export async function fetchBearerToken(
  request: TokenRequester,
  registry: string,
  challenge: AuthChallenge,
  scopes: readonly string[],
  creds: Credentials | undefined,
  signal?: AbortSignal,
): Promise<BearerToken> {
  const realm = challenge.params.realm;
  if (!realm)
    throw new CanvosError('ERR_REGISTRY_AUTH', `registry ${registry} sent a Bearer challenge without a realm`, {
      hint: 'the registry auth configuration is broken',
    });
  let realmUrl: URL;
  try {
    realmUrl = new URL(realm);
  } catch {
    throw new CanvosError('ERR_REGISTRY_AUTH', `registry ${registry} sent an invalid token realm`, {
      hint: 'the registry auth configuration is broken',
    });
  }
  if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:')
    throw new CanvosError(
      'ERR_REGISTRY_AUTH',
      `registry ${registry} sent a token realm with scheme ${realmUrl.protocol}`,
      {
        hint: 'a token realm is an http(s) URL: the registry auth configuration is broken',
      },
    );
  if (creds && !mayReceiveCredentials(realmUrl, registry)) {
    debug('token realm %s is plain http on another host: credentials not sent', realmUrl.host);
    creds = undefined;
  }
  const service = challenge.params.service;
  const now = Date.now();
  const uniqScopes = [...new Set(scopes)];

  if (creds?.identityToken) {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', creds.identityToken);
    form.set('client_id', 'canvos-lite');
    if (service) form.set('service', service);
    if (uniqScopes.length) form.set('scope', uniqScopes.join(' '));
    const res = await request(realmUrl.toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      signal,
    });
    if (res.status >= 200 && res.status < 300) return parseTokenResponse(res.text, realmUrl.host, now);
    if (res.status !== 404 && res.status !== 405) throw tokenError(registry, realmUrl, res.status, res.text);
    // Some servers (older ACR, plain docker token servers) have no OAuth2 endpoint: fall back to GET + Basic.
  }

  const url = new URL(realmUrl.toString());
  if (service) url.searchParams.set('service', service);
  for (const s of uniqScopes) url.searchParams.append('scope', s);
  const headers: Record<string, string> = {};
  const user = creds?.username;
  // On the GET fallback a password (when known) is the safer Basic secret; else the identity token itself.
  const secret = creds?.password ?? creds?.identityToken;
  if (secret !== undefined && (user !== undefined || creds?.identityToken)) {
    const u = user ?? '<token>';
    headers.authorization = basicAuth(u, secret);
    if (user) url.searchParams.set('account', user);
  }
  const res = await request(url.toString(), { method: 'GET', headers, signal });
  if (res.status < 200 || res.status >= 300) throw tokenError(registry, url, res.status, res.text);
  return parseTokenResponse(res.text, url.host, now);
}

function tokenError(registry: string, url: URL, status: number, text: string): CanvosError {
  if (status === 401 || status === 403) {
    return new CanvosError(
      'ERR_REGISTRY_AUTH',
      `token server ${url.host} refused access to ${registry} (HTTP ${status})`,
      {
        hint: 'check the username/password or token for this registry (docker login, --creds, or the auth file)',
      },
    );
  }
  const clean = new URL(url.toString());
  clean.search = '';
  return new RegistryHttpError('GET', clean.toString(), status, text);
}
