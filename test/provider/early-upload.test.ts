// EarlyUploads against a real registry: built blobs go to every repository once, and a blob file written to after
// it was built fails its upload with an error naming the file, before the registry has the blob.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProgressEvent } from '../../src/image/types.js';
import { MediaType } from '../../src/image/media-types.js';
import { EarlyUploads, type EarlyBlob } from '../../src/provider/early-upload.js';
import { openDestination } from '../../src/transports/resolve-location.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tmpDir } from '../helpers/tools.js';

let reg: TestRegistry;
let tmp: Awaited<ReturnType<typeof tmpDir>>;
beforeAll(async () => {
  [reg, tmp] = await Promise.all([startRegistry(), tmpDir('canvos-early-')]);
});
afterAll(async () => {
  await reg.stop();
  await tmp.cleanup();
});

async function blobFile(name: string, bytes: Buffer): Promise<EarlyBlob> {
  const path = join(tmp.path, name);
  await writeFile(path, bytes);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as const;
  return { path, digest, size: bytes.length, mediaType: MediaType.OciLayerGzip };
}

async function has(repo: string, digest: string): Promise<boolean> {
  return (await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status === 200;
}

const registry = () => ({ insecureRegistries: [reg.host], authFiles: [] as string[] });

describe('EarlyUploads', () => {
  it('uploads each blob once to each repository that holds it', async () => {
    const events: ProgressEvent[] = [];
    const early = new EarlyUploads({ registry: registry(), onProgress: (e) => events.push(e) });
    const a = await blobFile('a', randomBytes(3 << 20));
    const b = await blobFile('b', randomBytes(1000));
    early.add(a, [`${reg.host}/e/one`, `${reg.host}/e/two`, `${reg.host}/e/one`]);
    early.add(b, [`${reg.host}/e/one`]);
    early.add(a, [`${reg.host}/e/two`]);
    await early.settle();
    await early.close();
    expect([await has('e/one', a.digest), await has('e/two', a.digest), await has('e/one', b.digest)]).toEqual([
      true,
      true,
      true,
    ]);
    expect(events.filter((e) => e.phase === 'write-blob').map((e) => e.status)).toEqual([
      'uploaded',
      'uploaded',
      'uploaded',
    ]);
  });

  it('a blob file written to after it was built fails the upload, naming the file; the registry never has it', async () => {
    const early = new EarlyUploads({ registry: registry() });
    const blob = await blobFile('changed', randomBytes(1 << 20));
    early.add(blob, [`${reg.host}/e/changed`]);
    // Same size, other bytes: only the file's identity (ctime, mtime) tells.
    writeFileSync(blob.path, randomBytes(1 << 20));
    const err = await early.settle().then(
      () => undefined,
      (e: unknown) => e,
    );
    await early.close();
    expect(err).toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
      message: `layer blob ${blob.path} (${blob.digest}) changed after it was built`,
    });
    expect(await has('e/changed', blob.digest)).toBe(false);
  });
});

describe('EarlyUploads into an OCI layout', () => {
  it('stages the blobs in the first image destination: taken over and committed they are in the layout, else nothing is left', async () => {
    const blob = await blobFile('layout-blob', randomBytes(2 << 20));
    for (const takeOver of [true, false]) {
      const dir = join(tmp.path, `layout-${String(takeOver)}`);
      const early = new EarlyUploads({ open: (d) => openDestination(`oci:${d}:first`) });
      early.add(blob, [dir]);
      await early.settle();
      const d = takeOver ? early.take(dir) : undefined;
      await early.close();
      if (d) {
        expect(await d.hasBlob({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size })).toBe(true);
        await d.commit();
        await d.close();
        expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([blob.digest.slice(7)]);
      } else {
        // Not taken over (a failed build): the staged layout is discarded, DIR never appears.
        expect(await readdir(tmp.path)).not.toContain(`layout-${String(takeOver)}`);
        expect((await readdir(tmp.path)).filter((n) => n.includes('partial'))).toEqual([]);
      }
    }
  });
});
