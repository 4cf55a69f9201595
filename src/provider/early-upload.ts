/**
 * Upload-as-built for registry outputs of the provider build: each new layer blob starts uploading to the
 * repositories of the images that hold it as soon as it is built, while the next layer is built. Blobs only: the
 * manifests and tags are written afterwards by the copy engine (push-image.ts), once {@link EarlyUploads.settle}
 * confirmed every blob, so a build that fails later leaves unreferenced blobs (garbage-collected by the registry)
 * and never a tag or a manifest. A blob shared by several images of one repository is uploaded once.
 * An OCI-layout output gets the same through `open`: the blobs go into the first image's destination (a new layout
 * is staged beside DIR), which the image write then takes over ({@link EarlyUploads.take}) and commits; a build
 * that fails leaves no new layout (and, in an existing one, only unreferenced blobs, index.json untouched).
 *
 * The blob files are not hashed again on the way out (that cost ~0.2 s of CPU per 250 MiB): each file's identity
 * (device, inode, size, mtime and ctime in ns) is taken when the blob is added, right after it was built, and checked
 * before the upload reads the file and again before the upload's last byte is handed on, so a file written to after
 * it was built fails the upload before the registry commits it, with an error naming the file. A write always moves
 * ctime, which no user can set back. The registry's own check of `PUT ?digest=` against the bytes it received stays.
 * @internal
 */
import { createReadStream, statSync, type BigIntStats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { CanvosError } from '../errors.js';
import type { Digest } from '../image/digest.js';
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
  /**
   * Opens the destination of the blobs keyed `repo` when it is not a registry repository, e.g. an OCI layout
   * (`oci:DIR:TAG`); it hashes what it stores. Default: the registry repository `repo`, which checks the digest of
   * what it receives.
   */
  open?: ((repo: string) => ImageDestination) | undefined;
}

/** The repository part of `HOST/REPO:TAG` (what blob uploads are scoped to). */
export function repositoryOf(imageRef: string): string {
  return imageRef.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
}

/** What changes whenever a file is written to, replaced or truncated. */
function identity(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** The blob file as a stream that fails unless the file is still the one built (see the file header). */
async function unchangedFile(blob: EarlyBlob, built: string): Promise<Readable> {
  const check = async (n?: number) => {
    if ((n !== undefined && n !== blob.size) || identity(await stat(blob.path, { bigint: true })) !== built)
      throw new CanvosError(
        'ERR_DIGEST_MISMATCH',
        `layer blob ${blob.path} (${blob.digest}) changed after it was built`,
        {
          hint: 'nothing may write to the build work directory (--work-dir) while a build runs; build again',
        },
      );
  };
  await check();
  let n = 0;
  const out = new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      check(n).then(() => {
        cb();
      }, cb);
    },
  });
  const s = createReadStream(blob.path);
  s.on('error', (e) => out.destroy(e));
  return s.pipe(out);
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
    // The file as built: every upload of it checks against this.
    let built: string | undefined;
    for (const repo of new Set(repos)) {
      const key = `${repo}\n${blob.digest}`;
      if (this.#uploads.has(key)) continue;
      built ??= identity(statSync(blob.path, { bigint: true }));
      const p = this.#upload(blob, repo, built);
      // Observed by settle() or the next add(); no unhandled rejection meanwhile.
      p.catch((e: unknown) => {
        this.#failed ??= { error: e };
      });
      this.#uploads.set(key, p);
    }
  }

  async #upload(blob: EarlyBlob, repo: string, built: string): Promise<void> {
    let dest = this.#dests.get(repo);
    if (!dest) {
      // The tag is never used: blob uploads are scoped to the repository.
      dest =
        this.#opts.open?.(repo) ?? openDestination(`docker://${repo}:early-upload`, { registry: this.#opts.registry });
      this.#dests.set(repo, dest);
    }
    const desc = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
    const open = () => unchangedFile(blob, built);
    const sourceVerified = this.#opts.open === undefined;
    const status = await dest.putBlob(desc, open, { signal: this.#signal, sourceVerified });
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

  /**
   * Hand the destination of `repo` over to the caller (who closes it), e.g. to write the first image into the
   * layout the blobs were staged in; undefined when nothing was added for `repo`. Call after {@link settle}.
   */
  take(repo: string): ImageDestination | undefined {
    const d = this.#dests.get(repo);
    this.#dests.delete(repo);
    return d;
  }

  /** Release the destinations (their connections; a layout not taken over is discarded). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#dests.values()].map((d) => d.close()));
  }
}
