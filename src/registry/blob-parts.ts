/**
 * Parallel ranged download of large blobs. Over a long-haul link one TCP stream gets window/RTT of throughput, and
 * CDNs in front of registries often shape per connection, so a single multi-GiB layer (a Kairos base image has one)
 * crawls at one stream's rate while the link sits idle, and the last blobs of a copy run alone on one connection
 * each while the others wait.
 *
 * A blob is first read with one plain GET, timed after 256 KiB and again after every further 256 KiB until it goes
 * parallel or ends (a registry whose last timed blob was slow is taken to be slow again, and the next blob goes
 * parallel at its first bytes; it is still timed, which updates the hint). It goes parallel only if it runs slower
 * than `slowBelow` bytes/s (not counting time spent waiting for the reader: a reader slower than one stream, such as
 * a loopback copy bound by the destination, gains nothing from more streams), the registry advertised
 * `Accept-Ranges: bytes`, and no other blob of the copy waits to start (`canWiden`).
 *
 * From then on the registry's {@link PartScheduler} gives it idle request slots, each to the blob with the most
 * bytes left per stream (within its fair share of the connections, and at most `parallel` parts from its head on).
 * A new stream reads the next queued part (at most `partSize`), or, once nothing is queued, the second half of the
 * blob's longest running stream (work stealing; only if that half takes the stream clearly longer than a new request
 * needs to start): the running stream is cut where the new one starts, its connection closed there. When the half
 * would exceed a part, the running stream is cut at its next part boundary, one part is started after it and the
 * rest is queued. Ranges start at 64 KiB boundaries.
 *
 * The stream at the head streams straight through with backpressure; parts after it are read ahead into memory;
 * everything is emitted strictly in order into the caller's verifier, so the digest check is unchanged. Read-ahead
 * memory is bounded per process by a {@link ReadAheadBudget}: a part after the head starts only when its whole size
 * can be reserved. A fast source costs exactly one request; a part whose connection breaks is resumed from its last
 * byte.
 */
import type { Writable } from 'node:stream';
import { CanvosError } from '../errors.js';
import type { Descriptor } from '../oci/schemas.js';
import type { HttpResponse as RegistryResponse } from '../http/request.js';
import { mayResume } from '../http/retry.js';
import { abortError } from '../util/abort.js';

/** Tuning of ranged blob reads (RegistryHttpOptions.blobParts). */
export interface BlobPartsOptions {
  /** Parts of one blob in flight at once, the head included; 1 turns ranged reads off. Default: 6. */
  parallel?: number | undefined;
  /**
   * The largest range one request reads (a stolen half is smaller when the stream it came from was short): the
   * unit of read-ahead memory. Blobs over 64 parts use larger parts (size/64, up to 8 MiB). Default: 8 MiB.
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
  /** Bytes that could be reserved right now. */
  get available(): number {
    return this.free;
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
/** A stream is split in two only if each half keeps at least this much. */
const MIN_HALF = 256 * 1024;
/** Steal boundaries are aligned to this (and never closer than MIN_HALF to either end). */
const ALIGN = 64 * 1024;

/** Defaults applied to {@link BlobPartsOptions}. */
export const BLOB_PARTS_DEFAULTS = { parallel: 6, partSize: 8 * 1024 * 1024, slowBelow: 64 * 1024 * 1024 } as const;

/** Blobs smaller than this are always read with one plain GET. */
export const MIN_RANGED_BLOB = 8 * MIN_HALF;

/** Opens bytes [start, end] (inclusive) of the blob; resolves a 206 response whose Content-Range starts at `start`. */
export type RangeOpener = (start: number, end: number, onSlot: () => void) => Promise<RegistryResponse>;

/** `fn`, callable any number of times but run only the first. */
function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

/** What the scheduler asks of each blob being read in parts. */
interface PartsDownload {
  /** How much an extra stream is worth to this blob now (its bytes still to come per stream); 0: it cannot use one. */
  score(): number;
  /** Start one more stream (the next queued part, or the second half of its longest running stream). */
  grow(): boolean;
}

/**
 * Hands a registry's idle connections to the blobs being read from it in parts. Whenever a connection frees up
 * (a request slot is released, a part ends, a blob is split), each idle slot goes to the blob with the most bytes
 * still to come per stream: the next queued part of that blob, or, once no part is queued anywhere, the second
 * half of its longest running stream (work stealing: the running stream is cut where the new one starts, so the
 * last blobs of a copy finish together instead of one straggler per connection). One per registry transport.
 */
export class PartScheduler {
  private readonly downloads = new Set<PartsDownload>();
  /** Streams granted a slot by this scheduler whose request has not taken its semaphore slot yet. */
  private starting = 0;
  private queued = false;
  /** Whether the last blob timed from this registry was slow (the next one goes parallel at once). */
  slowHint = false;
  /** The rate the last timed blob's first stream ran at (bytes/s). */
  lastRate = Infinity;
  private readonly idle: () => number;
  private readonly slots: () => number;
  /** Blobs large enough to be split being read from this registry (split or not yet, answered or not yet). */
  private reading = 0;
  /** `idle`: request slots free right now; `slots`: the registry's request limit. */
  constructor(idle: () => number, slots: () => number) {
    this.idle = idle;
    this.slots = slots;
  }

  /** A blob read that may be split begins (before its first request); call the result when it ends. */
  beginRead(): () => void {
    this.reading++;
    return once(() => {
      this.reading--;
      this.kick();
    });
  }

  /**
   * Streams one blob may have while others are being read: its fair share of the connections, so a blob whose
   * first answer comes a little later still gets as many as the one that was split first.
   */
  share(): number {
    return Math.max(1, Math.ceil(this.slots() / Math.max(1, this.reading)));
  }

  add(d: PartsDownload): void {
    this.downloads.add(d);
    this.kick();
  }

  delete(d: PartsDownload): void {
    this.downloads.delete(d);
  }

  /** Re-plan soon (coalesced): a slot, a part or read-ahead memory may have been freed. */
  kick(): void {
    if (this.queued || this.downloads.size === 0) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      this.run();
    });
  }

  /** Call before sending a granted stream's request; call the result once it holds its slot (or failed). */
  began(): () => void {
    this.starting++;
    return once(() => {
      this.starting--;
    });
  }

  private run(): void {
    while (this.idle() - this.starting > 0) {
      let best: PartsDownload | undefined;
      let bestScore = 0;
      for (const d of this.downloads) {
        const s = d.score();
        if (s > bestScore) {
          best = d;
          bestScore = s;
        }
      }
      if (!best || !best.grow()) return;
    }
  }
}

interface Part {
  readonly start: number;
  /** Exclusive. Moves down when the part is cut: the rest is split off, or the first stream's rest is queued as parts. */
  end: number;
  received: number;
  /** Its response runs past `end` (the first stream, or a part whose tail was stolen): stop and close there. */
  cut?: boolean;
  chunks: Buffer[];
  started: boolean;
  done: boolean;
  reserved: number;
  res: RegistryResponse | undefined;
  resumes: number;
  /** When its current response started delivering (performance.now()), and bytes received before that. */
  since: number;
  sinceBytes: number;
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
    /** The registry's scheduler of idle connections (one per registry transport). */
    scheduler: PartScheduler;
    signal?: AbortSignal | undefined;
    onBytes?: ((emitted: number) => void) | undefined;
    /** Whether this blob may take idle connections now (false while other blobs wait to start). Default: always. */
    canWiden?: (() => boolean) | undefined;
  },
): void {
  const sched = o.scheduler;
  const part = (start: number, end: number): Part => ({
    start,
    end,
    received: 0,
    chunks: [],
    started: false,
    done: false,
    reserved: 0,
    res: undefined,
    resumes: 0,
    since: 0,
    sinceBytes: 0,
  });
  // One stream for the whole blob until it has been timed (see the file header).
  const parts: Part[] = [part(0, desc.size)];
  let split = false;
  // A registry whose last timed blob was slow is taken to be slow again: this blob goes parallel at its first
  // bytes and is timed all the same once TIMED_BYTES have come, which updates the hint for the next one.
  let hinted = sched.slowHint;
  let timed = false;
  let nextCheck = hinted ? 0 : Math.min(o.partSize, TIMED_BYTES);
  // Time the head spent paused for the reader, which says nothing about the source's speed.
  let pausedMs = 0;
  let pausedAt = 0;
  const t0 = performance.now();
  // Time from asking for a part to its first byte (the cost of one more stream), smoothed.
  let ttfbMs = 0;
  // The first stream's rate when it was last timed (bytes/s).
  let firstRate = hinted ? sched.lastRate : Infinity;
  const canWiden = (): boolean => o.canWiden?.() ?? true;
  /** Time the first stream (not counting waits for the reader); tells the registry's scheduler too. */
  const measure = (): boolean => {
    const first = parts[0]!;
    const now = performance.now();
    const waited = pausedMs + (pausedAt ? now - pausedAt : 0);
    const secs = Math.max(1e-3, (now - t0 - waited) / 1000);
    firstRate = first.received / secs;
    timed = first.received >= TIMED_BYTES || first.done;
    const slow = firstRate < o.slowBelow;
    sched.slowHint = slow;
    sched.lastRate = firstRate;
    return slow;
  };
  /** Go parallel if the first stream is slow and this blob may take idle connections; else check again later. */
  const trySplit = (): void => {
    const first = parts[0]!;
    const slow = hinted || measure();
    if (!(slow && desc.size - first.received >= 2 * MIN_HALF && canWiden())) {
      // The hint alone does not keep a blob whole-stream forever: time it for real from now on.
      hinted = false;
      return;
    }
    // From now on the scheduler gives this blob idle connections: it cuts the first stream and reads the rest in
    // ranged parts (see PartsDownload.grow).
    split = true;
    sched.add(download);
  };
  let head = 0;
  let emitted = 0;
  let failed = false;
  let cancelWait: (() => void) | undefined;

  const fail = (e: unknown): void => {
    if (failed) return;
    failed = true;
    sched.delete(download);
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
      sched.delete(download);
      out.off('drain', onDrain);
      out.end();
      return;
    }
    // The head always runs, whatever the scheduler says: everything after it waits for it.
    const h = parts[head]!;
    if (!h.started) start(h, false);
    sched.kick();
  };

  /**
   * Bytes still to come, the streams bringing them, and the parts started from the head on (finished ones still
   * hold their bytes for the reader): at most `parallel`, which bounds one blob's read-ahead.
   */
  const load = (): { left: number; streams: number; window: number } => {
    let left = 0;
    let streams = 0;
    let window = 0;
    for (let i = head; i < parts.length; i++) {
      const p = parts[i]!;
      if (p.started) window++;
      if (p.done) continue;
      left += p.end - p.start - p.received;
      if (p.started) streams++;
    }
    return { left, streams, window };
  };

  /** The started stream worth cutting in two (the most bytes still to come), if any. */
  const victim = (): Part | undefined => {
    let best: Part | undefined;
    let bestLeft = 0;
    const now = performance.now();
    for (let i = head; i < parts.length; i++) {
      const p = parts[i]!;
      if (!p.started || p.done) continue;
      const left = p.end - p.start - p.received;
      if (left < 2 * MIN_HALF || left <= bestLeft) continue;
      // Only if the second half would take this stream clearly longer than a new stream needs to start. A stream
      // still waiting for its answer (or only just answered) is assumed to run at the first stream's rate.
      const secs = p.res ? (now - p.since) / 1000 : 0;
      const rate = secs > 0.02 ? (p.received - p.sinceBytes) / secs : firstRate;
      if (left / 2 / rate < (2 * ttfbMs) / 1000) continue;
      best = p;
      bestLeft = left;
    }
    return best;
  };

  /** The first queued (not yet started) range after the head. */
  const queued = (): Part | undefined => {
    for (let i = head + 1; i < parts.length; i++) {
      const p = parts[i]!;
      if (!p.started) return p;
    }
    return undefined;
  };

  /**
   * What one more stream would read: the front of the first queued range (at most one part), or else the second
   * half of the longest running stream, or, when that half is longer than a part, the part after the running
   * stream's current part boundary (the rest after it is queued). Read-ahead memory must hold it.
   */
  type Plan = { kind: 'queued'; p: Part; len: number } | { kind: 'steal'; p: Part; at: number; len: number };
  const plan = (): Plan | undefined => {
    const q = queued();
    if (q) return { kind: 'queued', p: q, len: Math.min(o.partSize, q.end - q.start) };
    const v = victim();
    if (!v) return undefined;
    const pos = v.start + v.received;
    const half = (v.end - pos) / 2;
    if (half <= o.partSize) {
      const at = Math.ceil((pos + half) / ALIGN) * ALIGN;
      return at < v.end ? { kind: 'steal', p: v, at, len: v.end - at } : undefined;
    }
    const at = (Math.floor(pos / o.partSize) + 1) * o.partSize;
    return { kind: 'steal', p: v, at, len: Math.min(o.partSize, v.end - at) };
  };

  /** Start `p`, carving it down to one part (the rest stays queued after it); `ahead`: reserve read-ahead for it. */
  const start = (p: Part, ahead: boolean): boolean => {
    const len = Math.min(o.partSize, p.end - p.start);
    if (ahead) {
      if (!o.budget.tryReserve(len)) return false;
      p.reserved = len;
    }
    if (p.end - p.start > len) {
      parts.splice(parts.indexOf(p) + 1, 0, part(p.start + len, p.end));
      p.end = p.start + len;
    }
    p.started = true;
    request(p);
    return true;
  };

  const download: PartsDownload = {
    score() {
      if (failed || !split || !canWiden()) return 0;
      const { left, streams, window } = load();
      if (window >= o.parallel || streams >= sched.share()) return 0;
      const next = plan();
      if (!next) return 0;
      if (o.budget.available < next.len) {
        cancelWait ??= o.budget.onRelease(() => {
          cancelWait = undefined;
          sched.kick();
        });
        return 0;
      }
      return left / (streams + 1);
    },
    grow() {
      const next = plan();
      if (!next) return false;
      if (next.kind === 'queued') return start(next.p, true);
      const v = next.p;
      if (!o.budget.tryReserve(next.len)) return false;
      const n = part(next.at, next.at + next.len);
      n.reserved = next.len;
      const rest = next.at + next.len < v.end ? part(next.at + next.len, v.end) : undefined;
      // The victim stops at `at` (its response runs on: it is closed there) and gives back read-ahead beyond it.
      if (v.reserved > 0) {
        o.budget.release(v.reserved - (next.at - v.start));
        v.reserved = next.at - v.start;
      }
      v.end = next.at;
      v.cut = true;
      parts.splice(parts.indexOf(v) + 1, 0, n, ...(rest ? [rest] : []));
      n.started = true;
      request(n);
      return true;
    },
  };

  const request = (p: Part): void => {
    const asked = performance.now();
    const slot = sched.began();
    open(p.start + p.received, p.end - 1, slot).then(
      (res) => {
        slot();
        const ms = performance.now() - asked;
        ttfbMs = ttfbMs === 0 ? ms : 0.7 * ttfbMs + 0.3 * ms;
        attach(p, res);
      },
      (e: unknown) => {
        slot();
        retryOrFail(p, e);
      },
    );
  };

  const stalls = { timeouts: 0 };
  const retryOrFail = (p: Part, e: unknown): void => {
    if (failed) return;
    if (o.signal?.aborted) return fail(abortError(o.signal));
    if ((e === undefined || mayResume(e, stalls)) && p.resumes < o.maxResumes) {
      p.resumes++;
      request(p);
      return;
    }
    fail(
      e ??
        new CanvosError(
          'ERR_NETWORK',
          `GET blob ${desc.digest}: bytes ${p.start}-${p.end - 1} ended early ${p.resumes + 1} times`,
          { hint: 'the connection to the registry keeps dropping' },
        ),
    );
  };

  const attach = (p: Part, res: RegistryResponse): void => {
    if (failed) return void res.body.destroy();
    p.res = res;
    p.since = performance.now();
    p.sinceBytes = p.received;
    const b = res.body;
    const onData = (data: Buffer): void => {
      if (failed) return;
      let c = data;
      let cutHere = false;
      if (p.received + c.length > p.end - p.start) {
        if (!p.cut) {
          return fail(
            new CanvosError(
              'ERR_REGISTRY_HTTP',
              `GET blob ${desc.digest}: the registry sent more than the ${p.end - p.start} bytes asked for with Range: bytes=${p.start}-${p.end - 1}`,
              { hint: 'the registry or a proxy mishandles Range requests' },
            ),
          );
        }
        // The stream reached the boundary where another stream takes over.
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
      // Every TIMED_BYTES of progress at the head: time the first stream again, or let the scheduler re-plan.
      if (emitted >= nextCheck) {
        nextCheck = emitted + TIMED_BYTES;
        if (!split) trySplit();
        else {
          if (!timed && parts[0]!.received >= TIMED_BYTES) measure();
          sched.kick();
        }
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
      else sched.kick();
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
}
