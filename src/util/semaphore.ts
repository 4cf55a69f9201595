import { abortError } from './abort.js';
/**
 * A tiny counting semaphore bounding requests in flight per registry (regclient uses 3, skopeo 6).
 * `acquire` resolves to a release function; waiting can be aborted.
 */

/**
 * Requests in flight per registry, and blobs moved at once by a copy, unless configured. Over long-haul links one
 * connection gets window/RTT of throughput and CDNs shape per connection, so throughput grows with connections;
 * 8 (HTTP/1.1 browsers open 6 per host, skopeo 6 per image, aria2 up to 16) with ranged parts of large blobs
 * (blob-parts.ts) keeps such links busy without hammering a registry. bench/copy.mjs `wan` measures it.
 */
export const DEFAULT_CONCURRENCY = 8;

/** Counting semaphore with FIFO waiters. */
export class Semaphore {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(limit: number) {
    this.free = Math.max(1, Math.floor(limit));
  }

  /** Called whenever a slot goes back to the pool with no one waiting for it. */
  onFree: (() => void) | undefined;

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Slots free right now (0 while anyone waits). */
  get available(): number {
    return this.free;
  }

  /** Wait for a slot; call the returned function exactly once to give it back. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.releaser());
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError(signal));
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next();
      else {
        this.free++;
        this.onFree?.();
      }
    };
  }
}
