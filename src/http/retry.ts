/**
 * Retry policy for registry traffic: which failures are transient (network resets, 408/429/5xx),
 * exponential backoff with full jitter, `Retry-After` (seconds or HTTP date, capped), abortable sleeps, the retry
 * budget and timeout helpers, and the ERR_NETWORK error a failed request ends in (naming the host).
 */
import { CanvosError } from '../errors.js';
import { clientCertError } from '../registry/certs-d.js';

/** Retry tuning. */
export interface RetryOptions {
  /** Total attempts for one request, including the first. Default: 5. */
  attempts?: number | undefined;
  /** First backoff delay in ms; doubles each attempt. Default: 500. */
  baseDelayMs?: number | undefined;
  /** Largest backoff delay (and cap on Retry-After) in ms. Default: 30000. */
  maxDelayMs?: number | undefined;
  /**
   * Total time budget of one request's attempts in ms: no retry starts (and no backoff sleeps) past it, so a server
   * that never answers ends the request after about this long. Default: twice the timeout (60 s).
   */
  budgetMs?: number | undefined;
}

/** Default connect, response-header and body-idle timeout of registry requests (ms). */
export const DEFAULT_TIMEOUT_MS = 30_000;

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** True for a timeout (connect, response headers, body idle) anywhere in the cause chain. */
export function isTimeoutError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const err = cur as { code?: string; cause?: unknown };
    if (err.code && TIMEOUT_CODES.has(err.code)) return true;
    cur = err.cause;
  }
  return false;
}

/**
 * True when a broken read may be resumed: a network error, of which at most one timeout per `state` (one stream),
 * so a server that stalls every time fails after two timeouts instead of one per resume.
 */
export function mayResume(e: unknown, state: { timeouts: number }): boolean {
  if (!isNetworkError(e)) return false;
  if (isTimeoutError(e)) return ++state.timeouts <= 1;
  return true;
}

/** HTTP statuses worth retrying. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** True for connection-level failures (reset, hang up, broken pipe, timeouts) that a retry may cure. */
export function isNetworkError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const err = cur as { code?: string; message?: string; cause?: unknown; name?: string };
    if (err.code && NETWORK_CODES.has(err.code)) return true;
    if (
      err.message &&
      /socket hang up|other side closed|terminated|premature close|ECONNRESET|EPIPE/i.test(err.message)
    )
      return true;
    cur = err.cause;
  }
  return false;
}

/** Parse `Retry-After` (delta seconds or HTTP date) into ms, or undefined. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Delay before attempt `attempt` (1 = the first retry): Retry-After when given (capped), else jittered backoff. */
export function backoffDelay(attempt: number, opts: RetryOptions, retryAfterMs?: number): number {
  const max = opts.maxDelayMs ?? 30_000;
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, max);
  const base = opts.baseDelayMs ?? 500;
  const exp = Math.min(max, base * 2 ** (attempt - 1));
  // "Equal jitter": at least half the exponential step, so retries never hammer a struggling registry.
  return exp / 2 + Math.random() * (exp / 2);
}

/** Wrap a connection failure as ERR_NETWORK. */
export function networkError(what: string, e: unknown, timeoutMs?: number): CanvosError {
  const msg = e instanceof Error ? e.message : String(e);
  const code = String((e as { code?: unknown }).code ?? '');
  const clientCert = clientCertError(what, e);
  if (clientCert) return clientCert;
  const host =
    /^\S+ (\w+:\/\/[^/\s]+)/.exec(what)?.[1]?.replace(/^\w+:\/\//, '') ??
    /\bto (\S+)$/.exec(what)?.[1] ??
    'the registry';
  if (isTimeoutError(e)) {
    const s = Math.round((timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000);
    const phase =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'no connection'
        : code === 'UND_ERR_BODY_TIMEOUT'
          ? 'the response body stalled'
          : 'no response';
    return new CanvosError('ERR_NETWORK', `${what} failed: ${phase} within ${s} s (${code || 'timeout'})`, {
      cause: e,
      hint: `check that ${host} is up and reachable (proxy settings HTTPS_PROXY/NO_PROXY), or raise --timeout for a slow link`,
    });
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code)) {
    return new CanvosError('ERR_NETWORK', `${what} failed: TLS certificate not trusted (${code})`, {
      cause: e,
      hint: 'add the registry CA with certsDir/caFiles, list the host in insecureRegistries if it speaks plain HTTP, or disable tlsVerify',
    });
  }
  return new CanvosError('ERR_NETWORK', `${what} failed: ${msg}`, {
    cause: e,
    hint: `check the network, proxy settings (HTTPS_PROXY/NO_PROXY) and that ${host} is up`,
  });
}
