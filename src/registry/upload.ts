/**
 * Blob upload: best-effort cross-repository mount, then one streaming monolithic PUT (POST + PUT ?digest=, the
 * default that works everywhere incl. ECR), falling back to chunked PATCH uploads (ECR 201-on-PATCH, stalled
 * `Range`, `OCI-Chunk-Min-Length`) when the monolithic PUT is refused. Finishes with a HEAD check.
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import { CanvosError } from '../errors.js';
import { VerifyingStream } from '../image/digest.js';
import type { Descriptor } from '../image/schemas.js';
import type { OpOptions } from '../image/types.js';
import { repoScope } from './auth.js';
import { headBlob, type BlobLocation } from './blobs.js';
import { header, httpError, type RegistryResponse } from './http.js';
import { isNetworkError } from '../http/retry.js';
import { fixedChunks } from '../util/chunks.js';

/** Upload tuning. */
export interface UploadOptions extends OpOptions {
  /** `auto`: monolithic, chunked when refused; or force one strategy. Default: `auto`. */
  uploadMode?: 'auto' | 'monolithic' | 'chunked' | undefined;
  /** Chunk size for chunked uploads (raised to the registry's OCI-Chunk-Min-Length). Default: 8 MiB. */
  chunkSize?: number | undefined;
  /**
   * Repositories on the same registry to mount the blob from, tried in order until one mounts (a refused mount's
   * upload session is cancelled, the last one's is used for the upload). Default: none.
   */
  mountFrom?: string | readonly string[] | undefined;
  /**
   * Told each mount attempt's outcome: `mounted`, `refused` (202: the blob is not in `from`, or the registry will
   * not mount it) or `denied` (no access to `from`, or another answer). Default: none.
   */
  onMount?: ((from: string, outcome: 'mounted' | 'refused' | 'denied') => void) | undefined;
  /** Fresh upload sessions to try after connection failures. Default: 3. */
  attempts?: number | undefined;
  /**
   * `open` yields a stream that verifies digest and size itself and errors at the end on mismatch (an
   * `ImageSource.getBlob` stream): it is not hashed again. Still safe: the blob is committed only by `PUT ?digest=`,
   * which the registry checks against the bytes it received, and a chunked upload is committed only after the
   * stream ended cleanly. Default: false.
   */
  sourceVerified?: boolean | undefined;
  /**
   * The caller has not checked whether the destination holds the blob: when no mount succeeds, HEAD it before
   * uploading (a refused mount's session is then cancelled and the result is `exists`). A successful mount needs no
   * HEAD: it is the proof. Default: false.
   */
  checkAfterMount?: boolean | undefined;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;

function drain(res: RegistryResponse): void {
  res.body.on('error', () => {});
  res.body.resume();
}

function location(res: RegistryResponse, what: string): string {
  const loc = header(res, 'location');
  if (!loc)
    throw new CanvosError('ERR_REGISTRY_HTTP', `${what}: registry answered ${res.status} without a Location header`, {
      hint: 'the registry does not follow the distribution spec',
    });
  return new URL(loc, res.url).toString();
}

/**
 * The source stream piped through a verifier so a wrong digest/size fails before the registry commits (not when
 * `trusted`: the source verifies itself), plus a byte counter when progress is wanted.
 */
async function verifiedSource(
  desc: Descriptor,
  open: () => Promise<Readable>,
  trusted: boolean,
  onBytes?: (n: number) => void,
): Promise<Readable> {
  const src = await open();
  const stages: Transform[] = [];
  if (!trusted)
    stages.push(new VerifyingStream(desc.digest, { size: desc.size, what: `blob ${desc.digest} (upload source)` }));
  if (onBytes) {
    // Count in a pass-through (a 'data' listener would switch the stream to flowing mode and lose bytes).
    let n = 0;
    stages.push(
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          n += chunk.length;
          onBytes(n);
          cb(null, chunk);
        },
      }),
    );
  }
  const last = stages.at(-1);
  if (!last) return src;
  pipeline([src, ...stages], () => {});
  return last;
}

/** Try a cross-repo mount. Returns 'mounted', an open session URL (mount refused: 202), or undefined. */
async function tryMount(
  loc: BlobLocation,
  desc: Descriptor,
  from: string,
  opts: UploadOptions,
): Promise<string | undefined> {
  const q = new URLSearchParams({ mount: desc.digest, from });
  let res: RegistryResponse;
  try {
    res = await loc.http.send({
      method: 'POST',
      path: `/v2/${loc.repository}/blobs/uploads/?${q.toString()}`,
      scopes: [...loc.scopes, repoScope(from, 'pull')],
      headers: { 'content-length': '0' },
      signal: opts.signal,
    });
  } catch (e) {
    // No pull access to the source repository: mounting is best effort (ggcr#1404, #1609).
    if (CanvosError.is(e) && e.code === 'ERR_REGISTRY_AUTH') return undefined;
    throw e;
  }
  drain(res);
  if (res.status === 201) {
    // A registry naming the blob it linked needs no HEAD to confirm it (skopeo trusts the 201 alone).
    if (header(res, 'docker-content-digest') !== desc.digest) await confirm(loc, desc, opts);
    return 'mounted';
  }
  if (res.status === 202) return location(res, 'mount');
  return undefined;
}

async function startSession(loc: BlobLocation, opts: UploadOptions): Promise<{ url: string; minChunk: number }> {
  const res = await loc.http.send({
    method: 'POST',
    path: `/v2/${loc.repository}/blobs/uploads/`,
    scopes: loc.scopes,
    headers: { 'content-length': '0' },
    signal: opts.signal,
  });
  if (res.status !== 202) {
    throw await httpError(
      res,
      'POST',
      res.status === 404
        ? `the repository ${loc.repository} may need to be created first (ECR), or the name is wrong`
        : undefined,
    );
  }
  drain(res);
  return { url: location(res, 'POST blob upload'), minChunk: Number(header(res, 'oci-chunk-min-length') ?? 0) || 0 };
}

async function cancel(loc: BlobLocation, url: string): Promise<void> {
  try {
    const res = await loc.http.send({ method: 'DELETE', path: url, scopes: loc.scopes, retry: false });
    drain(res);
  } catch {
    // Best effort: stray sessions expire on the registry side.
  }
}

function withDigest(url: string, desc: Descriptor): string {
  const u = new URL(url);
  u.searchParams.set('digest', desc.digest);
  return u.toString();
}

async function checkCommitted(res: RegistryResponse, desc: Descriptor, what: string): Promise<void> {
  if (res.status !== 201 && res.status !== 204) {
    const err = await httpError(res, 'PUT');
    if (res.status === 400 && /DIGEST_INVALID|SIZE_INVALID/.test(err.bodyExcerpt)) {
      throw new CanvosError(
        'ERR_DIGEST_MISMATCH',
        `${what}: registry rejected blob ${desc.digest}: ${err.bodyExcerpt}`,
        { hint: 'the source bytes do not match their descriptor' },
      );
    }
    throw err;
  }
  drain(res);
  const got = header(res, 'docker-content-digest');
  if (got && got !== desc.digest) {
    throw new CanvosError('ERR_DIGEST_MISMATCH', `${what}: registry stored ${got} instead of ${desc.digest}`, {
      hint: 'the registry is misbehaving',
    });
  }
}

/** Monolithic: PUT the whole stream with Content-Length. Returns false when the registry refused the method. */
async function putMonolithic(
  loc: BlobLocation,
  desc: Descriptor,
  url: string,
  open: () => Promise<Readable>,
  opts: UploadOptions,
): Promise<boolean> {
  const onProgress = opts.onProgress;
  const progress =
    onProgress &&
    ((n: number): void => {
      onProgress({ phase: 'upload', item: desc.digest, transferred: n, total: desc.size });
    });
  const res = await loc.http.send({
    method: 'PUT',
    path: withDigest(url, desc),
    scopes: loc.scopes,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    body: () => verifiedSource(desc, open, opts.sourceVerified === true, progress),
    // A retried PUT would append to a half-written session: retries open a new session instead (see uploadBlob).
    retry: false,
    signal: opts.signal,
  });
  if ([405, 413, 415, 416, 501].includes(res.status) && opts.uploadMode !== 'monolithic') {
    drain(res);
    return false;
  }
  await checkCommitted(res, desc, `PUT blob to ${loc.http.registry}/${loc.repository}`);
  return true;
}

/** Server-side offset of an upload session (GET status → `Range: 0-N`), or undefined if unknown. */
async function sessionOffset(
  loc: BlobLocation,
  url: string,
  opts: UploadOptions,
): Promise<{ url: string; offset: number } | undefined> {
  const res = await loc.http.send({ method: 'GET', path: url, scopes: loc.scopes, signal: opts.signal });
  drain(res);
  if (res.status !== 204 && res.status !== 202) return undefined;
  const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
  // distribution reports an empty session as "0-0" (ambiguous with one byte): read it as empty.
  const end = m ? Number(m[1]) : 0;
  return { url: header(res, 'location') ? location(res, 'upload status') : url, offset: end > 0 ? end + 1 : 0 };
}

/** Chunked: PATCH each chunk with Content-Range, then PUT ?digest= with no body. */
async function putChunked(
  loc: BlobLocation,
  desc: Descriptor,
  session: { url: string; minChunk: number },
  open: () => Promise<Readable>,
  opts: UploadOptions,
): Promise<void> {
  const size = Math.max(opts.chunkSize ?? DEFAULT_CHUNK, session.minChunk);
  // Parts shrink when a proxy in front of the registry answers 413 (nginx defaults to 1 MiB bodies).
  const minPart = Math.max(session.minChunk, 16 * 1024);
  let maxPart = size;
  let url = session.url;
  let offset = 0;
  const src = await verifiedSource(desc, open, opts.sourceVerified === true);
  for await (const chunk of fixedChunks(src, size)) {
    const start = offset;
    let sent = 0; // bytes of this chunk the registry has
    for (let failures = 0; sent < chunk.length;) {
      if (failures >= 5)
        throw new CanvosError(
          'ERR_REGISTRY_HTTP',
          `PATCH blob ${desc.digest}: the registry did not accept bytes ${start + sent}- after ${failures} tries`,
          { hint: 'try again later, or use the monolithic upload mode' },
        );
      const part = chunk.subarray(sent, sent + maxPart);
      const from = start + sent;
      let res: RegistryResponse | undefined;
      try {
        res = await loc.http.send({
          method: 'PATCH',
          path: url,
          scopes: loc.scopes,
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${from}-${from + part.length - 1}`,
            'content-length': String(part.length),
          },
          body: part,
          retry: false,
          signal: opts.signal,
        });
      } catch (e) {
        if (!isNetworkError(e) && !(CanvosError.is(e) && e.code === 'ERR_NETWORK')) throw e;
      }
      if (res && (res.status === 202 || res.status === 201 || res.status === 204)) {
        // ECR answers 201 here; both mean "accepted".
        drain(res);
        if (header(res, 'location')) url = location(res, 'PATCH');
        const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
        const ours = from + part.length;
        const serverEnd = m ? Number(m[1]) + 1 : ours;
        // Trust our own count when the registry's Range stalls (ECR); honour a partial accept of this part.
        sent = (serverEnd > from && serverEnd < ours ? serverEnd : ours) - start;
        continue;
      }
      if (res && res.status === 413 && maxPart > minPart) {
        drain(res);
        maxPart = Math.max(minPart, Math.floor(maxPart / 2));
        continue;
      }
      if (res && res.status !== 416) throw await httpError(res, 'PATCH');
      if (res) drain(res);
      failures++;
      // 416 or a broken connection: ask the registry how much it has and continue from there.
      const st = await sessionOffset(loc, url, opts);
      if (!st || st.offset < start || st.offset > start + chunk.length) {
        throw new CanvosError('ERR_REGISTRY_HTTP', `PATCH blob ${desc.digest}: upload session lost at byte ${from}`, {
          hint: 'retry the push',
        });
      }
      url = st.url;
      sent = st.offset - start;
    }
    offset = start + chunk.length;
    opts.onProgress?.({ phase: 'upload', item: desc.digest, transferred: offset, total: desc.size });
  }
  const res = await loc.http.send({
    method: 'PUT',
    path: withDigest(url, desc),
    scopes: loc.scopes,
    headers: { 'content-length': '0' },
    signal: opts.signal,
  });
  await checkCommitted(res, desc, `PUT blob to ${loc.http.registry}/${loc.repository}`);
}

/**
 * Upload a blob (mount → monolithic → chunked) and confirm it with HEAD. `open` is called again for each
 * attempt. Returns 'mounted' or 'uploaded', or 'exists' when `checkAfterMount` found it already there.
 */
export async function uploadBlob(
  loc: BlobLocation,
  desc: Descriptor,
  open: () => Promise<Readable>,
  opts: UploadOptions = {},
): Promise<'exists' | 'mounted' | 'uploaded'> {
  const froms = (typeof opts.mountFrom === 'string' ? [opts.mountFrom] : (opts.mountFrom ?? [])).filter(
    (f) => f !== loc.repository,
  );
  let pending: string | undefined;
  for (const from of froms) {
    if (pending !== undefined) await cancel(loc, pending);
    const m = await tryMount(loc, desc, from, opts);
    opts.onMount?.(from, m === 'mounted' ? 'mounted' : m === undefined ? 'denied' : 'refused');
    if (m === 'mounted') return 'mounted';
    // The last refused mount's session carries the upload; earlier ones are cancelled before the next try.
    pending = m;
  }
  if (opts.checkAfterMount === true && (await holdsBlob(loc, desc, opts))) {
    if (pending !== undefined) await cancel(loc, pending);
    return 'exists';
  }
  // Open the source while the upload session is being started (the two round trips overlap; over a long-haul
  // source that is one latency per blob). The first attempt reads it; if none does, it is closed.
  let early: Promise<Readable> | undefined = pending === undefined ? open() : undefined;
  early?.catch(() => {});
  const openFirst = (): Promise<Readable> => {
    const e = early;
    early = undefined;
    return e ?? open();
  };
  const attempts = opts.attempts ?? 3;
  try {
    for (let attempt = 1; ; attempt++) {
      const session = pending !== undefined ? { url: pending, minChunk: 0 } : await startSession(loc, opts);
      pending = undefined;
      try {
        const mode = opts.uploadMode ?? 'auto';
        if (mode === 'chunked' || !(await putMonolithic(loc, desc, session.url, openFirst, opts))) {
          // The monolithic session may be half-used: chunked always starts a fresh one.
          const chunkSession =
            mode === 'chunked' ? session : (await cancel(loc, session.url), await startSession(loc, opts));
          await putChunked(loc, desc, chunkSession, openFirst, opts);
        }
        break;
      } catch (e) {
        const transient = isNetworkError(e) || (CanvosError.is(e) && e.code === 'ERR_NETWORK');
        if (!transient || attempt >= attempts || opts.signal?.aborted) throw e;
        await cancel(loc, session.url);
      }
    }
  } finally {
    const unused = early;
    if (unused)
      void unused.then(
        (s) => s.destroy(),
        () => {},
      );
  }
  await confirm(loc, desc, opts);
  return 'uploaded';
}

/** Whether `loc` holds the blob `desc` (HEAD; a size the registry reports must match the descriptor's). */
export async function holdsBlob(loc: BlobLocation, desc: Descriptor, opts: OpOptions): Promise<boolean> {
  const h = await headBlob(loc, desc.digest, opts);
  return h !== undefined && (h.size < 0 || desc.size < 0 || h.size === desc.size);
}

async function confirm(loc: BlobLocation, desc: Descriptor, opts: OpOptions): Promise<void> {
  const h = await headBlob(loc, desc.digest, opts);
  if (!h)
    throw new CanvosError(
      'ERR_BLOB_UNKNOWN',
      `blob ${desc.digest} is not in ${loc.http.registry}/${loc.repository} after upload`,
      { hint: 'the registry lost the upload; retry the push' },
    );
  if (h.size >= 0 && desc.size >= 0 && h.size !== desc.size) {
    throw new CanvosError(
      'ERR_SIZE_MISMATCH',
      `blob ${desc.digest} in ${loc.http.registry}/${loc.repository} has ${h.size} bytes, expected ${desc.size}`,
      { hint: 'the registry stored something else; retry the push' },
    );
  }
}
