/**
 * The busy-loop guard of ranged reads (src/registry/blob-parts-load.ts): a slow stream splits into Range parts only
 * when this process had time to spare, so a copy bound by its own CPU (loopback, where every stream is slow because
 * many share the CPU) stays on one stream per blob, while a source throttled per connection still goes parallel.
 * Against the real docker-registry behind the fault proxy; assertions are on the requests it saw, not on timing.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { LOOP_BUSY, LoopLoad, loopLoad } from '../../src/registry/blob-parts-load.js';
import { ReadAheadBudget } from '../../src/registry/index.js';
import { KiB, PART, rangedSource } from './blob-parts-fixture.js';
import { readAll } from './image-util.js';

/**
 * Keep the event loop busy (spinning 20 ms at a time) until the result is called. Between spins it yields with
 * setImmediate, so timers and I/O still run but the loop never waits idle for a timer (a 1 ms timer took longer on a
 * loaded CI machine and let the idle share reach 11 %).
 */
function spin(): () => void {
  let on = true;
  const tick = (): void => {
    if (!on) return;
    const until = performance.now() + 20;
    while (performance.now() < until);
    setImmediate(tick);
  };
  tick();
  return () => {
    on = false;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `fn` with the loop spinning, judging busy on the loop alone (a loaded machine may give the spin < 0.5 core). */
async function spinning<T>(l: LoopLoad, fn: () => Promise<T>): Promise<T> {
  const minCores = l.minCores;
  l.minCores = 0;
  const stop = spin();
  try {
    return await fn();
  } finally {
    stop();
    l.minCores = minCores;
  }
}

describe('LoopLoad', () => {
  it('cannot tell before a window has passed, then sees an idle loop as idle and a spinning one as busy', async () => {
    const l = new LoopLoad(50);
    l.sample();
    expect(l.busy()).toBeUndefined();
    await sleep(80);
    expect(l.busy()).toBe(false);
    await spinning(l, async () => {
      await sleep(120);
      expect(l.load()?.elu).toBeGreaterThan(LOOP_BUSY);
      expect(l.busy()).toBe(true);
    });
    // The window slides: once the loop idles again for a window, it is idle again.
    await sleep(150);
    l.sample();
    await sleep(80);
    expect(l.busy()).toBe(false);
  });

  it('a busy loop that got less CPU than minCores is starved by other processes, not CPU-bound', async () => {
    const l = new LoopLoad(50, 64);
    const stop = spin();
    try {
      l.sample();
      await sleep(120);
      expect(l.load()?.elu).toBeGreaterThan(LOOP_BUSY);
      expect(l.busy()).toBe(false);
    } finally {
      stop();
    }
  });
});

describe('ranged reads and a busy event loop', () => {
  const data = randomBytes(10 * PART + 12345);
  const src = rangedSource('load/a', [data]);
  const desc = src.descs[0]!;
  // 4 MiB/s counts as fast, the proxy gives 1 MiB/s per connection: slower than one stream should be.
  const opts = { parallel: 4, partSize: PART, slowBelow: 4 * 1024 * KiB };

  it('a slow source read while this process is CPU-bound stays on one plain GET, byte-exact', async () => {
    src.slow(1024 * KiB);
    await spinning(loopLoad, async () => {
      await sleep(150); // a whole window of busy loop before the read starts
      const got = await readAll(
        await src.repo({ blobParts: { ...opts, budget: new ReadAheadBudget(64 * PART) } }).getBlob(desc),
      );
      expect(got.equals(data)).toBe(true);
    });
    expect(src.ranges(desc.digest)).toEqual(['']);
  });

  it('the same slow source read with the loop idle goes parallel (Range parts), byte-exact', async () => {
    src.slow(1024 * KiB);
    await sleep(150); // the spinning of the previous test is out of the window
    const got = await readAll(
      await src.repo({ blobParts: { ...opts, budget: new ReadAheadBudget(64 * PART) } }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    const ranges = src.ranges(desc.digest);
    expect(ranges[0]).toBe('');
    expect(ranges.length).toBeGreaterThan(2);
  });
});
