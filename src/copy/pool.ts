/**
 * What several concurrent copies share (mirror): one blob concurrency limit, the blobs in flight, and the child
 * manifests already written, so a blob or manifest needed by several images copied into one place moves once.
 */
import { DEFAULT_CONCURRENCY, Semaphore } from '../util/semaphore.js';

/** What happened to one blob of a copy. */
export type BlobStatus = 'copied' | 'skipped' | 'mounted';

/**
 * Limits shared by several {@link copyImage} calls: one blob semaphore for all of them, and a map of blobs in
 * flight so a blob needed by several images copied at once into the same place moves only once.
 */
export class CopyPool {
  /** The shared blob concurrency limit. */
  readonly semaphore: Semaphore;
  /** In-flight transfers by `scope\0digest`. */
  readonly inflight: Map<string, Promise<BlobStatus>> = new Map();
  /**
   * Untagged (child) manifest writes by `scope\0digest`, kept once they succeed: each is written once per
   * destination however many copies need it. Two copies writing the same manifest into one repository at once is
   * not harmless: distribution rewrites the revision link in place, and a concurrent index PUT that verifies its
   * children can read it half-written and fail with MANIFEST_BLOB_UNKNOWN.
   */
  readonly manifests: Map<string, Promise<void>> = new Map();
  /** `concurrency`: blobs moved at once across all copies. Default: 8 (DEFAULT_CONCURRENCY). */
  constructor(concurrency = DEFAULT_CONCURRENCY) {
    this.semaphore = new Semaphore(concurrency);
  }
}
