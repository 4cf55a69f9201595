/**
 * One RegistryHttp per registry and side (source/destination), shared by every repository the run touches, so
 * the per-registry request limit (`concurrency.perRegistry` / `concurrency.registries[host]`) holds across all
 * images, and tokens and connections are reused. Two sides never share an instance (a PUT fed by a GET on the
 * same semaphore could starve).
 */
import { normalizeRegistry } from '../registry/reference.js';
import { RegistryHttp } from '../registry/http.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import { DEFAULT_CONCURRENCY } from '../util/semaphore.js';
import type { ConcurrencyOptions } from './config.js';

/** Shared registry connections of one mirror run. */
export class RegistryConnections {
  private readonly pool = new Map<string, RegistryHttp>();
  private readonly concurrency: ConcurrencyOptions;
  constructor(concurrency: ConcurrencyOptions = {}) {
    this.concurrency = concurrency;
  }

  /** Request limit for a registry. Default: 8 (DEFAULT_CONCURRENCY). */
  limitFor(registry: string): number {
    const reg = normalizeRegistry(registry);
    for (const [k, v] of Object.entries(this.concurrency.registries ?? {})) if (normalizeRegistry(k) === reg) return v;
    return this.concurrency.perRegistry ?? DEFAULT_CONCURRENCY;
  }

  /** The shared transport for `registry` on `side`, created with `opts` on first use. */
  get(registry: string, side: 'src' | 'dst', opts: RegistryTransportOptions = {}): RegistryHttp {
    const reg = normalizeRegistry(registry);
    const key = `${side}\0${reg}`;
    let h = this.pool.get(key);
    if (!h) {
      h = new RegistryHttp(reg, { ...opts, concurrency: this.limitFor(reg) });
      this.pool.set(key, h);
    }
    return h;
  }

  /** Transport options for a repository on `registry` (shares the transport). */
  options(registry: string, side: 'src' | 'dst', opts: RegistryTransportOptions = {}): RegistryTransportOptions {
    return { ...opts, http: this.get(registry, side, opts) };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pool.values()].map((h) => h.close()));
    this.pool.clear();
  }
}
