/**
 * What ranged blob reads (blob-parts.ts) share: the process-wide read-ahead memory ({@link ReadAheadBudget}) and,
 * per registry, the {@link PartScheduler} that hands idle request slots to the blobs being read in parts.
 */
import { once } from '../util/once.js';
import { loopLoad } from './blob-parts-load.js';

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

/** What the scheduler asks of each blob being read in parts. */
export interface PartsDownload {
  /**
   * How much an extra stream is worth to this blob now (its bytes still to come per stream); 0: it cannot use one.
   * `extra`: the free slot is one of the connections only ranged parts use, so blobs waiting to start lose nothing
   * by it (the blob may take it even while the copy holds blobs back).
   */
  score(extra: boolean): number;
  /** Start one more stream (the next queued part, or the second half of its longest running stream). */
  grow(): boolean;
}

/** A registry's request slots as the scheduler sees them. */
export interface SchedulerSlots {
  /** Free slots of the registry's request limit (any request may take them). */
  base: () => number;
  /** Free extra slots: connections beyond the request limit that only ranged parts use. */
  extra: () => number;
  /** The extra slots in all (0: ranged parts share the request limit). */
  extraTotal: () => number;
  /** Connections ranged reads may use in all: the request limit plus the extra slots. */
  total: () => number;
}

/**
 * Hands a registry's idle connections to the blobs being read from it in parts. Whenever a connection frees up
 * (a request slot is released, a part ends, a blob is split), each idle slot goes to the blob with the most bytes
 * still to come per stream: the next queued part of that blob, or, once no part is queued anywhere, the second
 * half of its longest running stream (work stealing: the running stream is cut where the new one starts, so the
 * last blobs of a copy finish together instead of one straggler per connection). One per registry transport.
 *
 * Besides the registry's request limit there may be extra slots (RegistryHttp: `BlobPartsOptions.connections`) that
 * only ranged parts take: a blob found slow widens into them at once, even while other blobs of the copy wait for
 * their turn (they wait for a blob slot, not for these connections), so a link whose connections are each capped
 * carries more streams than blobs.
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
  private readonly slots: SchedulerSlots;
  /** Blobs large enough to be split being read from this registry (split or not yet, answered or not yet). */
  private reading = 0;
  constructor(slots: SchedulerSlots) {
    this.slots = slots;
  }

  /** Whether ranged parts have connections of their own beyond the request limit. */
  get hasExtra(): boolean {
    return this.slots.extraTotal() > 0;
  }

  /** A blob read that may be split begins (before its first request); call the result when it ends. */
  beginRead(): () => void {
    // A window of the event loop's load starts before the first blob's request, not at start-up (the loop may not
    // run yet then, which makes its utilisation meaningless): by the time a blob has been timed, it is often judged.
    loopLoad.sample();
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
    return Math.max(1, Math.ceil(this.slots.total() / Math.max(1, this.reading)));
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
    for (;;) {
      // A granted stream takes an extra slot when one is free as it is sent (RegistryHttp), else a base one.
      const extra = this.slots.extra();
      const freeExtra = Math.max(0, extra - this.starting);
      const freeBase = this.slots.base() - Math.max(0, this.starting - extra);
      if (freeExtra + freeBase <= 0) return;
      let best: PartsDownload | undefined;
      let bestScore = 0;
      for (const d of this.downloads) {
        const s = d.score(freeExtra > 0);
        if (s > bestScore) {
          best = d;
          bestScore = s;
        }
      }
      if (!best || !best.grow()) return;
    }
  }
}
