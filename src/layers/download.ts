/**
 * Download a URL to a file, streamed, verifying its sha256 before the file is moved into place.
 * Used by `{url, sha256}` file sources; a mismatch is ERR_DOWNLOAD naming the URL and both digests.
 * Redirects (release assets → object storage) are followed up to 5 times; HTTP(S)_PROXY / NO_PROXY from the
 * environment apply (the registry client's dispatcher). Loads only the undici parts the registry client loads.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { CanvosError, redactUrl } from '../errors.js';
import { DigestCounter } from '../oci/digest.js';
import { createDispatcher } from '../http/dispatcher.js';
import { toCanvosError, withPath } from '../error-map.js';
import { request } from '../http/undici.js';
import { throwIfAborted } from '../util/abort.js';

const MAX_REDIRECTS = 5;

/** Options of {@link downloadVerified}. */
export interface DownloadOptions {
  signal?: AbortSignal | undefined;
  /** Default: a dispatcher of its own (environment proxies honoured), closed when the download ends. */
  dispatcher?: Dispatcher | undefined;
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

/** Fetch `url` into `dest` (via `dest.part`), verifying sha256. Returns the size in bytes. */
export async function downloadVerified(
  url: string,
  sha256: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<number> {
  const want = sha256Hex(sha256, url);
  const safe = redactUrl(url);
  // The endpoint only names a certs.d sub-directory, and downloads take no extra CAs.
  const own = opts.dispatcher ? undefined : await createDispatcher({}, 'download');
  try {
    return await fetchTo(url, safe, want, dest, opts.dispatcher ?? own!, opts.signal);
  } finally {
    await own?.close();
  }
}

async function fetchTo(
  url: string,
  safe: string,
  want: string,
  dest: string,
  dispatcher: Dispatcher,
  signal: AbortSignal | undefined,
): Promise<number> {
  let res: Dispatcher.ResponseData;
  let current = url;
  for (let hop = 0; ; hop++) {
    try {
      res = await request(current, { dispatcher, signal: signal ?? null });
    } catch (e) {
      throwIfAborted(signal);
      throw new CanvosError('ERR_DOWNLOAD', `GET ${safe} failed: ${(e as Error).message}`, {
        cause: e,
        hint: 'check the URL and network access',
      });
    }
    const loc = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.statusCode) || typeof loc !== 'string') break;
    await res.body.dump();
    if (hop >= MAX_REDIRECTS)
      throw new CanvosError('ERR_DOWNLOAD', `GET ${safe}: more than ${MAX_REDIRECTS} redirects`, {
        hint: 'check the URL',
      });
    current = new URL(loc, current).toString();
  }
  if (res.statusCode < 200 || res.statusCode > 299) {
    await res.body.dump();
    throw new CanvosError('ERR_DOWNLOAD', `GET ${safe} failed: HTTP ${res.statusCode}`, { hint: 'check the URL' });
  }
  const counter = new DigestCounter();
  const part = `${dest}.part`;
  try {
    await pipeline(res.body, counter.transform(), createWriteStream(part), signal ? { signal } : {});
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
    throwIfAborted(signal);
    // A local write error (ENOSPC, EACCES…) is the disk's fault, not the download's: exit 20 naming the file.
    const local = toCanvosError(withPath(e, part));
    if (local?.code === 'ERR_FILESYSTEM') throw local;
    throw new CanvosError('ERR_DOWNLOAD', `GET ${safe} failed while reading: ${(e as Error).message}`, {
      cause: e,
      hint: 'check the network access to that host, and retry',
    });
  }
}
