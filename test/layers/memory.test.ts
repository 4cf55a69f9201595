// A 200 MB input builds in one streaming pass with flat memory (RSS growth well under 150 MB), and the result is a
// valid multi-member gzip whose decompressed digest is the diffId.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { buildLayer } from '../../src/layers/build.js';
import { tempDir } from './helpers.js';

const MB = 1 << 20;
const SIZE = 200 * MB;

let t: { dir: string; cleanup: () => Promise<void> };
let big: string;
beforeAll(async () => {
  t = await tempDir('memory');
  big = join(t.dir, 'big.bin');
  // Half random (incompressible), half text: exercises both ends of the compressor.
  const block = randomBytes(MB);
  const text = Buffer.from('kairos provider payload\n'.repeat(MB / 24 + 1)).subarray(0, MB);
  await pipeline(
    (async function* () {
      for (let i = 0; i < SIZE / MB; i++)
        yield i % 2 ? text : Buffer.concat([Buffer.from(String(i).padStart(8)), block.subarray(8)]);
    })(),
    createWriteStream(big),
  );
});
afterAll(() => t.cleanup());

describe('buildLayer memory', () => {
  it('aborts mid-stream with ERR_ABORTED and leaves nothing behind', async () => {
    const ac = new AbortController();
    const dir = join(t.dir, 'aborted');
    const p = buildLayer(
      { entries: [{ type: 'file', path: '/big', source: { host: big } }] },
      { dir, signal: ac.signal, onProgress: () => ac.abort() },
    );
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('streams a 200 MB file with bounded RSS', async () => {
    (globalThis as { gc?: () => void }).gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    let reports = 0;
    const r = await buildLayer(
      { entries: [{ type: 'file', path: '/opt/big.bin', source: { host: big } }] },
      { dir: join(t.dir, 'out'), level: 1, onProgress: () => reports++ },
    ).finally(() => clearInterval(timer));
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(r.uncompressedSize).toBe(SIZE + 512 * 2 + 1024); // opt/ and file headers + data + end blocks
    expect(peak - baseline).toBeLessThan(150 * MB);
    expect(reports).toBeGreaterThan(10);
    const h = createHash('sha256');
    await pipeline(createReadStream(r.path), createGunzip(), async function (src: AsyncIterable<Buffer>) {
      for await (const c of src) h.update(c);
    });
    expect(`sha256:${h.digest('hex')}`).toBe(r.diffId);
  });
});
