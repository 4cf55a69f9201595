/**
 * One HTTP request with manual redirects, the one redirect loop of the house (registries and downloads): up to
 * `maxRedirects` hops, 303 (and 301/302 after POST) switch to GET without a body, only http(s) targets, and the
 * Authorization header goes only to its own origin, never to the storage host a registry or release page
 * redirects to (S3/GCS pre-signed URLs).
 */
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import type { Dispatcher } from 'undici';
import { CanvosError, redactUrl, type ErrorCode } from '../errors.js';
import { request } from './undici.js';

const debug = debuglog('canvos');

/** A streaming body source; called again for every (re)send so retries and redirects get fresh bytes. */
export type BodyFactory = () => Readable | Promise<Readable>;

/** A response; `body` must be consumed or dumped. */
export interface HttpResponse {
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

/** One request of {@link requestFollowing}. */
export interface FollowRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Buffer | string | BodyFactory | undefined;
  signal?: AbortSignal | undefined;
  /** `authorization` header value, sent only to `authOrigin` (scheme://host:port). */
  auth?: { value: string; origin: string } | undefined;
  /** Redirects followed. */
  maxRedirects: number;
  /** Error code and hint of a redirect loop / unsupported redirect target. */
  errorCode: ErrorCode;
  loopHint: string;
  /** Prefix of the NODE_DEBUG=canvos line of each hop, e.g. `registry`. */
  label: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Drain a body that is dropped (a redirect, a retried answer), ignoring its errors. */
export function dropResponse(res: { body: Readable }): void {
  res.body.resume();
  res.body.on('error', () => {});
}

/** Send `req` and follow redirects; any final status is returned. */
export async function requestFollowing(dispatcher: Dispatcher, req: FollowRequest): Promise<HttpResponse> {
  let url = req.url;
  let method = req.method;
  let withBody = true;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { ...req.headers };
    if (req.auth && new URL(url).origin === req.auth.origin) headers.authorization = req.auth.value;
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
        method,
        headers,
        body,
        dispatcher,
        signal: req.signal ?? null,
        // undici closes the connection after every HEAD (undici#258, servers that send a body anyway) unless told
        // not to: a new connection (a TLS handshake on a real registry) per existence check. Registries answer HEAD
        // correctly, and llhttp still skips a HEAD response's body by its method.
        ...(method === 'HEAD' ? { reset: false } : {}),
      });
    } catch (e) {
      dropBody();
      throw e;
    }
    // The URL is parsed and redacted only when NODE_DEBUG=canvos is on (it was on every request's path).
    if (debug.enabled)
      debug(
        '%s %s %s -> %d (%d ms)%s',
        req.label,
        method,
        redactUrl(url),
        r.statusCode,
        Date.now() - t0,
        headers.authorization ? ' [auth]' : '',
      );
    const res: HttpResponse = { status: r.statusCode, headers: r.headers, body: r.body, url };
    if (r.statusCode >= 300) dropBody();
    const loc = header(res, 'location');
    if (!REDIRECTS.has(r.statusCode) || !loc) return res;
    dropResponse(res);
    if (hop >= req.maxRedirects) {
      throw new CanvosError(
        req.errorCode,
        `${req.method} ${redactUrl(req.url)}: more than ${req.maxRedirects} redirects`,
        { hint: req.loopHint },
      );
    }
    const next = new URL(loc, url);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new CanvosError(
        req.errorCode,
        `${req.method} ${redactUrl(url)}: redirect to unsupported scheme ${next.protocol}`,
        { hint: req.loopHint },
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
