/**
 * The decisions of a ranged blob read (blob-parts.ts), as pure functions of its parts: what one more stream would
 * read ({@link nextStream}: the next queued part, or half of the running stream worth cutting, {@link pickVictim}),
 * how much one more stream is worth to the blob ({@link streamWorth}), and whether its first stream is slow enough
 * to split ({@link firstStreamRate}). No I/O, no clock: the reader passes `now`, so they are unit-tested alone.
 */

/** The first stream is timed over this many bytes (or one part, if smaller) before deciding, and again after each as many. */
export const TIMED_BYTES = 256 * 1024;
/** A stream is split in two only if each half keeps at least this much. */
export const MIN_HALF = 256 * 1024;
/** Steal boundaries are aligned to this (and never closer than MIN_HALF to either end). */
export const ALIGN = 64 * 1024;

/** One byte range of the blob, queued, streaming or finished. */
export interface PartState {
  readonly start: number;
  /** Exclusive. Moves down when the part is cut: the rest is split off, or the first stream's rest is queued as parts. */
  end: number;
  /** Bytes received so far (from `start`). */
  received: number;
  /** A request was sent for it. */
  started: boolean;
  /** All its bytes arrived. */
  done: boolean;
  /** Its current response is delivering (set), or it waits for an answer (unset). */
  res?: unknown;
  /** When its current response started delivering (performance.now()), and bytes received before that. */
  since: number;
  sinceBytes: number;
}

/** A fresh, queued part [start, end). */
export function newPart(start: number, end: number): Omit<PartState, 'res'> {
  return { start, end, received: 0, started: false, done: false, since: 0, sinceBytes: 0 };
}

/** Bytes still to come, the streams bringing them, and the parts started from the head on (finished ones included). */
export interface PartsLoad {
  left: number;
  streams: number;
  window: number;
}

/** The load of `parts` from index `head` on. */
export function partsLoad(parts: readonly PartState[], head: number): PartsLoad {
  let left = 0;
  let streams = 0;
  let window = 0;
  for (let i = head; i < parts.length; i++) {
    const p = parts[i];
    if (!p) continue;
    if (p.started) window++;
    if (p.done) continue;
    left += p.end - p.start - p.received;
    if (p.started) streams++;
  }
  return { left, streams, window };
}

/**
 * How much one more stream is worth (bytes still to come per stream), 0 when the blob may not take one: `parallel`
 * parts from its head on at most (bounds read-ahead), and `share` streams at most (its fair share of connections).
 */
export function streamWorth(load: PartsLoad, parallel: number, share: number): number {
  if (load.window >= parallel || load.streams >= share) return 0;
  return load.left / (load.streams + 1);
}

/** The first queued (not yet started) range after the head. */
export function firstQueued<P extends PartState>(parts: readonly P[], head: number): P | undefined {
  for (let i = head + 1; i < parts.length; i++) {
    const p = parts[i];
    if (p && !p.started) return p;
  }
  return undefined;
}

/** Timing of the streams: the clock, the first stream's rate (bytes/s), and the smoothed time to a first byte. */
export interface StreamTiming {
  now: number;
  firstRate: number;
  ttfbMs: number;
}

/**
 * The started stream worth cutting in two (the most bytes still to come), if any: only if its second half would
 * take it clearly longer (twice) than a new stream needs to start. A stream still waiting for its answer (or only
 * just answered) is assumed to run at the first stream's rate.
 */
export function pickVictim<P extends PartState>(parts: readonly P[], head: number, t: StreamTiming): P | undefined {
  let best: P | undefined;
  let bestLeft = 0;
  for (let i = head; i < parts.length; i++) {
    const p = parts[i];
    if (!p?.started || p.done) continue;
    const left = p.end - p.start - p.received;
    if (left < 2 * MIN_HALF || left <= bestLeft) continue;
    const secs = p.res ? (t.now - p.since) / 1000 : 0;
    const rate = secs > 0.02 ? (p.received - p.sinceBytes) / secs : t.firstRate;
    if (left / 2 / rate < (2 * t.ttfbMs) / 1000) continue;
    best = p;
    bestLeft = left;
  }
  return best;
}

/** What one more stream reads: the front of a queued part, or the tail of a running stream from `at` on. */
export type StreamPlan<P> = { kind: 'queued'; p: P; len: number } | { kind: 'steal'; p: P; at: number; len: number };

/**
 * What one more stream would read: the front of the first queued range (at most one part), or else the second
 * half of the victim stream (aligned), or, when that half is longer than a part, the part after the victim's
 * current part boundary (the rest after it gets queued). Read-ahead memory must hold `len`.
 */
export function nextStream<P extends PartState>(
  parts: readonly P[],
  head: number,
  partSize: number,
  t: StreamTiming,
): StreamPlan<P> | undefined {
  const q = firstQueued(parts, head);
  if (q) return { kind: 'queued', p: q, len: Math.min(partSize, q.end - q.start) };
  const v = pickVictim(parts, head, t);
  if (!v) return undefined;
  const pos = v.start + v.received;
  const half = (v.end - pos) / 2;
  if (half <= partSize) {
    const at = Math.ceil((pos + half) / ALIGN) * ALIGN;
    return at < v.end ? { kind: 'steal', p: v, at, len: v.end - at } : undefined;
  }
  const at = (Math.floor(pos / partSize) + 1) * partSize;
  return { kind: 'steal', p: v, at, len: Math.min(partSize, v.end - at) };
}

/** The first stream's rate in bytes/s: `received` over the time since `t0`, not counting `waitedMs` paused. */
export function firstStreamRate(received: number, t0: number, now: number, waitedMs: number): number {
  return received / Math.max(1e-3, (now - t0 - waitedMs) / 1000);
}
