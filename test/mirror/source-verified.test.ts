/**
 * `mirror save` writes registry blobs into its working OCI layout through the copy engine, whose getBlob streams
 * verify themselves (PutBlobHints.sourceVerified). Whether or not the layout re-hashes them, a saved layout and
 * archive must hold exactly the source's bytes, and a source blob that fails verification at the end of its
 * stream must leave nothing at its final path (no blob, no temp file, no index entry, no archive), with the
 * failure reported as ERR_DIGEST_MISMATCH. Real registry, real files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { itemsFromRefs } from '../../src/mirror/resolve.js';
import { mirrorSave } from '../../src/mirror/operations.js';
import { readArchiveManifest } from '../../src/mirror/archive.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { pushLayout } from '../helpers/push-layout.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run, tmpDir } from '../helpers/tools.js';

let reg: TestRegistry;
let tmp: { path: string; cleanup(): Promise<void> };
let multi: Awaited<ReturnType<typeof makeOciLayout>>;
let single: Awaited<ReturnType<typeof makeOciLayout>>;
const sourceRegistry = () => ({ insecureRegistries: [reg.host], authFiles: [] as string[] });

beforeAll(async () => {
  tmp = await tmpDir('canvos-mirror-srcverified-');
  reg = await startRegistry();
  multi = await makeOciLayout(join(tmp.path, 'multi'), {
    tag: 'v1',
    platforms: ['linux/amd64', 'linux/arm64'],
    layers: 2,
    layerBytes: 2 * 1024 * 1024,
  });
  single = await makeOciLayout(join(tmp.path, 'single'), { tag: 'v1', layers: 2, layerBytes: 2 * 1024 * 1024 });
  await pushLayout(join(tmp.path, 'multi'), reg, 'sv/multi', { tag: 'v1' });
  await pushLayout(join(tmp.path, 'single'), reg, 'sv/corrupt', { tag: 'v1' });
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

/** Re-hash every file of a `blobs/sha256` directory: each must hash to its name (no temp files either). */
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

const allDigests = (l: typeof multi): string[] =>
  [...new Set([l.indexDigest, ...l.manifestDigests, ...l.images.flatMap((i) => [i.configDigest, ...i.layerDigests])])]
    .map((d) => d.slice(7))
    .sort();

describe('mirror save: verified sources', () => {
  it('saves a multi-platform image into a layout byte-exact: every blob re-hashes to its name', async () => {
    const dir = join(tmp.path, 'save-dir');
    const rep = await mirrorSave(itemsFromRefs([`${reg.host}/sv/multi:v1`]), dir, { sourceRegistry: sourceRegistry() });
    expect(rep.failures).toEqual([]);
    expect(rep.images.map((i) => i.digest)).toEqual([multi.indexDigest]);
    expect(await rehashBlobs(join(dir, 'blobs', 'sha256'))).toEqual(allDigests(multi));
    const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(idx.manifests.map((m) => m.digest)).toEqual([multi.indexDigest]);
  });

  it('saves into an archive whose unpacked tar holds exactly the source blobs', async () => {
    const tar = join(tmp.path, 'save-tar', 'bundle.tar');
    const rep = await mirrorSave(itemsFromRefs([`${reg.host}/sv/multi:v1`]), tar, { sourceRegistry: sourceRegistry() });
    expect(rep.failures).toEqual([]);
    const m = await readArchiveManifest(join(tmp.path, 'save-tar', 'bundle.manifest.json'));
    expect([...(m.blobs ?? [])].map((d) => d.slice(7)).sort()).toEqual(allDigests(multi));
    const out = join(tmp.path, 'save-tar-x');
    await mkdir(out);
    await run('tar', ['-xf', tar, '-C', out]);
    expect(await rehashBlobs(join(out, 'blobs', 'sha256'))).toEqual(allDigests(multi));
  });

  it('a registry blob failing verification at the end of its stream is reported as ERR_DIGEST_MISMATCH and leaves no blob, temp file, index entry or archive', async () => {
    const layer = single.images[0]!.layerDigests[1]!;
    let file: string | undefined;
    for (const e of await readdir(reg.dataDir, { withFileTypes: true, recursive: true })) {
      const parent = e.parentPath ?? (e as unknown as { path: string }).path;
      if (e.isFile() && e.name === 'data' && parent.endsWith(`/${layer.slice(7)}`)) file = join(parent, e.name);
    }
    if (!file) throw new Error('corrupted layer not found in registry storage');
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 100] = (bad[bad.length - 100]! + 1) & 0xff; // same size: only the final digest check can tell
    await writeFile(file, bad);
    try {
      const tar = join(tmp.path, 'save-bad', 'bundle.tar');
      const rep = await mirrorSave(itemsFromRefs([`${reg.host}/sv/corrupt:v1`]), tar, {
        sourceRegistry: sourceRegistry(),
        concurrency: { blobs: 1 },
      });
      expect(rep.failures.map((f) => f.code)).toEqual(['ERR_DIGEST_MISMATCH']);
      expect(rep.files).toEqual([]);
      // No archive from a failed batch; the working layout stays for a resume, without the bad blob or a temp file.
      expect((await readdir(join(tmp.path, 'save-bad'))).sort()).toEqual(['bundle.tar.layout']);
      const layoutDir = join(tmp.path, 'save-bad', 'bundle.tar.layout');
      const names = await rehashBlobs(join(layoutDir, 'blobs', 'sha256'));
      expect(names).not.toContain(layer.slice(7));
      await expect(stat(join(layoutDir, 'blobs', 'sha256', layer.slice(7)))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(
        (JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: unknown[] }).manifests,
      ).toEqual([]);
    } finally {
      await writeFile(file, good);
    }
  });
});
