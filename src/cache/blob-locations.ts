/**
 * The persistent blob-location cache (containers/image's BlobInfoCache, for canvos-lite): for each digest, the
 * registry repositories where it was last seen (most recent first, a few at most), and for a compressed layer its
 * verified diffID. A registry destination mounts a blob from a known location on its own registry instead of
 * reading the source and uploading the bytes; the image reader skips hashing a layer whose diffID was verified.
 *
 * Layout: one small JSON file per digest, `<cache root>/locations/<alg>/<hex>`, written to a temp name and renamed
 * (read-merge-rename: the last writer wins, which is fine for a cache; no lock a crash could leave held). A garbage
 * or truncated file reads as empty. It holds registry hosts, repository names and digests only, never credentials.
 * Bounded: {@link BlobLocationsOptions.maxLocations} per digest and {@link BlobLocationsOptions.maxEntries} files
 * (the least recently written are pruned). An unwritable cache directory turns writes off with one warning; no
 * cache failure ever fails a copy.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestAlgorithm, digestHex, isDigest, type Digest } from '../image/digest.js';
import { CanvosError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { envSwitch } from '../util/env-switch.js';
import { cacheHomeGuard, defaultCacheDir } from './blob-cache.js';

/** A registry repository a blob was seen in. */
export interface RepositoryLocation {
  /** Registry host as references normalise it (`docker.io`, `127.0.0.1:5000`). */
  registry: string;
  /** Repository path on that registry (`library/alpine`). */
  repository: string;
}

/** Options of {@link BlobLocations}. */
export interface BlobLocationsOptions {
  /**
   * Cache root (the blob cache's: `--cache-dir`); the entries live in `<dir>/locations/`. Default: the blob
   * cache's default (`$CANVOS_CACHE_DIR`, else `$XDG_CACHE_HOME/canvos-lite/blobs`, else `~/.cache/canvos-lite/blobs`).
   */
  dir?: string | undefined;
  /** Environment to read the default directory from. Default: process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Locations kept per digest (most recent first). Default: 5. */
  maxLocations?: number | undefined;
  /** Digests kept in all; the least recently written are removed beyond it. Default: 8192. */
  maxEntries?: number | undefined;
  /** Called once when the cache cannot be written (then it is only read). Default: none. */
  onWarning?: ((code: string, message: string) => void) | undefined;
}

interface Entry {
  locations: RepositoryLocation[];
  diffId?: Digest | undefined;
}

const PRUNE_EVERY = 256;
// What a stored location may look like (a host[:port] and a repository path): anything else in a file is ignored.
const REGISTRY = /^[A-Za-z0-9][A-Za-z0-9.-]*(?::\d+)?$|^\[[0-9a-fA-F:.]+\](?::\d+)?$/;
const REPO = /^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/;
/** Cache directories already warned about in this process (one warning, however many stores share one). */
const warned = new Set<string>();

function parseEntry(text: string): Entry {
  try {
    const j = JSON.parse(text) as { v?: unknown; locations?: unknown; diffId?: unknown };
    if (j.v !== 1 || !Array.isArray(j.locations)) return { locations: [] };
    const locations = j.locations
      .filter(
        (l): l is [string, string] =>
          Array.isArray(l) &&
          typeof l[0] === 'string' &&
          typeof l[1] === 'string' &&
          REGISTRY.test(l[0]) &&
          REPO.test(l[1]),
      )
      .map(([registry, repository]) => ({ registry, repository }));
    return { locations, diffId: isDigest(j.diffId) ? j.diffId : undefined };
  } catch {
    return { locations: [] };
  }
}

const same = (a: RepositoryLocation, b: RepositoryLocation): boolean =>
  a.registry === b.registry && a.repository === b.repository;

/** The blob-location cache (see the file header). All methods are best effort: they never throw. */
export class BlobLocations {
  /** Where the entries live: `<cache root>/locations`. */
  readonly dir: string;
  private readonly maxLocations: number;
  private readonly maxEntries: number;
  private readonly onWarning: BlobLocationsOptions['onWarning'];
  private writable = true;
  private writes = 0;
  /** Checks before the first write that the home directory a default root lies under exists. */
  private readonly homeExists: () => Promise<void>;
  private readonly queue = new Map<string, Promise<void>>();
  /** Entry directories this object made or found (each is made once per process). */
  private readonly made = new Set<string>();

  constructor(opts: BlobLocationsOptions = {}) {
    this.dir = join(opts.dir ?? defaultCacheDir(opts.env), 'locations');
    // A default root under a home directory that does not exist (HOME=/nonexistent for service users) is never
    // created: the cache is then off, with one warning, instead of a made-up home appearing as a side effect.
    this.homeExists = cacheHomeGuard(opts.env ?? process.env, opts.dir);
    this.maxLocations = Math.max(1, opts.maxLocations ?? 5);
    this.maxEntries = Math.max(1, opts.maxEntries ?? 8192);
    this.onWarning = opts.onWarning;
  }

  private file(digest: string): string | undefined {
    return isDigest(digest) ? join(this.dir, digestAlgorithm(digest), digestHex(digest)) : undefined;
  }

  private read(digest: string): Entry {
    const f = this.file(digest);
    if (!f) return { locations: [] };
    try {
      // An entry is a few hundred bytes on a local disk: a synchronous read costs ~1/15 of the CPU of the async
      // one's thread-pool round trips (open, stat, read, close), and a copy reads each entry twice.
      return parseEntry(readFileSync(f, 'utf8'));
    } catch {
      return { locations: [] };
    }
  }

  /**
   * Read, change and write back one entry; unchanged entries are not written. Updates of one digest run one after
   * the other in this process (a forget and a record of the same blob must not undo each other).
   */
  private update(digest: string, change: (e: Entry) => Entry | undefined): Promise<void> {
    const next = (this.queue.get(digest) ?? Promise.resolve()).then(() => this.apply(digest, change)).catch(() => {});
    this.queue.set(digest, next);
    void next.then(() => {
      if (this.queue.get(digest) === next) this.queue.delete(digest);
    });
    return next;
  }

  private async apply(digest: string, change: (e: Entry) => Entry | undefined): Promise<void> {
    const f = this.file(digest);
    if (!f || !this.writable) return;
    const next = change(this.read(digest));
    if (!next) return;
    const body = JSON.stringify({
      v: 1,
      locations: next.locations.map((l) => [l.registry, l.repository]),
      ...(next.diffId ? { diffId: next.diffId } : {}),
    });
    try {
      await this.homeExists();
      const dir = join(f, '..');
      if (!this.made.has(dir)) {
        await mkdir(dir, { recursive: true });
        this.made.add(dir);
      }
      // Asynchronous: the create and rename take long on a busy disk, and requests go on meanwhile.
      await writeFileAtomic(f, body);
    } catch (e) {
      this.writable = false;
      if (warned.has(this.dir)) return;
      warned.add(this.dir);
      const why = CanvosError.is(e) && e.hint ? `${e.message}; ${e.hint}` : e instanceof Error ? e.message : String(e);
      this.onWarning?.(
        'W_BLOB_LOCATIONS_READONLY',
        `blob-location cache ${this.dir} cannot be written (${why}): blobs are not remembered for later mounts`,
      );
      return;
    }
    // Off the caller's path: the directory listing is only needed to keep the bound.
    if (this.writes++ % PRUNE_EVERY === 0) void this.prune();
  }

  /** Where `digest` was seen, most recent first. */
  locations(digest: string): Promise<RepositoryLocation[]> {
    return Promise.resolve(this.read(digest).locations);
  }

  /** Remember that `digest` is in `loc` (moved to the front of its list). */
  async record(digest: string, loc: RepositoryLocation): Promise<void> {
    await this.update(digest, (e) => {
      if (e.locations[0] && same(e.locations[0], loc)) return undefined;
      const rest = e.locations.filter((l) => !same(l, loc));
      return { ...e, locations: [loc, ...rest].slice(0, this.maxLocations) };
    });
  }

  /** Forget `loc` for `digest` (a mount from it failed: the blob is no longer there). */
  async forget(digest: string, loc: RepositoryLocation): Promise<void> {
    await this.update(digest, (e) =>
      e.locations.some((l) => same(l, loc)) ? { ...e, locations: e.locations.filter((l) => !same(l, loc)) } : undefined,
    );
  }

  /** The verified diffID of the compressed layer `digest`, if one was recorded. */
  diffId(digest: string): Promise<Digest | undefined> {
    return Promise.resolve(this.read(digest).diffId);
  }

  /** Remember a (compressed digest → diffID) pair; only for pairs the caller verified by hashing the layer. */
  async recordDiffId(digest: string, diffId: Digest): Promise<void> {
    await this.update(digest, (e) => (e.diffId === diffId ? undefined : { ...e, diffId }));
  }

  /** Remove the least recently written entries beyond `maxEntries` (down to 90 % of it). */
  async prune(): Promise<void> {
    try {
      const files: { path: string; mtime: number }[] = [];
      for (const alg of await readdir(this.dir)) {
        for (const name of await readdir(join(this.dir, alg))) {
          if (name.startsWith('.')) continue; // a temp file being written
          files.push({ path: join(this.dir, alg, name), mtime: 0 });
        }
      }
      if (files.length <= this.maxEntries) return;
      await Promise.all(
        files.map(async (f) => {
          f.mtime = await stat(f.path).then(
            (s) => s.mtimeMs,
            () => 0,
          );
        }),
      );
      files.sort((a, b) => a.mtime - b.mtime);
      const excess = files.length - Math.floor(this.maxEntries * 0.9);
      await Promise.all(files.slice(0, excess).map((f) => rm(f.path, { force: true })));
    } catch {
      // Another process pruned at the same time, or the directory is gone: nothing to do.
    }
  }
}

/**
 * The blob-location cache the CLI uses, rooted at `cacheDir` (`--cache-dir`) or the blob cache's default:
 * `CANVOS_BLOB_LOCATIONS` unset, empty, `1`/`true`/`on`/`yes` is on, `0`/`false`/`off`/`no` off (any case); any
 * other value is refused with ERR_CONFIG rather than guessed.
 */
export function blobLocationsFromEnv(
  env: NodeJS.ProcessEnv,
  cacheDir?: string,
  onWarning?: BlobLocationsOptions['onWarning'],
): BlobLocations | undefined {
  if (!envSwitch('CANVOS_BLOB_LOCATIONS', env)) return undefined;
  return new BlobLocations({ dir: cacheDir, env, onWarning });
}
