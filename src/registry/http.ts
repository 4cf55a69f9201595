/**
 * The HTTP transport to one registry: an undici dispatcher with extra CAs / skip-verify / env proxies,
 * plain HTTP only for registries listed as insecure, a small per-registry concurrency limit, retries with
 * backoff and `Retry-After`, authentication on 401, and manual redirects that send Authorization only to
 * the registry's own host:port (never to S3/GCS pre-signed storage URLs).
 */
import { finished, type Readable } from 'node:stream';
import { debuglog } from 'node:util';
import type { Dispatcher } from 'undici';
import { abortError, CanvosError, RegistryHttpError, redactUrl } from '../errors.js';
import { RegistryAuth } from './auth.js';
import { createDispatcher, type RegistryHttpOptions } from './dispatcher.js';
import { normalizeRegistry, registryEndpoint } from './reference.js';
import {
  backoffDelay,
  DEFAULT_TIMEOUT_MS,
  isNetworkError,
  networkError,
  parseRetryAfter,
  RETRYABLE_STATUS,
  sleep,
} from './retry.js';
import { DEFAULT_CONCURRENCY, Semaphore } from './semaphore.js';
import { PartScheduler, type BlobPartsOptions } from './blob-parts.js';
import { readTokenBody } from './token.js';
import { request } from './undici-lite.js';

const debug = debuglog('canvos');

export type { RegistryHttpOptions } from './dispatcher.js';

/** A streaming body source; called again for every (re)send so retries and redirects get fresh bytes. */
export type BodyFactory = () => Readable | Promise<Readable>;

/** One request to the registry. */
export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path + query on the registry (`/v2/...`) or an absolute URL (upload `Location`). */
  path: string;
  /** Token scopes this request needs, e.g. `repository:foo:pull`. */
  scopes: readonly string[];
  headers?: Record<string, string> | undefined;
  body?: Buffer | string | BodyFactory | undefined;
  /** Retry transient failures. Default: true. */
  retry?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Called once the request holds one of the registry's request slots (before it is sent). */
  onSlot?: (() => void) | undefined;
}

/** A response; `body` must be consumed or dumped (it holds a concurrency slot until it ends). */
export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The final URL (after redirects). */
  url: string;
}

/** First value of a header. */
export function header(
  res: { headers: Record<string, string | string[] | undefined> },
  name: string,
): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Read a whole (small) body as a Buffer, failing past `limit` bytes. */
export async function readBody(res: RegistryResponse, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw new CanvosError('ERR_MANIFEST_INVALID', `${what} is larger than ${limit} bytes`, {
        hint: 'this is not a manifest, or the registry is misbehaving',
      });
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Turn an unexpected response into a RegistryHttpError (reads a short excerpt of the body). */
export async function httpError(res: RegistryResponse, method: string, hint?: string): Promise<RegistryHttpError> {
  let text = '';
  try {
    text = (await readBody(res, 64 * 1024, 'error body')).toString('utf8');
  } catch {
    res.body.destroy();
  }
  return new RegistryHttpError(method, res.url, res.status, text, hint ? { hint } : {});
}

/** HTTP access to one registry. Create one per registry and close it when done. */
export class RegistryHttp {
  /** Canonical registry name. */
  readonly registry: string;
  /** `host[:port]` contacted. */
  readonly endpoint: string;
  /** `https://endpoint` or `http://endpoint`. */
  readonly baseUrl: string;
  readonly auth: RegistryAuth;
  /** Ranged-read tuning for blobs read through this transport (RegistryHttpOptions.blobParts). */
  readonly blobParts: BlobPartsOptions | false | undefined;
  private readonly opts: RegistryHttpOptions;
  private readonly sem: Semaphore;
  private dispatcherP: Promise<Dispatcher> | undefined;
  private ownDispatcher: Dispatcher | undefined;

  constructor(registry: string, opts: RegistryHttpOptions = {}) {
    this.registry = normalizeRegistry(registry);
    this.endpoint = registryEndpoint(this.registry);
    this.opts = opts;
    const insecure = (opts.insecureRegistries ?? []).some((h) => {
      const n = normalizeRegistry(h);
      return n === this.registry || n === this.endpoint;
    });
    this.baseUrl = `${insecure ? 'http' : 'https'}://${this.endpoint}`;
    this.sem = new Semaphore(opts.concurrency ?? DEFAULT_CONCURRENCY);
    this.sem.onFree = () => this.parts.kick();
    this.blobParts = opts.blobParts;
    this.auth = new RegistryAuth(this.registry, (url, init) => this.tokenRequest(url, init), opts);
  }

  /** The connect/header/body-idle timeout in ms (RegistryHttpOptions.timeoutMs). */
  get timeoutMs(): number {
    return this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** A broken blob read as ERR_NETWORK naming the registry (a CanvosError is kept as it is). */
  readError(what: string, e: unknown): Error {
    return CanvosError.is(e) || !isNetworkError(e)
      ? (e as Error)
      : networkError(`${what} from ${this.baseUrl}`, e, this.timeoutMs);
  }

  /** Request slots free right now (see RegistryHttpOptions.concurrency). */
  get idleSlots(): number {
    return this.sem.available;
  }

  /** The request limit (RegistryHttpOptions.concurrency). */
  get slots(): number {
    return this.opts.concurrency ?? DEFAULT_CONCURRENCY;
  }

  /** Hands idle request slots to blobs read in ranged parts (blob-parts.ts). */
  readonly parts: PartScheduler = new PartScheduler(
    () => this.idleSlots,
    () => this.slots,
  );

  private dispatcher(): Promise<Dispatcher> {
    this.dispatcherP ??= this.opts.dispatcher
      ? Promise.resolve(this.opts.dispatcher)
      : createDispatcher(this.opts, this.endpoint).then((d) => (this.ownDispatcher = d));
    return this.dispatcherP;
  }

  private async tokenRequest(
    url: string,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal?: AbortSignal | undefined },
  ): Promise<{ status: number; text: string }> {
    const dispatcher = await this.dispatcher();
    const retry = this.opts.retry ?? {};
    const attempts = retry.attempts ?? 5;
    const within = this.budget();
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await request(url, {
          method: init.method,
          headers: { 'user-agent': this.opts.userAgent ?? 'canvos-lite', ...init.headers },
          body: init.body ?? null,
          dispatcher,
          signal: init.signal ?? null,
        });
        const text = await readTokenBody(res.body, url);
        debug('token %s %s -> %d', init.method, redactUrl(url), res.statusCode);
        const wait = backoffDelay(attempt, retry, parseRetryAfter(res.headers['retry-after']));
        if (RETRYABLE_STATUS.has(res.statusCode) && attempt < attempts && within(wait)) {
          await sleep(wait, init.signal);
          continue;
        }
        return { status: res.statusCode, text };
      } catch (e) {
        if (init.signal?.aborted) throw abortError(init.signal);
        if (CanvosError.is(e)) throw e;
        const wait = backoffDelay(attempt, retry);
        if (!isNetworkError(e) || attempt >= attempts || !within(wait))
          throw networkError(`token request to ${new URL(url).host}`, e, this.opts.timeoutMs);
        await sleep(wait, init.signal);
      }
    }
  }

  /** A check that a retry after `waitMs` still fits the retry budget (RetryOptions.budgetMs) started now. */
  private budget(): (waitMs: number) => boolean {
    const budget = this.opts.retry?.budgetMs ?? 2 * (this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const started = Date.now();
    return (waitMs) => Date.now() - started + waitMs < budget;
  }

  /** Resolve a registry path or absolute URL. */
  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : new URL(path, this.baseUrl).toString();
  }

  /** True when `url` is on the registry's own scheme+host:port (the only place credentials may go). */
  private sameOrigin(url: string): boolean {
    return new URL(url).origin === new URL(this.baseUrl).origin;
  }

  /**
   * Send a request: authentication, redirects, retries on transient failures. Any status is returned;
   * callers check it. Throws ERR_NETWORK after the last failed attempt, ERR_ABORTED on abort.
   */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const retry = this.opts.retry ?? {};
    const attempts = req.retry === false ? 1 : (retry.attempts ?? 5);
    const within = this.budget();
    for (let attempt = 1; ; attempt++) {
      if (req.signal?.aborted) throw abortError(req.signal);
      const release = await this.sem.acquire(req.signal);
      req.onSlot?.();
      let res: RegistryResponse;
      try {
        res = await this.sendAuthenticated(req);
      } catch (e) {
        release();
        if (req.signal?.aborted) throw abortError(req.signal);
        const wait = backoffDelay(attempt, retry);
        if (!isNetworkError(e) || attempt >= attempts || !within(wait))
          throw CanvosError.is(e)
            ? e
            : networkError(`${req.method} ${redactUrl(this.url(req.path))}`, e, this.opts.timeoutMs);
        debug(
          'registry %s %s: %s; retrying (%d/%d)',
          req.method,
          redactUrl(this.url(req.path)),
          (e as Error).message,
          attempt,
          attempts,
        );
        await sleep(wait, req.signal);
        continue;
      }
      const wait = backoffDelay(attempt, retry, parseRetryAfter(res.headers['retry-after']));
      if (RETRYABLE_STATUS.has(res.status) && attempt < attempts && within(wait)) {
        debug(
          'registry %s %s -> %d; retrying in %d ms (%d/%d)',
          req.method,
          redactUrl(res.url),
          res.status,
          Math.round(wait),
          attempt,
          attempts,
        );
        res.body.resume();
        res.body.on('error', () => {});
        release();
        await sleep(wait, req.signal);
        continue;
      }
      let released = false;
      const once = (): void => {
        if (!released) {
          released = true;
          release();
        }
      };
      finished(res.body, once);
      res.body.once('close', once);
      return res;
    }
  }

  /** One attempt with up to two authentication rounds. */
  private async sendAuthenticated(req: RegistryRequest): Promise<RegistryResponse> {
    let scopes = [...req.scopes];
    for (let round = 0; ; round++) {
      const auth = await this.auth.authorization(scopes, req.signal);
      const res = await this.sendFollowing(req, auth);
      if (res.status !== 401 || round >= 2) return res;
      res.body.resume();
      res.body.on('error', () => {});
      scopes = await this.auth.onUnauthorized(
        res.headers['www-authenticate'],
        scopes,
        auth,
        `${req.method} ${new URL(this.url(req.path)).pathname}`,
      );
    }
  }

  /** One send plus manual redirects; Authorization goes only to the registry's own origin. */
  private async sendFollowing(req: RegistryRequest, auth: string | undefined): Promise<RegistryResponse> {
    const dispatcher = await this.dispatcher();
    let url = this.url(req.path);
    let method: string = req.method;
    let withBody = true;
    const max = this.opts.maxRedirects ?? 5;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {
        'user-agent': this.opts.userAgent ?? 'canvos-lite',
        'accept-encoding': 'identity',
        ...req.headers,
      };
      if (auth !== undefined && this.sameOrigin(url)) headers.authorization = auth;
      let body: Buffer | string | Readable | null = null;
      if (withBody && req.body !== undefined) body = typeof req.body === 'function' ? await req.body() : req.body;
      if (!withBody) {
        delete headers['content-length'];
        delete headers['content-type'];
      }
      const t0 = Date.now();
      // A streamed request body that is not sent to the end (early answer, error) must be destroyed, or the
      // source it reads from (often another registry's blob GET) keeps its connection and concurrency slot.
      const dropBody = (): void => {
        if (body !== null && typeof body === 'object' && 'destroy' in body && !body.readableEnded) body.destroy();
      };
      let r: Dispatcher.ResponseData;
      try {
        r = await request(url, {
          method: method as Dispatcher.HttpMethod,
          headers,
          body,
          dispatcher,
          signal: req.signal ?? null,
        });
      } catch (e) {
        dropBody();
        throw e;
      }
      debug(
        'registry %s %s -> %d (%d ms)%s',
        method,
        redactUrl(url),
        r.statusCode,
        Date.now() - t0,
        headers.authorization ? ' [auth]' : '',
      );
      const res: RegistryResponse = { status: r.statusCode, headers: r.headers, body: r.body, url };
      if (r.statusCode >= 300) dropBody();
      if (![301, 302, 303, 307, 308].includes(r.statusCode)) return res;
      const loc = header(res, 'location');
      if (!loc) return res;
      if (hop >= max) {
        r.body.resume();
        throw new CanvosError(
          'ERR_REGISTRY_HTTP',
          `${req.method} ${redactUrl(this.url(req.path))}: more than ${max} redirects`,
          { hint: 'the registry or a proxy is in a redirect loop' },
        );
      }
      r.body.resume();
      r.body.on('error', () => {});
      const next = new URL(loc, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new CanvosError(
          'ERR_REGISTRY_HTTP',
          `${req.method} ${redactUrl(url)}: redirect to unsupported scheme ${next.protocol}`,
          { hint: 'the registry is misconfigured' },
        );
      }
      url = next.toString();
      // 303 (and 301/302 after POST, as browsers do) switch to GET without a body.
      if (r.statusCode === 303 || ((r.statusCode === 301 || r.statusCode === 302) && method === 'POST')) {
        method = 'GET';
        withBody = false;
      }
    }
  }

  /**
   * Check that the registry speaks the distribution API and that the credentials work (`GET /v2/`, the
   * `docker login` check). Returns the auth scheme in use; throws ERR_REGISTRY_AUTH / ERR_REGISTRY_HTTP / ERR_NETWORK.
   */
  async ping(opts: { signal?: AbortSignal | undefined } = {}): Promise<{ auth: 'none' | 'basic' | 'bearer' }> {
    const res = await this.send({ method: 'GET', path: '/v2/', scopes: [], signal: opts.signal });
    if (res.status !== 200)
      throw await httpError(
        res,
        'GET',
        res.status === 404 ? 'this host does not serve the registry API at /v2/' : undefined,
      );
    res.body.resume();
    return { auth: this.auth.scheme };
  }

  /** Close the dispatcher (only the one this object created). */
  async close(): Promise<void> {
    const d = this.ownDispatcher;
    this.ownDispatcher = undefined;
    this.dispatcherP = undefined;
    if (d) await d.close();
  }
}
