/**
 * Parallel ranged download of one large blob. Over a long-haul link one TCP stream gets window/RTT of throughput,
 * and CDNs in front of registries often shape per connection, so a single multi-GiB layer (a Kairos base image has
 * one) crawls at one stream's rate while the link sits idle.
 *
 * The blob is first read with one plain GET, timed after 256 KiB (or `partSize`, if smaller) and again after every
 * further 256 KiB until it is split or done. Only if it runs slower than `slowBelow` bytes/s (not counting time spent
 * waiting for the reader: a reader slower than one stream, such as a loopback copy bound by the destination, gains
 * nothing from more streams), the registry
 * advertised `Accept-Ranges: bytes` and has idle request slots (with every connection busy on other blobs more
 * streams add nothing), the rest is split: the first stream keeps going up to the next part boundary and is then
 * closed, and the parts after it are fetched with `Range: bytes=a-b`, up to `parallel` at once (the first stream
 * counted) and no more than this blob's fair share of the registry's connections. The part at the head streams straight through with backpressure; parts after it are read ahead into
 * memory; everything is emitted strictly in order into the caller's verifier, so the digest check is unchanged.
 * Read-ahead memory is bounded per process by a {@link ReadAheadBudget}: a part after the head starts only when its
 * whole size can be reserved. A fast source therefore costs exactly one request, as before; a part whose
 * connection breaks is resumed from its last byte.
 */
import type { Writable } from 'node:stream';
import { abortError, CanvosError } from '../errors.js';
import type { Descriptor } from '../oci/schemas.js';
import type { RegistryResponse } from './http.js';
import { isNetworkError } from './retry.js';

/** Tuning of ranged blob reads (RegistryHttpOptions.blobParts). */
export interface BlobPartsOptions {
  /** Parts of one blob in flight at once, the head included; 1 turns ranged reads off. Default: 6. */
  parallel?: number | undefined;
  /**
   * Bytes per part; blobs smaller than two parts are read with one plain GET. Blobs over 64 parts use larger parts
   * (size/64, up to 8 MiB). Default: 2 MiB.
   */
  partSize?: number | undefined;
  /** Read-ahead memory shared by every ranged read in the process. Default: {@link defaultReadAheadBudget}. */
  budget?: ReadAheadBudget | undefined;
  /**
   * Go parallel only when the first part arrived slower than this (bytes/s), not counting time spent waiting for
   * the reader; `Infinity`: always. Default: 64 MiB/s.
   */
  slowBelow?: number | undefined;
}

/** Bytes that parts read ahead of the consumer may hold in memory, shared by all downloads that use it. */
export class ReadAheadBudget {
  /** The cap on read-ahead memory. */
  readonly bytes: number;
  private free: number;
  private readonly waiters = new Set<() => void>();
  constructor(bytes: number) {
    this.bytes = bytes;
    this.free = bytes;
  }
  /** Reserve `n` bytes if available now. */
  tryReserve(n: number): boolean {
    if (n > this.free) return false;
    this.free -= n;
    return true;
  }
  /** Give back `n` reserved bytes and wake whoever waits. */
  release(n: number): void {
    if (n <= 0) return;
    this.free = Math.min(this.bytes, this.free + n);
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
  /** Call `fn` once at the next release; returns a function that cancels the wait. */
  onRelease(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }
}

/** The process-wide read-ahead budget: 64 MiB (32 parts of 2 MiB) whatever the number of blobs in flight. */
export const defaultReadAheadBudget = new ReadAheadBudget(64 * 1024 * 1024);

/** The first stream is timed over this many bytes (or one part, if smaller) before deciding, and again after each as many. */
const TIMED_BYTES = 256 * 1024;

/** Defaults applied to {@link BlobPartsOptions}. */
export const BLOB_PARTS_DEFAULTS = { parallel: 6, partSize: 2 * 1024 * 1024, slowBelow: 64 * 1024 * 1024 } as const;

/** Opens bytes [start, end] (inclusive) of the blob; resolves a 206 response whose Content-Range starts at `start`. */
export type RangeOpener = (start: number, end: number) => Promise<RegistryResponse>;

interface Part {
  readonly start: number;
  /** Exclusive. The first stream's end moves from the blob's size to a part boundary when the rest is split. */
  end: number;
  received: number;
  /** The first stream, cut short at `end` (its response runs to the blob's end). */
  cut?: boolean;
  chunks: Buffer[];
  started: boolean;
  done: boolean;
  reserved: number;
  res: RegistryResponse | undefined;
  resumes: number;
}

/**
 * Stream `desc` into `out` (a verifier), in order, splitting the rest into ranged parts when the first stream is
 * slow (see the file header). `first` is the already-open 200 answer with the whole blob; `open` opens a range.
 * Errors are delivered by destroying `out`; `out` is ended after the last byte.
 */
export function streamParts(
  desc: Descriptor,
  first: RegistryResponse,
  open: RangeOpener,
  out: Writable,
  o: {
    parallel: number;
    partSize: number;
    budget: ReadAheadBudget;
    maxResumes: number;
    slowBelow: number;
    signal?: AbortSignal | undefined;
    onBytes?: ((emitted: number) => void) | undefined;
    /** Whether another connection would be idle now (parallel parts would add throughput). Default: always. */
    canWiden?: (() => boolean) | undefined;
    /** Streams this blob may use now, its head included: its fair share of the connections. Default: `parallel`. */
    share?: (() => number) | undefined;
  },
): void {
  const part = (start: number, end: number): Part => ({ start, end, received: 0, chunks: [], started: false, done: false, reserved: 0, res: undefined, resumes: 0 });
  // One stream for the whole blob until it has been timed (see the file header).
  const parts: Part[] = [part(0, desc.size)];
  let split = false;
  let nextCheck = Math.min(o.partSize, TIMED_BYTES);
  // Time the head spent paused for the reader, which says nothing about the source's speed.
  let pausedMs = 0;
  let pausedAt = 0;
  const t0 = performance.now();
  /** Split the rest into ranged parts if the first stream is slow and connections are idle; else check again later. */
  const trySplit = (): void => {
    const first = parts[0]!;
    const now = performance.now();
    const waited = pausedMs + (pausedAt ? now - pausedAt : 0);
    const secs = Math.max(1e-3, (now - t0 - waited) / 1000);
    // The first stream runs on to the next part boundary (what is already in flight is not wasted).
    const size = o.partSize;
    const cut = (Math.floor(first.received / size) + 1) * size;
    if (!(first.received / secs < o.slowBelow && cut < desc.size && (o.canWiden?.() ?? true))) return;
    split = true;
    first.end = cut;
    first.cut = true;
    for (let s = cut; s < desc.size; s += size) parts.push(part(s, Math.min(desc.size, s + size)));
    pump();
  };
  let head = 0;
  let emitted = 0;
  let failed = false;
  let cancelWait: (() => void) | undefined;

  const fail = (e: unknown): void => {
    if (failed) return;
    failed = true;
    cancelWait?.();
    for (const p of parts) {
      p.res?.body.destroy();
      o.budget.release(p.reserved);
      p.reserved = 0;
      p.chunks = [];
    }
    if (!out.destroyed) out.destroy(o.signal?.aborted ? abortError(o.signal) : (e as Error));
  };
  const emit = (c: Buffer): boolean => {
    emitted += c.length;
    o.onBytes?.(emitted);
    return out.write(c);
  };

  const onDrain = (): void => {
    if (pausedAt) {
      pausedMs += performance.now() - pausedAt;
      pausedAt = 0;
    }
    const p = parts[head];
    if (p?.res && !failed) p.res.body.resume();
  };
  out.on('drain', onDrain);
  out.once('close', () => {
    // A consumer that stops early releases every connection and the memory reserved for it.
    if (head < parts.length) fail(new CanvosError('ERR_ABORTED', `blob ${desc.digest}: reader closed early`));
  });

  /** Move the head past finished parts, flushing what they buffered; end `out` after the last. */
  const advance = (): void => {
    while (head < parts.length && parts[head]!.done) {
      head++;
      const p = parts[head];
      if (!p) break;
      let flowing = true;
      for (const c of p.chunks) flowing = emit(c) && flowing;
      p.chunks = [];
      if (!flowing && p.res) {
        p.res.body.pause();
        pausedAt ||= performance.now();
      }
      // It is the head now: what it still receives streams straight through, so its reservation is returned.
      o.budget.release(p.reserved);
      p.reserved = 0;
    }
    if (head >= parts.length) {
      out.off('drain', onDrain);
      out.end();
      return;
    }
    pump();
  };

  /**
   * Start parts in order inside the window [head, head + parallel) as far as the budget and idle connections allow
   * (a part queued for a busy connection would only hold up other blobs' requests). Called again as parts finish
   * and as the head makes progress.
   */
  const pump = (): void => {
    if (failed || !split) return;
    for (let i = head; i < parts.length && i < head + o.parallel; i++) {
      const p = parts[i]!;
      if (p.started) continue;
      if (i !== head) {
        if (!(o.canWiden?.() ?? true)) return;
        // Leave other blobs reading from the same registry their share of the connections.
        let streaming = 0;
        for (let k = head; k < i; k++) if (parts[k]!.started && !parts[k]!.done) streaming++;
        if (streaming >= (o.share?.() ?? o.parallel)) return;
        if (!o.budget.tryReserve(p.end - p.start)) {
          cancelWait ??= o.budget.onRelease(() => {
            cancelWait = undefined;
            pump();
          });
          return;
        }
        p.reserved = p.end - p.start;
      }
      p.started = true;
      request(p);
    }
  };

  const request = (p: Part): void => {
    open(p.start + p.received, p.end - 1).then((res) => attach(p, res), (e: unknown) => retryOrFail(p, e));
  };

  const retryOrFail = (p: Part, e: unknown): void => {
    if (failed) return;
    if (o.signal?.aborted) return fail(abortError(o.signal));
    if ((e === undefined || isNetworkError(e)) && p.resumes < o.maxResumes) {
      p.resumes++;
      request(p);
      return;
    }
    fail(e ?? new CanvosError('ERR_NETWORK', `GET blob ${desc.digest}: bytes ${p.start}-${p.end - 1} ended early ${p.resumes + 1} times`, { hint: 'the connection to the registry keeps dropping' }));
  };

  const attach = (p: Part, res: RegistryResponse): void => {
    if (failed) return void res.body.destroy();
    p.res = res;
    const b = res.body;
    const onData = (data: Buffer): void => {
      if (failed) return;
      let c = data;
      let cutHere = false;
      if (p.received + c.length > p.end - p.start) {
        if (!p.cut) {
          return fail(new CanvosError('ERR_REGISTRY_HTTP', `GET blob ${desc.digest}: the registry sent more than the ${p.end - p.start} bytes asked for with Range: bytes=${p.start}-${p.end - 1}`, { hint: 'the registry or a proxy mishandles Range requests' }));
        }
        // The first stream reached the boundary where ranged parts take over.
        c = c.subarray(0, p.end - p.start - p.received);
        cutHere = true;
      }
      p.received += c.length;
      if (c.length > 0) {
        if (parts[head] === p && p.chunks.length === 0) {
          if (!emit(c)) {
            b.pause();
            pausedAt ||= performance.now();
          }
        } else {
          p.chunks.push(c);
        }
      }
      if (cutHere || (p.cut && p.received === p.end - p.start)) {
        detach();
        b.destroy();
        return finish();
      }
      // Connections freed by other blobs may make a split worth it later: re-check every TIMED_BYTES.
      // Every TIMED_BYTES of progress at the head: time the first stream again, or widen a split blob.
      if (emitted >= nextCheck) {
        nextCheck = emitted + TIMED_BYTES;
        if (!split) trySplit();
        else pump();
      }
    };
    const detach = (): void => {
      b.off('data', onData);
      b.off('end', onEnd);
      b.off('error', onError);
      p.res = undefined;
    };
    const finish = (): void => {
      p.done = true;
      if (parts[head] === p) advance();
      else pump();
    };
    const onEnd = (): void => {
      detach();
      if (p.received < p.end - p.start) return retryOrFail(p, undefined);
      finish();
    };
    const onError = (e: unknown): void => {
      detach();
      b.destroy();
      retryOrFail(p, e);
    };
    b.on('data', onData);
    b.once('end', onEnd);
    b.on('error', onError);
  };

  parts[0]!.started = true;
  attach(parts[0]!, first);
  pump();
}
