/**
 * The extra connections of ranged reads (BlobPartsOptions.connections, src/registry/http.ts): beyond the request
 * limit, connections that only Range parts of slow blobs take, even while the copy holds other blobs back. Against
 * the real docker-registry behind the fault proxy, which throttles each connection like a long-haul link; the
 * assertions are on what the proxy saw (requests at once, Range headers), never on timing.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { sha256 } from '../../src/image/digest.js';
import { ReadAheadBudget, RegistryRepository } from '../../src/registry/index.js';
import { extraRangedSlots } from '../../src/registry/blob-parts.js';
import { PartScheduler, type PartsDownload } from '../../src/registry/blob-parts-scheduler.js';
import { startRegistry } from '../helpers/registry.js';
import { KiB, PART, rangedSource } from './blob-parts-fixture.js';
import { runCli } from '../helpers/cli.js';
import { readAll, tinyTar } from './image-util.js';

describe('PartScheduler with extra slots', () => {
  /** A blob that wants `wants` more streams and may widen into base slots only when `canWiden`. */
  const download = (wants: number, canWiden: boolean, onGrow: () => void): PartsDownload & { grown: number } => {
    const d = {
      grown: 0,
      score: (extra: boolean) => (d.grown < wants && (extra || canWiden) ? 100 - d.grown : 0),
      grow: () => {
        d.grown++;
        onGrow();
        return true;
      },
    };
    return d;
  };
  const run = async (base: number, extra: number, ds: Array<[number, boolean]>) => {
    const free = { base, extra };
    const s = new PartScheduler({
      base: () => free.base,
      extra: () => free.extra,
      extraTotal: () => extra,
      total: () => base + extra,
    });
    // A granted stream takes an extra slot first, as RegistryHttp does.
    const take = () => {
      if (free.extra > 0) free.extra--;
      else free.base--;
    };
    const downloads = ds.map(([w, c]) => download(w, c, take));
    for (const d of downloads) s.add(d);
    await new Promise((r) => setTimeout(r, 0));
    return { grown: downloads.map((d) => d.grown), free };
  };

  it('gives extra slots to blobs held back, and base slots only to blobs that may widen', async () => {
    expect((await run(3, 2, [[10, false]])).grown).toEqual([2]);
    expect((await run(3, 0, [[10, false]])).grown).toEqual([0]);
    const r = await run(3, 2, [
      [10, false],
      [10, true],
    ]);
    expect(r.grown[0]! + r.grown[1]!).toBe(5);
    expect(r.grown[1]).toBeGreaterThanOrEqual(3);
    expect(r.free).toEqual({ base: 0, extra: 0 });
  });

  it('never grants more streams than free slots', async () => {
    const r = await run(2, 2, [
      [10, true],
      [10, true],
    ]);
    expect(r.grown[0]! + r.grown[1]!).toBe(4);
    expect(r.free).toEqual({ base: 0, extra: 0 });
  });
});

describe('extra connections for ranged parts', () => {
  const blobs = [0, 1, 2].map(() => randomBytes(10 * PART + 4321));
  const src = rangedSource('conns/a', blobs);
  const descs = src.descs;
  const repo = (o: Parameters<typeof src.repo>[0] = {}): RegistryRepository => src.repo(o);
  const ranged = (digest: string) =>
    src.proxy.requests.filter((q) => q.method === 'GET' && q.path.includes(digest) && q.headers.range !== undefined)
      .length;
  /** Read the first two blobs at once while the copy holds blobs back (widen: no), 2 request slots, byte-exact. */
  const readHeldBack = async (connections: number): Promise<void> => {
    const r = repo({
      concurrency: 2,
      blobParts: {
        parallel: 4,
        partSize: PART,
        slowBelow: Infinity,
        budget: new ReadAheadBudget(64 * PART),
        connections,
      },
    });
    const got = await Promise.all(descs.slice(0, 2).map((d) => r.getBlob(d, { widen: () => false }).then(readAll)));
    expect(got[0]!.equals(blobs[0]!)).toBe(true);
    expect(got[1]!.equals(blobs[1]!)).toBe(true);
  };
  const slow = (bytesPerSecond: number) => src.slow(bytesPerSecond);

  it('defaults to twice the request limit, at most 16, and none when ranged reads are off', () => {
    expect(extraRangedSlots(8, undefined)).toBe(8);
    expect(extraRangedSlots(2, {})).toBe(2);
    expect(extraRangedSlots(12, undefined)).toBe(4);
    expect(extraRangedSlots(20, undefined)).toBe(0);
    expect(extraRangedSlots(4, { connections: 10 })).toBe(6);
    expect(extraRangedSlots(4, { connections: 2 })).toBe(0);
    expect(extraRangedSlots(8, false)).toBe(0);
    expect(extraRangedSlots(8, { parallel: 1 })).toBe(0);
  });

  it('slow blobs held back by the copy (widen: no) still split, into the extra connections only', async () => {
    slow(1024 * KiB);
    await readHeldBack(4);
    expect(ranged(descs[0]!.digest) + ranged(descs[1]!.digest)).toBeGreaterThan(0);
    expect(src.proxy.peakActive).toBeGreaterThan(2);
    expect(src.proxy.peakActive).toBeLessThanOrEqual(4);
  });

  it('without extra connections, blobs held back stay on one stream each within the request limit', async () => {
    slow(1024 * KiB);
    await readHeldBack(2);
    expect(ranged(descs[0]!.digest) + ranged(descs[1]!.digest)).toBe(0);
    expect(src.proxy.peakActive).toBeLessThanOrEqual(2);
  });

  it('a fast source never opens the extra connections', async () => {
    const r = repo({
      concurrency: 2,
      blobParts: { parallel: 4, partSize: PART, slowBelow: 1, budget: new ReadAheadBudget(64 * PART), connections: 8 },
    });
    const got = await Promise.all(descs.map((d) => r.getBlob(d).then(readAll)));
    for (const [i, g] of got.entries()) expect(g.equals(blobs[i]!)).toBe(true);
    for (const d of descs) expect(ranged(d.digest)).toBe(0);
    expect(src.proxy.peakActive).toBeLessThanOrEqual(2);
  });

  it('a part answered 503 backs off and retries within the cap, byte-exact', async () => {
    src.proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      skip: 2,
      times: 2,
      action: { kind: 'status', status: 503, headers: { 'retry-after': '0' } },
    });
    slow(1024 * KiB);
    await readHeldBack(4);
    expect(src.proxy.requests.filter((q) => q.fault === 'status 503')).toHaveLength(2);
    expect(src.proxy.peakActive).toBeLessThanOrEqual(4);
  });

  it('canvos-lite copy --jobs 2 of three slow layers opens up to 4 connections to the source, byte-exact', async () => {
    const layers = blobs.map((b, i) => tinyTar(`f${i}`, b));
    const lds = layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: sha256(l),
      size: l.length,
    }));
    const cfg = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: lds.map((d) => d.digest) },
      }),
    );
    const cd = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length };
    const up = new RegistryRepository(src.reg.host, 'conns/img', { insecureRegistries: [src.reg.host], authFiles: [] });
    src.track(up);
    for (const [i, d] of lds.entries()) await up.pushBlob(d, async () => Readable.from([layers[i]!]));
    await up.pushBlob(cd, async () => Readable.from([cfg]));
    const mt = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt, config: cd, layers: lds }));
    await up.putManifest({ bytes: manifest, mediaType: mt }, 'v1');
    const dst = await startRegistry({ auth: 'none' });
    try {
      src.proxy.requests.splice(0);
      src.proxy.resetPeak();
      slow(1024 * KiB);
      const env = { HOME: '/nonexistent', PATH: process.env.PATH, CANVOS_BLOB_LOCATIONS: '0' };
      const from = `docker://${src.proxy.host}/conns/img:v1`;
      const r = await runCli(
        ['copy', '--json', '--jobs', '2', '--src-insecure', '--dest-insecure', from, `docker://${dst.host}/c/img:v1`],
        {
          env,
          cwd: '/',
        },
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(src.proxy.peakActive).toBeGreaterThan(2);
      expect(src.proxy.peakActive).toBeLessThanOrEqual(4);
      expect(lds.reduce((n, d) => n + ranged(d.digest), 0)).toBeGreaterThan(0);
      const back = new RegistryRepository(dst.host, 'c/img', { insecureRegistries: [dst.host], authFiles: [] });
      src.track(back);
      for (const [i, d] of lds.entries()) expect((await readAll(await back.getBlob(d))).equals(layers[i]!)).toBe(true);
    } finally {
      await dst.stop();
    }
  });
});
