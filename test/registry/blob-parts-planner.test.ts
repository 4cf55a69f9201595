// The pure decisions of ranged blob reads (src/registry/blob-parts-planner.ts), with no registry: what one more
// stream reads, which stream gets cut, what one more stream is worth, and the first stream's rate.
import { describe, expect, it } from 'vitest';
import {
  ALIGN,
  firstQueued,
  firstStreamRate,
  MIN_HALF,
  newPart,
  nextStream,
  partsLoad,
  pickVictim,
  streamWorth,
  type PartState,
} from '../../src/registry/blob-parts-planner.js';

const MiB = 1024 * 1024;

/** A part [start, end) with `received` bytes; `streaming` since `since` ms (with `sinceBytes` before it). */
function p(start: number, end: number, s: Partial<PartState> = {}): PartState {
  return { ...newPart(start, end), ...s };
}
const running = (start: number, end: number, received = 0, s: Partial<PartState> = {}): PartState =>
  p(start, end, { started: true, res: {}, received, since: 0, sinceBytes: 0, ...s });
/** Timing: the clock at 1 s, a first stream of 1 MiB/s, 50 ms to a first byte. */
const t = { now: 1000, firstRate: MiB, ttfbMs: 50 };

describe('blob-parts planner', () => {
  it('partsLoad counts bytes to come, streams and the window from the head on', () => {
    const parts = [
      running(0, 8 * MiB, 8 * MiB, { done: true }),
      running(8 * MiB, 16 * MiB, MiB),
      p(16 * MiB, 24 * MiB, { started: true }), // asked, no answer yet
      p(24 * MiB, 32 * MiB),
    ];
    expect(partsLoad(parts, 0)).toEqual({ left: 7 * MiB + 8 * MiB + 8 * MiB, streams: 2, window: 3 });
    expect(partsLoad(parts, 1)).toEqual({ left: 23 * MiB, streams: 2, window: 2 });
    expect(partsLoad(parts, 4)).toEqual({ left: 0, streams: 0, window: 0 });
  });

  it('streamWorth is bytes to come per stream, 0 at the parallel window or the fair share', () => {
    const load = { left: 30 * MiB, streams: 2, window: 3 };
    expect(streamWorth(load, 6, 8)).toBe(10 * MiB);
    expect(streamWorth(load, 3, 8)).toBe(0);
    expect(streamWorth(load, 6, 2)).toBe(0);
  });

  it('a queued part goes first, capped at one part', () => {
    const parts = [running(0, 8 * MiB, MiB), p(8 * MiB, 40 * MiB)];
    expect(firstQueued(parts, 0)).toBe(parts[1]);
    expect(nextStream(parts, 0, 8 * MiB, t)).toEqual({ kind: 'queued', p: parts[1], len: 8 * MiB });
    // The head itself is never "queued": the reader starts it whatever the scheduler says.
    expect(firstQueued([p(0, MiB)], 0)).toBeUndefined();
  });

  it('with nothing queued, the stream with the most bytes to come is cut at its aligned half', () => {
    const a = running(0, 4 * MiB, MiB, { since: 0, sinceBytes: 0 });
    const b = running(4 * MiB, 12 * MiB, MiB, { since: 0, sinceBytes: 0 });
    const plan = nextStream([a, b], 0, 8 * MiB, t);
    expect(plan?.kind).toBe('steal');
    expect(plan?.p).toBe(b);
    if (plan?.kind !== 'steal') throw new Error('no steal');
    // b is at 5 MiB of [4, 12): half of the 7 MiB left starts at 8.5 MiB, aligned up to 64 KiB.
    expect(plan.at % ALIGN).toBe(0);
    expect(plan.at).toBe(Math.ceil((5 * MiB + 3.5 * MiB) / ALIGN) * ALIGN);
    expect(plan.len).toBe(12 * MiB - plan.at);
  });

  it('a half longer than a part: the new stream reads the part after the running part boundary', () => {
    const v = running(0, 64 * MiB, 3 * MiB);
    const plan = nextStream([v], 0, 8 * MiB, t);
    expect(plan).toEqual({ kind: 'steal', p: v, at: 8 * MiB, len: 8 * MiB });
  });

  it('no victim when every stream has less than two halves left, or finishes before a new stream would start', () => {
    expect(pickVictim([running(0, 2 * MIN_HALF - 1)], 0, t)).toBeUndefined();
    // 1 MiB left at 100 MiB/s (3 MiB in 30 ms) takes 5 ms per half: less than twice the 50 ms a new stream needs.
    const fast = running(0, 4 * MiB, 3 * MiB, { since: 0, sinceBytes: 0 });
    expect(pickVictim([fast], 0, { ...t, now: 30 })).toBeUndefined();
    // The same stream at 1 MiB/s (3 MiB in 3 s) is worth cutting.
    expect(pickVictim([fast], 0, { ...t, now: 3000 })).toBe(fast);
    // Done or unstarted parts, and parts before the head, are never cut.
    expect(pickVictim([running(0, 8 * MiB, 0, { done: true }), p(8 * MiB, 16 * MiB)], 0, t)).toBeUndefined();
    expect(pickVictim([running(0, 8 * MiB)], 1, t)).toBeUndefined();
  });

  it('a stream still waiting for its answer is assumed to run at the first stream’s rate', () => {
    const waiting = p(0, 8 * MiB, { started: true });
    expect(pickVictim([waiting], 0, t)).toBe(waiting);
    expect(pickVictim([waiting], 0, { ...t, firstRate: 1000 * MiB })).toBeUndefined();
  });

  it('firstStreamRate does not count the time paused for the reader', () => {
    expect(firstStreamRate(MiB, 0, 2000, 0)).toBe(MiB / 2);
    expect(firstStreamRate(MiB, 0, 2000, 1000)).toBe(MiB);
    expect(firstStreamRate(MiB, 0, 1000, 1000)).toBe(MiB / 1e-3);
  });
});
