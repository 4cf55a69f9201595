// tarChunks: the tar stream cut straight into recycled chunk buffers must be byte-identical to tarBytes cut by
// fixedChunks (so layer digests do not change), whatever the chunk size, and must fail when a file changes size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { buildLayer } from '../../src/layers/build.js';
import { compressChunks } from '../../src/layers/compress.js';
import { planLayer } from '../../src/layers/plan.js';
import type { LayerSpec } from '../../src/layers/spec.js';
import { ChunkPool, tarChunks } from '../../src/layers/tar-chunks.js';
import type { PlannedEntry } from '../../src/tar/header.js';
import { tarBytes } from '../../src/tar/write.js';
import { nativeAvailable } from '../../src/native/load.js';
import { fixedChunks } from '../../src/util/chunks.js';
import { sha256OfFile, tempDir } from './helpers.js';

let t: { dir: string; cleanup: () => Promise<void> };
let host: string;
// File sizes around tar blocks and the chunk sizes below: empty, 1 byte, a block, blocks ± 1, several chunks.
const INLINE = randomBytes(5000);
const SIZES = [0, 1, 511, 512, 513, 4095, 4096, 4097, 3 * 4096 + 7, 70_000, 300_001];
beforeAll(async () => {
  t = await tempDir('tar-chunks');
  host = join(t.dir, 'host');
  await mkdir(host);
  for (const n of SIZES) await writeFile(join(host, `f${n}`), randomBytes(n));
});
afterAll(() => t.cleanup());

function spec(): LayerSpec {
  return {
    entries: [
      { type: 'file', path: '/etc/inline', source: { inline: 'x'.repeat(1000) } },
      { type: 'file', path: `/opt/${'long-name/'.repeat(12)}data`, source: { inline: INLINE } },
      { type: 'symlink', path: '/opt/link', target: 'data' },
      ...SIZES.map((n) => ({ type: 'file' as const, path: `/data/f${n}`, source: { host: join(host, `f${n}`) } })),
      { type: 'dir', path: '/tmp', mode: 0o1777 },
    ],
  };
}

async function plan(s: LayerSpec = spec()): Promise<PlannedEntry[]> {
  const spoolDir = join(t.dir, 'spool');
  await mkdir(spoolDir, { recursive: true });
  return planLayer(s, { sourceDateEpoch: 0, spoolDir, impliedParents: true });
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b));
  return out;
}

describe('tarChunks', () => {
  it.each([512, 4096, 65_536, 1 << 20])(
    'cuts the same bytes as fixedChunks(tarBytes()) at chunk size %i, in recycled buffers',
    async (size) => {
      const entries = await plan();
      const want = await collect(fixedChunks(tarBytes(entries), size));
      // Buffers handed back dirty: padding and end-of-archive zeros must be written, not assumed.
      const pool = new ChunkPool(size, 4);
      for (let i = 0; i < 4; i++) pool.give(Buffer.alloc(size, 0xa5));
      const got: Buffer[] = [];
      for await (const c of tarChunks(entries, pool)) {
        got.push(Buffer.from(c));
        c.fill(0x5a);
        pool.give(c);
      }
      expect(got.map((c) => c.length)).toEqual(want.map((c) => c.length));
      expect(Buffer.concat(got).equals(Buffer.concat(want))).toBe(true);
      expect(got.slice(0, -1).every((c) => c.length === size)).toBe(true);
    },
  );

  it('gives buildLayer the digests of the plain compressChunks(tarBytes()) path (gzip and zstd)', async () => {
    // zstd needs the addon or Node >= 22.15 (the CANVOS_NO_NATIVE=1 re-run on Node 20 has neither): gzip alone then.
    const hasZstd = nativeAvailable() || typeof (zlib as Record<string, unknown>).zstdCompress === 'function';
    for (const compression of hasZstd ? (['gzip', 'zstd'] as const) : (['gzip'] as const)) {
      const entries = await plan();
      const h = createHash('sha256');
      for await (const b of compressChunks(tarBytes(entries), compression, { chunkSize: 4096 })) h.update(b);
      const built = await buildLayer(spec(), {
        dir: join(t.dir, `out-${compression}`),
        compression,
        chunkSize: 4096,
        sourceDateEpoch: 0,
      });
      expect(built.digest).toBe(`sha256:${h.digest('hex')}`);
      expect(await sha256OfFile(built.path)).toBe(built.digest.slice(7));
    }
  });

  it('fails with ERR_CONFIG when a file grew or shrank after it was planned', async () => {
    const f = join(host, 'changing');
    for (const change of [() => appendFile(f, 'more'), () => truncate(f, 10)]) {
      await writeFile(f, randomBytes(100_000));
      const entries = await plan({ entries: [{ type: 'file', path: '/x', source: { host: f } }] });
      await change();
      await expect(collect(tarChunks(entries, new ChunkPool(4096, 2)))).rejects.toMatchObject({
        code: 'ERR_CONFIG',
        message: expect.stringMatching(/file x: .*changing changed size while the layer was built \(100000 → /),
      });
    }
  });
});
