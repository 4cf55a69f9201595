/**
 * Disk destinations honour `PutBlobHints.sourceVerified` (the copy engine passes it for every `getBlob` stream):
 * they do not hash the bytes a second time, yet a blob still appears at its content-addressed path only after the
 * source stream ended cleanly with the right size. These tests pin down both halves against a real registry:
 * verified copies land byte-exact, a source that fails its own verification at the end leaves nothing behind
 * (no blob, no temp file), and the hint really hands verification to the source (the contract test).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Digest } from '../../src/image/digest.js';
import { sha256, VerifyingStream } from '../../src/image/digest.js';
import { copyImage } from '../../src/copy/copy.js';
import type { ImageDestination } from '../../src/image/types.js';
import { BlobCache } from '../../src/cache/blob-cache.js';
import { dockerArchiveDestination } from '../../src/transports/docker-archive/docker-archive-destination.js';
import { layoutDestination } from '../../src/transports/oci-layout/layout-destination.js';
import { registrySource } from '../../src/transports/registry/registry-image.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, skopeo, tmpDir } from '../helpers/tools.js';

let reg: TestRegistry;
let tmp: { path: string; cleanup(): Promise<void> };
let multi: Awaited<ReturnType<typeof makeOciLayout>>;
let single: Awaited<ReturnType<typeof makeOciLayout>>;
const opts = () => ({ insecureRegistries: [reg.host], authFiles: [] as string[] });

beforeAll(async () => {
  tmp = await tmpDir('canvos-srcverified-');
  reg = await startRegistry();
  // Layers of several MiB: each blob crosses many stream chunks and write-stream buffers on its way to disk.
  multi = await makeOciLayout(join(tmp.path, 'multi'), {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
    layers: 3,
    layerBytes: 3 * 1024 * 1024,
  });
  single = await makeOciLayout(join(tmp.path, 'single'), { tag: 'v1', layers: 2, layerBytes: 2 * 1024 * 1024 });
  await skopeo([
    'copy',
    '--all',
    '--insecure-policy',
    '--dest-tls-verify=false',
    `oci:${join(tmp.path, 'multi')}:v1`,
    `docker://${reg.host}/sv/multi:v1`,
  ]);
  await skopeo([
    'copy',
    '--insecure-policy',
    '--dest-tls-verify=false',
    `oci:${join(tmp.path, 'single')}:v1`,
    `docker://${reg.host}/sv/single:v1`,
  ]);
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

/** Every file under `dir` (recursively), relative paths. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    const parent = e.parentPath ?? (e as unknown as { path: string }).path;
    if (e.isFile()) out.push(join(parent, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

/** Re-hash every file of a `blobs/sha256` directory: each must hash to its name (and nothing else may be there). */
async function rehashBlobs(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  for (const n of names) {
    expect(n).toMatch(/^[a-f0-9]{64}$/);
    expect(
      createHash('sha256')
        .update(await readFile(join(dir, n)))
        .digest('hex'),
    ).toBe(n);
  }
  return names;
}

/** The registry's stored data file of a blob (tests corrupt it in place). */
async function registryBlobFile(hex: string): Promise<string> {
  for (const e of await readdir(reg.dataDir, { withFileTypes: true, recursive: true })) {
    const parent = e.parentPath ?? (e as unknown as { path: string }).path;
    if (e.isFile() && e.name === 'data' && parent.endsWith(`/${hex}`)) return join(parent, e.name);
  }
  throw new Error(`blob ${hex} not found in the registry storage`);
}

/** `bytes` with one byte changed near the end: same size, so only the digest (checked at the end) can catch it. */
function flipNearEnd(bytes: Buffer): Buffer {
  const bad = Buffer.from(bytes);
  bad[bad.length - 100] = (bad[bad.length - 100]! + 1) & 0xff;
  return bad;
}

/** A self-verifying stream (as every ImageSource.getBlob returns) over `bytes`, fed in 256 KiB chunks. */
function verifyingOver(bytes: Buffer, digest: Digest, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 256 * 1024) chunks.push(bytes.subarray(i, i + 256 * 1024));
  const v = new VerifyingStream(digest, { size });
  return Readable.from(chunks).pipe(v);
}

/** A blob of several MiB and its descriptor. */
function bigBlob(): { good: Buffer; desc: { mediaType: string; digest: Digest; size: number } } {
  const good = randomBytes(3 * 1024 * 1024 + 123);
  return {
    good,
    desc: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(good), size: good.length },
  };
}

describe('OCI layout destination with sourceVerified', () => {
  it('a registry → layout copy (all platforms) lands byte-exact: every file re-hashes to its name, skopeo reads the same index', async () => {
    const dst = join(tmp.path, 'layout-ok');
    const src = registrySource(`${reg.host}/sv/multi:v1`, opts());
    const r = await copyImage(src, layoutDestination(dst, { tag: 'v1' }));
    await src.close();
    expect(r.rootDigest).toBe(multi.indexDigest);
    expect(r.blobs.copied).toBe(8); // 2 configs + 6 layers, all through putBlob with sourceVerified
    const names = await rehashBlobs(join(dst, 'blobs', 'sha256'));
    const expected = [
      multi.indexDigest,
      ...multi.manifestDigests,
      ...multi.images.flatMap((i) => [i.configDigest, ...i.layerDigests]),
    ];
    expect(names).toEqual(expected.map((d) => d.slice(7)).sort());
    const raw = await skopeo(['inspect', '--raw', `oci:${dst}:v1`]);
    expect(sha256(raw)).toBe(multi.indexDigest);
    // skopeo reads (and verifies) every blob of one platform from our layout.
    await skopeo([
      'copy',
      '--insecure-policy',
      '--override-arch',
      'arm64',
      `oci:${dst}:v1`,
      `dir:${join(tmp.path, 'layout-ok-dir')}`,
    ]);
  });

  it('a registry blob that fails verification at the end of its stream fails the copy with ERR_DIGEST_MISMATCH and leaves no blob, temp file or tag', async () => {
    // Its own registry path so the corruption does not leak into the other tests.
    await skopeo([
      'copy',
      '--insecure-policy',
      '--dest-tls-verify=false',
      `oci:${join(tmp.path, 'single')}:v1`,
      `docker://${reg.host}/sv/corrupt:v1`,
    ]);
    const layer = single.images[0]!.layerDigests[1]!;
    const file = await registryBlobFile(layer.slice(7));
    const good = await readFile(file);
    await writeFile(file, flipNearEnd(good));
    try {
      const dst = join(tmp.path, 'layout-bad');
      const src = registrySource(`${reg.host}/sv/corrupt:v1`, opts());
      const d = layoutDestination(dst, { tag: 'v1' });
      await expect(copyImage(src, d, { concurrency: 1 })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
      await src.close();
      // The new layout was being built beside its final path: before close() it holds no bad blob and no temp file.
      const blobs = await readdir(join(d.layout.blobsDir, 'sha256'));
      expect(blobs).not.toContain(layer.slice(7));
      expect(blobs.filter((n) => !/^[a-f0-9]{64}$/.test(n))).toEqual([]); // no .tmp-* left
      await rehashBlobs(join(d.layout.blobsDir, 'sha256'));
      await d.close();
      // …and close() removed it: the destination is as it was (absent), with no sibling left over.
      expect((await readdir(tmp.path)).filter((n) => n.includes('layout-bad'))).toEqual([]);
    } finally {
      await writeFile(file, good);
    }
  });

  it('putBlob with a self-verifying stream over wrong bytes rejects with ERR_DIGEST_MISMATCH and leaves neither the blob nor a temp file', async () => {
    const { good, desc } = bigBlob();
    const dir = join(tmp.path, 'layout-put-bad');
    const dst = layoutDestination(dir);
    await expect(
      dst.putBlob(desc, async () => verifyingOver(flipNearEnd(good), desc.digest, desc.size), {
        knownAbsent: true,
        sourceVerified: true,
      }),
    ).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    });
    expect(await readdir(join(dst.layout.blobsDir, 'sha256'))).toEqual([]);
    expect(await dst.hasBlob(desc)).toBe(false);
    // The same destination then stores the right bytes.
    expect(
      await dst.putBlob(desc, async () => verifyingOver(good, desc.digest, desc.size), {
        knownAbsent: true,
        sourceVerified: true,
      }),
    ).toBe('uploaded');
    expect(await rehashBlobs(join(dst.layout.blobsDir, 'sha256'))).toEqual([desc.digest.slice(7)]);
  });

  it('contract of the hint: sourceVerified hands digest checking to the source, so a non-erroring stream of wrong bytes is stored unchecked (but never with a wrong size); without the hint it is refused', async () => {
    const { good, desc } = bigBlob();
    const lie = flipNearEnd(good); // same size, different digest, and a plain stream that does not verify anything
    const dir = join(tmp.path, 'layout-contract');
    const dst = layoutDestination(dir);
    await expect(dst.putBlob(desc, async () => Readable.from([lie]), { knownAbsent: true })).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    });
    expect(await readdir(join(dst.layout.blobsDir, 'sha256'))).toEqual([]);
    await expect(
      dst.putBlob(desc, async () => Readable.from([lie.subarray(1)]), { knownAbsent: true, sourceVerified: true }),
    ).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
    await expect(
      dst.putBlob(desc, async () => Readable.from([lie, Buffer.from('x')]), {
        knownAbsent: true,
        sourceVerified: true,
      }),
    ).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
    expect(await readdir(join(dst.layout.blobsDir, 'sha256'))).toEqual([]);
    // The destination did not hash: the lying stream's bytes now sit under desc.digest.
    expect(await dst.putBlob(desc, async () => Readable.from([lie]), { knownAbsent: true, sourceVerified: true })).toBe(
      'uploaded',
    );
    expect((await readFile(join(dst.layout.blobsDir, 'sha256', desc.digest.slice(7)))).equals(lie)).toBe(true);
    await dst.close();
  });
});

describe('docker-archive destination with sourceVerified', () => {
  it('a registry → docker-archive copy lands byte-exact (the tar holds every blob under its digest)', async () => {
    const file = join(tmp.path, 'da-ok', 'img.tar');
    const src = registrySource(`${reg.host}/sv/single:v1`, opts());
    const r = await copyImage(src, dockerArchiveDestination(file, { ref: 'example.com/sv/single:v1' }));
    await src.close();
    expect(r.rootDigest).toBe(single.indexDigest);
    expect(await filesUnder(join(tmp.path, 'da-ok'))).toEqual(['img.tar']); // spool gone
    const out = join(tmp.path, 'da-ok-x');
    await run('mkdir', ['-p', out]);
    await run('tar', ['-xf', file, '-C', out]);
    const names = await rehashBlobs(join(out, 'blobs', 'sha256'));
    const img = single.images[0]!;
    expect(names).toEqual([single.indexDigest, img.configDigest, ...img.layerDigests].map((d) => d.slice(7)).sort());
    // skopeo reads the archive (manifest.json, config, every layer) back.
    await skopeo(['copy', '--insecure-policy', `docker-archive:${file}`, `dir:${join(tmp.path, 'da-ok-dir')}`]);
  });

  it('a self-verifying stream over wrong bytes rejects with ERR_DIGEST_MISMATCH; the spool holds neither the blob nor a temp file', async () => {
    const { good, desc } = bigBlob();
    const dir = join(tmp.path, 'da-bad');
    const dst: ImageDestination = dockerArchiveDestination(join(dir, 'img.tar'));
    await expect(
      dst.putBlob(desc, async () => verifyingOver(flipNearEnd(good), desc.digest, desc.size), {
        knownAbsent: true,
        sourceVerified: true,
      }),
    ).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    });
    expect(await dst.hasBlob(desc)).toBe(false);
    const left = await filesUnder(dir);
    expect(left).toEqual([]);
    expect(
      await dst.putBlob(desc, async () => verifyingOver(good, desc.digest, desc.size), {
        knownAbsent: true,
        sourceVerified: true,
      }),
    ).toBe('uploaded');
    const stored = await filesUnder(dir);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatch(new RegExp(`canvos-spool/blobs/sha256/${desc.digest.slice(7)}$`));
    expect(sha256(await readFile(join(dir, stored[0]!)))).toBe(desc.digest);
    await dst.close();
    expect(await filesUnder(dir)).toEqual([]);
  });
});

describe('BlobCache.put with sourceVerified', () => {
  it('stores a verified stream byte-exact; a failing one leaves no blob and no temp file', async () => {
    const { good, desc } = bigBlob();
    const cache = new BlobCache({ dir: join(tmp.path, 'cache') });
    await expect(
      cache.put(verifyingOver(flipNearEnd(good), desc.digest, desc.size), desc.digest, {
        size: desc.size,
        sourceVerified: true,
      }),
    ).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(await filesUnder(cache.dir)).toEqual([]);
    const r = await cache.put(verifyingOver(good, desc.digest, desc.size), desc.digest, {
      size: desc.size,
      sourceVerified: true,
    });
    expect(r).toEqual({ digest: desc.digest, size: desc.size, path: cache.path(desc.digest) });
    expect(sha256(await readFile(r.path))).toBe(desc.digest);
    expect(await filesUnder(cache.dir)).toEqual([`sha256/${desc.digest.slice(7)}`]);
  });
});
