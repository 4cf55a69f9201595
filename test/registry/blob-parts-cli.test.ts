/**
 * Ranged blob reads through the CLI (src/registry/blob-parts.ts): `canvos-lite copy` of a layer behind a proxy that
 * throttles each connection splits it into Range parts by default and reads it with one GET under `--blob-parts 1`,
 * both byte-exact, against the real docker-registry.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import { RegistryRepository } from '../../src/registry/index.js';
import { runCli } from '../helpers/cli.js';
import { startRegistry } from '../helpers/registry.js';
import { KiB, rangedSource } from './blob-parts-fixture.js';
import { readAll } from './image-util.js';

describe('ranged blob reads from the CLI', () => {
  const src = rangedSource('parts/img', []);

  it('canvos-lite copy splits a slow layer into Range parts by default, and reads it with one GET under --blob-parts 1; both byte-exact', async () => {
    const big = randomBytes(9 * 1024 * KiB);
    const bd = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(big), size: big.length };
    const cfg = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [bd.digest] } }),
    );
    const cd = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length };
    const upstream = new RegistryRepository(src.reg.host, 'parts/img', {
      insecureRegistries: [src.reg.host],
      authFiles: [],
    });
    src.track(upstream);
    await upstream.pushBlob(bd, async () => Readable.from([big]));
    await upstream.pushBlob(cd, async () => Readable.from([cfg]));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: cd,
        layers: [bd],
      }),
    );
    await upstream.putManifest({ bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' }, 'v1');
    const dst = await startRegistry({ auth: 'none' });
    try {
      const layerGets = () =>
        src.proxy.requests
          .filter((r) => r.method === 'GET' && r.path.includes(bd.digest))
          .map((r) => String(r.headers.range ?? ''));
      // No blob-location cache: it would know a/img holds the layer, and the second copy would mount it instead of
      // reading it.
      const env = { HOME: '/nonexistent', PATH: process.env.PATH, CANVOS_BLOB_LOCATIONS: '0' };
      // 16 MiB/s per connection: slower than one stream should be (64 MiB/s).
      src.proxy.addRule({
        method: 'GET',
        path: new RegExp(bd.digest),
        times: Infinity,
        action: { kind: 'slow', bytesPerSecond: 16 * 1024 * KiB },
      });
      /** `copy` of parts/img:v1 into DEST/REPO:v1 with extra flags. */
      const copyTo = (repo: string, ...flags: string[]) =>
        runCli(
          [
            'copy',
            ...flags,
            '--src-insecure',
            '--dest-insecure',
            `docker://${src.proxy.host}/parts/img:v1`,
            `docker://${dst.host}/${repo}:v1`,
          ],
          { env, cwd: '/' },
        );
      const r1 = await copyTo('a/img', '--json');
      expect(r1.stderr).toBe('');
      expect(r1.code).toBe(0);
      // The first GET (no Range) is cut short; the rest comes in Range parts (64 KiB-aligned starts) that leave no
      // gap up to the end. A stream whose tail was handed to another overlaps it in what it asked for (it is closed
      // where the other starts).
      const gets = layerGets();
      expect(gets[0]).toBe('');
      const parts = gets
        .slice(1)
        .map((r) => /^bytes=(\d+)-(\d+)$/.exec(r)!.slice(1).map(Number) as [number, number])
        .sort((x, y) => x[0] - y[0]);
      expect(parts.length).toBeGreaterThanOrEqual(2);
      let covered = parts[0]![1];
      for (let i = 1; i < parts.length; i++) {
        expect(parts[i]![0]).toBeLessThanOrEqual(covered + 1);
        covered = Math.max(covered, parts[i]![1]);
      }
      expect(covered).toBe(big.length - 1);
      for (const [start] of parts) expect(start % 65536).toBe(0);
      src.proxy.requests.splice(0);
      const r2 = await copyTo('b/img', '--blob-parts', '1');
      expect(r2.code).toBe(0);
      expect(layerGets()).toEqual(['']);
      for (const repoName of ['a/img', 'b/img']) {
        const back = new RegistryRepository(dst.host, repoName, { insecureRegistries: [dst.host], authFiles: [] });
        src.track(back);
        expect((await readAll(await back.getBlob(bd))).equals(big)).toBe(true);
      }
    } finally {
      await dst.stop();
    }
  });
});
