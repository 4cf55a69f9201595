/**
 * The CLI's GC pacer (src/cli/gc-pacer.ts): short-lived 64 KiB buffers streamed at a steady rate, the way socket
 * chunks arrive in a copy. Without the pacer V8 lets the dead buffers pile up (it collects young objects by JS heap
 * allocation, or after ~32 MiB of external memory); with it, buffer memory stays within its slack plus what is live.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGcPacer } from '../../src/cli/gc-pacer.js';

const MiB = 1024 * 1024;

/** Allocate `total` bytes in 64 KiB buffers that die at once, ~0.5 MiB per ms; the peak of live+dead buffer memory. */
async function churn(total: number): Promise<number> {
  let peak = 0;
  let sink = 0;
  for (let done = 0; done < total;) {
    for (let i = 0; i < 8; i++, done += 64 * 1024) sink ^= Buffer.allocUnsafeSlow(64 * 1024).length;
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    await new Promise((r) => setTimeout(r, 1));
  }
  expect(sink).toBe(0);
  return peak;
}

let stop: (() => void) | undefined;
afterEach(() => {
  stop?.();
  stop = undefined;
});

describe('gc pacer', () => {
  it('keeps dead stream buffers within its slack; without it they pile up', async () => {
    const before = process.memoryUsage().arrayBuffers;
    stop = startGcPacer({ intervalMs: 10, slackBytes: 4 * MiB });
    const withPacer = await churn(160 * MiB);
    stop();
    const without = await churn(160 * MiB);
    // 4 MiB of slack, up to ~10 ms of allocation between two looks (more when a loaded machine delays the timer), what was live.
    expect(withPacer - before).toBeLessThan(20 * MiB);
    expect(without - before).toBeGreaterThan(withPacer - before + 10 * MiB);
  });
});
