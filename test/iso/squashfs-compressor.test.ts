/**
 * The squashfs block compressor: libdeflate's gzip members re-wrapped as zlib streams (header + adler32) must be
 * what zlib itself accepts; node:zlib is the oracle (inflateSync checks the header and the adler32 trailer).
 */
import { randomBytes } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  adler32,
  DEFAULT_SQUASHFS_LEVEL,
  gzipToZlib,
  makeCompressor,
  MAX_SQUASHFS_LEVEL,
  squashfsLevel,
} from '../../src/iso/squashfs/compressor.js';
import { CanvosError } from '../../src/errors.js';
import { compressor, nativeAvailable } from '../../src/native/load.js';

const MiB = 1 << 20;
const inputs: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['1 byte', Buffer.from([0xab])],
  ['5551 x 0xff', Buffer.alloc(5551, 0xff)],
  ['5552 x 0xff', Buffer.alloc(5552, 0xff)],
  ['5553 x 0xff', Buffer.alloc(5553, 0xff)],
  ['1 MiB x 0xff (largest sums)', Buffer.alloc(MiB, 0xff)],
  ['1 MiB random', randomBytes(MiB)],
  ['text + 7', Buffer.from('squashfs block of text\n'.repeat(3000) + 'tail!!!')],
];
/** zlib's own adler32: the trailer of a stored (level 0) zlib stream. */
const zlibAdler = (b: Buffer): number =>
  deflateSync(b, { level: 0 }).readUInt32BE(deflateSync(b, { level: 0 }).length - 4);

describe('squashfs compressor', () => {
  it("adler32 equals zlib's", () => {
    for (const [name, b] of inputs) expect(adler32(b), name).toBe(zlibAdler(b));
  });

  it.skipIf(!nativeAvailable())(
    "libdeflate members re-wrapped as zlib inflate with zlib (adler32 checked) and carry zlib's header",
    async () => {
      for (const level of [1, 4, 6, 9]) {
        for (const [name, b] of inputs) {
          const z = gzipToZlib(await compressor().gzip(b, level), b, level);
          expect(inflateSync(z).equals(b), `${name} level ${level}`).toBe(true);
          expect(z.subarray(0, 2).equals(deflateSync(b, { level }).subarray(0, 2)), `header at level ${level}`).toBe(
            true,
          );
        }
      }
      // A corrupted trailer is caught by zlib: the check above is a real one.
      const b = inputs[7]![1];
      const z = Buffer.from(gzipToZlib(await compressor().gzip(b, 9), b, 9));
      z[z.length - 1]! ^= 1;
      expect(() => inflateSync(z)).toThrow(/incorrect data check/);
    },
  );

  it('makeCompressor gives zlib streams for data and metadata blocks on the backend in use', async () => {
    const c = makeCompressor('gzip', 9);
    expect(c.backend).toBe(nativeAvailable() ? 'native' : 'js');
    for (const [name, b] of inputs) {
      expect(inflateSync(await c.compress(b)).equals(b), name).toBe(true);
      expect(inflateSync(c.compressSync(b)).equals(b), name).toBe(true);
    }
  });

  it('squashfsLevel: the backend default when unset, 1..max accepted, anything else ERR_USAGE with the range', () => {
    const backend = nativeAvailable() ? 'native' : 'js';
    expect(squashfsLevel(undefined)).toBe(DEFAULT_SQUASHFS_LEVEL[backend]);
    const max = MAX_SQUASHFS_LEVEL[backend];
    expect(max).toBe(backend === 'native' ? 12 : 9);
    for (let l = 1; l <= max; l++) expect(squashfsLevel(l)).toBe(l);
    for (const bad of [0, max + 1, 2.5, NaN, -1]) {
      const e = (() => {
        try {
          return squashfsLevel(bad);
        } catch (err) {
          return err;
        }
      })();
      expect(CanvosError.is(e) && e.code, String(bad)).toBe('ERR_USAGE');
      expect(CanvosError.is(e) && e.hint, String(bad)).toContain(`use 1..${String(max)}`);
    }
  });

  it.skipIf(!nativeAvailable())('libdeflate levels 10..12 give zlib streams with the level-9 header', async () => {
    for (const level of [10, 11, 12]) {
      const c = makeCompressor('gzip', level);
      for (const [name, b] of inputs) {
        const z = await c.compress(b);
        expect(inflateSync(z).equals(b), `${name} level ${String(level)}`).toBe(true);
        expect(inflateSync(c.compressSync(b)).equals(b), `${name} level ${String(level)} (metadata)`).toBe(true);
        expect(z.readUInt16BE(0), `header at level ${String(level)}`).toBe(
          deflateSync(b, { level: 9 }).readUInt16BE(0),
        );
      }
    }
  });

  it.skipIf(!compressor().zlib)("the addon's zlib() gives the bytes of the re-wrapped gzip member", async () => {
    const zlib = compressor().zlib;
    if (!zlib) return;
    for (const level of [1, 5, 6, 9, 12]) {
      for (const [name, b] of inputs) {
        const z = await zlib(b, level);
        expect(
          z.equals(gzipToZlib(await compressor().gzip(b, level), b, level)),
          `${name} level ${String(level)}`,
        ).toBe(true);
      }
    }
  });
});
