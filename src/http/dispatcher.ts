/**
 * Connection options for registries and the undici dispatcher built from them: CAs and client certificates
 * (containers-certs.d, `certsDir`, `caFiles`: certs-d.ts), TLS verification, and HTTP(S)_PROXY / NO_PROXY through
 * undici's EnvHttpProxyAgent.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { CredentialOptions } from '../registry/credentials.js';
import { DEFAULT_TIMEOUT_MS, type RetryOptions } from './retry.js';
import type { BlobPartsOptions } from '../registry/blob-parts.js';
import { Agent, EnvHttpProxyAgent } from './undici.js';
import { loadRegistryCerts } from '../registry/certs-d.js';

/** Connection options shared by every registry a client talks to. */
export interface RegistryHttpOptions extends CredentialOptions {
  /** Registries (`host[:port]`) reached over plain HTTP instead of HTTPS. Default: []. */
  insecureRegistries?: string[] | undefined;
  /** Verify TLS certificates. Default: true. */
  tlsVerify?: boolean | undefined;
  /**
   * Certificate directory for every registry, like skopeo's `--cert-dir`: CAs (`*.crt`, `*.pem`), a client pair
   * (`NAME.cert` + `NAME.key`), and the same per `<host[:port]>/` sub-directory. Replaces the certs.d search
   * (`certsDirs`). Default: none.
   */
  certsDir?: string | undefined;
  /** Extra CA certificate files (PEM). Default: []. */
  caFiles?: string[] | undefined;
  /**
   * containers-certs.d roots searched for `<host[:port]>/` (CAs `*.crt`, client pair `NAME.cert` + `NAME.key`);
   * the first existing one is used. Default: `~/.config/containers/certs.d`, `/etc/containers/certs.d`,
   * `/etc/docker/certs.d` (certs-d.ts).
   */
  certsDirs?: string[] | undefined;
  /**
   * Connect, response-header and body-idle timeout in ms: the longest wait for a connection, for the response
   * headers, and between two body chunks (not a total: a large blob may take long). Credential helpers get the same.
   * Default: 30000 (DEFAULT_TIMEOUT_MS).
   */
  timeoutMs?: number | undefined;
  /** Retry policy. Default: 5 attempts, 500 ms base, 30 s cap, a budget of twice the timeout. */
  retry?: RetryOptions | undefined;
  /**
   * Requests in flight per registry; a streaming response body holds its slot until consumed. Copying between two
   * repositories of one registry must use two RegistryHttp instances (the transports do), or a PUT fed by a GET
   * on the same instance can starve. Default: 8 (DEFAULT_CONCURRENCY, as the copy engine's blob concurrency).
   */
  concurrency?: number | undefined;
  /** Redirects followed per request. Default: 5. */
  maxRedirects?: number | undefined;
  /** User-Agent header. Default: `canvos-lite`. */
  userAgent?: string | undefined;
  /**
   * Proxy settings, same meaning as HTTP_PROXY / HTTPS_PROXY / NO_PROXY (undici EnvHttpProxyAgent semantics).
   * Default: taken from the environment.
   */
  proxy?: { http?: string | undefined; https?: string | undefined; noProxy?: string | undefined } | undefined;
  /**
   * Parallel ranged reads of large blobs (blob-parts.ts): a blob of 2 MiB+ whose one stream turns out slow takes
   * idle connections for Range parts of up to 8 MiB (or halves of its longest stream), 6 streams at most, 64 MiB
   * read-ahead per process; `false` reads every blob with one GET. Default: on.
   */
  blobParts?: BlobPartsOptions | false | undefined;
  /** Use this undici dispatcher instead of building one (TLS/proxy options are then ignored). Default: none. */
  dispatcher?: Dispatcher | undefined;
}

/** Build the dispatcher for one registry endpoint (TLS options + proxies from options or the environment). */
export async function createDispatcher(opts: RegistryHttpOptions, endpoint: string): Promise<Dispatcher> {
  const certs = await loadRegistryCerts(opts, endpoint);
  const cas = certs.cas;
  if (cas.length) {
    // An explicit `ca` replaces Node's default store, which would drop NODE_EXTRA_CA_CERTS / SSL_CERT_FILE: re-add them.
    for (const f of [process.env.NODE_EXTRA_CA_CERTS, process.env.SSL_CERT_FILE]) {
      if (f) cas.push(await readFile(f, 'utf8').catch(() => ''));
    }
  }
  const tls = {
    rejectUnauthorized: opts.tlsVerify !== false,
    ...(cas.length ? { ca: [...rootCertificates, ...cas] } : {}),
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
