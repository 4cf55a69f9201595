/**
 * Keeps the garbage of streamed Buffers small in the CLI process. Every chunk read from a socket or file is a new
 * off-heap buffer (malloc'd, 16–64 KiB) that dies young, but V8 only collects it at a young-generation GC, which is
 * paced by the JS heap's allocations (a few hundred bytes per chunk), or once ~32 MiB of external memory has piled
 * up: a 300 MiB copy held 25–45 MiB of dead chunks at its peak, and the C heap keeps that size once reached (peak
 * RSS 105–125 MiB, of which ~40 MiB is Node itself; bench/README.md "Where the copy's memory and CPU go"). The
 * pacer looks at the buffer memory every `intervalMs` and runs a young-generation GC when it grew by `slackBytes`
 * since the last one: a scavenge of the few live young objects costs ~0.2–1 ms, and the dead chunks go with it.
 *
 * CLI only (bin/canvos-lite.js): it needs `gc`, exposed with a V8 flag set at run time and fetched from a fresh vm
 * context (the main context's global stays untouched). Library users keep their own GC policy.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** Options of {@link startGcPacer}. */
export interface GcPacerOptions {
  /** How often buffer memory is looked at, in ms. Default: 10. */
  intervalMs?: number | undefined;
  /** Growth of off-heap memory (buffers) since the last GC that triggers one. Default: 6 MiB. */
  slackBytes?: number | undefined;
}

type GcFn = (opts: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => unknown;

/** Start the pacer (see the file header); returns a function that stops it. Its timer never keeps the process up. */
export function startGcPacer(opts: GcPacerOptions = {}): () => void {
  // The young generation stays at its initial size (V8 grows it up to 16 MiB per semi-space for allocation-heavy
  // programs; here its growth was 6-14 MiB of RSS for nothing: the pacer collects more often anyway).
  // A size the user chose (node --max-semi-space-size, NODE_OPTIONS) is left alone.
  const userSet = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('semi-space'));
  if (!userSet) setFlagsFromString('--semi-space-growth-factor=1');
  setFlagsFromString('--expose-gc');
  const gc = process.getBuiltinModule('node:vm').runInNewContext('gc') as GcFn | undefined;
  if (typeof gc !== 'function') return () => {};
  const slack = opts.slackBytes ?? 6 * 1024 * 1024;
  // V8's external memory holds every ArrayBuffer's bytes; reading it costs ~1 µs (process.memoryUsage() reads /proc).
  const buffers = (): number => getHeapStatistics().external_memory;
  // What survived the last GC (live buffers: stream queues, read-ahead parts); lowered when buffers are freed later.
  let base = buffers();
  const timer = setInterval(() => {
    const now = buffers();
    if (now < base) base = now;
    else if (now - base >= slack) {
      gc({ type: 'minor' });
      base = buffers();
    }
  }, opts.intervalMs ?? 10);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}
