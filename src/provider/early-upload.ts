/**
 * Upload-as-built for registry outputs of the provider build: each new layer blob starts uploading to the
 * repositories of the images that hold it as soon as it is built, while the next layer is built. Blobs only: the
 * manifests and tags are written afterwards by the copy engine (push-image.ts), once {@link EarlyUploads.settle}
 * confirmed every blob, so a build that fails later leaves unreferenced blobs (garbage-collected by the registry)
 * and never a tag or a manifest. A blob shared by several images of one repository is uploaded once.
 * @internal
 */
import { createReadStream } from 'node:fs';
import { CanvosError } from '../errors.js';
import { VerifyingStream, type Digest } from '../image/digest.js';
import type { ImageDestination, ProgressFn } from '../image/types.js';
import { openDestination } from '../transports/resolve-location.js';
import type { RegistryTransportOptions } from '../transports/registry/registry-image.js';
import { abortedOr } from '../util/abort.js';

/** A built layer blob on disk. */
export interface EarlyBlob {
  digest: Digest;
  size: number;
  mediaType: string;
  path: string;
}

/** Options of {@link EarlyUploads}. */
export interface EarlyUploadOptions {
  registry?: RegistryTransportOptions | undefined;
  signal?: AbortSignal | undefined;
  /** `write-blob` events (`uploaded`, `exists`, `mounted`), as the copy engine reports them. Default: none. */
  onProgress?: ProgressFn | undefined;
}

/** The repository part of `HOST/REPO:TAG` (what blob uploads are scoped to). */
export function repositoryOf(imageRef: string): string {
  return imageRef.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
}

/** Background uploads of built blobs, one per (repository, digest). */
export class EarlyUploads {
  readonly #opts: EarlyUploadOptions;
  readonly #abort = new AbortController();
  readonly #dests = new Map<string, ImageDestination>();
  readonly #uploads = new Map<string, Promise<void>>();
  readonly #signal: AbortSignal;
  #failed: { error: unknown } | undefined;

  constructor(opts: EarlyUploadOptions = {}) {
    this.#opts = opts;
    this.#signal = opts.signal ? AbortSignal.any([opts.signal, this.#abort.signal]) : this.#abort.signal;
  }

  /**
   * Start uploading `blob` to every repository in `repos` that has not got it yet (from this build). Throws the
   * failure of an earlier upload, so a build stops at the next layer instead of building the rest in vain.
   */
  add(blob: EarlyBlob, repos: Iterable<string>): void {
    if (this.#failed) throw this.#failed.error;
    for (const repo of new Set(repos)) {
      const key = `${repo}\n${blob.digest}`;
      if (this.#uploads.has(key)) continue;
      const p = this.#upload(blob, repo);
      // Observed by settle() or the next add(); no unhandled rejection meanwhile.
      p.catch((e: unknown) => {
        this.#failed ??= { error: e };
      });
      this.#uploads.set(key, p);
    }
  }

  async #upload(blob: EarlyBlob, repo: string): Promise<void> {
    let dest = this.#dests.get(repo);
    if (!dest) {
      // The tag is never used: blob uploads are scoped to the repository.
      dest = openDestination(`docker://${repo}:early-upload`, { registry: this.#opts.registry });
      this.#dests.set(repo, dest);
    }
    const desc = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
    const what = `layer ${blob.digest} (${blob.path})`;
    const open = () => {
      const v = new VerifyingStream(blob.digest, { size: blob.size, what });
      const s = createReadStream(blob.path);
      s.on('error', (e) => v.destroy(e));
      return Promise.resolve(s.pipe(v));
    };
    const status = await dest.putBlob(desc, open, { signal: this.#signal, sourceVerified: true });
    this.#opts.onProgress?.({
      phase: 'write-blob',
      item: blob.digest,
      transferred: blob.size,
      total: blob.size,
      status,
      itemSize: blob.size,
    });
  }

  /** Wait for every upload started so far; throws the first failure (the others are aborted and awaited). */
  async settle(): Promise<void> {
    const all = [...this.#uploads.values()];
    try {
      await Promise.all(all);
    } catch (e) {
      await this.cancel();
      throw abortedOr(this.#opts.signal, e);
    }
  }

  /** Abort the uploads in flight and wait until they stopped (after a failed build: nothing keeps running). */
  async cancel(): Promise<void> {
    this.#abort.abort(new CanvosError('ERR_ABORTED', 'the provider build failed: early uploads cancelled'));
    await Promise.allSettled(this.#uploads.values());
  }

  /** Release the destinations (their connections). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#dests.values()].map((d) => d.close()));
  }
}
