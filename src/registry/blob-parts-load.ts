/**
 * Whether this process had time to spare lately: its event loop's utilisation over a sliding window of the recent
 * past. Ranged reads (blob-parts.ts) ask before they split a slow blob, because a stream can be slow for two
 * reasons that call for opposite answers. Over a link that caps each connection (a CDN, a long-haul TCP window)
 * one more stream adds its share of throughput. On loopback, or over any link faster than this process, the
 * streams share the CPU that hashes, parses and forwards their bytes: every stream runs slower than `slowBelow`
 * because there are many of them, and more streams add requests, read-ahead memory and out-of-order copies but no
 * throughput (bench/README.md, issue #13's goals). The first case leaves the event loop waiting for bytes; the
 * second keeps it busy (a process starved by other processes looks busy too, and more streams would not help it
 * either).
 */

import type { EventLoopUtilization } from 'node:perf_hooks';

/** Utilisation above which the event loop is taken to be the bottleneck. */
export const LOOP_BUSY = 0.9;

/** The shortest window judged: shorter ones are dominated by whatever just happened (a burst of answers). */
export const LOOP_WINDOW_MS = 100;

interface Sample {
  t: number;
  elu: EventLoopUtilization;
}

/** Samples the event loop as it is asked (no timer), keeping only what the sliding window needs. */
export class LoopLoad {
  private readonly samples: Sample[] = [];
  private readonly windowMs: number;

  constructor(windowMs = LOOP_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** Take a sample now (the start of a window: call it when the work begins). */
  sample(): Sample {
    const s = { t: performance.now(), elu: performance.eventLoopUtilization() };
    const last = this.samples.at(-1);
    if (!last || s.t - last.t >= this.windowMs / 4) this.samples.push(s);
    // Keep the newest sample that is at least a window old (the baseline) and everything after it.
    while (this.samples.length > 1 && (this.samples[1]?.t ?? Infinity) <= s.t - this.windowMs) this.samples.shift();
    return s;
  }

  /** Utilisation since the newest sample at least a window old; undefined while no sample is that old. */
  utilization(): number | undefined {
    const now = this.sample();
    const base = this.samples[0];
    if (!base || now.t - base.t < this.windowMs) return undefined;
    return performance.eventLoopUtilization(now.elu, base.elu).utilization;
  }

  /** Whether the event loop was busy over the last window; undefined: too early to tell. */
  busy(): boolean | undefined {
    const u = this.utilization();
    return u === undefined ? undefined : u > LOOP_BUSY;
  }
}

/** The process's one sampler, shared by every ranged read. */
export const loopLoad = new LoopLoad();
