/**
 * The undici dispatcher every HTTP client of the house uses (registries and `{url, sha256}` downloads): TLS
 * verification, extra CAs and a client certificate (loaded by the caller, e.g. registry/certs-d.ts), the
 * connect/header/body-idle timeout, and HTTP(S)_PROXY / NO_PROXY through undici's EnvHttpProxyAgent.
 */
import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { DEFAULT_TIMEOUT_MS, type RetryOptions } from './retry.js';
import { Agent, EnvHttpProxyAgent } from './undici.js';

/** Connection options of any HTTP client here (registries, downloads). */
export interface HttpOptions {
  /** Verify TLS certificates. Default: true. */
  tlsVerify?: boolean | undefined;
  /**
   * Connect, response-header and body-idle timeout in ms: the longest wait for a connection, for the response
   * headers, and between two body chunks (not a total: a large blob may take long). Credential helpers get the same.
   * Default: 30000 (DEFAULT_TIMEOUT_MS).
   */
  timeoutMs?: number | undefined;
  /** Retry policy. Default: 5 attempts, 500 ms base, 30 s cap, a budget of twice the timeout. */
  retry?: RetryOptions | undefined;
  /** Redirects followed per request. Default: 5. */
  maxRedirects?: number | undefined;
  /** User-Agent header. Default: `canvos-lite`. */
  userAgent?: string | undefined;
  /**
   * Proxy settings, same meaning as HTTP_PROXY / HTTPS_PROXY / NO_PROXY (undici EnvHttpProxyAgent semantics).
   * Default: taken from the environment.
   */
  proxy?: { http?: string | undefined; https?: string | undefined; noProxy?: string | undefined } | undefined;
  /** Use this undici dispatcher instead of building one (TLS/proxy options are then ignored). Default: none. */
  dispatcher?: Dispatcher | undefined;
}

/** TLS material for one host: extra PEM CAs (added to Node's roots) and an optional client pair. */
export interface TlsMaterial {
  cas: string[];
  client?: { cert: string; /** PEM private key: never logged. */ key: string } | undefined;
}

/** Build a dispatcher (TLS options + proxies from options or the environment). */
export async function createDispatcher(opts: HttpOptions, certs: TlsMaterial = { cas: [] }): Promise<Dispatcher> {
  const cas = [...certs.cas];
  if (cas.length) {
    // An explicit `ca` replaces Node's default store, which would drop NODE_EXTRA_CA_CERTS / SSL_CERT_FILE: re-add them.
    for (const f of [process.env.NODE_EXTRA_CA_CERTS, process.env.SSL_CERT_FILE]) {
      if (f) cas.push(await readFile(f, 'utf8').catch(() => ''));
    }
  }
  const tls = {
    rejectUnauthorized: opts.tlsVerify !== false,
    // node:tls only when it is needed here (undici loads it itself for its first https connection).
    ...(cas.length ? { ca: [...process.getBuiltinModule('node:tls').rootCertificates, ...cas] } : {}),
    ...(certs.client ? { cert: certs.client.cert, key: certs.client.key } : {}),
  };
  const env = process.env;
  const p = opts.proxy ?? {};
  const httpProxy = p.http ?? env.http_proxy ?? env.HTTP_PROXY;
  const httpsProxy = p.https ?? env.https_proxy ?? env.HTTPS_PROXY;
  // No total deadline: a multi-GiB layer may take long; undici's timeouts are idle gaps, which is what we want.
  const t = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const common = { connect: { ...tls, timeout: t }, headersTimeout: t, bodyTimeout: t };
  if (!httpProxy && !httpsProxy) return new Agent(common);
  return new EnvHttpProxyAgent({
    ...common,
    requestTls: tls,
    httpProxy,
    httpsProxy,
    noProxy: p.noProxy ?? env.no_proxy ?? env.NO_PROXY ?? '',
  });
}
