/**
 * The requests and responses of a blob read in ranged parts (blob-parts-reader.ts): opening a part's range, reading
 * its response up to the part's end (closing a response that runs past it: the first stream, or one whose tail another
 * stream took), and resuming a part whose connection broke from its last byte.
 */
import { CanvosError } from '../errors.js';
import type { Descriptor } from '../image/schemas.js';
import type { HttpResponse } from '../http/request.js';
import { mayResume } from '../http/retry.js';
import { abortError } from '../util/abort.js';
import { newPart, type PartState } from './blob-parts-planner.js';
import type { PartScheduler } from './blob-parts-scheduler.js';

/** Opens bytes [start, end] (inclusive) of the blob; resolves a 206 response whose Content-Range starts at `start`. */
export type RangeOpener = (start: number, end: number, onSlot: () => void) => Promise<HttpResponse>;

/** A part being read: its range state (planner) plus its bytes, memory and connection. */
export interface Part extends PartState {
  /** Its response runs past `end` (the first stream, or a part whose tail was stolen): stop and close there. */
  cut?: boolean;
  /** Bytes received ahead of the head, waiting to be emitted. */
  chunks: Buffer[];
  /** Read-ahead memory reserved for it. */
  reserved: number;
  res?: HttpResponse | undefined;
  /** Times its broken response was resumed. */
  resumes: number;
}

export function part(start: number, end: number): Part {
  return { ...newPart(start, end), chunks: [], reserved: 0, resumes: 0 };
}

/** What {@link PartStreams} hands the bytes of its parts to: the reader that puts them in order. */
export interface PartsConsumer {
  /** The read failed or was abandoned: whatever still arrives is dropped. */
  readonly failed: boolean;
  /** Fail the whole read with `e` (releases every connection and reservation). */
  fail(e: unknown): void;
  /** Bytes of `p` within its range, in order. */
  deliver(p: Part, c: Buffer): void;
  /** `p` received its last byte. */
  finish(p: Part): void;
  /** Bytes arrived and `p` goes on (time the first stream, re-plan). */
  progress(): void;
}

/** Options of {@link PartStreams}. */
export interface PartStreamsOptions {
  maxResumes: number;
  signal?: AbortSignal | undefined;
}

/** Opens and reads the ranged responses of one blob's parts for a {@link PartsConsumer}. */
export class PartStreams {
  /** Time from asking for a part to its first byte (the cost of one more stream), smoothed. */
  ttfbMs = 0;
  /** Timeouts seen across the blob's resumes (mayResume allows one). */
  private readonly stalls = { timeouts: 0 };
  private readonly desc: Descriptor;
  /** Opens a range of the blob (a request on the registry). */
  private readonly open: RangeOpener;
  private readonly sched: PartScheduler;
  private readonly o: PartStreamsOptions;
  private readonly to: PartsConsumer;

  constructor(desc: Descriptor, open: RangeOpener, sched: PartScheduler, o: PartStreamsOptions, to: PartsConsumer) {
    this.desc = desc;
    this.open = open;
    this.sched = sched;
    this.o = o;
    this.to = to;
  }

  /** Open `p` from its next byte (a new stream, or a resume) and read it. */
  request(p: Part): void {
    const asked = performance.now();
    const slot = this.sched.began();
    this.open(p.start + p.received, p.end - 1, slot).then(
      (res) => {
        slot();
        const ms = performance.now() - asked;
        this.ttfbMs = this.ttfbMs === 0 ? ms : 0.7 * this.ttfbMs + 0.3 * ms;
        this.attach(p, res);
      },
      (e: unknown) => {
        slot();
        this.retryOrFail(p, e);
      },
    );
  }

  /** Resume `p` after its response broke (`e`) or ended early (undefined), or fail the read. */
  private retryOrFail(p: Part, e: unknown): void {
    if (this.to.failed) return;
    const signal = this.o.signal;
    if (signal?.aborted) {
      this.to.fail(abortError(signal));
      return;
    }
    if ((e === undefined || mayResume(e, this.stalls)) && p.resumes < this.o.maxResumes) {
      p.resumes++;
      this.request(p);
      return;
    }
    this.to.fail(
      e ??
        new CanvosError(
          'ERR_NETWORK',
          `GET blob ${this.desc.digest}: bytes ${p.start}-${p.end - 1} ended early ${p.resumes + 1} times`,
          { hint: 'the connection to the registry keeps dropping' },
        ),
    );
  }

  /** Take `chunk` of `p`'s response: `cut` when `p` reached its end in a longer response, `failed` when it broke the range. */
  private take(p: Part, chunk: Buffer): 'more' | 'cut' | 'failed' {
    let c = chunk;
    let cutHere = false;
    if (p.received + c.length > p.end - p.start) {
      if (!p.cut) {
        this.to.fail(
          new CanvosError(
            'ERR_REGISTRY_HTTP',
            `GET blob ${this.desc.digest}: the registry sent more than the ${p.end - p.start} bytes asked for with Range: bytes=${p.start}-${p.end - 1}`,
            { hint: 'the registry or a proxy mishandles Range requests' },
          ),
        );
        return 'failed';
      }
      // The stream reached the boundary where another stream takes over.
      c = c.subarray(0, p.end - p.start - p.received);
      cutHere = true;
    }
    p.received += c.length;
    if (c.length > 0) this.to.deliver(p, c);
    return cutHere || (p.cut && p.received === p.end - p.start) ? 'cut' : 'more';
  }

  /** Read `res` into `p` until it ends, breaks or reaches `p.end`. */
  attach(p: Part, res: HttpResponse): void {
    if (this.to.failed) {
      res.body.destroy();
      return;
    }
    p.res = res;
    p.since = performance.now();
    p.sinceBytes = p.received;
    const b = res.body;
    const detach = (): void => {
      b.off('data', onData);
      b.off('end', onEnd);
      b.off('error', onError);
      p.res = undefined;
    };
    const onData = (data: Buffer): void => {
      if (this.to.failed) return;
      const r = this.take(p, data);
      if (r === 'failed') return;
      if (r === 'cut') {
        detach();
        b.destroy();
        this.to.finish(p);
        return;
      }
      this.to.progress();
    };
    const onEnd = (): void => {
      detach();
      if (p.received < p.end - p.start) this.retryOrFail(p, undefined);
      else this.to.finish(p);
    };
    const onError = (e: unknown): void => {
      detach();
      b.destroy();
      this.retryOrFail(p, e);
    };
    b.on('data', onData);
    b.once('end', onEnd);
    b.on('error', onError);
  }
}
