/**
 * Blob downloads: HEAD, a verified streaming GET that transparently resumes with `Range: bytes=N-` after a
 * connection failure (like containers/image's bodyReader), and `fetchBlobToFile`, which writes `<path>.partial`,
 * resumes it (re-hashing the bytes already on disk), verifies size + digest, then renames atomically.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import { DigestCounter, VerifyingStream, type Digest } from '../image/digest.js';
import type { Descriptor } from '../image/schemas.js';
import type { OpOptions } from '../image/types.js';
import { header, httpError, type RegistryHttp, type RegistryResponse } from './http.js';
import { mayResume } from '../http/retry.js';
import { BLOB_PARTS_DEFAULTS, MIN_RANGED_BLOB, streamParts, type BlobPartsOptions } from './blob-parts.js';
import { defaultReadAheadBudget } from './blob-parts-scheduler.js';
import { abortError, throwIfAborted } from '../util/abort.js';

/** Where a blob lives: transport + repository + the scopes to use. */
export interface BlobLocation {
  http: RegistryHttp;
  repository: string;
  scopes: readonly string[];
}

/** Options for blob downloads. */
export interface BlobReadOptions extends OpOptions {
  /** How many times a broken body is resumed with Range (per part for ranged reads). Default: 5. */
  maxResumes?: number | undefined;
  /**
   * Parallel ranged reads of large blobs (see blob-parts.ts); `false` reads every blob with one GET.
   * Default: the registry's `blobParts` option, else {@link BLOB_PARTS_DEFAULTS}.
   */
  parts?: BlobPartsOptions | false | undefined;
  /**
   * Whether spreading a slow blob over more connections (ranged parts) is welcome right now. The copy engine
   * answers no while other blobs still wait for their turn: they should get the idle connections first. Default:
   * always.
   */
  widen?: (() => boolean) | undefined;
}

function blobPath(loc: BlobLocation, digest: Digest): string {
  return `/v2/${loc.repository}/blobs/${digest}`;
}

/** HEAD a blob: its size when present, undefined on 404. */
export async function headBlob(
  loc: BlobLocation,
  digest: Digest,
  opts: OpOptions = {},
): Promise<{ size: number } | undefined> {
  const res = await loc.http.send({
    method: 'HEAD',
    path: blobPath(loc, digest),
    scopes: loc.scopes,
    signal: opts.signal,
  });
  res.body.resume();
  if (res.status === 404) return undefined;
  // HEAD on a pre-signed storage URL is often 403 (signed for GET only): the redirect already proved existence.
  if (res.status === 403 && new URL(res.url).origin !== new URL(loc.http.baseUrl).origin) return { size: -1 };
  if (res.status !== 200) throw await httpError(res, 'HEAD');
  const len = header(res, 'content-length');
  return { size: len !== undefined ? Number(len) : -1 };
}

/**
 * A hostile or broken server that announces another size than the descriptor's (a 200's Content-Length, a 206's
 * Content-Range total) sends other content: exit 7 at once instead of reading it, or resuming a body that ended
 * "early" again and again.
 */
function checkAnnouncedSize(res: RegistryResponse, desc: Descriptor): void {
  if (desc.size < 0 || (res.status !== 200 && res.status !== 206)) return;
  const total =
    res.status === 200 ? header(res, 'content-length') : /\/(\d+)$/.exec(header(res, 'content-range') ?? '')?.[1];
  if (total === undefined || Number(total) === desc.size) return;
  res.body.destroy();
  throw new CanvosError(
    'ERR_SIZE_MISMATCH',
    `GET blob ${desc.digest}: the registry announces ${total.slice(0, 20)} bytes for a ${desc.size}-byte blob`,
    { hint: 'the registry (or a proxy) serves other content than the manifest names: re-push the image' },
  );
}

/** GET the blob from `offset` (to `end`, inclusive, when given); a 200 means the server ignored Range and sends everything. */
async function getFrom(
  loc: BlobLocation,
  desc: Descriptor,
  offset: number,
  opts: OpOptions,
  end?: number,
  onSlot?: () => void,
): Promise<{ res: RegistryResponse; start: number }> {
  const headers: Record<string, string> = {};
  if (end !== undefined) headers.range = `bytes=${offset}-${end}`;
  else if (offset > 0) headers.range = `bytes=${offset}-`;
  const res = await loc.http.send({
    method: 'GET',
    path: blobPath(loc, desc.digest),
    scopes: loc.scopes,
    headers,
    signal: opts.signal,
    // A part of a ranged read may use the registry's extra connections for parts.
    ranged: end !== undefined,
    onSlot,
  });
  const enc = header(res, 'content-encoding');
  if ((res.status === 200 || res.status === 206) && enc && enc !== 'identity') {
    // Blob digests cover the stored bytes; a transfer encoding (moby#17595) would only produce a digest mismatch.
    res.body.destroy();
    throw new CanvosError(
      'ERR_REGISTRY_HTTP',
      `GET blob ${desc.digest}: the server applied Content-Encoding "${enc}" despite Accept-Encoding: identity`,
      {
        hint: 'a proxy between you and the registry is compressing responses; bypass it (NO_PROXY) or fix its configuration',
      },
    );
  }
  checkAnnouncedSize(res, desc);
  if (res.status === 200) return { res, start: 0 };
  if (res.status === 416 && offset > 0) {
    // The bytes already received reach past the registry's blob: short or changed content. A resume starts over
    // (the final digest check decides); a part of a ranged read cannot, and the content is short.
    res.body.resume();
    if (end === undefined) return getFrom(loc, desc, 0, opts, undefined, onSlot);
    throw new CanvosError(
      'ERR_SIZE_MISMATCH',
      `GET blob ${desc.digest}: the registry has no bytes ${offset}-${end} (HTTP 416) of a ${desc.size}-byte blob`,
      {
        hint: 'the registry serves a shorter blob than its manifest says: re-push the image',
      },
    );
  }
  if (res.status === 206) {
    const cr = header(res, 'content-range') ?? '';
    const m = /^bytes (\d+)-/.exec(cr);
    if (m && Number(m[1]) === offset) return { res, start: offset };
    res.body.destroy();
    throw new CanvosError(
      'ERR_REGISTRY_HTTP',
      `GET blob ${desc.digest}: registry answered Range ${offset}- with Content-Range "${cr}"`,
      {
        hint: 'the registry or a proxy mishandles Range requests',
      },
    );
  }
  if (res.status === 404) {
    res.body.resume();
    throw new CanvosError(
      'ERR_BLOB_UNKNOWN',
      `blob ${desc.digest} not found in ${loc.http.registry}/${loc.repository}`,
      {
        hint: 'the image references a blob the registry does not have; re-push the image',
      },
    );
  }
  throw await httpError(res, 'GET');
}

/** How a blob is read in parts: the resolved BlobPartsOptions for its size. */
interface PartsPlan {
  parallel: number;
  partSize: number;
  options: BlobPartsOptions;
}

function partsPlan(loc: BlobLocation, desc: Descriptor, opts: BlobReadOptions): PartsPlan {
  const setting = opts.parts ?? loc.http.blobParts;
  const options = setting === false ? {} : (setting ?? {});
  const parallel = setting === false ? 1 : Math.max(1, Math.floor(options.parallel ?? BLOB_PARTS_DEFAULTS.parallel));
  const basePart = Math.max(64 * 1024, Math.floor(options.partSize ?? BLOB_PARTS_DEFAULTS.partSize));
  // Huge blobs get larger parts (at most 64 of them, parts up to 8 MiB) so a 4 GiB layer is not 2,000 requests.
  const partSize = Math.max(basePart, Math.min(8 * 1024 * 1024, Math.ceil(desc.size / 64 / 65536) * 65536));
  return { parallel, partSize, options };
}

/**
 * A stream of the blob's bytes, verified against desc.digest and desc.size (the stream errors at the end on
 * mismatch). Broken connections are resumed with Range; bytes already emitted are never repeated.
 */
export async function openBlob(loc: BlobLocation, desc: Descriptor, opts: BlobReadOptions = {}): Promise<Readable> {
  const plan = partsPlan(loc, desc, opts);
  // A blob that may be split counts towards the registry's fair share of connections from its first request on.
  const endRead = plan.parallel > 1 && desc.size >= MIN_RANGED_BLOB ? loc.http.parts.beginRead() : undefined;
  let first: { res: RegistryResponse; start: number };
  try {
    first = await getFrom(loc, desc, 0, opts);
  } catch (e) {
    endRead?.();
    throw e;
  }
  const verifier = new VerifyingStream(desc.digest, { size: desc.size, what: `blob ${desc.digest}` });
  if (endRead) verifier.once('close', endRead);
  // Large enough to split, and the server (or the storage it redirected to) says it serves ranges.
  const ranged =
    plan.parallel > 1 &&
    desc.size >= MIN_RANGED_BLOB &&
    first.res.status === 200 &&
    /\bbytes\b/i.test(header(first.res, 'accept-ranges') ?? '');
  if (ranged) streamRanged(loc, desc, first.res, verifier, plan, opts);
  else streamSingle(loc, desc, first, verifier, opts);
  return verifier;
}

/** Read the blob in ranged parts when its first stream turns out slow (blob-parts.ts). */
function streamRanged(
  loc: BlobLocation,
  desc: Descriptor,
  first: RegistryResponse,
  verifier: Writable,
  plan: PartsPlan,
  opts: BlobReadOptions,
): void {
  const open = async (start: number, end: number, onSlot: () => void): Promise<RegistryResponse> => {
    const r = await getFrom(loc, desc, start, opts, end, onSlot);
    if (r.res.status === 206) return r.res;
    r.res.body.destroy();
    throw new CanvosError(
      'ERR_REGISTRY_HTTP',
      `GET blob ${desc.digest}: the registry answered Range: bytes=${start}-${end} with the whole blob although it advertised Accept-Ranges`,
      {
        hint: 'a proxy or the registry mishandles Range requests; read blobs with one GET (RegistryHttpOptions.blobParts: false)',
      },
    );
  };
  streamParts(desc, first, open, verifier, {
    parallel: plan.parallel,
    partSize: plan.partSize,
    maxResumes: opts.maxResumes ?? 5,
    signal: opts.signal,
    slowBelow: plan.options.slowBelow || BLOB_PARTS_DEFAULTS.slowBelow,
    scheduler: loc.http.parts,
    canWiden: opts.widen,
    budget: plan.options.budget ?? defaultReadAheadBudget,
    onBytes: opts.onProgress
      ? (n) => opts.onProgress?.({ phase: 'download', item: desc.digest, transferred: n, total: desc.size })
      : undefined,
  });
}

/**
 * Read the blob with one stream (a small blob, ranged reads off, or a server that does not advertise ranges),
 * resuming a broken connection with Range. Bodies are written into the verifier from 'data' events with
 * backpressure (pause/drain): the cheapest path through Node streams, with no per-chunk promise, which matters at
 * hundreds of MB/s.
 */
function streamSingle(
  loc: BlobLocation,
  desc: Descriptor,
  first: { res: RegistryResponse; start: number },
  verifier: Writable,
  opts: BlobReadOptions,
): void {
  const maxResumes = opts.maxResumes ?? 5;
  let offset = 0;
  let resumes = 0;
  const stalls = { timeouts: 0 };
  let body = first.res.body;
  const resume = (e: unknown): void => {
    body.destroy();
    if (verifier.destroyed) return;
    if (opts.signal?.aborted) return void verifier.destroy(abortError(opts.signal));
    if (e !== undefined && (!mayResume(e, stalls) || resumes >= maxResumes))
      return void verifier.destroy(loc.http.readError(`GET blob ${desc.digest}`, e));
    if (resumes++ >= maxResumes) {
      return void verifier.destroy(
        new CanvosError('ERR_NETWORK', `GET blob ${desc.digest}: body ended early ${resumes} times`, {
          hint: 'the connection to the registry keeps dropping',
        }),
      );
    }
    getFrom(loc, desc, offset, opts).then(follow, (err: unknown) => verifier.destroy(err as Error));
  };
  const follow = (cur: { res: RegistryResponse; start: number }): void => {
    body = cur.res.body;
    const b = body;
    if (verifier.destroyed) return void b.destroy();
    // A 200 after a resume restarts from byte 0: skip what was already emitted.
    let skip = offset - cur.start;
    const onDrain = (): void => void b.resume();
    const detach = (): void => {
      b.off('data', onData);
      b.off('end', onEnd);
      b.off('error', onError);
      verifier.off('drain', onDrain);
    };
    const onData = (c: Buffer): void => {
      let chunk = c;
      if (skip > 0) {
        const n = Math.min(skip, chunk.length);
        skip -= n;
        chunk = chunk.subarray(n);
        if (chunk.length === 0) return;
      }
      offset += chunk.length;
      opts.onProgress?.({ phase: 'download', item: desc.digest, transferred: offset, total: desc.size });
      if (!verifier.write(chunk)) b.pause();
    };
    const onEnd = (): void => {
      detach();
      if (desc.size < 0 || offset >= desc.size) verifier.end();
      // Clean end before the expected size: treat as a broken connection and resume.
      else resume(undefined);
    };
    const onError = (e: unknown): void => {
      detach();
      resume(e);
    };
    b.on('error', onError);
    b.once('end', onEnd);
    verifier.on('drain', onDrain);
    b.on('data', onData);
  };
  // A consumer that stops early (destroy) must release the current connection and its concurrency slot.
  verifier.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  follow(first);
}

async function hashPrefix(path: string, bytes: number, counter: DigestCounter, signal?: AbortSignal): Promise<void> {
  if (bytes <= 0) return;
  for await (const c of createReadStream(path, { start: 0, end: bytes - 1 })) {
    throwIfAborted(signal);
    counter.update(c as Buffer);
  }
}

/** Options for fetchBlobToFile. */
export interface FetchToFileOptions extends BlobReadOptions {
  /** Continue from an existing `<path>.partial` left by an earlier run. Default: true. */
  resumePartial?: boolean | undefined;
}

/**
 * Download a blob to `path` via `<path>.partial`, resuming after connection failures with Range (the hasher is
 * seeded with the bytes already on disk; a 200 answer restarts from zero), verifying, then renaming.
 */
export async function fetchBlobToFile(
  loc: BlobLocation,
  desc: Descriptor,
  path: string,
  opts: FetchToFileOptions = {},
): Promise<void> {
  const partial = `${path}.partial`;
  const maxResumes = opts.maxResumes ?? 5;
  let offset = 0;
  let fromLeftover = false;
  if (opts.resumePartial !== false) {
    const st = await stat(partial).catch(() => undefined);
    if (st && st.size > 0 && (desc.size < 0 || st.size <= desc.size)) {
      offset = st.size;
      fromLeftover = true;
    }
  }
  const stalls = { timeouts: 0 };
  for (let resumes = 0; ;) {
    const counter = new DigestCounter(desc.digest.startsWith('sha512:') ? 'sha512' : 'sha256');
    let res: RegistryResponse;
    let start: number;
    if (desc.size >= 0 && offset === desc.size) {
      // Leftover partial is complete: only verify it.
      await hashPrefix(partial, offset, counter, opts.signal);
    } else {
      ({ res, start } = await getFrom(loc, desc, offset, opts));
      offset = start;
      await hashPrefix(partial, offset, counter, opts.signal);
      const progress = new Transform({
        transform(chunk: Buffer, _e, cb) {
          counter.update(chunk);
          opts.onProgress?.({ phase: 'download', item: desc.digest, transferred: counter.size, total: desc.size });
          cb(null, chunk);
        },
      });
      try {
        await pipeline(
          res.body,
          progress,
          createWriteStream(partial, { flags: offset > 0 ? 'r+' : 'w', start: offset }),
          opts.signal ? { signal: opts.signal } : {},
        );
        if (desc.size >= 0 && counter.size < desc.size)
          throw Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      } catch (e) {
        res.body.destroy();
        throwIfAborted(opts.signal);
        if (!mayResume(e, stalls) || resumes >= maxResumes) throw loc.http.readError(`GET blob ${desc.digest}`, e);
        resumes++;
        offset = (await stat(partial)).size;
        continue;
      }
    }
    const got = counter.result();
    if ((desc.size >= 0 && got.size !== desc.size) || got.digest !== desc.digest) {
      await rm(partial, { force: true });
      if (fromLeftover) {
        // The leftover may have been from another blob version or corrupted: start over once.
        fromLeftover = false;
        offset = 0;
        continue;
      }
      throw new CanvosError(
        got.size !== desc.size && desc.size >= 0 ? 'ERR_SIZE_MISMATCH' : 'ERR_DIGEST_MISMATCH',
        `blob ${desc.digest} from ${loc.http.registry}/${loc.repository}: got ${got.size} bytes with digest ${got.digest}`,
        { hint: 'the registry served corrupt content; retry, or report it to the registry operator' },
      );
    }
    await rename(partial, path);
    return;
  }
}
