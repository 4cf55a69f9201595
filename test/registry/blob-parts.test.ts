/**
 * Parallel ranged blob reads (src/registry/blob-parts.ts) against the real docker-registry through the fault proxy:
 * byte-exact and verified, really ranged and parallel, resumed per part after resets, falling back to one stream
 * when Range is ignored, bounded by the read-ahead budget, and releasing every connection when the reader stops.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import { ReadAheadBudget, RegistryRepository } from '../../src/registry/index.js';
import { KiB, PART, rangedSource } from './blob-parts-fixture.js';
import { readAll } from './image-util.js';

describe('ranged blob reads', () => {
  const data = randomBytes(10 * PART + 12345); // 11 parts, the last one short
  const src = rangedSource('parts/a', [data]);
  const desc = src.descs[0]!;
  const repo = (parts: Parameters<typeof src.repo>[0] = {}): RegistryRepository => src.repo(parts);
  const gets = () => src.proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(desc.digest));
  const ranges = () => src.ranges(desc.digest);

  // Split mode: the first GET (no Range) runs to 2 × PART, the parts after it are ranged.
  const split = [
    '',
    ...Array.from({ length: 9 }, (_, i) => `bytes=${(i + 2) * PART}-${Math.min(data.length, (i + 3) * PART) - 1}`),
  ].sort();

  it('splits the rest of a large blob into consecutive Range parts read in parallel, byte-exact', async () => {
    const got = await readAll(
      await repo({
        blobParts: { parallel: 4, partSize: PART, slowBelow: Infinity, budget: new ReadAheadBudget(64 * PART) },
      }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    expect(ranges().sort()).toEqual(split);
  });

  // "Fast" here is 4 MiB/s, so loopback always qualifies even on a loaded machine.
  const FAST = 4 * 1024 * KiB;

  it('a fast source is read with the one plain GET (no extra registry work)', async () => {
    const got = await readAll(
      await repo({
        blobParts: { parallel: 4, partSize: PART, slowBelow: FAST, budget: new ReadAheadBudget(64 * PART) },
      }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    expect(ranges()).toEqual(['']);
  });

  it('a source slower than one stream should be (throttled per connection) goes parallel by default', async () => {
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: Infinity,
      action: { kind: 'slow', bytesPerSecond: 1024 * KiB },
    });
    const got = await readAll(
      await repo({
        blobParts: { parallel: 4, partSize: PART, slowBelow: FAST, budget: new ReadAheadBudget(64 * PART) },
      }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    expect(ranges().sort()).toEqual(split);
  });

  it('a slow source that does not advertise Accept-Ranges is read with one GET', async () => {
    src.proxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: 1, action: { kind: 'no-accept-ranges' } });
    const got = await readAll(
      await repo({
        blobParts: { parallel: 4, partSize: PART, slowBelow: Infinity, budget: new ReadAheadBudget(64 * PART) },
      }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    expect(ranges()).toEqual(['']);
  });

  it('a fast source read by a slow reader stays on one stream: time waiting for the reader is not source time', async () => {
    // The reader waits 30 ms per chunk: counted as source time, the first part would look slower than FAST.
    const stream = await repo({
      blobParts: { parallel: 4, partSize: PART, slowBelow: FAST, budget: new ReadAheadBudget(64 * PART) },
    }).getBlob(desc);
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        stream.pause();
        setTimeout(() => stream.resume(), 30);
      });
      stream.once('end', resolve);
      stream.once('error', reject);
    });
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(ranges()).toEqual(['']);
  });

  it('reads blobs under 2 MiB, or with parts off, with one plain GET', async () => {
    const small = randomBytes(2 * 1024 * KiB - 1);
    const sd = { mediaType: 'application/octet-stream', digest: sha256(small), size: small.length };
    await repo({ blobParts: false }).pushBlob(sd, async () => Readable.from([small]));
    const slowRule = {
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: Infinity,
      action: { kind: 'slow', bytesPerSecond: 4096 * KiB },
    } as const;
    src.proxy.addRule({ ...slowRule });
    src.proxy.requests.splice(0);
    const parts = { parallel: 4, partSize: PART, slowBelow: Infinity, budget: new ReadAheadBudget(64 * PART) };
    expect((await readAll(await repo({ blobParts: parts }).getBlob(sd))).equals(small)).toBe(true);
    expect(src.proxy.requests.filter((r) => r.method === 'GET').map((r) => String(r.headers.range ?? ''))).toEqual([
      '',
    ]);
    expect((await readAll(await repo({ blobParts: false }).getBlob(desc))).equals(data)).toBe(true);
    expect(ranges()).toEqual(['']);
  });

  it('resumes a part whose connection breaks mid-body from its last byte', async () => {
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      skip: 2,
      times: 2,
      action: { kind: 'reset-mid-body', afterBytes: 100 * KiB },
    });
    const got = await readAll(
      await repo({
        blobParts: { parallel: 3, partSize: PART, slowBelow: Infinity, budget: new ReadAheadBudget(64 * PART) },
      }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    expect(gets().filter((r) => r.fault === 'reset-mid-body')).toHaveLength(2);
    // Each broken part is asked again for exactly its missing tail: a start 100 KiB (or 200 KiB) into a part.
    const starts = ranges()
      .filter((r) => r !== '')
      .map((r) => Number(r.slice(6).split('-')[0]));
    const resumed = starts.filter((s) => s % PART !== 0);
    expect(resumed).toHaveLength(2);
    for (const s of resumed) expect((s % PART) % (100 * KiB)).toBe(0);
  });

  it('fails with one clear error when Range is ignored on a later part', async () => {
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      skip: 1,
      times: Infinity,
      action: { kind: 'ignore-range' },
    });
    const err = await readAll(
      await repo({
        blobParts: { parallel: 2, partSize: PART, slowBelow: Infinity, budget: new ReadAheadBudget(64 * PART) },
      }).getBlob(desc),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_REGISTRY_HTTP' });
    expect((err as Error).message).toMatch(/with the whole blob although it advertised Accept-Ranges/);
  });

  it('verifies the joined bytes against the digest (a byte flipped in storage, inside a middle part)', async () => {
    const other = Buffer.from(data);
    other[0] = other[0]! ^ 1;
    const d2 = { ...desc, digest: sha256(other) };
    await repo({ blobParts: false }).pushBlob(d2, async () => Readable.from([other]));
    const file = (await readdir(src.reg.dataDir, { recursive: true })).find((f) =>
      f.endsWith(`${d2.digest.slice(7)}/data`),
    );
    expect(file).toBeDefined();
    const corrupt = Buffer.from(other);
    corrupt[5 * PART + 7] = corrupt[5 * PART + 7]! ^ 0xff;
    await writeFile(join(src.reg.dataDir, file!), corrupt);
    const err = await readAll(
      await repo({
        blobParts: { parallel: 4, partSize: PART, slowBelow: Infinity, budget: new ReadAheadBudget(64 * PART) },
      }).getBlob(d2),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
  });

  it('starts no read-ahead part the budget cannot hold, and returns the budget when done', async () => {
    // The reader takes a little more than the first part, then stops: the head (part 1) waits for it, and parts
    // after it may only run ahead as far as the budget allows.
    const requestsWhenStalled = async (budget: ReadAheadBudget): Promise<number> => {
      src.proxy.requests.splice(0);
      const stream = await repo({ blobParts: { parallel: 4, partSize: PART, slowBelow: Infinity, budget } }).getBlob(
        desc,
      );
      let n = 0;
      let stalled = false;
      await new Promise<void>((resolve) => {
        stream.on('data', (c: Buffer) => {
          n += c.length;
          if (n > PART && !stalled) {
            stalled = true;
            stream.pause();
            resolve();
          }
        });
      });
      await new Promise((res) => setTimeout(res, 300));
      const seen = gets().length;
      const ended = new Promise((res) => stream.once('end', res));
      stream.resume();
      await ended;
      expect(n).toBe(data.length);
      return seen;
    };
    const small = new ReadAheadBudget(PART); // room for one part ahead of the head
    expect(await requestsWhenStalled(small)).toBe(2); // the first stream (head), one part ahead
    expect(small.tryReserve(PART)).toBe(true);
    small.release(PART);
    expect(await requestsWhenStalled(new ReadAheadBudget(64 * PART))).toBe(4); // the first stream, three ahead
  });

  it('a reader that stops early releases every connection, slot and reserved byte', async () => {
    const budget = new ReadAheadBudget(64 * PART);
    const r = repo({ concurrency: 4, blobParts: { parallel: 4, partSize: PART, budget } });
    const stream = await r.getBlob(desc);
    await new Promise<void>((res) => stream.once('readable', () => res()));
    stream.destroy();
    await new Promise((res) => setTimeout(res, 200));
    expect(budget.tryReserve(64 * PART)).toBe(true);
    budget.release(64 * PART);
    // All four request slots are free again: four more whole reads go through at once.
    const all = await Promise.all([0, 1, 2, 3].map(async () => readAll(await r.getBlob(desc))));
    for (const b of all) expect(b.equals(data)).toBe(true);
  });

  it('once every part runs, an idle connection takes the second half of the longest stream (work stealing)', async () => {
    // Parts of 4 × PART: the first stream is cut at 4 × PART, two parts follow; with connections left idle,
    // the longest running streams are cut in two at 64 KiB boundaries that are not part boundaries.
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: Infinity,
      action: { kind: 'slow', bytesPerSecond: 1024 * KiB },
    });
    const budget = new ReadAheadBudget(64 * PART);
    src.proxy.resetPeak();
    const got = await readAll(
      await repo({
        concurrency: 6,
        blobParts: { parallel: 6, partSize: 4 * PART, slowBelow: Infinity, budget },
      }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    const starts = ranges()
      .filter((r) => r !== '')
      .map((r) => Number(/^bytes=(\d+)-/.exec(r)![1]));
    const stolen = starts.filter((x) => x % (4 * PART) !== 0);
    expect(stolen.length).toBeGreaterThan(0);
    for (const x of stolen) expect(x % (64 * KiB)).toBe(0);
    expect(src.proxy.peakActive).toBeLessThanOrEqual(6);
    expect(budget.available).toBe(64 * PART);
  });

  it('stolen and cut streams survive connection resets: each broken range resumes from its last byte, byte-exact', async () => {
    // Slow, so streams get cut and halves stolen; three ranged requests after the first two break mid-body.
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      skip: 2,
      times: 3,
      action: { kind: 'reset-mid-body', afterBytes: 96 * KiB },
    });
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: Infinity,
      action: { kind: 'slow', bytesPerSecond: 1024 * KiB },
    });
    const budget = new ReadAheadBudget(64 * PART);
    const got = await readAll(
      await repo({
        concurrency: 6,
        retry: { baseDelayMs: 5 },
        blobParts: { parallel: 6, partSize: 4 * PART, slowBelow: Infinity, budget },
      }).getBlob(desc),
    );
    expect(got.equals(data)).toBe(true);
    expect(gets().filter((r) => r.fault === 'reset-mid-body')).toHaveLength(3);
    const starts = ranges()
      .filter((r) => r !== '')
      .map((r) => Number(/^bytes=(\d+)-/.exec(r)![1]));
    // Resumed ranges start 96 KiB into what broke: not on a 64 KiB boundary, unlike every planned start.
    expect(starts.filter((x) => x % (64 * KiB) !== 0).length).toBeGreaterThanOrEqual(1);
    expect(budget.available).toBe(64 * PART);
  });

  it('two blobs read at once from a slow registry share its idle connections and both go parallel', async () => {
    const other = randomBytes(8 * PART);
    const od = { mediaType: 'application/octet-stream', digest: sha256(other), size: other.length };
    await repo({ blobParts: false }).pushBlob(od, async () => Readable.from([other]));
    src.proxy.requests.splice(0);
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: Infinity,
      action: { kind: 'slow', bytesPerSecond: 1024 * KiB },
    });
    const r = repo({
      concurrency: 6,
      blobParts: { parallel: 6, partSize: 2 * PART, slowBelow: Infinity, budget: new ReadAheadBudget(64 * PART) },
    });
    const [a, b] = await Promise.all([r.getBlob(desc).then(readAll), r.getBlob(od).then(readAll)]);
    expect(a.equals(data)).toBe(true);
    expect(b.equals(other)).toBe(true);
    const rangedFor = (d: string) =>
      src.proxy.requests.filter((q) => q.method === 'GET' && q.path.includes(d) && q.headers.range !== undefined)
        .length;
    expect(rangedFor(desc.digest)).toBeGreaterThan(0);
    expect(rangedFor(od.digest)).toBeGreaterThan(0);
  });
});
