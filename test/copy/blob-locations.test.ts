import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { copyImage } from '../../src/copy/copy.js';
import { BlobLocations } from '../../src/cache/blob-locations.js';
import { openDestination, openSource } from '../../src/transports/resolve-location.js';
import type { RegistryTransportOptions } from '../../src/transports/registry/registry-image.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
let a: TestRegistry; // the source registry
let b: TestRegistry; // the destination registry (anonymous)
let x: TestRegistry; // basic auth
let y: TestRegistry; // basic auth, other credentials
let pa: FaultProxy; // in front of a: counts source reads
let pb: FaultProxy; // in front of b: counts uploads and mounts
let tmp: { path: string; cleanup(): Promise<void> };
let fx: Awaited<ReturnType<typeof makeOciLayout>>;
let blobs: string[];

beforeAll(async () => {
  tmp = await tmpDir('canvos-locations-');
  [a, b, x, y] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry({ auth: 'basic', username: 'xuser', password: 'x-secret-1' }),
    startRegistry({ auth: 'basic', username: 'yuser', password: 'y-secret-2' }),
  ]);
  [pa, pb] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
  fx = await makeOciLayout(join(tmp.path, 'fixture'), { tag: 'v1', layers: 3, layerBytes: 256 * 1024 });
  blobs = [fx.images[0]!.configDigest, ...fx.images[0]!.layerDigests];
  await skopeo([
    'copy',
    '--insecure-policy',
    '--dest-tls-verify=false',
    `oci:${join(tmp.path, 'fixture')}:v1`,
    `docker://${a.host}/src/img:v1`,
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([pa?.stop(), pb?.stop()]);
  await Promise.all([a?.stop(), b?.stop(), x?.stop(), y?.stop()]);
  await tmp?.cleanup();
});

function reg(store: BlobLocations | undefined, extra: RegistryTransportOptions = {}): RegistryTransportOptions {
  return { insecureRegistries: [pa.host, pb.host, x.host, y.host], authFiles: [], blobLocations: store, ...extra };
}

async function copy(srcRef: string, dstRef: string, src: RegistryTransportOptions, dst = src) {
  const s = openSource(srcRef, { registry: src });
  const d = openDestination(dstRef, { registry: dst });
  try {
    return await copyImage(s, d);
  } finally {
    await Promise.all([s.close(), d.close()]);
  }
}

const blobGets = (p: FaultProxy): number =>
  p.requests.filter((r) => r.method === 'GET' && /\/blobs\/sha/.test(r.path)).length;
const uploads = (p: FaultProxy): number =>
  p.requests.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && /\/blobs\/uploads\//.test(r.path)).length;

describe('blob-location cache', () => {
  it('mounts every blob into a second repository from the remembered one: 0 bytes up, no source read', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'c1') });
    const first = await copy(`${pa.host}/src/img:v1`, `${pb.host}/bench/x:v1`, reg(store));
    expect(first.blobs).toMatchObject({ copied: blobs.length, mounted: 0 });
    for (const d of blobs) {
      expect(await store.locations(d)).toEqual([
        { registry: pb.host, repository: 'bench/x' },
        { registry: pa.host, repository: 'src/img' },
      ]);
    }
    pa.requests.length = 0;
    pb.requests.length = 0;
    const second = await copy(`${pa.host}/src/img:v1`, `${pb.host}/bench/y:v1`, reg(store));
    expect(second.blobs).toMatchObject({ copied: 0, mounted: blobs.length, bytes: 0 });
    expect(blobGets(pa)).toBe(0);
    expect(uploads(pb)).toBe(0);
    expect(pb.requests.filter((r) => r.path.includes('from=bench%2Fx')).length).toBe(blobs.length);
    expect((await store.locations(blobs[1]!))[0]).toEqual({ registry: pb.host, repository: 'bench/y' });
    // Without the cache the same copy reads and uploads every blob.
    pa.requests.length = 0;
    const third = await copy(`${pa.host}/src/img:v1`, `${pb.host}/bench/z:v1`, reg(undefined));
    expect(third.blobs).toMatchObject({ copied: blobs.length, mounted: 0 });
    expect(blobGets(pa)).toBeGreaterThanOrEqual(blobs.length);
  });

  it('falls back to an upload when the remembered repository lost the blob, and forgets it', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'c2') });
    await copy(`${pa.host}/src/img:v1`, `${pb.host}/stale/one:v1`, reg(store));
    const layer = fx.images[0]!.layerDigests[0]!;
    const del = await fetch(`${b.url}/v2/stale/one/blobs/${layer}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const r = await copy(`${pa.host}/src/img:v1`, `${pb.host}/stale/two:v1`, reg(store));
    expect(r.blobs).toMatchObject({ copied: 1, mounted: blobs.length - 1 });
    const locs = await store.locations(layer);
    expect(locs).not.toContainEqual({ registry: pb.host, repository: 'stale/one' });
    expect(locs[0]).toEqual({ registry: pb.host, repository: 'stale/two' });
    // A stale location first in the list: its refused mount's session is cancelled, the next location mounts.
    for (const d of blobs) await store.record(d, { registry: pb.host, repository: 'never/there' });
    pb.requests.length = 0;
    const r3 = await copy(`${pa.host}/src/img:v1`, `${pb.host}/stale/three:v1`, reg(store));
    expect(r3.blobs).toMatchObject({ copied: 0, mounted: blobs.length });
    expect(pb.requests.filter((q) => q.method === 'DELETE').length).toBe(blobs.length);
    for (const d of blobs)
      expect(await store.locations(d)).not.toContainEqual({ registry: pb.host, repository: 'never/there' });
    const back = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${b.host}/stale/two:v1`]);
    expect(back.length).toBeGreaterThan(0);
  });

  it('never tries a location of one registry against another, nor sends its credentials there', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'c3') });
    const xCreds = { username: 'xuser', password: 'x-secret-1' };
    await copy(`${pa.host}/src/img:v1`, `${x.host}/cross/one:v1`, reg(store), reg(store, { credentials: xCreds }));
    expect((await store.locations(blobs[0]!)).map((l) => l.registry)).toContain(x.host);
    const py = await startFaultProxy(y.url);
    try {
      const yCreds = { username: 'yuser', password: 'y-secret-2' };
      const dst = reg(store, { credentials: yCreds, insecureRegistries: [py.host] });
      const r = await copy(`${pa.host}/src/img:v1`, `${py.host}/other/one:v1`, reg(store), dst);
      expect(r.blobs).toMatchObject({ copied: blobs.length, mounted: 0 });
      expect(py.requests.some((q) => q.path.includes('mount='))).toBe(false);
      const xBasic = `Basic ${Buffer.from('xuser:x-secret-1').toString('base64')}`;
      expect(py.requests.some((q) => q.headers.authorization === xBasic)).toBe(false);
      expect(py.requests.some((q) => typeof q.headers.authorization === 'string')).toBe(true);
      // Nothing secret is in the cache files.
      const dir = join(tmp.path, 'c3', 'locations', 'sha256');
      for (const f of await readdir(dir))
        expect(await readFile(join(dir, f), 'utf8')).not.toMatch(/secret|xuser|yuser/);
    } finally {
      await py.stop();
    }
  });

  it('ignores a garbage or truncated entry', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'c4') });
    await copy(`${pa.host}/src/img:v1`, `${pb.host}/garbage/one:v1`, reg(store));
    const [first, second] = blobs;
    await writeFile(join(store.dir, 'sha256', first!.slice(7)), '{"v":1,"locations":[["127.0');
    await writeFile(join(store.dir, 'sha256', second!.slice(7)), Buffer.from([0, 1, 2, 255]));
    expect(await store.locations(first!)).toEqual([]);
    // Only host[:port] + repository-path shapes are read back (a hand-edited file cannot inject query or scope text).
    const third = join(store.dir, 'sha256', blobs[2]!.slice(7));
    await writeFile(
      third,
      JSON.stringify({
        v: 1,
        locations: [
          ['r.example', 'a&scope=x:push'],
          ['r.example', 'ok/repo'],
        ],
      }),
    );
    expect(await store.locations(blobs[2]!)).toEqual([{ registry: 'r.example', repository: 'ok/repo' }]);
    await writeFile(third, JSON.stringify({ v: 1, locations: [] }));
    const r = await copy(`${pa.host}/src/img:v1`, `${pb.host}/garbage/two:v1`, reg(store));
    expect(r.blobs).toMatchObject({ copied: 3, mounted: blobs.length - 3 });
    expect((await store.locations(first!))[0]).toEqual({ registry: pb.host, repository: 'garbage/two' });
  });

  it('stays under its bound', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'c5'), maxEntries: 40, maxLocations: 2 });
    const hex = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`;
    for (let i = 0; i < 300; i++) await store.record(hex(i), { registry: 'r.example', repository: `p${i % 7}` });
    await store.prune();
    expect((await readdir(join(store.dir, 'sha256'))).length).toBeLessThanOrEqual(40);
    for (let i = 0; i < 5; i++) await store.record(hex(299), { registry: 'r.example', repository: `q${i}` });
    expect(await store.locations(hex(299))).toEqual([
      { registry: 'r.example', repository: 'q4' },
      { registry: 'r.example', repository: 'q3' },
    ]);
  });

  it('never creates a home directory that does not exist (HOME=/nonexistent): off, with one warning', async () => {
    const home = join(tmp.path, 'no-such-home');
    const warnings: string[] = [];
    const store = new BlobLocations({ env: { HOME: home }, onWarning: (code, m) => warnings.push(`${code} ${m}`) });
    const d = `sha256:${'a'.repeat(64)}`;
    await store.record(d, { registry: 'r.example', repository: 'p' });
    await store.record(d, { registry: 'r.example', repository: 'q' });
    await expect(stat(home)).rejects.toThrow(/ENOENT/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`W_BLOB_LOCATIONS_READONLY`);
    expect(warnings[0]).toContain(`the home directory ${home} does not exist`);
    // An existing home gets its ~/.cache made as usual.
    const home2 = join(tmp.path, 'home-ok');
    await mkdir(home2);
    const ok = new BlobLocations({ env: { HOME: home2 } });
    await ok.record(d, { registry: 'r.example', repository: 'p' });
    expect(await ok.locations(d)).toEqual([{ registry: 'r.example', repository: 'p' }]);
    expect(ok.dir).toBe(join(home2, '.cache', 'canvos-lite', 'blobs', 'locations'));
  });

  it('CLI: two processes copying at once share one cache without corrupting it; CANVOS_BLOB_LOCATIONS=0 turns it off', async () => {
    const cacheDir = join(tmp.path, 'c6');
    const env = { PATH: process.env.PATH, HOME: join(tmp.path, 'home'), CANVOS_CACHE_DIR: cacheDir };
    const bin = join(repoRoot, 'bin', 'canvos-lite.js');
    const cp = (to: string, e: NodeJS.ProcessEnv = env) =>
      run(process.execPath, [bin, 'copy', '--src-insecure', '--dest-insecure', `${pa.host}/src/img:v1`, to], {
        env: e,
      });
    const rs = await Promise.all([cp(`${pb.host}/conc/one:v1`), cp(`${pb.host}/conc/two:v1`)]);
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    const dir = join(cacheDir, 'locations', 'sha256');
    const files = (await readdir(dir)).filter((f) => !f.startsWith('.'));
    expect(files.sort()).toEqual(blobs.map((d) => d.slice(7)).sort());
    for (const f of files) {
      const j = JSON.parse(await readFile(join(dir, f), 'utf8')) as { locations: string[][] };
      expect(j.locations.length).toBeGreaterThanOrEqual(2);
    }
    const warm = await cp(`${pb.host}/conc/three:v1`);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stdout).toContain(`0 copied, 0 skipped, ${blobs.length} mounted`);
    const off = await cp(`${pb.host}/conc/four:v1`, { ...env, CANVOS_BLOB_LOCATIONS: '0' });
    expect(off.stdout).toContain(`${blobs.length} copied, 0 skipped, 0 mounted`);
  }, 60_000);

  it('CLI as an unprivileged user: the cache lives in its own ~/.cache and the second copy mounts', async () => {
    const home = unprivilegedTempDir('canvos-loc-home-');
    try {
      const bin = join(repoRoot, 'bin', 'canvos-lite.js');
      const cp = (to: string) => {
        const [cmd, ...args] = asUnprivileged([
          'env',
          `HOME=${home}`,
          `PATH=${process.env.PATH ?? ''}`,
          process.execPath,
          bin,
          'copy',
          '--src-insecure',
          '--dest-insecure',
          `${pa.host}/src/img:v1`,
          to,
        ]);
        return run(cmd!, args);
      };
      const one = await cp(`${pb.host}/unpriv/one:v1`);
      expect(one.code, one.stderr).toBe(0);
      const two = await cp(`${pb.host}/unpriv/two:v1`);
      expect(two.code, two.stderr).toBe(0);
      expect(two.stdout).toContain(`0 copied, 0 skipped, ${blobs.length} mounted`);
      const dir = join(home, '.cache', 'canvos-lite', 'blobs', 'locations', 'sha256');
      const st = await stat(join(dir, blobs[0]!.slice(7)));
      expect(st.uid).toBe(unprivilegedIdentity()?.uid);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('CLI: a second mirror push into another path of the same registry mounts every blob, reading no source blob', async () => {
    const env = { PATH: process.env.PATH, HOME: join(tmp.path, 'home3') };
    await mkdir(env.HOME);
    const push = (to: string) =>
      runCli(['mirror', 'push', `${pa.host}/src/img:v1`, '--to', to, '--src-insecure', '--dest-insecure', '--json'], {
        env,
        cwd: tmp.path,
      });
    const first = await push(`${pb.host}/m1`);
    expect(first.code, first.stderr).toBe(0);
    pa.requests.length = 0;
    pb.requests.length = 0;
    const second = await push(`${pb.host}/m2`);
    expect(second.code, second.stderr).toBe(0);
    const rep = JSON.parse(second.stdout) as {
      images: { blobs: { copied: number; mounted: number; bytes: number } }[];
    };
    expect(rep.images[0]?.blobs).toMatchObject({ copied: 0, mounted: blobs.length, bytes: 0 });
    expect(blobGets(pa)).toBe(0);
    expect(uploads(pb)).toBe(0);
  });

  it('CLI: an unwritable cache directory is one warning, never a failure', async () => {
    const file = join(tmp.path, 'not-a-dir');
    await writeFile(file, 'x');
    await mkdir(join(tmp.path, 'home2'), { recursive: true });
    const r = await runCli(
      ['copy', '--src-insecure', '--dest-insecure', `${pa.host}/src/img:v1`, `${pb.host}/ro/one:v1`],
      { env: { PATH: process.env.PATH, HOME: join(tmp.path, 'home2'), CANVOS_CACHE_DIR: file }, cwd: tmp.path },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/W_BLOB_LOCATIONS_READONLY/g)?.length).toBe(1);
  });
});
