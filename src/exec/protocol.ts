/**
 * The pipe protocol between the library (parent) and the executor agent running inside the namespaces: requests and
 * replies as JSON lines on the agent's stdin/stdout, layer bytes on fd 3 as length-prefixed frames (a 4-byte
 * big-endian length, then the bytes; length 0 ends one layer), so one pipe carries any number of layers.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { ErrorCode } from '../errors.js';
import type { SandboxStep } from './sandbox.js';
import { throwIfAborted } from '../util/abort.js';

/** A request to the agent. */
export type AgentRequest =
  | { id: number; op: 'apply'; name: string }
  | { id: number; op: 'run'; step: SandboxStep; out: string; mtime?: number | undefined }
  | { id: number; op: 'close' };

/** A message from the agent. */
export type AgentMessage =
  | { id: number; ok: true; result: Record<string, unknown> }
  | { id: number; ok: false; error: { code: ErrorCode; message: string; hint?: string | undefined } }
  | { id: number; output: 'stdout' | 'stderr'; data: string };

/** Writes one stream of bytes as frames on `out`, honouring back-pressure; ends with the empty frame. */
export async function writeFrames(
  out: Writable,
  src: AsyncIterable<Buffer | string>,
  signal?: AbortSignal,
): Promise<void> {
  const write = async (b: Buffer): Promise<void> => {
    if (out.destroyed) throw new Error('the layer data pipe is closed');
    if (!out.write(b)) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error): void => {
          out.off('error', done);
          out.off('close', closed);
          out.off('drain', drained);
          if (e) reject(e);
          else resolve();
        };
        const closed = (): void => {
          done(new Error('the layer data pipe closed'));
        };
        const drained = (): void => {
          done();
        };
        out.once('error', done);
        out.once('close', closed);
        out.once('drain', drained);
      });
    }
  };
  const header = (n: number): Buffer => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(n, 0);
    return h;
  };
  for await (const c of src) {
    throwIfAborted(signal);
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    for (let off = 0; off < b.length; off += 1 << 30) {
      const part = b.subarray(off, off + (1 << 30));
      await write(Buffer.concat([header(part.length), part]));
    }
  }
  await write(header(0));
}

/**
 * Reads frame streams written by {@link writeFrames}, one after the other. Each stream is pumped to its end (the
 * empty frame) whether or not the consumer reads it all, so a consumer that stops early (a corrupt tar) never leaves
 * the next stream misaligned.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  constructor(src: AsyncIterable<Buffer>) {
    this.it = src[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      const r = await this.it.next();
      if (r.done) throw new Error('the layer data pipe closed early');
      this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    }
  }

  /** The next stream: `body` to read (destroy it to stop early), `done` once the whole stream was taken off the pipe. */
  stream(): { body: Readable; done: Promise<void> } {
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const done = (async () => {
      for (;;) {
        await this.fill(4);
        let left = this.buf.readUInt32BE(0);
        this.buf = this.buf.subarray(4);
        if (left === 0) break;
        while (left > 0) {
          if (this.buf.length === 0) await this.fill(1);
          const take = Math.min(left, this.buf.length);
          const chunk = this.buf.subarray(0, take);
          this.buf = this.buf.subarray(take);
          left -= take;
          if (!body.destroyed && !body.write(chunk)) {
            await new Promise<void>((resolve) => {
              const go = (): void => {
                body.off('drain', go);
                body.off('close', go);
                resolve();
              };
              body.on('drain', go);
              body.on('close', go);
            });
          }
        }
      }
      body.end();
    })();
    done.catch((e: unknown) => {
      body.destroy(e as Error);
    });
    return { body, done };
  }
}
