/**
 * Download a URL to a file, streamed, verifying its sha256 before the file is moved into place.
 * Used by `{url, sha256}` file sources; a mismatch is ERR_DOWNLOAD naming the URL and both digests.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { getGlobalDispatcher, interceptors, request, type Dispatcher } from 'undici';
import { CanvosError, abortError, redactUrl } from '../errors.js';
import { DigestCounter } from '../oci/digest.js';

let redirecting: Dispatcher | undefined;

/** Options of {@link downloadVerified}. */
export interface DownloadOptions {
  signal?: AbortSignal | undefined;
  /** Default: the global undici dispatcher, following up to 5 redirects. */
  dispatcher?: Dispatcher | undefined;
}

/** Normalise `sha256:<hex>` or `<hex>` to `<hex>`; throws ERR_CONFIG when malformed. */
export function sha256Hex(s: string, url: string): string {
  const hex = s.startsWith('sha256:') ? s.slice(7) : s;
  if (!/^[a-f0-9]{64}$/.test(hex)) {
    throw new CanvosError('ERR_CONFIG', `sha256 for ${redactUrl(url)} is not 64 lowercase hex digits: ${JSON.stringify(s)}`, {
      hint: 'give the sha256 of the file as printed by sha256sum',
    });
  }
  return hex;
}

/** Fetch `url` into `dest` (via `dest.part`), verifying sha256. Returns the size in bytes. */
export async function downloadVerified(url: string, sha256: string, dest: string, opts: DownloadOptions = {}): Promise<number> {
  const want = sha256Hex(sha256, url);
  const safe = redactUrl(url);
  redirecting ??= getGlobalDispatcher().compose(interceptors.redirect({ maxRedirections: 5 }));
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { dispatcher: opts.dispatcher ?? redirecting, signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    throw new CanvosError('ERR_DOWNLOAD', `GET ${safe} failed: ${(e as Error).message}`, {
      cause: e,
      hint: 'check the URL and network access',
    });
  }
  if (res.statusCode < 200 || res.statusCode > 299) {
    await res.body.dump();
    throw new CanvosError('ERR_DOWNLOAD', `GET ${safe} failed: HTTP ${res.statusCode}`, { hint: 'check the URL' });
  }
  const counter = new DigestCounter();
  const part = `${dest}.part`;
  try {
    await pipeline(res.body, counter.transform(), createWriteStream(part), opts.signal ? { signal: opts.signal } : {});
    const got = counter.result().digest;
    if (got !== `sha256:${want}`) {
      throw new CanvosError('ERR_DOWNLOAD', `${safe}: downloaded content has ${got}, expected sha256:${want}`, {
        hint: 'the file changed upstream or the sha256 in the layer spec is wrong; verify it with sha256sum',
        details: { url: safe, expected: `sha256:${want}`, actual: got },
      });
    }
    await rename(part, dest);
    return counter.size;
  } catch (e) {
    await rm(part, { force: true });
    if (CanvosError.is(e)) throw e;
    if (opts.signal?.aborted) throw abortError(opts.signal);
    throw new CanvosError('ERR_DOWNLOAD', `GET ${safe} failed while reading: ${(e as Error).message}`, { cause: e });
  }
}
