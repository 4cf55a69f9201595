/**
 * Retry policy for HTTP traffic (registries and downloads): which failures are transient (network resets,
 * 408/429/5xx), exponential backoff with equal jitter, `Retry-After` (seconds or HTTP date, capped), the retry
 * budget, and the one retry loop ({@link withRetries}) every client runs its attempts through.
 */
import { CanvosError } from '../errors.js';
import { sleep, throwIfAborted } from '../util/abort.js';

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

/** One retry loop: what to run, and how to tell a result or failure worth another attempt. */
export interface RetryLoop<T> {
  /** Attempts in all, including the first. */
  attempts: number;
  /** Backoff tuning. */
  retry: RetryOptions;
  /** No retry starts (and no backoff sleeps) past this many ms since the loop started. */
  budgetMs: number;
  signal?: AbortSignal | undefined;
  /** One attempt (1 = the first). A thrown network error (isNetworkError) is retried. */
  run(attempt: number): Promise<T>;
  /**
   * For a result: undefined to return it, else `{ retryAfterMs }` (the server's Retry-After, when given) to retry.
   * Default: every result is returned.
   */
  retryable?: ((result: T) => { retryAfterMs?: number | undefined } | undefined) | undefined;
  /** Release a result that is dropped for a retry (drain its body…). */
  discard?: ((result: T) => void) | undefined;
  /** The error thrown for a failure that is not retried (the last one, or not a network error). */
  fail: (e: unknown) => unknown;
  /** Told before each backoff sleep: why, the attempt that failed, the wait in ms. */
  onRetry?: ((why: string, attempt: number, waitMs: number) => void) | undefined;
}

/**
 * Run `loop.run` until it returns a result that is not retryable, retrying network failures and retryable results
 * with backoff within the attempt count and the time budget. An abort ends it with ERR_ABORTED.
 */
export async function withRetries<T>(loop: RetryLoop<T>): Promise<T> {
  const started = Date.now();
  const within = (waitMs: number): boolean => Date.now() - started + waitMs < loop.budgetMs;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(loop.signal);
    let result: T;
    try {
      result = await loop.run(attempt);
    } catch (e) {
      throwIfAborted(loop.signal);
      // Already classified (a size cap, corrupt content, …): not a network error to retry or re-wrap.
      if (CanvosError.is(e)) throw e;
      const wait = backoffDelay(attempt, loop.retry);
      if (!isNetworkError(e) || attempt >= loop.attempts || !within(wait)) throw loop.fail(e);
      loop.onRetry?.(e instanceof Error ? e.message : String(e), attempt, wait);
      await sleep(wait, loop.signal);
      continue;
    }
    const again = loop.retryable?.(result);
    if (again) {
      const wait = backoffDelay(attempt, loop.retry, again.retryAfterMs);
      if (attempt < loop.attempts && within(wait)) {
        loop.discard?.(result);
        loop.onRetry?.('retryable response', attempt, wait);
        await sleep(wait, loop.signal);
        continue;
      }
    }
    return result;
  }
}

/** The attempts and time budget of one request under `opts` (RetryOptions defaults; budget twice the timeout). */
export function retryPolicy(
  retry: RetryOptions | undefined,
  timeoutMs: number | undefined,
): { attempts: number; retry: RetryOptions; budgetMs: number } {
  const r = retry ?? {};
  return { attempts: r.attempts ?? 5, retry: r, budgetMs: r.budgetMs ?? 2 * (timeoutMs ?? DEFAULT_TIMEOUT_MS) };
}
