// A base layer's diff_id is checked by hashing its uncompressed stream while it is merged (image-reader + mergeLayers);
// the blob-location cache remembers each verified (compressed digest -> diffID) pair, so the next build or ISO over the
// same base reads the layer without hashing it again, and only a pair it verified itself is trusted.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { BlobCache } from '../../src/cache/blob-cache.js';
import { BlobLocations } from '../../src/cache/blob-locations.js';
import { mergeLayers } from '../../src/layers/merge.js';
import { openImage, type OpenedImage } from '../../src/provider/image-reader.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { tmpDir } from '../helpers/tools.js';

let tmp: { path: string; cleanup(): Promise<void> };
let fx: Awaited<ReturnType<typeof makeOciLayout>>;
let ref: string;

beforeAll(async () => {
  tmp = await tmpDir('canvos-diffid-');
  fx = await makeOciLayout(join(tmp.path, 'base'), { tag: 'v1', layers: 3, files: { 'etc/os-release': 'ID=test\n' } });
  ref = `oci:${join(tmp.path, 'base')}:v1`;
});
afterAll(async () => {
  await tmp?.cleanup();
});

async function paths(img: OpenedImage): Promise<string[]> {
  const out: string[] = [];
  for await (const e of mergeLayers(img.openers)) {
    out.push(e.path);
    if (e.content) for await (const _ of e.content);
  }
  await img.source.close();
  return out.sort();
}

describe('verified diffIDs', () => {
  it('are hashed once, remembered, and not hashed again on the next open of the same base', async () => {
    const store = new BlobLocations({ dir: join(tmp.path, 'cache') });
    const cache = new BlobCache({ dir: join(tmp.path, 'blobs') });
    const open = () => openImage(ref, 'amd64', { cache, registry: { blobLocations: store } });
    const { layerDigests, diffIds } = fx.images[0]!;

    const first = await open();
    expect(first.openers.map((o) => o.diffId)).toEqual(diffIds);
    const tree = await paths(first);
    expect(tree).toContain('etc/os-release');
    await vi.waitFor(async () => {
      for (const [i, d] of layerDigests.entries()) expect(await store.diffId(d)).toBe(diffIds[i]);
    });

    const second = await open();
    expect(second.openers.map((o) => o.diffId)).toEqual([undefined, undefined, undefined]);
    expect(await paths(second)).toEqual(tree);

    // A remembered pair that disagrees with the config is not trusted: the layer is hashed, the pair corrected.
    await store.recordDiffId(layerDigests[1]!, `sha256:${'0'.repeat(64)}`);
    const third = await open();
    expect(third.openers.map((o) => o.diffId)).toEqual([undefined, diffIds[1], undefined]);
    expect(await paths(third)).toEqual(tree);
    await vi.waitFor(async () => expect(await store.diffId(layerDigests[1]!)).toBe(diffIds[1]));

    // Without the cache every layer is checked every time.
    const plain = await openImage(ref, 'amd64', { cache });
    expect(plain.openers.map((o) => o.diffId)).toEqual(diffIds);
    await plain.source.close();
  });
});
