/**
 * Content-addressed blob storage on disk: `<root>/<alg>/<hex>` files written through a temp file in the same
 * directory and renamed only after digest and size were verified, so a reader never sees a partial or wrong blob.
 * `storeBlob` is shared with the OCI layout writer; `BlobCache` is the local cache used by build and mirror.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import {
  DigestCounter,
  digestAlgorithm,
  digestHex,
  parseDigest,
  VerifyingStream,
  type Digest,
} from '../image/digest.js';
import { mkdirs } from '../fs-util.js';
import { tempPathFor } from '../util/atomic-file.js';
import { withPath } from '../error-map.js';
import { abortedOr } from '../util/abort.js';

/** Where a digest lives under a `<alg>/<hex>` blob root. */
export function blobFile(root: string, digest: Digest): string {
  return join(root, digestAlgorithm(digest), digestHex(digest));
}

/** Options of {@link storeBlob}. */
export interface StoreBlobOptions {
  /** Expected digest; without it the digest is computed (sha256) and the blob stored under it. Default: none. */
  digest?: Digest | undefined;
  /** Expected size in bytes; checked when given. Default: not checked. */
  size?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Called with the bytes written so far (throttling is the caller's business). Default: none. */
  onBytes?: ((n: number) => void) | undefined;
  /**
   * `input` verifies `digest` and `size` itself and errors at its end on mismatch (an `ImageSource.getBlob`
   * stream, see `PutBlobHints.sourceVerified`): the bytes are not hashed again, only counted. The blob still
   * becomes visible only after `input` ended cleanly with the expected size. Ignored without `digest` (the
   * digest is then needed to name the file). Default: false.
   */
  sourceVerified?: boolean | undefined;
}

/**
 * Stream `input` into `<root>/<alg>/<hex>` atomically: temp file (util/atomic-file.ts naming) in the same directory, verified, then
 * renamed. On any failure the temp file is removed and nothing becomes visible. The bytes are hashed once: against
 * `digest` when given (not at all with `sourceVerified`, where the input's own verification at its end stands in),
 * else to compute the sha256 that names the file.
 */
export async function storeBlob(
  root: string,
  input: Readable,
  opts: StoreBlobOptions = {},
): Promise<{ digest: Digest; size: number; path: string }> {
  const algo = opts.digest ? digestAlgorithm(opts.digest) : 'sha256';
  const dir = join(root, algo);
  await mkdirs(dir);
  const tmp = tempPathFor(join(dir, 'blob'));
  const expectedSize = opts.size !== undefined && opts.size >= 0 ? opts.size : -1;
  // Exactly one stage looks at the bytes: the verifier (hashes and checks size), the counter (hashes to name the
  // file) or, for a self-verifying input, a size guard (counts only; fails as soon as the input runs over).
  const onBytes = opts.onBytes;
  const digest = opts.digest;
  const stages: Transform[] = [];
  let result: () => { digest: Digest; size: number };
  if (digest && opts.sourceVerified) {
    const guard = new SizeGuard(digest, expectedSize, onBytes);
    stages.push(guard);
    result = () => ({ digest, size: guard.bytes });
  } else {
    if (digest) {
      const verifier = new VerifyingStream(digest, { size: expectedSize });
      stages.push(verifier);
      result = () => ({ digest, size: verifier.bytes });
    } else {
      const counter = new DigestCounter(algo);
      stages.push(counter.transform());
      result = () => counter.result();
    }
    if (onBytes) {
      let n = 0;
      stages.push(
        new Transform({
          transform: (c: Buffer, _e, cb) => {
            onBytes((n += c.length));
            cb(null, c);
          },
        }),
      );
    }
  }
  try {
    // pipeline resolves only after `input` ended without error and the temp file is flushed and closed; an error
    // at the input's end (a self-verifying source's digest mismatch) rejects it before anything is renamed.
    await pipeline([input, ...stages, createWriteStream(tmp)], opts.signal ? { signal: opts.signal } : {});
    const stored = result();
    if (expectedSize >= 0 && stored.size !== expectedSize) {
      throw new CanvosError(
        'ERR_SIZE_MISMATCH',
        `blob ${stored.digest}: expected ${expectedSize} bytes, got ${stored.size}`,
      );
    }
    const path = join(dir, digestHex(stored.digest));
    await rename(tmp, path);
    return { ...stored, path };
  } catch (e) {
    await rm(tmp, { force: true });
    throw opts.signal?.aborted ? abortedOr(opts.signal, e) : withPath(e, tmp);
  }
}

/** Pass-through that counts bytes (reporting them to `onBytes`) and fails as soon as more than `max` arrive. */
class SizeGuard extends Transform {
  bytes = 0;
  private readonly digest: Digest;
  private readonly max: number;
  private readonly onBytes: ((n: number) => void) | undefined;
  constructor(digest: Digest, max: number, onBytes: ((n: number) => void) | undefined) {
    super();
    this.digest = digest;
    this.max = max;
    this.onBytes = onBytes;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.max >= 0 && this.bytes > this.max) {
      cb(
        new CanvosError('ERR_SIZE_MISMATCH', `blob ${this.digest}: received more than the expected ${this.max} bytes`),
      );
      return;
    }
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
}

/** Size of a stored blob, or undefined when absent. */
export async function blobSize(root: string, digest: Digest): Promise<number | undefined> {
  try {
    const s = await stat(blobFile(root, digest));
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** Options of {@link BlobCache}. */
export interface BlobCacheOptions {
  /**
   * Cache directory. Default: `$CANVOS_CACHE_DIR`, else `$XDG_CACHE_HOME/canvos-lite/blobs`, else
   * `~/.cache/canvos-lite/blobs`.
   */
  dir?: string | undefined;
  /** Environment to read the defaults from. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
}

/** The default cache directory for an environment (see {@link BlobCacheOptions.dir}). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CANVOS_CACHE_DIR) return env.CANVOS_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'canvos-lite', 'blobs');
}

/**
 * The guard every cache rooted at {@link defaultCacheDir} runs before its first write: a default root under a home
 * directory that does not exist (`HOME=/nonexistent`, as service users have) is never created, so no made-up home
 * appears as a side effect. `dir` is the root the caller chose (`--cache-dir`): then, as with `CANVOS_CACHE_DIR` or
 * `XDG_CACHE_HOME`, there is nothing to check. Returns a function that resolves once the home is known to exist
 * (checked once) and rejects with ERR_CONFIG naming the home directory and the settings that avoid it.
 */
export function cacheHomeGuard(env: NodeJS.ProcessEnv, dir: string | undefined): () => Promise<void> {
  if (dir !== undefined || env.CANVOS_CACHE_DIR || env.XDG_CACHE_HOME) return () => Promise.resolve();
  const home = env.HOME || homedir();
  let exists = false;
  return async () => {
    if (exists) return;
    exists = await stat(home).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (exists) return;
    throw new CanvosError('ERR_CONFIG', `the home directory ${home} does not exist, and the cache lies under it`, {
      hint: 'set --cache-dir, CANVOS_CACHE_DIR or XDG_CACHE_HOME to a writable directory, or HOME to an existing one',
    });
  };
}

/**
 * A local content-addressed blob cache. Blobs are immutable once stored; concurrent writers of the same digest
 * are safe because each writes its own temp file and rename is atomic.
 */
export class BlobCache {
  /** The cache root; blobs live in `<dir>/<alg>/<hex>`. */
  readonly dir: string;
  private readonly homeExists: () => Promise<void>;
  constructor(opts: BlobCacheOptions = {}) {
    this.dir = opts.dir ?? defaultCacheDir(opts.env);
    this.homeExists = cacheHomeGuard(opts.env ?? process.env, opts.dir);
  }
  /** The file a digest is (or would be) stored at. */
  path(digest: string): string {
    return blobFile(this.dir, parseDigest(digest));
  }
  /** True when the blob is cached (and, when `size` is given, has that size). */
  async has(digest: string, size?: number): Promise<boolean> {
    const s = await blobSize(this.dir, parseDigest(digest));
    return s !== undefined && (size === undefined || size < 0 || s === size);
  }
  /**
   * Store a stream. With `expectedDigest` the bytes are verified (and nothing is stored on mismatch); without it
   * the sha256 is computed. Returns the digest, size and path.
   */
  async put(
    input: Readable,
    expectedDigest?: string,
    opts: Omit<StoreBlobOptions, 'digest'> = {},
  ): Promise<{ digest: Digest; size: number; path: string }> {
    await this.homeExists().catch((e: unknown) => {
      input.destroy();
      throw e;
    });
    return storeBlob(this.dir, input, {
      ...opts,
      digest: expectedDigest === undefined ? undefined : parseDigest(expectedDigest),
    });
  }
}
