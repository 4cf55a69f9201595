/**
 * A real Docker bearer token server for distribution's `auth: token` mode: an EC P-256 key with a self-signed
 * certificate (made by the openssl CLI) that the registry trusts as its rootcertbundle, and ES256 JWTs carrying the
 * certificate in the `x5c` header (or, optionally, the key's libtrust `kid`, which distribution also accepts).
 * GET /token is the docker token flow, POST /token the OAuth2 flow (password and refresh_token grants).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { run } from './tools.js';

/** One request the token server answered (passwords and tokens are never recorded). */
export interface TokenRequest {
  method: string;
  /** Every requested scope, e.g. 'repository:canvos/app:pull,push' (repeated params and space lists flattened). */
  scopes: string[];
  /** The authenticated user, else the `account` parameter. */
  account?: string;
  /** True when valid credentials or a valid refresh token came with the request. */
  authorized: boolean;
  /** POST only: the OAuth2 grant_type. */
  grantType?: string;
}

/** A running token server (see the file header). */
export interface TokenServer {
  url: string;
  /** The realm registries send in their Bearer challenge: `${url}/token`. */
  realm: string;
  service: string;
  requests: TokenRequest[];
  stop(): Promise<void>;
  /** Extra: the `iss` claim of every token. */
  issuer: string;
  /** Extra: PEM certificate file to use as the registry's rootcertbundle. */
  certPath: string;
  /** Extra: access-token lifetime in seconds. */
  expiresIn: number;
}

/** Options of {@link startTokenServer}. */
export interface TokenServerOptions {
  /** username → password accepted via Basic auth (GET) or the password grant (POST). */
  users: Record<string, string>;
  /** The `service` / `aud` value. Default: 'canvos-test-registry'. */
  service?: string;
  /** The `iss` claim. Default: 'canvos-test-token-issuer'. */
  issuer?: string;
  /** Access-token lifetime in seconds. Default: 300. */
  expiresIn?: number;
  /** Directory for key and certificate. Default: a fresh temp dir removed by stop(). */
  dir?: string;
  /**
   * How a JWT names its signing key: the certificate chain (`x5c`) or the libtrust key ID (`kid`) that
   * distribution computes for every key in its rootcertbundle. Default: 'x5c'.
   */
  keyHeader?: 'x5c' | 'kid';
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** libtrust key ID: sha256 of the DER SubjectPublicKeyInfo, first 240 bits, base32 in 12 ':'-joined groups of 4. */
export function libtrustKeyId(spkiDer: Buffer): string {
  const bits = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let acc = 0;
  let n = 0;
  for (const byte of bits) {
    acc = (acc << 8) | byte;
    n += 8;
    while (n >= 5) {
      out += alphabet.charAt((acc >>> (n - 5)) & 31);
      n -= 5;
    }
    acc &= (1 << n) - 1;
  }
  return out.match(/.{4}/g)!.join(':');
}
const GRANTABLE = new Set(['pull', 'push', 'delete', '*']);

/** Splits 'type:name:actions' (name may itself contain ':'); undefined when malformed. */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function basicUser(req: IncomingMessage): { user: string; pass: string } | undefined {
  const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (!m?.[1]) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { user: text.slice(0, i), pass: text.slice(i + 1) };
}

/** Starts the token server on a free 127.0.0.1 port. */
export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const service = opts.service ?? 'canvos-test-registry';
  const issuer = opts.issuer ?? 'canvos-test-token-issuer';
  const expiresIn = opts.expiresIn ?? 300;
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'canvos-token-')));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyPath = join(dir, 'token-key.pem');
  const certPath = join(dir, 'token-cert.pem');
  await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const r = await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-sha256',
    '-key',
    keyPath,
    '-subj',
    '/CN=canvos-test-token',
    '-days',
    '2',
    '-out',
    certPath,
  ]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  const pem = await readFile(certPath, 'utf8');
  const der = pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
  const keyRef =
    opts.keyHeader === 'kid'
      ? { kid: libtrustKeyId(publicKey.export({ type: 'spki', format: 'der' })) }
      : { x5c: [der] };
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', ...keyRef }));
  const refreshTokens = new Map<string, string>(); // refresh token → username
  const requests: TokenRequest[] = [];

  const mint = (key: KeyObject, subject: string, scopes: string[], authorized: boolean): string => {
    const now = Math.floor(Date.now() / 1000);
    // Anonymous callers get a valid token with no access, so the registry answers 401 insufficient_scope.
    const access = authorized
      ? scopes.flatMap((s) => {
          const p = parseScope(s);
          const actions = p?.actions.filter((a) => GRANTABLE.has(a)) ?? [];
          return p && actions.length > 0 ? [{ type: p.type, name: p.name, actions }] : [];
        })
      : [];
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const input = `${header}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 wants the raw r||s signature, not DER.
    return `${input}.${b64url(sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }))}`;
  };
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const deny = (res: ServerResponse): void =>
    json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== '/token') return json(res, 404, { errors: [{ code: 'NOT_FOUND' }] });
    const issuedAt = new Date().toISOString();
    if (req.method === 'GET') {
      const scopes = url.searchParams
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean);
      const basic = basicUser(req);
      const authorized =
        basic !== undefined && Object.hasOwn(opts.users, basic.user) && opts.users[basic.user] === basic.pass;
      const account = basic?.user ?? url.searchParams.get('account') ?? undefined;
      requests.push({ method: 'GET', scopes, account, authorized });
      if (basic && !authorized) return deny(res);
      const token = mint(privateKey, account ?? '', scopes, authorized);
      return json(res, 200, { token, access_token: token, expires_in: expiresIn, issued_at: issuedAt });
    }
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const grantType = form.get('grant_type') ?? undefined;
      const scopes = form
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean);
      let user: string | undefined;
      let refresh: string | undefined;
      if (grantType === 'password') {
        const u = form.get('username') ?? '';
        if (Object.hasOwn(opts.users, u) && opts.users[u] === form.get('password')) user = u;
        if (user !== undefined && form.get('access_type') === 'offline') {
          refresh = randomBytes(24).toString('hex');
          refreshTokens.set(refresh, user);
        }
      } else if (grantType === 'refresh_token') {
        const t = form.get('refresh_token') ?? '';
        user = refreshTokens.get(t);
        if (user !== undefined) refresh = t;
      }
      requests.push({
        method: 'POST',
        scopes,
        account: user ?? form.get('username') ?? undefined,
        authorized: user !== undefined,
        grantType,
      });
      if (user === undefined) return deny(res);
      const token = mint(privateKey, user, scopes, true);
      return json(res, 200, {
        access_token: token,
        token_type: 'Bearer',
        expires_in: expiresIn,
        issued_at: issuedAt,
        scope: scopes.join(' '),
        ...(refresh ? { refresh_token: refresh } : {}),
      });
    }
    res.writeHead(405, { allow: 'GET, POST' }).end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath,
    expiresIn,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
