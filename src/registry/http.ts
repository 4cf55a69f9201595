/**
 * The HTTP transport to one registry: an undici dispatcher with extra CAs / skip-verify / env proxies,
 * plain HTTP only for registries listed as insecure, a small per-registry concurrency limit, retries with
 * backoff and `Retry-After`, authentication on 401, and manual redirects that send Authorization only to
 * the registry's own host:port (never to S3/GCS pre-signed storage URLs).
 */
import { finished } from 'node:stream';
import { debuglog } from 'node:util';
import type { Dispatcher } from 'undici';
import { CanvosError, RegistryHttpError, redactUrl } from '../errors.js';
import { createDispatcher } from '../http/dispatcher.js';
import { dropResponse, requestFollowing, type BodyFactory, type HttpResponse } from '../http/request.js';
import {
  DEFAULT_TIMEOUT_MS,
  isNetworkError,
  parseRetryAfter,
  RETRYABLE_STATUS,
  retryPolicy,
  withRetries,
} from '../http/retry.js';
import { request } from '../http/undici.js';
import { once } from '../util/once.js';
import { DEFAULT_CONCURRENCY, Semaphore } from '../util/semaphore.js';
import { RegistryAuth } from './auth.js';
import { extraRangedSlots, type BlobPartsOptions } from './blob-parts.js';
import { PartScheduler } from './blob-parts-scheduler.js';
import { loadRegistryCerts } from './certs-d.js';
import type { RegistryHttpOptions } from './http-options.js';
import { networkError } from './network-error.js';
import { readTokenBody } from './token.js';
import { normalizeRegistry, registryEndpoint } from './reference.js';

const debug = debuglog('canvos');

export type { RegistryHttpOptions } from './http-options.js';
export { header, type BodyFactory } from '../http/request.js';

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
  /**
   * A Range part of a blob read in parts (blob-parts.ts): it may take one of the extra connections reserved for
   * those (BlobPartsOptions.connections) before a slot of the request limit.
   */
  ranged?: boolean | undefined;
  /** Called once the request holds one of the registry's request slots (before it is sent). */
  onSlot?: (() => void) | undefined;
}

/** A response; `body` must be consumed or dumped (it holds a concurrency slot until it ends). */
export type RegistryResponse = HttpResponse;

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
  /** Slots only ranged parts take, beyond the request limit (undefined: none). */
  private readonly rangedSem: Semaphore | undefined;
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
    this.sem.onFree = () => {
      this.parts.kick();
    };
    this.blobParts = opts.blobParts;
    const extra = extraRangedSlots(this.slots, opts.blobParts);
    if (extra > 0) {
      this.rangedSem = new Semaphore(extra);
      this.rangedSem.onFree = () => {
        this.parts.kick();
      };
    }
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

  /** The request limit (RegistryHttpOptions.concurrency). */
  get slots(): number {
    return Math.max(1, Math.floor(this.opts.concurrency ?? DEFAULT_CONCURRENCY));
  }

  /** Hands idle request slots (and the extra ones of ranged parts) to blobs read in ranged parts (blob-parts.ts). */
  readonly parts: PartScheduler = new PartScheduler({
    base: () => this.sem.available,
    extra: () => this.rangedSem?.available ?? 0,
    extraTotal: () => extraRangedSlots(this.slots, this.blobParts),
    total: () => this.slots + extraRangedSlots(this.slots, this.blobParts),
  });

  /** A request slot: a ranged part takes a free extra slot first. */
  private acquire(req: RegistryRequest): Promise<() => void> {
    const r = this.rangedSem;
    if (req.ranged && r && r.available > 0) return r.acquire(req.signal);
    return this.sem.acquire(req.signal);
  }

  /**
   * Start what the first request needs that involves no network (the certs.d lookup, the connection pool) so it
   * overlaps other work; its errors surface at that first request.
   */
  prepare(): void {
    this.dispatcher().catch(() => {});
  }

  private dispatcher(): Promise<Dispatcher> {
    this.dispatcherP ??= this.opts.dispatcher
      ? Promise.resolve(this.opts.dispatcher)
      : loadRegistryCerts(this.opts, this.endpoint)
          .then((certs) => createDispatcher(this.opts, certs))
          .then((d) => (this.ownDispatcher = d));
    return this.dispatcherP;
  }

  private async tokenRequest(
    url: string,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal?: AbortSignal | undefined },
  ): Promise<{ status: number; text: string; retryAfter: string | string[] | undefined }> {
    const dispatcher = await this.dispatcher();
    return withRetries({
      ...retryPolicy(this.opts.retry, this.opts.timeoutMs),
      signal: init.signal,
      run: async () => {
        const res = await request(url, {
          method: init.method,
          headers: { 'user-agent': this.opts.userAgent ?? 'canvos-lite', ...init.headers },
          body: init.body ?? null,
          dispatcher,
          signal: init.signal ?? null,
        });
        const text = await readTokenBody(res.body, url);
        if (debug.enabled) debug('token %s %s -> %d', init.method, redactUrl(url), res.statusCode);
        return { status: res.statusCode, text, retryAfter: res.headers['retry-after'] };
      },
      retryable: (r) => (RETRYABLE_STATUS.has(r.status) ? { retryAfterMs: parseRetryAfter(r.retryAfter) } : undefined),
      fail: (e) => networkError(`token request to ${new URL(url).host}`, e, this.opts.timeoutMs),
    });
  }

  /** Resolve a registry path or absolute URL. */
  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : new URL(path, this.baseUrl).toString();
  }

  /**
   * Send a request: authentication, redirects, retries on transient failures. Any status is returned;
   * callers check it. Throws ERR_NETWORK after the last failed attempt, ERR_ABORTED on abort.
   */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const policy = retryPolicy(this.opts.retry, this.opts.timeoutMs);
    const what = (): string => `${req.method} ${redactUrl(this.url(req.path))}`;
    const held = new WeakMap<RegistryResponse, () => void>();
    const res = await withRetries({
      ...policy,
      attempts: req.retry === false ? 1 : policy.attempts,
      signal: req.signal,
      run: async () => {
        const release = await this.acquire(req);
        req.onSlot?.();
        try {
          const r = await this.sendAuthenticated(req);
          held.set(r, release);
          return r;
        } catch (e) {
          release();
          throw e;
        }
      },
      retryable: (r) =>
        RETRYABLE_STATUS.has(r.status) ? { retryAfterMs: parseRetryAfter(r.headers['retry-after']) } : undefined,
      discard: (r) => {
        dropResponse(r);
        held.get(r)?.();
      },
      fail: (e) => (CanvosError.is(e) ? e : networkError(what(), e, this.opts.timeoutMs)),
      onRetry: (why, attempt, wait) => {
        debug('registry %s: %s; retrying in %d ms (%d/%d)', what(), why, Math.round(wait), attempt, policy.attempts);
      },
    });
    const release = once(() => held.get(res)?.());
    finished(res.body, release);
    res.body.once('close', release);
    return res;
  }

  /** One attempt with up to two authentication rounds. */
  private async sendAuthenticated(req: RegistryRequest): Promise<RegistryResponse> {
    const dispatcher = await this.dispatcher();
    const origin = new URL(this.baseUrl).origin;
    let scopes = [...req.scopes];
    for (let round = 0; ; round++) {
      const auth = await this.auth.authorization(scopes, req.signal);
      const res = await requestFollowing(dispatcher, {
        method: req.method,
        url: this.url(req.path),
        headers: {
          'user-agent': this.opts.userAgent ?? 'canvos-lite',
          'accept-encoding': 'identity',
          ...req.headers,
        },
        body: req.body,
        signal: req.signal,
        auth: auth === undefined ? undefined : { value: auth, origin },
        maxRedirects: this.opts.maxRedirects ?? 5,
        errorCode: 'ERR_REGISTRY_HTTP',
        loopHint: 'the registry or a proxy is in a redirect loop, or redirects to a scheme other than http(s)',
        label: 'registry',
      });
      if (res.status !== 401 || round >= 2) return res;
      dropResponse(res);
      scopes = await this.auth.onUnauthorized(
        res.headers['www-authenticate'],
        scopes,
        auth,
        `${req.method} ${new URL(this.url(req.path)).pathname}`,
      );
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
