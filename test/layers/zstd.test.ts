// zstd layers: the zstd CLI and GNU tar --zstd as independent oracles for buildLayer's blobs, readLayer/mergeLayers/
// extractFile on zstd blobs (ours and the CLI's), truncation/corruption as ERR_LAYER_CORRUPT, bounded decoder
// output for highly compressible data, and the ERR_CONFIG path when no zstd implementation exists (Node 20, no addon).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { buildLayer, type BuildLayerOptions } from '../../src/layers/build.js';
import { compressChunks, layerMediaType } from '../../src/layers/compress.js';
import { extractFile } from '../../src/layers/extract.js';
import { mergeLayers } from '../../src/layers/merge.js';
import { readLayer } from '../../src/layers/read.js';
import type { LayerSpec } from '../../src/layers/spec.js';
import { zstdDecompress } from '../../src/layers/zstd-stream.js';
import { MediaType, layerCompression } from '../../src/image/media-types.js';
import { jsCompressor, nativeAvailable } from '../../src/native/load.js';
import { opener, snapshotEntries, tempDir } from './helpers.js';

// zstd needs the addon on Node 20; node:zlib has it from 22.15. Without either, only the ERR_CONFIG tests run.
const hasZstd = nativeAvailable() || typeof (zlib as Record<string, unknown>).zstdCompress === 'function';
const RAND = randomBytes(2.5 * 1024 * 1024); // spans several 1 MiB frames

let t: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  t = await tempDir('zstd');
});
afterAll(() => t.cleanup());

function spec(extra: LayerSpec['entries'] = []): LayerSpec {
  return {
    entries: [
      { type: 'file', path: '/etc/hello', source: { inline: 'hello zstd\n' }, mode: 0o644 },
      { type: 'file', path: '/opt/big.bin', source: { inline: RAND }, mode: 0o600, uid: 1000, gid: 1000 },
      { type: 'symlink', path: '/etc/greeting', target: 'hello' },
      { type: 'file', path: '/etc/removed', source: { inline: 'gone\n' } },
      ...extra,
    ],
  };
}

const build = (sub: string, s: LayerSpec = spec(), o: Partial<BuildLayerOptions> = {}) =>
  buildLayer(s, { dir: join(t.dir, sub), compression: 'zstd', sourceDateEpoch: 1_700_000_000, ...o });

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('zstd media types', () => {
  it('maps zstd to the OCI +zstd layer type and back', () => {
    expect(layerMediaType('zstd')).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(layerCompression(MediaType.OciLayerZstd)).toBe('zstd');
    expect(layerMediaType('gzip')).toBe(MediaType.OciLayerGzip);
  });
});

describe.runIf(hasZstd)('zstd layers', () => {
  it('buildLayer writes a zstd blob that zstd -t accepts and whose decompression hashes to diffId', async () => {
    const l = await build('a');
    expect(l.mediaType).toBe(MediaType.OciLayerZstd);
    const blob = await readFile(l.path);
    expect(blob.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(sha256(blob)).toBe(l.digest);
    expect(l.size).toBe(blob.length);
    execFileSync('zstd', ['-q', '-t', l.path]);
    const tar = execFileSync('zstd', ['-q', '-dc', l.path], { maxBuffer: 64 << 20 });
    expect(sha256(tar)).toBe(l.diffId);
    expect(tar.length).toBe(l.uncompressedSize);
    expect(l.diffId).not.toBe(l.digest);
    // Independent frames of at most 1 MiB each: a 2.5 MiB tar cannot fit in fewer than 3.
    const frames = execFileSync('zstd', ['-lv', l.path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(Number(/# Zstandard Frames:\s*(\d+)/.exec(frames)?.[1])).toBeGreaterThanOrEqual(3);
  });

  it('GNU tar --zstd lists the layer', async () => {
    const l = await build('b');
    const list = execFileSync('tar', ['--zstd', '-tvf', l.path], { encoding: 'utf8' });
    expect(list).toMatch(/^-rw-r--r-- 0\/0 +11 .* etc\/hello$/m);
    expect(list).toMatch(new RegExp(`^-rw------- 1000/1000 +${RAND.length} .* opt/big\\.bin$`, 'm'));
    expect(list).toMatch(/^lrwxrwxrwx .* etc\/greeting -> hello$/m);
  });

  it('is deterministic: same spec and settings give the same digest; level changes it', async () => {
    const [a, b, c] = [await build('d1'), await build('d2'), await build('d3', spec(), { level: 9 })];
    expect(a.digest).toBe(b.digest);
    expect(a.diffId).toBe(c.diffId);
    expect(c.digest).not.toBe(a.digest);
  });

  it('readLayer auto-detects zstd and reads back the same entries as the gzip build', async () => {
    const z = await build('r1');
    const g = await build('r2', spec(), { compression: 'gzip' });
    expect(z.diffId).toBe(g.diffId);
    const fromZstd = await snapshotEntries(readLayer(createReadStream(z.path)));
    expect(fromZstd).toEqual(await snapshotEntries(readLayer(createReadStream(g.path))));
    expect(fromZstd.get('opt/big.bin')).toBe(`file 600 ${sha256(RAND).slice(7)}`);
    // Explicit compression, and input delivered in small odd-sized pieces (headers split across reads).
    const blob = await readFile(z.path);
    const pieces = Array.from({ length: Math.ceil(blob.length / 977) }, (_, i) =>
      blob.subarray(i * 977, (i + 1) * 977),
    );
    expect(await snapshotEntries(readLayer(Readable.from(pieces), { compression: 'zstd' }))).toEqual(fromZstd);
  });

  it('reads a layer compressed by the zstd CLI (one big frame, no checksum)', async () => {
    const g = await build('cli', spec(), { compression: 'none' });
    const out = join(t.dir, 'cli.tar.zst');
    execFileSync('zstd', ['-q', '-9', '--no-check', '-f', g.path, '-o', out]);
    expect(await snapshotEntries(readLayer(createReadStream(out)))).toEqual(
      await snapshotEntries(readLayer(createReadStream(g.path))),
    );
  });

  it('mergeLayers and extractFile work across zstd and gzip layers', async () => {
    const lower = await build('m1');
    const upper = await build(
      'm2',
      {
        entries: [
          { type: 'whiteout', paths: ['/etc/removed'] },
          { type: 'file', path: '/etc/hello', source: { inline: 'upper\n' } },
        ],
      },
      { compression: 'gzip' },
    );
    const openers = [opener(lower.path), opener(upper.path)];
    const merged = await snapshotEntries(mergeLayers(openers));
    expect(merged.has('etc/removed')).toBe(false);
    expect(merged.get('opt/big.bin')).toBe(`file 600 ${sha256(RAND).slice(7)}`);
    expect((await extractFile(openers, '/etc/greeting'))?.toString()).toBe('upper\n');
    expect((await extractFile([opener(lower.path)], '/etc/greeting'))?.toString()).toBe('hello zstd\n');
  });

  it('a truncated or corrupted blob fails with ERR_LAYER_CORRUPT', async () => {
    const l = await build('t');
    const blob = await readFile(l.path);
    const read = async (b: Buffer) => {
      for await (const e of readLayer(Readable.from([b]), { name: 'layer 0' })) for await (const _ of e.content ?? []);
    };
    await expect(read(blob.subarray(0, Math.floor(blob.length / 2)))).rejects.toMatchObject({
      code: 'ERR_LAYER_CORRUPT',
      message: /^layer 0: zstd stream is truncated/,
    });
    await expect(read(blob.subarray(0, 7))).rejects.toMatchObject({ code: 'ERR_LAYER_CORRUPT' });
    const flipped = Buffer.from(blob);
    flipped[Math.floor(blob.length / 3)]! ^= 0xff; // inside the random file's frame: content checksum fails
    await expect(read(flipped)).rejects.toMatchObject({ code: 'ERR_LAYER_CORRUPT', hint: /pull it again/ });
    const garbage = Buffer.concat([blob, Buffer.from('not a zstd frame')]);
    await expect(read(garbage)).rejects.toMatchObject({ code: 'ERR_LAYER_CORRUPT', message: /no zstd frame at byte/ });
    const e = await read(blob.subarray(0, 100)).catch((x: unknown) => x);
    expect((e as { exitCode: number }).exitCode).toBe(7);
  });

  it('decodes highly compressible data in bounded pieces, never one buffer per frame run', async () => {
    // 96 MiB of zeros compress to a few KiB, which a single decoder push would expand in one go.
    const size = 96 << 20;
    const l = await build('z', { entries: [{ type: 'file', path: '/zeros', source: { inline: Buffer.alloc(size) } }] });
    expect(l.size).toBeLessThan(64 << 10);
    let biggest = 0;
    const h = createHash('sha256');
    for await (const c of zstdDecompress(createReadStream(l.path), 'layer')) {
      biggest = Math.max(biggest, c.length);
      h.update(c);
    }
    expect(`sha256:${h.digest('hex')}`).toBe(l.diffId);
    expect(biggest).toBeLessThanOrEqual((4 << 20) + (256 << 10));
    // ... and the same through a CLI-made single frame of RLE blocks (4 input bytes → 128 KiB each).
    const cli = execFileSync('zstd', ['-q', '-c'], { input: Buffer.alloc(size) });
    biggest = 0;
    let total = 0;
    for await (const c of zstdDecompress(Readable.from([cli]), 'layer')) {
      biggest = Math.max(biggest, c.length);
      total += c.length;
    }
    expect(total).toBe(size);
    expect(biggest).toBeLessThanOrEqual((4 << 20) + (256 << 10));
  });
});

describe('zstd without an implementation (Node < 22.15, no addon)', () => {
  const nodeHasZstd = typeof (zlib as Record<string, unknown>).zstdCompress === 'function';
  it.skipIf(nodeHasZstd)('compressChunks with the node:zlib backend fails with ERR_CONFIG and a hint', async () => {
    const run = async () => {
      for await (const _ of compressChunks(Readable.from([Buffer.from('x')]), 'zstd', { compressor: jsCompressor() }));
    };
    await expect(run()).rejects.toMatchObject({ code: 'ERR_CONFIG', hint: /native|gzip/ });
    const read = async () => {
      const blob = Buffer.from('28b52ffd2000010000', 'hex');
      for await (const _ of readLayer(Readable.from([blob]), { compressor: jsCompressor() }));
    };
    await expect(read()).rejects.toMatchObject({ code: 'ERR_CONFIG', hint: /native|gzip/ });
  });

  it.skipIf(nodeHasZstd)(
    'under CANVOS_NO_NATIVE=1, buildLayer({compression:"zstd"}) in a child node fails with ERR_CONFIG',
    async () => {
      const script = join(t.dir, 'child.ts');
      const src = new URL('../../src/layers/build.js', import.meta.url).pathname.replace(/\.js$/, '.ts');
      await writeFile(
        script,
        `import { buildLayer } from ${JSON.stringify(src)};
try {
  await buildLayer({ entries: [{ type: 'file', path: '/a', source: { inline: 'a' } }] }, { dir: ${JSON.stringify(join(t.dir, 'child'))}, compression: 'zstd' });
  console.log(JSON.stringify({ ok: true }));
} catch (e) { console.log(JSON.stringify({ code: e.code, hint: e.hint })); }
`,
      );
      // The backend is chosen once per process, so the env var needs a fresh process; vite-node (vitest's own TS
      // runner) executes the TypeScript sources directly.
      const viteNode = new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url).pathname;
      const r = spawnSync(process.execPath, [viteNode, script], {
        env: { ...process.env, CANVOS_NO_NATIVE: '1' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { code?: string; hint?: string };
      expect(out.code).toBe('ERR_CONFIG');
      expect(out.hint).toMatch(/libzstd|gzip/);
    },
  );
});
