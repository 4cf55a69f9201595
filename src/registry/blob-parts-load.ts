/**
 * Whether this process had time to spare lately: its event loop's utilisation over a sliding window of the recent
 * past. Ranged reads (blob-parts.ts) ask before they split a slow blob, because a stream can be slow for two
 * reasons that call for opposite answers. Over a link that caps each connection (a CDN, a long-haul TCP window)
 * one more stream adds its share of throughput. On loopback, or over any link faster than this process, the
 * streams share the CPU that hashes, parses and forwards their bytes: every stream runs slower than `slowBelow`
 * because there are many of them, and more streams add requests, read-ahead memory and out-of-order copies but no
 * throughput (bench/README.md, issue #13's goals). The first case leaves the event loop waiting for bytes; the
 * second keeps it busy and on the CPU. A loop that is busy but gets little CPU is starved by other processes: more
 * streams may help it (a throttled link: each wake-up finds more bytes) or not (loopback registries starved with it),
 * so it is not judged busy and splitting stays as it was.
 */

import type { EventLoopUtilization } from 'node:perf_hooks';

/** Utilisation above which the event loop is taken to be the bottleneck. */
export const LOOP_BUSY = 0.9;

/** CPU (cores, process.cpuUsage over the window) below which a busy loop is starved rather than CPU-bound. */
export const CPU_BUSY = 0.5;

/** The shortest window judged: shorter ones are dominated by whatever just happened (a burst of answers). */
export const LOOP_WINDOW_MS = 100;

interface Sample {
  t: number;
  elu: EventLoopUtilization;
  /** process.cpuUsage(): user + system, µs. */
  cpu: number;
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Samples the event loop as it is asked (no timer), keeping only what the sliding window needs. */
export class LoopLoad {
  private readonly samples: Sample[] = [];
  private readonly windowMs: number;
  /** Cores the process must have used over the window to count as CPU-bound (tests set 0 on a loaded machine). */
  minCores: number;

  constructor(windowMs = LOOP_WINDOW_MS, minCores = CPU_BUSY) {
    this.windowMs = windowMs;
    this.minCores = minCores;
  }

  /** Take a sample now (the start of a window: call it when the work begins). */
  sample(): Sample {
    const s = { t: performance.now(), elu: performance.eventLoopUtilization(), cpu: cpuNow() };
    const last = this.samples.at(-1);
    if (!last || s.t - last.t >= this.windowMs / 4) this.samples.push(s);
    // Keep the newest sample that is at least a window old (the baseline) and everything after it.
    while (this.samples.length > 1 && (this.samples[1]?.t ?? Infinity) <= s.t - this.windowMs) this.samples.shift();
    return s;
  }

  /**
   * The event loop's utilisation and the CPU the process used (cores) since the newest sample at least a window old;
   * undefined while no sample is that old.
   */
  load(): { elu: number; cores: number } | undefined {
    const now = this.sample();
    const base = this.samples[0];
    if (!base || now.t - base.t < this.windowMs) return undefined;
    const elu = performance.eventLoopUtilization(now.elu, base.elu).utilization;
    return { elu, cores: (now.cpu - base.cpu) / 1000 / (now.t - base.t) };
  }

  /** Whether this process was bound by its own CPU over the last window; undefined: too early to tell. */
  busy(): boolean | undefined {
    const l = this.load();
    return l === undefined ? undefined : l.elu > LOOP_BUSY && l.cores >= this.minCores;
  }
}

/** The process's one sampler, shared by every ranged read. */
export const loopLoad = new LoopLoad();

/**
 * Whether a slow stream may be blamed on its link: this process had time to spare lately (a slow stream with the
 * process CPU-bound is slowed by this process, and more streams would not help). `slowBelow: Infinity` (split
 * always) needs no judging. Undefined: too early to tell.
 */
export function spareCpu(slowBelow: number): boolean | undefined {
  if (slowBelow === Infinity) return true;
  const busy = loopLoad.busy();
  return busy === undefined ? undefined : !busy;
}
