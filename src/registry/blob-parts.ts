/**
 * Parallel ranged download of large blobs. Over a long-haul link one TCP stream gets window/RTT of throughput, and
 * CDNs in front of registries often shape per connection, so a single multi-GiB layer (a Kairos base image has one)
 * crawls at one stream's rate while the link sits idle, and the last blobs of a copy run alone on one connection
 * each while the others wait.
 *
 * A blob is first read with one plain GET, timed after 256 KiB and again after every further 256 KiB until it goes
 * parallel or ends (a registry whose last timed blob was slow is taken to be slow again, and the next blob goes
 * parallel at its first bytes; it is still timed, which updates the hint). It goes parallel only if it runs slower
 * than `slowBelow` bytes/s (not counting time spent waiting for the reader: a reader slower than one stream, such as
 * a loopback copy bound by the destination, gains nothing from more streams), the registry advertised
 * `Accept-Ranges: bytes`, and either no other blob of the copy waits to start (`canWiden`) or the registry has
 * connections reserved for ranged parts (`BlobPartsOptions.connections` beyond the request limit), which waiting
 * blobs would not use anyway.
 *
 * From then on the registry's {@link PartScheduler} gives it idle request slots, each to the blob with the most
 * bytes left per stream (within its fair share of the connections, and at most `parallel` parts from its head on).
 * A new stream reads the next queued part (at most `partSize`), or, once nothing is queued, the second half of the
 * blob's longest running stream (work stealing; only if that half takes the stream clearly longer than a new request
 * needs to start): the running stream is cut where the new one starts, its connection closed there. When the half
 * would exceed a part, the running stream is cut at its next part boundary, one part is started after it and the
 * rest is queued. Ranges start at 64 KiB boundaries.
 *
 * The stream at the head streams straight through with backpressure; parts after it are read ahead into memory;
 * everything is emitted strictly in order into the caller's verifier, so the digest check is unchanged. Read-ahead
 * memory is bounded per process by a {@link ReadAheadBudget}: a part after the head starts only when its whole size
 * can be reserved. A fast source costs exactly one request; a part whose connection breaks is resumed from its last
 * byte.
 *
 * This module holds the options and the entry point; one blob's read is blob-parts-reader.ts, its requests and
 * responses blob-parts-streams.ts, what a new stream reads blob-parts-planner.ts, the registry's idle connections and
 * the read-ahead budget blob-parts-scheduler.ts, and whether the process is CPU-bound blob-parts-load.ts.
 */
import type { Writable } from 'node:stream';
import type { Descriptor } from '../image/schemas.js';
import type { HttpResponse } from '../http/request.js';
import { MIN_HALF } from './blob-parts-planner.js';
import { PartsReader, type StreamPartsOptions } from './blob-parts-reader.js';
import type { RangeOpener } from './blob-parts-streams.js';
import type { ReadAheadBudget } from './blob-parts-scheduler.js';

export type { StreamPartsOptions } from './blob-parts-reader.js';
export type { RangeOpener } from './blob-parts-streams.js';

/** Tuning of ranged blob reads (RegistryHttpOptions.blobParts). */
export interface BlobPartsOptions {
  /** Parts of one blob in flight at once, the head included; 1 turns ranged reads off. Default: 8. */
  parallel?: number | undefined;
  /**
   * The largest range one request reads (a stolen half is smaller when the stream it came from was short): the
   * unit of read-ahead memory. Blobs over 64 parts use larger parts (size/64, up to 8 MiB). Default: 8 MiB.
   */
  partSize?: number | undefined;
  /**
   * Connections to one registry that reads may use in all: its request limit (RegistryHttpOptions.concurrency)
   * plus extra connections that carry only Range parts of blobs found slow. Over a link that caps each connection
   * these keep it busy while every blob slot holds a one-stream blob; a fast registry never splits a blob, so it
   * never sees them. Default: twice the request limit, at most {@link MAX_RANGED_CONNECTIONS} (never below the limit).
   */
  connections?: number | undefined;
  /** Read-ahead memory shared by every ranged read in the process. Default: {@link defaultReadAheadBudget}. */
  budget?: ReadAheadBudget | undefined;
  /**
   * Go parallel only when the first part arrived slower than this (bytes/s), not counting time spent waiting for
   * the reader; `Infinity`: always. Default: 64 MiB/s.
   */
  slowBelow?: number | undefined;
}

/** Defaults applied to {@link BlobPartsOptions}. */
export const BLOB_PARTS_DEFAULTS = { parallel: 8, partSize: 8 * 1024 * 1024, slowBelow: 64 * 1024 * 1024 } as const;

/** The default cap on connections per registry with ranged parts counted (aria2's per-server maximum, too). */
export const MAX_RANGED_CONNECTIONS = 16;

/**
 * Connections beyond the request limit `concurrency` that only ranged parts use, for the registry's `blobParts`
 * setting (see {@link BlobPartsOptions.connections}); 0 when ranged reads are off.
 */
export function extraRangedSlots(concurrency: number, setting: BlobPartsOptions | false | undefined): number {
  if (setting === false || (setting?.parallel !== undefined && setting.parallel <= 1)) return 0;
  const total = setting?.connections ?? Math.min(2 * concurrency, MAX_RANGED_CONNECTIONS);
  return Math.max(0, Math.floor(total) - concurrency);
}

/** Blobs smaller than this are always read with one plain GET. */
export const MIN_RANGED_BLOB = 8 * MIN_HALF;

/**
 * Stream `desc` into `out` (a verifier), in order, splitting the rest into ranged parts when the first stream is
 * slow (see the file header). `first` is the already-open 200 answer with the whole blob; `open` opens a range.
 * Errors are delivered by destroying `out`; `out` is ended after the last byte.
 */
export function streamParts(
  desc: Descriptor,
  first: HttpResponse,
  open: RangeOpener,
  out: Writable,
  o: StreamPartsOptions,
): void {
  new PartsReader(desc, open, out, o).begin(first);
}
