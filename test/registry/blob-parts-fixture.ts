/**
 * What the ranged-read tests share (blob-parts*.test.ts): a real docker-registry behind the fault proxy, the blobs
 * pushed once, a factory of repositories on the proxy that are all closed at the end, and what the proxy saw.
 * Call {@link rangedSource} at the top of a `describe`: it registers the hooks (rules and requests are cleared before
 * each test).
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import type { Descriptor } from '../../src/image/schemas.js';
import { RegistryRepository } from '../../src/registry/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

export const KiB = 1024;
/** The part size the tests read in (small, so a few MiB make many parts). */
export const PART = 256 * KiB;

type RepoOptions = ConstructorParameters<typeof RegistryRepository>[2];

export interface RangedSource {
  readonly reg: TestRegistry;
  readonly proxy: FaultProxy;
  /** The blobs' descriptors, in the order given. */
  readonly descs: Descriptor[];
  /** A repository `name` on the proxy (closed after the tests) with these options. */
  repo(o?: RepoOptions, name?: string): RegistryRepository;
  /** Track a repository made elsewhere, so it is closed after the tests. */
  track(r: RegistryRepository): RegistryRepository;
  /** The Range headers of the GETs of `digest` the proxy saw, '' for a plain GET. */
  ranges(digest: string): string[];
  /** Throttle every blob GET to `bytesPerSecond` per connection (a long-haul link). */
  slow(bytesPerSecond: number): void;
}

/** Start a registry and its fault proxy for the enclosing `describe`, and push `blobs` to `name` through it. */
export function rangedSource(name: string, blobs: Buffer[]): RangedSource {
  let reg: TestRegistry | undefined;
  let proxy: FaultProxy | undefined;
  const repos: RegistryRepository[] = [];
  const need = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`rangedSource: ${what} is not started yet (use it inside a test)`);
    return x;
  };
  const s: RangedSource = {
    get reg() {
      return need(reg, 'the registry');
    },
    get proxy() {
      return need(proxy, 'the proxy');
    },
    descs: blobs.map((b): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256(b), size: b.length })),
    track(r) {
      repos.push(r);
      return r;
    },
    repo(o = {}, repoName = name) {
      const host = s.proxy.host;
      return s.track(
        new RegistryRepository(host, repoName, {
          insecureRegistries: [host],
          authFiles: [],
          retry: { baseDelayMs: 10 },
          ...o,
        }),
      );
    },
    ranges: (digest) =>
      s.proxy.requests
        .filter((r) => r.method === 'GET' && r.path.includes(digest))
        .map((r) => String(r.headers.range ?? '')),
    slow(bytesPerSecond) {
      s.proxy.addRule({
        method: 'GET',
        path: /\/blobs\/sha256:/,
        times: Infinity,
        action: { kind: 'slow', bytesPerSecond },
      });
    },
  };
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy(reg.url);
    const r = s.repo({ blobParts: false });
    for (const [i, d] of s.descs.entries()) {
      const b = blobs[i];
      if (b) await r.pushBlob(d, async () => Readable.from([b]));
    }
  });
  afterAll(async () => {
    await Promise.all(repos.map((r) => r.close()));
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(() => {
    proxy?.clearRules();
    proxy?.requests.splice(0);
    proxy?.resetPeak();
  });
  return s;
}
