// A cache rooted under a home directory that does not exist never creates it (HOME=/nonexistent for service users):
// the blob cache refuses with ERR_CONFIG (exit 3) and a hint, the blob-location cache is off with one warning, both
// as root and as the unprivileged user. And CANVOS_BLOB_LOCATIONS takes on/off values only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { BlobCache } from '../../src/cache/blob-cache.js';
import { blobLocationsFromEnv } from '../../src/cache/blob-locations.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedTempDir } from '../helpers/unprivileged.js';

const bin = join(resolve(import.meta.dirname, '..', '..'), 'bin', 'canvos-lite.js');
const MISSING = '/nonexistent-xyz';
let dir: string; // owned by the unprivileged user, so its runs can read the layout
let reg: TestRegistry;
let layerDigest: string;

beforeAll(async () => {
  dir = unprivilegedTempDir('canvos-cache-home-');
  const fx = await makeOciLayout(join(dir, 'lay'), { tag: 'v1', layers: 1, layerBytes: 4096 });
  layerDigest = fx.images[0]!.layerDigests[0]!;
  // The layout was written by root: let the unprivileged user read it.
  await run('chmod', ['-R', 'a+rX', dir]);
  reg = await startRegistry();
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The CLI in a clean environment with HOME=/nonexistent-xyz, as root or as the unprivileged user. */
function cli(args: string[], opts: { unprivileged?: boolean; env?: Record<string, string> } = {}) {
  const env = { HOME: MISSING, PATH: process.env.PATH ?? '', ...opts.env };
  const argv = ['env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, bin, ...args];
  const [cmd, ...rest] = opts.unprivileged ? asUnprivileged(argv) : argv;
  return run(cmd!, rest, { cwd: dir });
}

describe('cache home', () => {
  it('BlobCache.put under a missing home: ERR_CONFIG naming it, nothing created; an existing home or --cache-dir works', async () => {
    const home = join(dir, 'no-home');
    const cache = new BlobCache({ env: { HOME: home } });
    await expect(cache.put(Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: `the home directory ${home} does not exist, and the cache lies under it`,
      hint: expect.stringContaining('--cache-dir') as unknown,
    });
    expect(existsSync(home)).toBe(false);
    await mkdir(home);
    const stored = await cache.put(Readable.from([Buffer.from('x')]));
    expect(stored.path.startsWith(join(home, '.cache', 'canvos-lite', 'blobs'))).toBe(true);
    const chosen = new BlobCache({ dir: join(dir, 'chosen'), env: { HOME: join(dir, 'other-missing') } });
    await chosen.put(Readable.from([Buffer.from('y')]));
    expect(existsSync(join(dir, 'other-missing'))).toBe(false);
  });

  for (const unprivileged of [false, true]) {
    const who = unprivileged ? 'unprivileged' : 'root';
    it(`CLI as ${who}: iso --base caching a blob fails with exit 3 and a hint; ${MISSING} is never created`, async () => {
      const r = await cli(['iso', '--base', `oci:${join(dir, 'lay')}:v1`, '--output', join(dir, `out-${who}`)], {
        unprivileged,
      });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`the home directory ${MISSING} does not exist`);
      expect(r.stderr).toContain('CANVOS_CACHE_DIR');
      expect(existsSync(MISSING)).toBe(false);
      // With a cache directory set, the same run gets past the cache (and fails later: the layout is no installer).
      const cacheDir = join(dir, `cache-${who}`);
      const ok = await cli(['iso', '--base', `oci:${join(dir, 'lay')}:v1`, '--output', join(dir, `out2-${who}`)], {
        unprivileged,
        env: { CANVOS_CACHE_DIR: cacheDir },
      });
      expect(ok.stderr).not.toContain('home directory');
      expect(await readdir(join(cacheDir, 'sha256'))).toContain(layerDigest.slice(7));
      expect(existsSync(MISSING)).toBe(false);
    });

    it(`CLI as ${who}: copy to a registry works with one warning (no blob-location cache); nothing created`, async () => {
      const r = await cli(['copy', '--dest-insecure', `oci:${join(dir, 'lay')}:v1`, `${reg.host}/home/${who}:v1`], {
        unprivileged,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.match(/W_BLOB_LOCATIONS_READONLY/g)?.length).toBe(1);
      expect(r.stderr).toContain(`the home directory ${MISSING} does not exist`);
      expect(existsSync(MISSING)).toBe(false);
    });
  }

  it('CANVOS_BLOB_LOCATIONS: on/off words in any case; anything else is ERR_CONFIG (exit 3 from the CLI)', async () => {
    const base = { CANVOS_CACHE_DIR: join(dir, 'loc') };
    for (const v of ['', '1', 'true', 'ON', ' yes ']) {
      expect(blobLocationsFromEnv({ ...base, CANVOS_BLOB_LOCATIONS: v }), v).toBeDefined();
    }
    expect(blobLocationsFromEnv(base)).toBeDefined();
    for (const v of ['0', 'false', 'Off', 'no']) {
      expect(blobLocationsFromEnv({ ...base, CANVOS_BLOB_LOCATIONS: v }), v).toBeUndefined();
    }
    let err: unknown;
    try {
      blobLocationsFromEnv({ ...base, CANVOS_BLOB_LOCATIONS: 'maybe' });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_CONFIG', message: 'CANVOS_BLOB_LOCATIONS="maybe" is not on or off' });
    const r = await cli(['copy', '--dest-insecure', `oci:${join(dir, 'lay')}:v1`, `${reg.host}/home/maybe:v1`], {
      env: { ...base, CANVOS_BLOB_LOCATIONS: 'maybe' },
    });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('CANVOS_BLOB_LOCATIONS="maybe" is not on or off');
    expect(r.stderr).toContain('unset it');
  });
});
