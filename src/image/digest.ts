/**
 * Content digests: parsing, hashing of buffers/streams/files, and a pass-through Transform that verifies
 * size and digest as bytes flow, failing the pipeline (before any rename) on mismatch.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CanvosError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/** A content digest, `sha256:<64 hex>` (sha512 is accepted when reading). */
export type Digest = `${'sha256' | 'sha512'}:${string}`;

const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** Parse and validate a digest string; `what` names the field for the error message. */
export function parseDigest(s: string, what = 'digest'): Digest {
  if (!isDigest(s)) {
    throw new CanvosError('ERR_DIGEST_MISMATCH', `${what} is not a valid digest: ${JSON.stringify(s.slice(0, 80))}`, {
      hint: 'a digest looks like sha256:<64 lowercase hex characters>',
    });
  }
  return s;
}

export function digestAlgorithm(d: Digest): 'sha256' | 'sha512' {
  return d.startsWith('sha512:') ? 'sha512' : 'sha256';
}
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Digest of a file, streamed. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<{ digest: Digest; size: number }> {
  const counter = new DigestCounter();
  // Not pipeline(file, counter.transform()): nothing would read the pass-through, which stalls after 16 KiB.
  for await (const chunk of createReadStream(path, signal ? { signal } : {})) counter.update(chunk as Buffer);
  return counter.result();
}

/** Accumulates a digest and byte count; `.transform()` gives a pass-through stream that feeds it. */
export class DigestCounter {
  private readonly hash: Hash;
  private readonly algo: 'sha256' | 'sha512';
  size = 0;
  constructor(algo: 'sha256' | 'sha512' = 'sha256') {
    this.algo = algo;
    this.hash = createHash(algo);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }
  result(): { digest: Digest; size: number } {
    return { digest: `${this.algo}:${this.hash.digest('hex')}`, size: this.size };
  }
  transform(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        this.update(chunk);
        cb(null, chunk);
      },
    });
  }
}

export interface VerifyOptions {
  /** Expected byte count; -1 or undefined skips the size check. */
  size?: number;
  /** Bytes already verified elsewhere (Range resume): they are hashed via `prefix` instead. */
  what?: string;
}

/**
 * A pass-through Transform that hashes everything and, at end of stream, errors with ERR_DIGEST_MISMATCH /
 * ERR_SIZE_MISMATCH if the content does not match. It also errors early when more bytes than `size` arrive.
 * Use `verifier.hashState` with `seed()` to resume a partially downloaded blob.
 */
export class VerifyingStream extends Transform {
  readonly expected: Digest;
  readonly expectedSize: number;
  private readonly counter: DigestCounter;
  private readonly what: string;
  /**
   * Called with the length of every chunk as it is hashed: a consumer counting progress (the copy engine) counts in
   * this one pass instead of piping the stream through a counter of its own.
   */
  onBytes: ((n: number) => void) | undefined;
  constructor(expected: Digest, opts: VerifyOptions = {}) {
    super();
    this.expected = expected;
    this.expectedSize = opts.size ?? -1;
    this.counter = new DigestCounter(digestAlgorithm(expected));
    this.what = opts.what ?? expected;
  }
  /** Feed bytes that were already written (e.g. the existing part of a file before a Range resume). */
  seed(chunk: Uint8Array): void {
    this.counter.update(chunk);
  }
  get bytes(): number {
    return this.counter.size;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.counter.update(chunk);
    this.onBytes?.(chunk.length);
    if (this.expectedSize >= 0 && this.counter.size > this.expectedSize) {
      cb(
        new CanvosError(
          'ERR_SIZE_MISMATCH',
          `${this.what}: received more than the expected ${this.expectedSize} bytes`,
          { hint: 'the content is corrupt or was cut short (a damaged source, disk or proxy): fetch or copy it again' },
        ),
      );
      return;
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const { digest, size } = this.counter.result();
    if (this.expectedSize >= 0 && size !== this.expectedSize) {
      cb(
        new CanvosError('ERR_SIZE_MISMATCH', `${this.what}: expected ${this.expectedSize} bytes, got ${size}`, {
          hint: 'the content is corrupt or was cut short (a damaged source, disk or proxy): fetch or copy it again',
        }),
      );
      return;
    }
    if (digest !== this.expected) {
      cb(
        new CanvosError(
          'ERR_DIGEST_MISMATCH',
          `${this.what}: content digest ${digest} does not match ${this.expected}`,
          { hint: 'the content is corrupt or was cut short (a damaged source, disk or proxy): fetch or copy it again' },
        ),
      );
      return;
    }
    cb();
  }
}

/** Verify an in-memory buffer (manifests, configs). */
export function verifyBuffer(buf: Uint8Array, expected: Digest, what = 'content'): void {
  const h = createHash(digestAlgorithm(expected)).update(buf).digest('hex');
  if (`${digestAlgorithm(expected)}:${h}` !== expected) {
    throw new CanvosError('ERR_DIGEST_MISMATCH', `${what}: content digest does not match ${expected}`, {
      hint: 'the content is corrupt or was cut short (a damaged source, disk or proxy): fetch or copy it again',
    });
  }
}

/**
 * Publishes a finished artefact: hashes `partial`, renames it to `dest`, then writes `<dest>.sha256` (sha256sum
 * format, written atomically). Returns the hex digest. The caller removes both partials on failure.
 */
export async function publishWithSha256(partial: string, dest: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  // 1 MiB reads: for a 290 MB ISO ~0.35 s of CPU instead of ~0.5–0.65 s with the default 64 KiB (bench/README.md
  // "ISO, round 4").
  await pipeline(createReadStream(partial, { highWaterMark: 1 << 20 }), hash, signal ? { signal } : {});
  const hex = hash.digest('hex');
  await rename(partial, dest);
  await writeFileAtomic(`${dest}.sha256`, `${hex}  ${basename(dest)}\n`);
  return hex;
}
