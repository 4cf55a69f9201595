/**
 * Download a URL to a file, streamed, verifying its sha256 before the file is moved into place.
 * Used by `{url, sha256}` file sources; a mismatch is ERR_DOWNLOAD naming the URL and both digests.
 * The same HTTP stack as the registry client (http/): redirects (release assets → object storage) up to 5 hops,
 * the connect/header/body-idle timeout (`--timeout`), retries with backoff of connection failures, broken bodies
 * and 408/429/5xx answers, and HTTP(S)_PROXY / NO_PROXY from the options or the environment.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { CanvosError, redactUrl } from '../errors.js';
import { DigestCounter } from '../image/digest.js';
import { createDispatcher, type HttpOptions } from '../http/dispatcher.js';
import { dropResponse, requestFollowing, type HttpResponse } from '../http/request.js';
import {
  DEFAULT_TIMEOUT_MS,
  isNetworkError,
  isTimeoutError,
  parseRetryAfter,
  RETRYABLE_STATUS,
  retryPolicy,
  withRetries,
} from '../http/retry.js';
import { toCanvosError, withPath } from '../error-map.js';
import { throwIfAborted } from '../util/abort.js';

/** Options of {@link downloadVerified}: the HTTP options (timeout, retry, proxy, redirects) plus a signal. */
export interface DownloadOptions extends HttpOptions {
  signal?: AbortSignal | undefined;
}

/** Normalise `sha256:<hex>` or `<hex>` to `<hex>`; throws ERR_CONFIG when malformed. */
export function sha256Hex(s: string, url: string): string {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  if (!/^[a-f0-9]{64}$/.test(hex)) {
    throw new CanvosError(
      'ERR_CONFIG',
      `sha256 for ${redactUrl(url)} is not 64 lowercase hex digits: ${JSON.stringify(s)}`,
      {
        hint: 'give the sha256 of the file as printed by sha256sum',
      },
    );
  }
  return hex;
}

/** One download: where from, where to, what digest. */
interface Job {
  url: string;
  safe: string;
  want: string;
  part: string;
  dispatcher: Dispatcher;
  opts: DownloadOptions;
}

/** Fetch `url` into `dest` (via `dest.part`), verifying sha256. Returns the size in bytes. */
export async function downloadVerified(
  url: string,
  sha256: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<number> {
  const want = sha256Hex(sha256, url);
  const safe = redactUrl(url);
  // Downloads take no extra CAs (registry certs.d is per registry host).
  const dispatcher = opts.dispatcher ?? (await createDispatcher(opts));
  const own = opts.dispatcher ? undefined : dispatcher;
  const job: Job = { url, safe, want, part: `${dest}.part`, dispatcher, opts };
  try {
    // A whole attempt (request + body into the part file) is retried: a body broken mid-way starts over.
    const size = await withRetries({
      ...retryPolicy(opts.retry, opts.timeoutMs),
      signal: opts.signal,
      run: () => attempt(job),
      retryable: (r) => (typeof r === 'number' ? undefined : { retryAfterMs: r.retryAfterMs }),
      fail: (e) => failure(job, e),
    });
    if (typeof size !== 'number')
      throw new CanvosError('ERR_DOWNLOAD', `GET ${safe} failed: HTTP ${size.status}`, {
        hint: 'check the URL and that the server is up',
      });
    await rename(job.part, dest);
    return size;
  } catch (e) {
    await rm(job.part, { force: true });
    throw e;
  } finally {
    await own?.close();
  }
}

/** One attempt: the size written, or a retryable status (408/429/5xx). */
async function attempt(job: Job): Promise<number | { status: number; retryAfterMs: number | undefined }> {
  const { signal } = job.opts;
  const res: HttpResponse = await requestFollowing(job.dispatcher, {
    method: 'GET',
    url: job.url,
    headers: { 'user-agent': job.opts.userAgent ?? 'canvos-lite' },
    signal,
    maxRedirects: job.opts.maxRedirects ?? 5,
    errorCode: 'ERR_DOWNLOAD',
    loopHint: 'check the URL',
    label: 'download',
  });
  if (RETRYABLE_STATUS.has(res.status)) {
    dropResponse(res);
    return { status: res.status, retryAfterMs: parseRetryAfter(res.headers['retry-after']) };
  }
  if (res.status < 200 || res.status > 299) {
    dropResponse(res);
    throw new CanvosError('ERR_DOWNLOAD', `GET ${job.safe} failed: HTTP ${res.status}`, { hint: 'check the URL' });
  }
  const counter = new DigestCounter();
  try {
    await pipeline(res.body, counter.transform(), createWriteStream(job.part), signal ? { signal } : {});
  } catch (e) {
    throwIfAborted(signal);
    // A local write error (ENOSPC, EACCES…) is the disk's fault, not the download's: exit 20 naming the file.
    const local = isNetworkError(e) ? undefined : toCanvosError(withPath(e, job.part));
    throw local?.code === 'ERR_FILESYSTEM' ? local : e;
  }
  const got = counter.result().digest;
  if (got !== `sha256:${job.want}`) {
    throw new CanvosError('ERR_DOWNLOAD', `${job.safe}: downloaded content has ${got}, expected sha256:${job.want}`, {
      hint: 'the file changed upstream or the sha256 in the layer spec is wrong; verify it with sha256sum',
      details: { url: job.safe, expected: `sha256:${job.want}`, actual: got },
    });
  }
  return counter.size;
}

/** The error a download ends in after its last attempt. */
function failure(job: Job, e: unknown): unknown {
  if (CanvosError.is(e)) return e;
  const msg = (e as Error).message;
  if (isTimeoutError(e)) {
    const s = Math.round((job.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000);
    return new CanvosError('ERR_DOWNLOAD', `GET ${job.safe} failed: no progress within ${s} s (${msg})`, {
      cause: e,
      hint: 'check the network access to that host (HTTPS_PROXY/NO_PROXY), or raise --timeout for a slow link',
    });
  }
  return new CanvosError('ERR_DOWNLOAD', `GET ${job.safe} failed: ${msg}`, {
    cause: e,
    hint: 'check the URL and the network access to that host, and retry',
  });
}
