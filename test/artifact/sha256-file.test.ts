/**
 * Regression: sha256File used to pipe the file into a pass-through nobody read, so it never settled for files
 * over 16 KiB (iso --push hung and Node exited 13). publishWithSha256 is the ISO/disk `.sha256` writer.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishWithSha256, sha256File } from '../../src/image/digest.js';
import { tmpDir } from '../helpers/tools.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tmpDir('canvos-sha-');
});
afterAll(async () => {
  await dir.cleanup();
});

describe('file digests', () => {
  it('sha256File hashes a 3 MiB file', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024, 7);
    await writeFile(join(dir.path, 'big'), data);
    const r = await sha256File(join(dir.path, 'big'));
    expect(r).toEqual({ digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length });
  });

  it('publishWithSha256 renames the partial and writes a sha256sum line', async () => {
    await writeFile(join(dir.path, 'x.raw.partial'), 'abc');
    const hex = await publishWithSha256(join(dir.path, 'x.raw.partial'), join(dir.path, 'x.raw'));
    expect(await readFile(join(dir.path, 'x.raw.sha256'), 'utf8')).toBe(`${hex}  x.raw\n`);
    expect((await readdir(dir.path)).filter((f) => f.startsWith('x.'))).toEqual(['x.raw', 'x.raw.sha256']);
  });
});
