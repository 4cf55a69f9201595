/**
 * Host mtimes are whole seconds truncated exactly, like GNU tar and mksquashfs: a float `mtimeMs` would round
 * x.999999999 s up to the next second (1700000000999.999999 ms is not a double), so both host walkers read
 * nanoseconds (bigint lstat). Checked against GNU tar's own reading of the same file.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLayer, readLayer } from '../../src/layers/index.js';
import { walkDirectory } from '../../src/iso/squashfs/index.js';
import { tmpDir } from '../helpers/tools.js';

describe('host mtimes at x.999999999 s', () => {
  let tmp: { path: string; cleanup(): Promise<void> };
  let host: string;
  beforeAll(async () => {
    tmp = await tmpDir('canvos-mtime-');
    host = join(tmp.path, 'tree');
    await mkdir(join(host, 'sub'), { recursive: true });
    await writeFile(join(host, 'sub', 'f'), 'x');
    execFileSync('touch', ['-h', '-d', '@1700000000.999999999', join(host, 'sub', 'f'), join(host, 'sub'), host]);
  });
  afterAll(async () => tmp?.cleanup());

  it('GNU tar records 1700000000 (the oracle)', () => {
    const out = execFileSync('tar', ['--full-time', '-C', host, '-cvvf', '/dev/null', 'sub/f'], { encoding: 'utf8' });
    expect(out).toContain('2023-11-14 22:13:20');
  });

  it('a tree layer entry carries 1700000000, not 1700000001', async () => {
    const layer = await buildLayer(
      { entries: [{ type: 'tree', path: '/opt/t', host }] },
      { dir: tmp.path, sourceDateEpoch: 2_000_000_000 },
    );
    const seen = new Map<string, number>();
    for await (const e of readLayer(createReadStream(layer.path))) {
      seen.set(e.path, e.mtime);
      if ('content' in e && e.content) e.content.resume();
    }
    expect(seen.get('opt/t/sub/f')).toBe(1700000000);
    expect(seen.get('opt/t/sub')).toBe(1700000000);
  });

  it('a PAX mtime of 1700000000.999999999 (GNU tar --format=pax) reads as 1700000000', async () => {
    const tarFile = join(tmp.path, 'pax.tar');
    execFileSync('tar', ['--format=pax', '-C', host, '-cf', tarFile, 'sub/f']);
    expect(execFileSync('tar', ['--full-time', '-tvf', tarFile], { encoding: 'utf8' })).toContain(
      '2023-11-14 22:13:20',
    );
    let mtime: number | undefined;
    for await (const e of readLayer(createReadStream(tarFile))) {
      if (e.path === 'sub/f') mtime = e.mtime;
      if ('content' in e && e.content) e.content.resume();
    }
    expect(mtime).toBe(1700000000);
  });

  it('walkDirectory (squashfs input) carries 1700000000', async () => {
    const seen = new Map<string, number>();
    for await (const e of walkDirectory(host)) {
      seen.set(e.path, e.mtime);
      if (e.type === 'file') e.content?.destroy();
    }
    expect(seen.get('sub/f')).toBe(1700000000);
    expect(seen.get('')).toBe(1700000000);
  });
});
