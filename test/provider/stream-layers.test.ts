// openImage's streamLayers (what `iso --base` and `disk --base` use): a layer that is not cached is read while it
// downloads, its bytes going into the blob cache at the same time; the cache commits it only after the source
// verified digest and size at the stream's end, and a blob whose bytes do not match its digest fails the read.
import { cp, open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobCache } from '../../src/cache/blob-cache.js';
import { CanvosError } from '../../src/errors.js';
import { mergeLayers } from '../../src/layers/merge.js';
import { openImage, type OpenedImage } from '../../src/provider/image-reader.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { tmpDir } from '../helpers/tools.js';

let tmp: { path: string; cleanup(): Promise<void> };
let fx: Awaited<ReturnType<typeof makeOciLayout>>;

beforeAll(async () => {
  tmp = await tmpDir('canvos-stream-layers-');
  fx = await makeOciLayout(join(tmp.path, 'base'), {
    tag: 'v1',
    layers: 3,
    files: { 'etc/os-release': 'ID=test\n' },
  });
});
afterAll(async () => {
  await tmp?.cleanup();
});

async function paths(img: OpenedImage): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of mergeLayers(img.openers)) {
      out.push(e.path);
      if (e.content) for await (const _ of e.content);
    }
  } finally {
    await img.source.close();
  }
  return out.sort();
}

describe('openImage streamLayers', () => {
  it('reads the layers while caching them; the next open reads the cache; the tree is the same', async () => {
    const ref = `oci:${join(tmp.path, 'base')}:v1`;
    const plain = await paths(await openImage(ref, 'amd64', { cache: new BlobCache({ dir: join(tmp.path, 'c0') }) }));
    const cache = new BlobCache({ dir: join(tmp.path, 'c1') });
    const { layerDigests, diffIds } = fx.images[0]!;
    for (const d of layerDigests) expect(await cache.has(d)).toBe(false);
    const first = await openImage(ref, 'amd64', { cache, streamLayers: true });
    expect(first.openers.map((o) => o.diffId)).toEqual(diffIds); // a streamed layer is always checked in full
    expect(await paths(first)).toEqual(plain);
    for (const d of layerDigests) expect(await cache.has(d), d).toBe(true);
    expect(await paths(await openImage(ref, 'amd64', { cache, streamLayers: true }))).toEqual(plain);
  });

  it('a blob whose bytes do not match its digest fails the read and is not cached', async () => {
    const bad = join(tmp.path, 'bad');
    await cp(join(tmp.path, 'base'), bad, { recursive: true });
    // Change the gzip header's MTIME: still valid gzip of the same tar (same diff_id), but another digest.
    const digest = fx.images[0]!.layerDigests[0]!;
    const fh = await open(join(bad, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 4);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, 4);
    await fh.close();
    const cache = new BlobCache({ dir: join(tmp.path, 'c2') });
    const err = await paths(await openImage(`oci:${bad}:v1`, 'amd64', { cache, streamLayers: true })).catch(
      (e: unknown) => e,
    );
    expect(CanvosError.is(err), String(err)).toBe(true);
    expect((err as CanvosError).message).toContain(digest);
    expect(await cache.has(digest)).toBe(false);
  });

  it('a cache that fails to store a layer fails the read instead of stalling it', async () => {
    // A cache whose writes of layers fail at once without reading their input (a full disk, say).
    const layers = fx.images[0]!.layerDigests;
    class FullCache extends BlobCache {
      override put(...args: Parameters<BlobCache['put']>): ReturnType<BlobCache['put']> {
        if (layers.includes(args[1] ?? '')) return Promise.reject(new Error('no space left on device'));
        return super.put(...args);
      }
    }
    const img = await openImage(`oci:${join(tmp.path, 'base')}:v1`, 'amd64', {
      cache: new FullCache({ dir: join(tmp.path, 'c3') }),
      streamLayers: true,
    });
    const err = await paths(img).catch((e: unknown) => e);
    expect(String(err)).toContain('no space left on device');
  }, 20_000);
});
