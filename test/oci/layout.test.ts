import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CanvosError } from '../../src/errors.js';
import { copyImage } from '../../src/copy/copy.js';
import { BlobCache, defaultCacheDir } from '../../src/cache/blob-cache.js';
import { sha256, type Digest } from '../../src/image/digest.js';
import { OciLayout } from '../../src/transports/oci-layout/oci-layout.js';
import { layoutSource } from '../../src/transports/oci-layout/layout-source.js';
import { layoutDestination } from '../../src/transports/oci-layout/layout-destination.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { tmpDir, umoci } from '../helpers/tools.js';

let tmp: { path: string; cleanup(): Promise<void> };
let fixture: Awaited<ReturnType<typeof makeOciLayout>>;
let srcDir: string;

beforeAll(async () => {
  tmp = await tmpDir('canvos-layout-');
  srcDir = join(tmp.path, 'src');
  fixture = await makeOciLayout(srcDir, {
    tag: 'multi',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerBytes: 32 * 1024,
    files: { 'etc/hello.txt': 'hello from the fixture\n' },
  });
});
afterAll(async () => {
  await tmp?.cleanup();
});

/** Every blob file in a layout hashes to its name and nothing else (no temp files) is in blobs/sha256. */
async function checkBlobs(dir: string): Promise<string[]> {
  const names = await readdir(join(dir, 'blobs', 'sha256'));
  for (const n of names) {
    expect(n).toMatch(/^[a-f0-9]{64}$/);
    const h = createHash('sha256')
      .update(await readFile(join(dir, 'blobs', 'sha256', n)))
      .digest('hex');
    expect(h).toBe(n);
  }
  return names;
}

async function errorOf(p: Promise<unknown>): Promise<CanvosError> {
  try {
    await p;
  } catch (e) {
    if (CanvosError.is(e)) return e;
    throw e;
  }
  throw new Error('expected a CanvosError');
}

describe('OCI image layout', () => {
  it('round-trips a multi-platform index byte-exact, tags by ref.name, keeps other tags and replaces the same name', async () => {
    const dst = join(tmp.path, 'rt');
    const r = await copyImage(layoutSource(srcDir, { tag: 'multi' }), layoutDestination(dst, { tag: 'v1' }));
    expect(r.rootDigest).toBe(fixture.indexDigest);
    expect(r.rewritten).toBe(false);
    expect(r.manifests).toBe(3);
    expect(r.blobs.copied).toBe(6); // 2 configs + 4 layers
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(JSON.parse(await readFile(join(dst, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const srcBlobs = (await readdir(join(srcDir, 'blobs', 'sha256'))).filter((n) => !n.startsWith('.')).sort();
    expect((await checkBlobs(dst)).sort()).toEqual(srcBlobs);

    // A second tag is added; the first stays.
    const r2 = await copyImage(layoutSource(srcDir), layoutDestination(dst, { tag: 'v2' }));
    expect(r2.blobs.copied).toBe(0);
    const layout = new OciLayout(dst);
    expect(await layout.tags()).toEqual(['v1', 'v2']);
    // Re-pointing v1 at the arm64 child replaces only that entry.
    const r3 = await copyImage(layoutSource(srcDir), layoutDestination(dst, { tag: 'v1' }), {
      platforms: [{ os: 'linux', architecture: 'arm64' }],
    });
    expect(r3.rootDigest).toBe(fixture.manifestDigests[1]);
    const idx = await layout.readIndex();
    expect(idx.manifests.map((d) => [d.annotations?.['org.opencontainers.image.ref.name'], d.digest])).toEqual([
      ['v2', fixture.indexDigest],
      ['v1', fixture.manifestDigests[1]],
    ]);
    expect((await layout.resolve('v1')).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  it('names the choices when a layout holds several images and no tag is given, and reports unknown tags', async () => {
    const dst = join(tmp.path, 'rt');
    const e = await errorOf(layoutSource(dst).getManifest());
    expect(e.code).toBe('ERR_LAYOUT');
    expect(e.message).toContain('v2, v1');
    const e2 = await errorOf(layoutSource(dst, { tag: 'nope' }).getManifest());
    expect(e2.code).toBe('ERR_MANIFEST_UNKNOWN');
    expect(e2.hint).toContain('v2, v1');
    const e3 = await errorOf(layoutSource(join(tmp.path, 'missing')).getManifest());
    expect(e3.code).toBe('ERR_LAYOUT');
  });

  it('a copy failing on a corrupted source blob leaves no tag and no partial blob', async () => {
    const bad = join(tmp.path, 'bad-src');
    const fx = await makeOciLayout(bad, { tag: 'x', layers: 3, layerBytes: 256 * 1024 });
    const victim = fx.images[0]!.layerDigests[2]!;
    const file = join(bad, 'blobs', 'sha256', victim.slice(7));
    const bytes = await readFile(file);
    bytes[bytes.length - 100]! ^= 0xff; // same size, different digest
    await writeFile(file, bytes);

    const dst = join(tmp.path, 'bad-dst');
    // Tag something first: it must survive the failed copy untouched.
    await copyImage(layoutSource(srcDir), layoutDestination(dst, { tag: 'keep' }), {
      platforms: [{ os: 'linux', architecture: 'amd64' }],
    });
    const before = await readFile(join(dst, 'index.json'), 'utf8');
    const e = await errorOf(copyImage(layoutSource(bad), layoutDestination(dst, { tag: 'x' }), { concurrency: 1 }));
    expect(e.code).toBe('ERR_DIGEST_MISMATCH');
    expect(e.message).toContain(victim);
    expect(await readFile(join(dst, 'index.json'), 'utf8')).toBe(before);
    const names = await checkBlobs(dst); // also proves no .tmp-* file was left behind
    expect(names).not.toContain(victim.slice(7));
    expect(names).not.toContain(fx.manifestDigests[0]!.slice(7)); // the manifest is only written after its blobs
    expect((await readdir(dst)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('umoci unpacks a layout written by the copy engine', async () => {
    const dst = join(tmp.path, 'umoci');
    await copyImage(layoutSource(srcDir), layoutDestination(dst, { tag: 'arm' }), {
      platforms: [{ os: 'linux', architecture: 'arm64' }],
    });
    const stat = await umoci(['stat', '--image', `${dst}:arm`]);
    expect(stat).toContain('makeOciLayout layer 1');
    const bundle = join(tmp.path, 'bundle');
    await umoci(['unpack', '--rootless', '--image', `${dst}:arm`, bundle]);
    expect(await readFile(join(bundle, 'rootfs', 'etc', 'hello.txt'), 'utf8')).toBe('hello from the fixture\n');
    expect((await readdir(join(bundle, 'rootfs'))).sort()).toEqual(['etc', 'layer0', 'layer1']);
  });

  it('reads a layout umoci wrote (new tag via umoci config)', async () => {
    const dst = join(tmp.path, 'umoci');
    await umoci(['config', '--image', `${dst}:arm`, '--tag', 'arm-env', '--config.env', 'FOO=bar']);
    const out = join(tmp.path, 'from-umoci');
    const r = await copyImage(layoutSource(dst, { tag: 'arm-env' }), layoutDestination(out, { tag: 'y' }));
    expect(r.manifests).toBe(1);
    const m = JSON.parse((await new OciLayout(out).readSmallBlob(r.rootDigest)).toString('utf8')) as {
      config: { digest: Digest };
    };
    const cfg = JSON.parse((await new OciLayout(out).readSmallBlob(m.config.digest)).toString('utf8')) as {
      config: { Env: string[] };
    };
    expect(cfg.config.Env).toContain('FOO=bar');
  });
});

describe('blob cache', () => {
  it('stores verified blobs atomically, computes digests when none is given, and refuses mismatches', async () => {
    const cache = new BlobCache({ dir: join(tmp.path, 'cache') });
    const data = Buffer.from('cached bytes');
    const d = sha256(data);
    expect(await cache.has(d)).toBe(false);
    const r = await cache.put(Readable.from([data]), d);
    expect(r).toEqual({ digest: d, size: data.length, path: cache.path(d) });
    expect(await cache.has(d, data.length)).toBe(true);
    expect(await cache.has(d, 3)).toBe(false);
    expect(await readFile(cache.path(d), 'utf8')).toBe('cached bytes');
    const other = Buffer.from('other bytes');
    expect((await cache.put(Readable.from([other]))).digest).toBe(sha256(other));
    const e = await errorOf(cache.put(Readable.from([Buffer.from('evil')]), sha256('good')));
    expect(e.code).toBe('ERR_DIGEST_MISMATCH');
    expect(await cache.has(sha256('good'))).toBe(false);
    expect((await readdir(join(tmp.path, 'cache', 'sha256'))).sort()).toEqual(
      [d.slice(7), sha256(other).slice(7)].sort(),
    );
  });

  it('defaults to CANVOS_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(defaultCacheDir({ CANVOS_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/c');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/x/canvos-lite/blobs');
    expect(defaultCacheDir({ HOME: '/h' })).toBe('/h/.cache/canvos-lite/blobs');
  });
});
