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
 * `Accept-Ranges: bytes`, and either no other blob of the copy waits to start (`canWiden`) or the registry has
 * connections reserved for ranged parts (`BlobPartsOptions.connections` beyond the request limit), which waiting
 * blobs would not use anyway.
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
import type { Descriptor } from '../image/schemas.js';
import type { HttpResponse } from '../http/request.js';
import { mayResume } from '../http/retry.js';
import { abortError } from '../util/abort.js';
import { loopLoad } from './blob-parts-load.js';
import type { PartScheduler, PartsDownload, ReadAheadBudget } from './blob-parts-scheduler.js';
import {
  firstStreamRate,
  MIN_HALF,
  newPart,
  nextStream,
  partsLoad,
  streamWorth,
  TIMED_BYTES,
  type PartState,
  type StreamPlan,
} from './blob-parts-planner.js';

/** Tuning of ranged blob reads (RegistryHttpOptions.blobParts). */
export interface BlobPartsOptions {
  /** Parts of one blob in flight at once, the head included; 1 turns ranged reads off. Default: 8. */
  parallel?: number | undefined;
  /**
   * The largest range one request reads (a stolen half is smaller when the stream it came from was short): the
   * unit of read-ahead memory. Blobs over 64 parts use larger parts (size/64, up to 8 MiB). Default: 8 MiB.
   */
  partSize?: number | undefined;
  /**
   * Connections to one registry that reads may use in all: its request limit (RegistryHttpOptions.concurrency)
   * plus extra connections that carry only Range parts of blobs found slow. Over a link that caps each connection
   * these keep it busy while every blob slot holds a one-stream blob; a fast registry never splits a blob, so it
   * never sees them. Default: twice the request limit, at most {@link MAX_RANGED_CONNECTIONS} (never below the limit).
   */
  connections?: number | undefined;
  /** Read-ahead memory shared by every ranged read in the process. Default: {@link defaultReadAheadBudget}. */
  budget?: ReadAheadBudget | undefined;
  /**
   * Go parallel only when the first part arrived slower than this (bytes/s), not counting time spent waiting for
   * the reader; `Infinity`: always. Default: 64 MiB/s.
   */
  slowBelow?: number | undefined;
}

/** Defaults applied to {@link BlobPartsOptions}. */
export const BLOB_PARTS_DEFAULTS = { parallel: 8, partSize: 8 * 1024 * 1024, slowBelow: 64 * 1024 * 1024 } as const;

/** The default cap on connections per registry with ranged parts counted (aria2's per-server maximum, too). */
export const MAX_RANGED_CONNECTIONS = 16;

/**
 * Connections beyond the request limit `concurrency` that only ranged parts use, for the registry's `blobParts`
 * setting (see {@link BlobPartsOptions.connections}); 0 when ranged reads are off.
 */
export function extraRangedSlots(concurrency: number, setting: BlobPartsOptions | false | undefined): number {
  if (setting === false || (setting?.parallel !== undefined && setting.parallel <= 1)) return 0;
  const total = setting?.connections ?? Math.min(2 * concurrency, MAX_RANGED_CONNECTIONS);
  return Math.max(0, Math.floor(total) - concurrency);
}

/** Blobs smaller than this are always read with one plain GET. */
export const MIN_RANGED_BLOB = 8 * MIN_HALF;

/** Opens bytes [start, end] (inclusive) of the blob; resolves a 206 response whose Content-Range starts at `start`. */
export type RangeOpener = (start: number, end: number, onSlot: () => void) => Promise<HttpResponse>;

/** A part being read: its range state (planner) plus its bytes, memory and connection. */
interface Part extends PartState {
  /** Its response runs past `end` (the first stream, or a part whose tail was stolen): stop and close there. */
  cut?: boolean;
  /** Bytes received ahead of the head, waiting to be emitted. */
  chunks: Buffer[];
  /** Read-ahead memory reserved for it. */
  reserved: number;
  res?: HttpResponse | undefined;
  /** Times its broken response was resumed. */
  resumes: number;
}

function part(start: number, end: number): Part {
  return { ...newPart(start, end), chunks: [], reserved: 0, resumes: 0 };
}

/** Options of {@link streamParts}. */
export interface StreamPartsOptions {
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
}

/**
 * Stream `desc` into `out` (a verifier), in order, splitting the rest into ranged parts when the first stream is
 * slow (see the file header). `first` is the already-open 200 answer with the whole blob; `open` opens a range.
 * Errors are delivered by destroying `out`; `out` is ended after the last byte.
 */
export function streamParts(
  desc: Descriptor,
  first: HttpResponse,
  open: RangeOpener,
  out: Writable,
  o: StreamPartsOptions,
): void {
  new PartsReader(desc, open, out, o).begin(first);
}

/**
 * One blob read in ranged parts: the parts in blob order, the head (the part the consumer is reading), and the
 * timing that decides when to split. The scheduler asks it for {@link score} and {@link grow}; the planner
 * (blob-parts-planner.ts) decides what a new stream reads.
 */
class PartsReader implements PartsDownload {
  /** The blob's parts in order; one stream for the whole blob until it has been timed. */
  private readonly parts: Part[];
  /** Index of the part the consumer reads now; everything before it was emitted. */
  private head = 0;
  /** Bytes written to `out` so far. */
  private emitted = 0;
  /** The blob takes idle connections from the scheduler (its first stream was found slow). */
  private split = false;
  /** The registry's last timed blob was slow: go parallel at the first bytes, timing this one all the same. */
  private hinted: boolean;
  /** The first stream has been timed over TIMED_BYTES (or ended). */
  private timed = false;
  /** `emitted` at which the first stream is timed again (or the scheduler re-plans). */
  private nextCheck: number;
  /** Time the head spent paused for the reader (says nothing about the source), and since when it is paused. */
  private pausedMs = 0;
  private pausedAt = 0;
  /** When the read began. */
  private readonly t0 = performance.now();
  /** Time from asking for a part to its first byte (the cost of one more stream), smoothed. */
  private ttfbMs = 0;
  /** The first stream's rate when it was last timed (bytes/s). */
  private firstRate: number;
  /** The read failed (or the reader went away): everything was released. */
  private failed = false;
  /** Cancels the wait for read-ahead memory, when one is pending. */
  private cancelWait: (() => void) | undefined;
  /** Timeouts seen across the blob's resumes (mayResume allows one). */
  private readonly stalls = { timeouts: 0 };
  private readonly sched: PartScheduler;
  private readonly desc: Descriptor;
  /** Opens a range of the blob (a request on the registry). */
  private readonly open: RangeOpener;
  /** The consumer (the digest verifier): bytes go to it strictly in order. */
  private readonly out: Writable;
  private readonly o: StreamPartsOptions;

  constructor(desc: Descriptor, open: RangeOpener, out: Writable, o: StreamPartsOptions) {
    this.desc = desc;
    this.open = open;
    this.out = out;
    this.o = o;
    this.sched = o.scheduler;
    this.parts = [part(0, desc.size)];
    this.hinted = this.sched.slowHint;
    this.nextCheck = this.hinted ? 0 : Math.min(o.partSize, TIMED_BYTES);
    this.firstRate = this.hinted ? this.sched.lastRate : Infinity;
    loopLoad.sample();
  }

  /** Start with the open 200 answer for the whole blob. */
  begin(first: HttpResponse): void {
    this.out.on('drain', this.onDrain);
    this.out.once('close', () => {
      // A consumer that stops early releases every connection and the memory reserved for it.
      if (this.head < this.parts.length)
        this.fail(new CanvosError('ERR_ABORTED', `blob ${this.desc.digest}: reader closed early`));
    });
    const p = this.at(0);
    p.started = true;
    this.attach(p, first);
  }

  private at(i: number): Part {
    const p = this.parts[i];
    if (!p) throw new Error(`blob-parts: no part ${i}`);
    return p;
  }

  private canWiden(): boolean {
    return this.o.canWiden?.() ?? true;
  }

  private timing(): { now: number; firstRate: number; ttfbMs: number } {
    return { now: performance.now(), firstRate: this.firstRate, ttfbMs: this.ttfbMs };
  }

  private plan(): StreamPlan<Part> | undefined {
    return nextStream(this.parts, this.head, this.o.partSize, this.timing());
  }

  /** Time the first stream (not counting waits for the reader); tells the registry's scheduler too. */
  private measure(): boolean {
    const first = this.at(0);
    const now = performance.now();
    const waited = this.pausedMs + (this.pausedAt ? now - this.pausedAt : 0);
    this.firstRate = firstStreamRate(first.received, this.t0, now, waited);
    this.timed = first.received >= TIMED_BYTES || first.done;
    let slow = this.firstRate < this.o.slowBelow;
    if (slow) {
      const spare = this.spareCpu();
      // Too early to tell: not slow yet, time it again at the next checkpoint and leave the hint alone.
      if (spare === undefined) return false;
      slow = spare;
    }
    this.sched.slowHint = slow;
    this.sched.lastRate = this.firstRate;
    return slow;
  }

  /**
   * Whether this process had time to spare lately (blob-parts-load.ts): a slow stream with the event loop busy is
   * slowed by this process, not by its link, and more streams would not help. `slowBelow: Infinity` splits always.
   */
  private spareCpu(): boolean | undefined {
    if (this.o.slowBelow === Infinity) return true;
    const busy = loopLoad.busy();
    return busy === undefined ? undefined : !busy;
  }

  /** Go parallel if the first stream is slow and this blob may take idle connections; else check again later. */
  private trySplit(): void {
    const first = this.at(0);
    const slow = (this.hinted && this.spareCpu() === true) || this.measure();
    const mayWiden = this.canWiden() || this.sched.hasExtra;
    if (!(slow && this.desc.size - first.received >= 2 * MIN_HALF && mayWiden)) {
      // The hint alone does not keep a blob whole-stream forever: time it for real from now on.
      this.hinted = false;
      return;
    }
    // From now on the scheduler gives this blob idle connections (see grow).
    this.split = true;
    this.sched.add(this);
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.sched.delete(this);
    this.cancelWait?.();
    for (const p of this.parts) {
      p.res?.body.destroy();
      this.o.budget.release(p.reserved);
      p.reserved = 0;
      p.chunks = [];
    }
    const signal = this.o.signal;
    if (!this.out.destroyed) this.out.destroy(signal?.aborted ? abortError(signal) : (e as Error));
  }

  private emit(c: Buffer): boolean {
    this.emitted += c.length;
    this.o.onBytes?.(this.emitted);
    return this.out.write(c);
  }

  private pause(p: Part): void {
    p.res?.body.pause();
    this.pausedAt ||= performance.now();
  }

  private readonly onDrain = (): void => {
    if (this.pausedAt) {
      this.pausedMs += performance.now() - this.pausedAt;
      this.pausedAt = 0;
    }
    const p = this.parts[this.head];
    if (p?.res && !this.failed) p.res.body.resume();
  };

  /** Move the head past finished parts, flushing what they buffered; end `out` after the last. */
  private advance(): void {
    while (this.head < this.parts.length && this.at(this.head).done) {
      this.head++;
      const p = this.parts[this.head];
      if (!p) break;
      let flowing = true;
      for (const c of p.chunks) flowing = this.emit(c) && flowing;
      p.chunks = [];
      if (!flowing && p.res) this.pause(p);
      // It is the head now: what it still receives streams straight through, so its reservation is returned.
      this.o.budget.release(p.reserved);
      p.reserved = 0;
    }
    if (this.head >= this.parts.length) {
      this.sched.delete(this);
      this.out.off('drain', this.onDrain);
      this.out.end();
      return;
    }
    // The head always runs, whatever the scheduler says: everything after it waits for it.
    const h = this.at(this.head);
    if (!h.started) this.startPart(h, false);
    this.sched.kick();
  }

  /** Start `p`, carving it down to one part (the rest stays queued after it); `ahead`: reserve read-ahead for it. */
  private startPart(p: Part, ahead: boolean): boolean {
    const len = Math.min(this.o.partSize, p.end - p.start);
    if (ahead) {
      if (!this.o.budget.tryReserve(len)) return false;
      p.reserved = len;
    }
    if (p.end - p.start > len) {
      this.parts.splice(this.parts.indexOf(p) + 1, 0, part(p.start + len, p.end));
      p.end = p.start + len;
    }
    p.started = true;
    this.request(p);
    return true;
  }

  /** PartsDownload: how much one more stream is worth now; 0 when it cannot take one (waits for memory if so). */
  score(extra: boolean): number {
    if (this.failed || !this.split || !(extra || this.canWiden())) return 0;
    const load = partsLoad(this.parts, this.head);
    const worth = streamWorth(load, this.o.parallel, this.sched.share());
    if (worth === 0) return 0;
    const next = this.plan();
    if (!next) return 0;
    if (this.o.budget.available < next.len) {
      this.cancelWait ??= this.o.budget.onRelease(() => {
        this.cancelWait = undefined;
        this.sched.kick();
      });
      return 0;
    }
    return worth;
  }

  /** PartsDownload: start one more stream (the next queued part, or the tail of the victim stream). */
  grow(): boolean {
    const next = this.plan();
    if (!next) return false;
    if (next.kind === 'queued') return this.startPart(next.p, true);
    const v = next.p;
    if (!this.o.budget.tryReserve(next.len)) return false;
    const n = part(next.at, next.at + next.len);
    n.reserved = next.len;
    const rest = next.at + next.len < v.end ? part(next.at + next.len, v.end) : undefined;
    // The victim stops at `at` (its response runs on: it is closed there) and gives back read-ahead beyond it.
    if (v.reserved > 0) {
      this.o.budget.release(v.reserved - (next.at - v.start));
      v.reserved = next.at - v.start;
    }
    v.end = next.at;
    v.cut = true;
    this.parts.splice(this.parts.indexOf(v) + 1, 0, n, ...(rest ? [rest] : []));
    n.started = true;
    this.request(n);
    return true;
  }

  private request(p: Part): void {
    const asked = performance.now();
    const slot = this.sched.began();
    this.open(p.start + p.received, p.end - 1, slot).then(
      (res) => {
        slot();
        const ms = performance.now() - asked;
        this.ttfbMs = this.ttfbMs === 0 ? ms : 0.7 * this.ttfbMs + 0.3 * ms;
        this.attach(p, res);
      },
      (e: unknown) => {
        slot();
        this.retryOrFail(p, e);
      },
    );
  }

  /** Resume `p` after its response broke (`e`) or ended early (undefined), or fail the read. */
  private retryOrFail(p: Part, e: unknown): void {
    if (this.failed) return;
    const signal = this.o.signal;
    if (signal?.aborted) {
      this.fail(abortError(signal));
      return;
    }
    if ((e === undefined || mayResume(e, this.stalls)) && p.resumes < this.o.maxResumes) {
      p.resumes++;
      this.request(p);
      return;
    }
    this.fail(
      e ??
        new CanvosError(
          'ERR_NETWORK',
          `GET blob ${this.desc.digest}: bytes ${p.start}-${p.end - 1} ended early ${p.resumes + 1} times`,
          { hint: 'the connection to the registry keeps dropping' },
        ),
    );
  }

  /** Take `chunk` of `p`'s response: `cut` when `p` reached its end in a longer response, `failed` when it broke the range. */
  private take(p: Part, chunk: Buffer): 'more' | 'cut' | 'failed' {
    let c = chunk;
    let cutHere = false;
    if (p.received + c.length > p.end - p.start) {
      if (!p.cut) {
        this.fail(
          new CanvosError(
            'ERR_REGISTRY_HTTP',
            `GET blob ${this.desc.digest}: the registry sent more than the ${p.end - p.start} bytes asked for with Range: bytes=${p.start}-${p.end - 1}`,
            { hint: 'the registry or a proxy mishandles Range requests' },
          ),
        );
        return 'failed';
      }
      // The stream reached the boundary where another stream takes over.
      c = c.subarray(0, p.end - p.start - p.received);
      cutHere = true;
    }
    p.received += c.length;
    if (c.length > 0) {
      if (this.parts[this.head] === p && p.chunks.length === 0) {
        if (!this.emit(c)) this.pause(p);
      } else {
        p.chunks.push(c);
      }
    }
    return cutHere || (p.cut && p.received === p.end - p.start) ? 'cut' : 'more';
  }

  /** Every TIMED_BYTES of progress at the head: time the first stream again, or let the scheduler re-plan. */
  private checkpoint(): void {
    if (this.emitted < this.nextCheck) return;
    this.nextCheck = this.emitted + TIMED_BYTES;
    if (!this.split) this.trySplit();
    else {
      if (!this.timed && this.at(0).received >= TIMED_BYTES) this.measure();
      this.sched.kick();
    }
  }

  private finish(p: Part): void {
    p.done = true;
    if (this.parts[this.head] === p) this.advance();
    else this.sched.kick();
  }

  /** Read `res` into `p` until it ends, breaks or reaches `p.end`. */
  private attach(p: Part, res: HttpResponse): void {
    if (this.failed) {
      res.body.destroy();
      return;
    }
    p.res = res;
    p.since = performance.now();
    p.sinceBytes = p.received;
    const b = res.body;
    const detach = (): void => {
      b.off('data', onData);
      b.off('end', onEnd);
      b.off('error', onError);
      p.res = undefined;
    };
    const onData = (data: Buffer): void => {
      if (this.failed) return;
      const r = this.take(p, data);
      if (r === 'failed') return;
      if (r === 'cut') {
        detach();
        b.destroy();
        this.finish(p);
        return;
      }
      this.checkpoint();
    };
    const onEnd = (): void => {
      detach();
      if (p.received < p.end - p.start) this.retryOrFail(p, undefined);
      else this.finish(p);
    };
    const onError = (e: unknown): void => {
      detach();
      b.destroy();
      this.retryOrFail(p, e);
    };
    b.on('data', onData);
    b.once('end', onEnd);
    b.on('error', onError);
  }
}
