/**
 * The transport abstraction every image location implements (registry, OCI layout, docker-archive, mirror
 * archive). The copy engine walks the manifest graph of an ImageSource and writes it to an ImageDestination
 * without ever decompressing or re-serialising: blobs and manifests move as the exact bytes they were.
 * Transport-specific abilities (a registry's cross-repository mounts and widened reads) are extensions declared by
 * that transport (src/transports/registry/registry-image.ts), not part of these interfaces.
 */
import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Descriptor } from './schemas.js';

/** Progress event emitted by long operations. The library never prints. */
export interface ProgressEvent {
  phase: string;
  /** What the event is about, e.g. a digest or a reference. */
  item?: string;
  transferred: number;
  total?: number;
  percent?: number;
  /** Items (e.g. blobs) finished so far and in all, for operations that move many. */
  itemsDone?: number;
  itemsTotal?: number;
  /** Set on the event that finishes `item`: what happened to it (e.g. `copied`, `skipped`, `mounted`). */
  status?: string;
  /** Size of `item` in bytes, when known. */
  itemSize?: number;
}
export type ProgressFn = (e: ProgressEvent) => void;

export interface OpOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ProgressFn | undefined;
}

/** A manifest as raw bytes plus what we know about it. */
export interface RawManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

export interface ImageSource {
  /** Human description, e.g. `docker://localhost:5000/foo:bar`; never contains credentials. */
  readonly description: string;
  /**
   * The manifest the reference points to (no argument), or the manifest with the given digest
   * (children of an index). Bytes are verified against the digest when one is known.
   */
  getManifest(digest?: Digest, opts?: OpOptions): Promise<RawManifest>;
  /** A stream of the blob's exact bytes, verified against desc.digest and desc.size (errors at end on mismatch). */
  getBlob(desc: Descriptor, opts?: OpOptions): Promise<Readable>;
  close(): Promise<void>;
}

export type PutBlobResult = 'exists' | 'mounted' | 'uploaded';

/** Optional hints to {@link ImageDestination.putBlob}; destinations may ignore any of them. */
export interface PutBlobHints {
  /** The caller just saw `hasBlob` answer false: skip checking for the blob again. Default: false. */
  knownAbsent?: boolean | undefined;
  /**
   * `open` returns a stream that itself verifies digest and size and errors at the end on mismatch (every
   * `ImageSource.getBlob` does): the destination need not hash the bytes again, as long as it commits only after
   * the stream ended cleanly or checks the digest itself on commit. Default: false.
   */
  sourceVerified?: boolean | undefined;
}

export interface ImageDestination {
  readonly description: string;
  /** The tag the root manifest gets when the caller names none (from the destination reference). */
  readonly tag?: string | undefined;
  /** The destination holds one image manifest only (docker-archive): an index source is narrowed to one platform. */
  readonly singleImage?: boolean | undefined;
  /**
   * `putBlob` without `knownAbsent` finds a blob the destination already holds at no more cost than `hasBlob`
   * (answering `exists` without calling `open`), so a caller about to put a blob may skip `hasBlob` (a registry then
   * tries a cross-repository mount first, and a HEAD only when no mount works). Default: false.
   */
  readonly checksOnPut?: boolean | undefined;
  /** True when the destination already holds this blob (HEAD / file exists with right size). */
  hasBlob(desc: Descriptor, opts?: OpOptions): Promise<boolean>;
  /**
   * Store a blob. `open` is called (possibly more than once, for retries) to get the bytes; the destination
   * verifies digest and size before the blob becomes visible.
   */
  putBlob(desc: Descriptor, open: () => Promise<Readable>, opts?: OpOptions & PutBlobHints): Promise<PutBlobResult>;
  /** True when the destination already holds this manifest digest. */
  hasManifest(digest: Digest, opts?: OpOptions): Promise<boolean>;
  /**
   * Store a manifest by digest. Called only after every blob and child manifest it references is stored.
   * `tag` is set only for the root manifest.
   */
  putManifest(m: RawManifest, tag: string | undefined, opts?: OpOptions): Promise<void>;
  /** Make the result durable/visible (e.g. write index.json atomically, finish an archive). */
  commit(opts?: OpOptions): Promise<void>;
  close(): Promise<void>;
}
