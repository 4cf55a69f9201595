/**
 * The gzip/zstd level of new layers: validated (ERR_CONFIG, exit 3, with the range), part of the blob's bytes (so of
 * its digest, never of the diff_id), and reproducible: same spec + level + epoch → the same blob.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError, EXIT_CODES } from '../../src/errors.js';
import { buildLayer } from '../../src/layers/build.js';
import { compressionLevel, DEFAULT_GZIP_LEVEL } from '../../src/layers/compress.js';
import type { LayerSpec } from '../../src/layers/spec.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'canvos-level-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// /usr/bin/ls is a real binary: levels 1 and 9 compress it differently.
const spec: LayerSpec = {
  entries: [{ type: 'file', path: 'usr/bin/ls', source: { host: '/usr/bin/ls' }, mode: 0o755 }],
};
const build = (level: number | undefined, sub: string) =>
  buildLayer(spec, { dir: join(dir, sub), sourceDateEpoch: 1_700_000_000, level });

describe('compression level', () => {
  it('accepts 1..9 for gzip (numbers or digit strings) and 1..19 for zstd; defaults 1 and 3', () => {
    expect(compressionLevel('gzip', undefined)).toBe(DEFAULT_GZIP_LEVEL);
    expect(DEFAULT_GZIP_LEVEL).toBe(1);
    expect(compressionLevel('zstd', undefined)).toBe(3);
    expect(compressionLevel('gzip', 9)).toBe(9);
    expect(compressionLevel('gzip', '4')).toBe(4);
    expect(compressionLevel('zstd', 19)).toBe(19);
  });

  it.each([0, 10, 12, -1, 2.5, '0', '12', 'fast', '', ' ', '1e0', Number.NaN])(
    'refuses gzip level %j with ERR_CONFIG (exit 3) and the range as hint',
    (bad) => {
      let err: unknown;
      try {
        compressionLevel('gzip', bad, '--compression-level');
      } catch (e) {
        err = e;
      }
      expect(CanvosError.is(err)).toBe(true);
      const e = err as CanvosError;
      expect(e.code).toBe('ERR_CONFIG');
      expect(EXIT_CODES[e.code]).toBe(3);
      expect(e.message).toBe(`--compression-level ${JSON.stringify(bad)} is not a gzip level from 1 to 9`);
      expect(e.hint).toMatch(/^use 1 \(fastest\) to 9 \(smallest\)/);
    },
  );

  it('buildLayer refuses a bad level before writing anything', async () => {
    await expect(build(12, 'bad')).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('another level gives another blob digest but the same diff_id; the same level the same bytes', async () => {
    const fast = await build(1, 'a');
    const small = await build(9, 'b');
    const again = await build(1, 'c');
    const dflt = await build(undefined, 'd');
    expect(small.diffId).toBe(fast.diffId);
    expect(small.digest).not.toBe(fast.digest);
    expect(small.size).toBeLessThan(fast.size);
    expect(again.digest).toBe(fast.digest);
    expect(dflt.digest).toBe(fast.digest);
    expect(await readFile(again.path)).toEqual(await readFile(fast.path));
    // Both are plain gzip that gzip itself reads back to the same tar.
    const tar = (p: string) => execFileSync('gzip', ['-dc', p]);
    expect(tar(small.path)).toEqual(tar(fast.path));
  });
});
