/**
 * One blob read in ranged parts (see blob-parts.ts for when and how a blob is split): the parts in blob order, the
 * head (the part the consumer is reading), the timing that decides when to split, and the bytes put back in order.
 * The registry's scheduler asks it for {@link PartsReader.score} and {@link PartsReader.grow}; the planner
 * (blob-parts-planner.ts) decides what a new stream reads; blob-parts-streams.ts reads the parts' responses.
 */
import type { Writable } from 'node:stream';
import { CanvosError } from '../errors.js';
import type { Descriptor } from '../image/schemas.js';
import type { HttpResponse } from '../http/request.js';
import { abortError } from '../util/abort.js';
import { spareCpu } from './blob-parts-load.js';
import {
  firstStreamRate,
  MIN_HALF,
  nextStream,
  partsLoad,
  streamWorth,
  TIMED_BYTES,
  type StreamPlan,
} from './blob-parts-planner.js';
import type { PartScheduler, PartsDownload, ReadAheadBudget } from './blob-parts-scheduler.js';
import { part, PartStreams, type Part, type PartsConsumer, type RangeOpener } from './blob-parts-streams.js';

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

/** One blob read in ranged parts (see the file header). */
export class PartsReader implements PartsDownload, PartsConsumer {
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
  /** The first stream's rate when it was last timed (bytes/s). */
  private firstRate: number;
  /** The read failed (or the reader went away): everything was released. */
  failed = false;
  /** Cancels the wait for read-ahead memory, when one is pending. */
  private cancelWait: (() => void) | undefined;
  private readonly sched: PartScheduler;
  private readonly desc: Descriptor;
  /** Reads the parts' responses. */
  private readonly streams: PartStreams;
  /** The consumer (the digest verifier): bytes go to it strictly in order. */
  private readonly out: Writable;
  private readonly o: StreamPartsOptions;

  constructor(desc: Descriptor, open: RangeOpener, out: Writable, o: StreamPartsOptions) {
    this.desc = desc;
    this.streams = new PartStreams(desc, open, o.scheduler, o, this);
    this.out = out;
    this.o = o;
    this.sched = o.scheduler;
    this.parts = [part(0, desc.size)];
    this.hinted = this.sched.slowHint;
    this.nextCheck = this.hinted ? 0 : Math.min(o.partSize, TIMED_BYTES);
    this.firstRate = this.hinted ? this.sched.lastRate : Infinity;
    // The load window began at the scheduler's beginRead (blobs.ts calls it before the first request).
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
    this.streams.attach(p, first);
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
    return { now: performance.now(), firstRate: this.firstRate, ttfbMs: this.streams.ttfbMs };
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
      const spare = spareCpu(this.o.slowBelow);
      // Too early to tell: not slow yet, time it again at the next checkpoint and leave the hint alone.
      if (spare === undefined) return false;
      slow = spare;
    }
    this.sched.slowHint = slow;
    this.sched.lastRate = this.firstRate;
    return slow;
  }

  /** Go parallel if the first stream is slow and this blob may take idle connections; else check again later. */
  private trySplit(): void {
    const first = this.at(0);
    const slow = (this.hinted && spareCpu(this.o.slowBelow) === true) || this.measure();
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

  /** PartsConsumer: fail the read, releasing every connection and reservation. */
  fail(e: unknown): void {
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

  /** PartsConsumer: the head streams straight through; parts after it are held until it reaches them. */
  deliver(p: Part, c: Buffer): void {
    if (this.parts[this.head] === p && p.chunks.length === 0) {
      if (!this.emit(c)) this.pause(p);
    } else {
      p.chunks.push(c);
    }
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
    this.streams.request(p);
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
    this.streams.request(n);
    return true;
  }

  /** PartsConsumer: every TIMED_BYTES of progress at the head, time the first stream again, or let the scheduler re-plan. */
  progress(): void {
    if (this.emitted < this.nextCheck) return;
    this.nextCheck = this.emitted + TIMED_BYTES;
    if (!this.split) this.trySplit();
    else {
      if (!this.timed && this.at(0).received >= TIMED_BYTES) this.measure();
      this.sched.kick();
    }
  }

  /** PartsConsumer: `p` received its last byte. */
  finish(p: Part): void {
    p.done = true;
    if (this.parts[this.head] === p) this.advance();
    else this.sched.kick();
  }
}
