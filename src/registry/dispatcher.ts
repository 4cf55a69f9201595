/**
 * Connection options for registries and the undici dispatcher built from them: extra CAs (`certsDir`, `caFiles`),
 * TLS verification, and HTTP(S)_PROXY / NO_PROXY through undici's EnvHttpProxyAgent.
 */
import { readdir, readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import { CanvosError } from '../errors.js';
import type { CredentialOptions } from './credentials.js';
import { DEFAULT_TIMEOUT_MS, type RetryOptions } from './retry.js';
import type { BlobPartsOptions } from './blob-parts.js';
import { Agent, EnvHttpProxyAgent } from './undici-lite.js';

/** Connection options shared by every registry a client talks to. */
export interface RegistryHttpOptions extends CredentialOptions {
  /** Registries (`host[:port]`) reached over plain HTTP instead of HTTPS. Default: []. */
  insecureRegistries?: string[] | undefined;
  /** Verify TLS certificates. Default: true. */
  tlsVerify?: boolean | undefined;
  /** Directory of extra CA certificates (`*.crt`, `*.pem`, and `<host[:port]>/` sub-directories). Default: none. */
  certsDir?: string | undefined;
  /** Extra CA certificate files (PEM). Default: []. */
  caFiles?: string[] | undefined;
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

/** Load every CA certificate from `caFiles` and `certsDir` (top level and the `host[:port]` sub-directory). */
async function loadCAs(opts: RegistryHttpOptions, endpoint: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of opts.caFiles ?? []) out.push(await readCertificate(f));
  const dirs = opts.certsDir ? [opts.certsDir, `${opts.certsDir}/${endpoint}`] : [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      if (dir !== opts.certsDir && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new CanvosError('ERR_CONFIG', `cannot read certificates directory ${dir}: ${(e as Error).message}`, { hint: 'check the certsDir option' });
    }
    for (const n of names.sort()) if (/\.(crt|pem)$/.test(n)) out.push(await readCertificate(`${dir}/${n}`));
  }
  return out;
}

/** Read a PEM file of CA certificates; unreadable, empty or unparsable files are ERR_CONFIG naming the file. */
async function readCertificate(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CanvosError('ERR_CONFIG', `cannot read CA certificate ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e, hint: 'check the file and its permissions' });
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (!blocks.length) throw new Error('no PEM certificate block');
    for (const b of blocks) new X509Certificate(b);
  } catch (e) {
    throw new CanvosError('ERR_CONFIG', `CA certificate ${file} is not a valid PEM certificate (${(e as Error).message})`, { cause: e, hint: 'give PEM files (-----BEGIN CERTIFICATE-----), or remove the file from the certificates directory' });
  }
  return text;
}

/** Build the dispatcher for one registry endpoint (TLS options + proxies from options or the environment). */
export async function createDispatcher(opts: RegistryHttpOptions, endpoint: string): Promise<Dispatcher> {
  const cas = await loadCAs(opts, endpoint);
  if (cas.length) {
    // An explicit `ca` replaces Node's default store, which would drop NODE_EXTRA_CA_CERTS / SSL_CERT_FILE: re-add them.
    for (const f of [process.env.NODE_EXTRA_CA_CERTS, process.env.SSL_CERT_FILE]) {
      if (f) cas.push(await readFile(f, 'utf8').catch(() => ''));
    }
  }
  const tls = { rejectUnauthorized: opts.tlsVerify !== false, ...(cas.length ? { ca: [...rootCertificates, ...cas] } : {}) };
  const env = process.env;
  const p = opts.proxy ?? {};
  const httpProxy = p.http ?? env.http_proxy ?? env.HTTP_PROXY;
  const httpsProxy = p.https ?? env.https_proxy ?? env.HTTPS_PROXY;
  // No total deadline: a multi-GiB layer may take long; undici's timeouts are idle gaps, which is what we want.
  const t = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const common = { connect: { ...tls, timeout: t }, headersTimeout: t, bodyTimeout: t };
  if (!httpProxy && !httpsProxy) return new Agent(common);
  return new EnvHttpProxyAgent({ ...common, requestTls: tls, httpProxy, httpsProxy, noProxy: p.noProxy ?? env.no_proxy ?? env.NO_PROXY ?? '' });
}
