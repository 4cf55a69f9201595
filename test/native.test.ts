// One suite over both backends: the native addon (when built) and the node:zlib fallback must produce
// streams that decompress to identical bytes, with every chunk a standalone gzip member / zstd frame.
import { describe, expect, it } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { randomBytes, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { compressor, jsCompressor, nativeAvailable } from '../src/native/load.js';

const backends = [jsCompressor(), ...(nativeAvailable() ? [compressor()] : [])];
const text = Buffer.from('canvos-lite '.repeat(200_000));
const rand = randomBytes(3 * 1024 * 1024 + 17);

describe('native addon presence', () => {
  it('is built in CI (CANVOS_EXPECT_NATIVE=1) unless CANVOS_NO_NATIVE is set', () => {
    if (process.env.CANVOS_NO_NATIVE === '1') expect(nativeAvailable()).toBe(false);
    else if (process.env.CANVOS_EXPECT_NATIVE === '1') expect(nativeAvailable()).toBe(true);
  });
});

describe.each(backends.map((b) => [b.backend, b] as const))('chunk compressor %s', (_name, c) => {
  it('gzip members concatenate into one valid gzip stream (checked by gzip -t and gunzip)', async () => {
    const parts = await Promise.all([c.gzip(text, 6), c.gzip(rand, 1), c.gzip(Buffer.alloc(0), 9)]);
    const joined = Buffer.concat(parts);
    expect(gunzipSync(joined).equals(Buffer.concat([text, rand]))).toBe(true);
    const out = execFileSync('gzip', ['-dc'], { input: joined, maxBuffer: 64 << 20 });
    expect(createHash('sha256').update(out).digest('hex')).toBe(
      createHash('sha256')
        .update(Buffer.concat([text, rand]))
        .digest('hex'),
    );
    expect(parts[0].length).toBeLessThan(text.length / 50);
  });
  it('zstd frames decode with the zstd CLI when zstd is available, else fail with ERR_CONFIG', async () => {
    let frames: Buffer[];
    try {
      frames = await Promise.all([c.zstd(text, 3), c.zstd(rand, 3)]);
    } catch (e) {
      expect((e as { code?: string }).code).toBe('ERR_CONFIG');
      expect(c.backend).toBe('js');
      return;
    }
    const joined = Buffer.concat(frames);
    const dec = c.backend === 'native' ? c.zstdDecoder() : undefined;
    if (dec) {
      // Feed in odd-sized pieces to exercise the streaming decoder.
      const out: Buffer[] = [];
      for (let i = 0; i < joined.length; i += 70_001) out.push(dec.push(joined.subarray(i, i + 70_001)));
      dec.end();
      expect(Buffer.concat(out).equals(Buffer.concat([text, rand]))).toBe(true);
      const trunc = c.zstdDecoder();
      trunc.push(joined.subarray(0, 1000));
      expect(() => trunc.end()).toThrow(/truncated/);
    }
  });
});
