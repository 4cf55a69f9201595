/**
 * The requests a copy sends to a warm destination registry (every blob already there under another repository),
 * counted by a loopback proxy in front of it: one mount per blob and no blob HEAD (a 201 mount is the proof), a HEAD
 * only after a refused mount, a refused mount's upload session either used or cancelled, manifests last.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { copyImage } from '../../src/copy/copy.js';
import { BlobLocations } from '../../src/cache/blob-locations.js';
import { openDestination, openSource } from '../../src/transports/resolve-location.js';
import type { RegistryTransportOptions } from '../../src/transports/registry/registry-image.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
let a: TestRegistry; // source
let b: TestRegistry; // destination
let pb: FaultProxy; // in front of b: counts every request
let tmp: { path: string; cleanup(): Promise<void> };
let idx: OciLayoutResult; // 2 platforms × 3 layers
let one: OciLayoutResult; // 1 platform × 2 layers
let idxBlobs: string[];

beforeAll(async () => {
  tmp = await tmpDir('canvos-warm-req-');
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  pb = await startFaultProxy(b.url);
  idx = await makeOciLayout(join(tmp.path, 'idx'), {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
    layers: 3,
    layerBytes: 32 * 1024,
  });
  one = await makeOciLayout(join(tmp.path, 'one'), { tag: 'v1', layers: 2, layerBytes: 32 * 1024 });
  idxBlobs = [...new Set(idx.images.flatMap((i) => [i.configDigest, ...i.layerDigests]))];
  for (const [dir, name] of [
    ['idx', 'src/idx'],
    ['one', 'src/one'],
  ] as const) {
    await skopeo([
      'copy',
      '--all',
      '--insecure-policy',
      '--dest-tls-verify=false',
      `oci:${join(tmp.path, dir)}:v1`,
      `docker://${a.host}/${name}:v1`,
    ]);
  }
}, 60_000);
afterAll(async () => {
  await pb?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
  await tmp?.cleanup();
});

function reg(store: BlobLocations | undefined): RegistryTransportOptions {
  return { insecureRegistries: [a.host, pb.host], authFiles: [], blobLocations: store };
}

async function copy(srcRef: string, dstRef: string, store: BlobLocations | undefined) {
  const s = openSource(srcRef, { registry: reg(store) });
  const d = openDestination(dstRef, { registry: reg(store) });
  try {
    return await copyImage(s, d);
  } finally {
    await Promise.all([s.close(), d.close()]);
  }
}

/** Requests by kind, e.g. `HEAD blob`, `POST mount`, `PUT manifest`. */
function kinds(reqs: readonly ProxiedRequest[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of reqs) {
    const what = r.path.includes('mount=')
      ? 'mount'
      : /\/blobs\/uploads\//.test(r.path)
        ? 'upload'
        : /\/blobs\//.test(r.path)
          ? 'blob'
          : /\/manifests\//.test(r.path)
            ? 'manifest'
            : r.path;
    const k = `${r.method} ${what}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

describe('requests of a copy into a warm destination', () => {
  it('an index: one mount per blob, no blob HEAD, the child manifests checked and written, the index last', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'c1') });
    await copy(`${a.host}/src/idx:v1`, `${pb.host}/bench/x:v1`, store);
    pb.requests.length = 0;
    const r = await copy(`${a.host}/src/idx:v1`, `${pb.host}/bench/y:v1`, store);
    expect(r.blobs).toMatchObject({ copied: 0, skipped: 0, mounted: idxBlobs.length, bytes: 0 });
    expect(kinds(pb.requests)).toEqual({
      'HEAD manifest': 2,
      'POST mount': idxBlobs.length,
      'PUT manifest': 3,
    });
    expect(pb.requests.filter((q) => q.path.includes('from=bench%2Fx')).length).toBe(idxBlobs.length);
    // Manifests go last, the index after its children.
    const puts = pb.requests.flatMap((q, i) => (q.method === 'PUT' ? [i] : []));
    expect(Math.min(...puts)).toBeGreaterThan(pb.requests.findLastIndex((q) => q.method === 'POST'));
    expect(pb.requests.at(-1)?.path).toBe('/v2/bench/y/manifests/v1');
    const back = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${b.host}/bench/y:v1`]);
    expect(back.length).toBeGreaterThan(0);
  });

  it('a refused mount: one HEAD after it, then the upload goes into the session the mount opened', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'c2') });
    const blobs = [one.images[0]!.configDigest, ...one.images[0]!.layerDigests];
    for (const d of blobs) await store.record(d, { registry: pb.host, repository: 'never/there' });
    pb.requests.length = 0;
    const r = await copy(`${a.host}/src/one:v1`, `${pb.host}/fallback/one:v1`, store);
    expect(r.blobs).toMatchObject({ copied: blobs.length, mounted: 0, skipped: 0 });
    expect(kinds(pb.requests)).toEqual({
      'HEAD manifest': 1,
      'POST mount': blobs.length,
      'HEAD blob': 2 * blobs.length, // after the refused mount, and the upload's confirmation
      'PUT upload': blobs.length, // into the mount's session: no second POST, no DELETE
      'PUT manifest': 1,
    });
    for (const d of blobs) {
      const seq = pb.requests.filter((q) => q.path.includes(d.slice(7))).map((q) => q.method);
      expect(seq.slice(0, 3)).toEqual(['POST', 'HEAD', 'PUT']);
      // The stale location is forgotten; the source (read) and the destination are remembered.
      expect(await store.locations(d)).toEqual([
        { registry: pb.host, repository: 'fallback/one' },
        { registry: a.host, repository: 'src/one' },
      ]);
    }
  });

  it('a refused mount of a blob the destination already holds: its session is cancelled, the blob skipped', async () => {
    const blobs = [one.images[0]!.configDigest, ...one.images[0]!.layerDigests];
    // The blobs land in pre/one by another tool, whose manifest is then deleted: this process never saw them there.
    await skopeo([
      'copy',
      '--insecure-policy',
      '--dest-tls-verify=false',
      `oci:${join(tmp.path, 'one')}:v1`,
      `docker://${b.host}/pre/one:v1`,
    ]);
    const del = await fetch(`${b.url}/v2/pre/one/manifests/${one.manifestDigests[0]}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const store = new BlobLocations({ dir: join(tmp.path, 'c3') });
    for (const d of blobs) await store.record(d, { registry: pb.host, repository: 'never/there' });
    pb.requests.length = 0;
    const r = await copy(`${a.host}/src/one:v1`, `${pb.host}/pre/one:v1`, store);
    expect(r.blobs).toMatchObject({ copied: 0, mounted: 0, skipped: blobs.length });
    expect(kinds(pb.requests)).toEqual({
      'HEAD manifest': 1,
      'POST mount': blobs.length,
      'HEAD blob': blobs.length,
      'DELETE upload': blobs.length,
      'PUT manifest': 1,
    });
    expect(await store.locations(blobs[0]!)).toEqual([{ registry: pb.host, repository: 'pre/one' }]);
    // Known here now: the next copy into pre/one HEADs first and never mounts.
    await fetch(`${b.url}/v2/pre/one/manifests/${one.manifestDigests[0]}`, { method: 'DELETE' });
    pb.requests.length = 0;
    const again = await copy(`${a.host}/src/one:v1`, `${pb.host}/pre/one:v1`, store);
    expect(again.blobs).toMatchObject({ copied: 0, mounted: 0, skipped: blobs.length });
    expect(kinds(pb.requests)).toEqual({ 'HEAD manifest': 1, 'HEAD blob': blobs.length, 'PUT manifest': 1 });
  });

  it("checks each child manifest at the destination while the child's GET is still under way", async () => {
    // The source answers child manifest GETs 1.5 s late: the destination's HEADs must not wait for them.
    const pa = await startFaultProxy(a.url, [
      { method: 'GET', path: /\/manifests\/sha256:/, times: Infinity, action: { kind: 'delay', ms: 1500 } },
    ]);
    try {
      const opts = { ...reg(undefined), insecureRegistries: [pa.host, pb.host] };
      const s = openSource(`${pa.host}/src/idx:v1`, { registry: opts });
      const d = openDestination(`${pb.host}/overlap/one:v1`, { registry: opts });
      pb.requests.length = 0;
      const started = Date.now();
      let headsAt = 0;
      const poll = setInterval(() => {
        if (!headsAt && pb.requests.filter((q) => q.method === 'HEAD').length === 2) headsAt = Date.now();
      }, 10);
      try {
        await copyImage(s, d);
      } finally {
        clearInterval(poll);
        await Promise.all([s.close(), d.close()]);
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
      expect(headsAt).toBeGreaterThan(0);
      expect(headsAt - started).toBeLessThan(1000);
    } finally {
      await pa.stop();
    }
  });

  it('CLI: the warm copy of an index sends one mount per blob and nothing else per blob', async () => {
    const env = { PATH: process.env.PATH, HOME: join(tmp.path, 'home'), CANVOS_CACHE_DIR: join(tmp.path, 'c4') };
    const cp = (to: string) =>
      run(
        process.execPath,
        [
          join(repoRoot, 'bin', 'canvos-lite.js'),
          'copy',
          '--all-platforms',
          '--src-insecure',
          '--dest-insecure',
          `${a.host}/src/idx:v1`,
          to,
        ],
        { env },
      );
    const first = await cp(`${pb.host}/cli/x:v1`);
    expect(first.code, first.stderr).toBe(0);
    pb.requests.length = 0;
    const second = await cp(`${pb.host}/cli/y:v1`);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`0 copied, 0 skipped, ${idxBlobs.length} mounted`);
    expect(kinds(pb.requests)).toEqual({ 'HEAD manifest': 2, 'POST mount': idxBlobs.length, 'PUT manifest': 3 });
  }, 30_000);
});
