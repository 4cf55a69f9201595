/**
 * The ISO's squashfs moved into a sparse placeholder (sparse-iso.ts): writeSparse leaves zero blocks as holes,
 * moveIntoExtents fills several extents from the end and consumes its source, and an ISO built by buildIso is
 * byte-identical to xorriso writing the same tree (real squashfs inside) straight to a file, with its squashfs
 * intact (unsquashfs lists it).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, readFile, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIso } from '../../src/iso/build-iso.js';
import { runXorriso } from '../../src/iso/run-xorriso.js';
import { moveIntoExtents, writeIso } from '../../src/iso/sparse-iso.js';
import { writeSparse } from '../../src/iso/sparse-write.js';
import { xorrisoArgs } from '../../src/iso/xorriso-args.js';
import { layoutRootfs, prepareBootFixture } from '../helpers/boot-fixture.js';
import { run, tmpDir } from '../helpers/tools.js';

let dir: Awaited<ReturnType<typeof tmpDir>>;
let layout: string;
/** The tree of the first buildIso test's ISO (real squashfs inside) and the ISO xorriso writes from it. */
let tree: string | undefined;
let direct: string | undefined;
beforeAll(async () => {
  dir = await tmpDir('canvos-sparse-iso-');
  layout = (await prepareBootFixture()).layoutDir;
}, 600_000);
afterAll(async () => {
  await dir?.cleanup();
});

describe('writeSparse', () => {
  it('writes the same bytes, leaving aligned all-zero 4 KiB blocks (and a zero tail) as holes', async () => {
    const data = randomBytes(10_000);
    const zeros = Buffer.alloc(8 << 20);
    // Odd chunk sizes: blocks straddle chunks.
    const parts = [data.subarray(0, 3000), data.subarray(3000), zeros.subarray(0, 5000), zeros.subarray(5000)];
    const expected = Buffer.concat([data, zeros, Buffer.from('end'), Buffer.alloc(6000)]);
    const out = join(dir.path, 'sparse.bin');
    const n = await writeSparse(Readable.from([...parts, Buffer.from('end'), Buffer.alloc(6000)]), out);
    expect(n).toBe(expected.length);
    expect((await readFile(out)).equals(expected)).toBe(true);
    // The data and "end" blocks only: far below the 8 MiB of zeros.
    expect((await stat(out)).blocks * 512).toBeLessThan(64 * 1024);
  });
});

describe('runXorriso with stdoutTo', () => {
  it('fails with the sink error (xorriso stopped) when the output cannot be written', async () => {
    await writeFile(join(dir.path, 'small-file'), 'x');
    const bad = join(dir.path, 'no-such-dir', 'out.iso');
    const args = ['-outdev', 'stdio:/dev/fd/1', '-map', join(dir.path, 'small-file'), '/f'];
    const err = await runXorriso(args, { stdoutTo: bad }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(existsSync(bad)).toBe(false);
  });
});

describe('moveIntoExtents', () => {
  it('fills every extent from the end backwards and removes the source', async () => {
    const src = join(dir.path, 'src.bin');
    const iso = join(dir.path, 'target.bin');
    const content = randomBytes(20 << 20); // several 8 MiB chunks
    await writeFile(src, content);
    await writeFile(iso, Buffer.alloc(64 << 20));
    const extents = [
      { isoOffset: 1 << 20, fileOffset: 0, bytes: 12 << 20 },
      { isoOffset: 40 << 20, fileOffset: 12 << 20, bytes: 8 << 20 },
    ];
    await moveIntoExtents(src, iso, extents);
    expect(existsSync(src)).toBe(false);
    const out = await readFile(iso);
    expect(out.length).toBe(64 << 20);
    expect(out.subarray(1 << 20, 13 << 20).equals(content.subarray(0, 12 << 20))).toBe(true);
    expect(out.subarray(40 << 20, 48 << 20).equals(content.subarray(12 << 20))).toBe(true);
    expect(out.subarray(13 << 20, 40 << 20).every((b) => b === 0)).toBe(true);
  });

  it('refuses extents that do not add up to the file', async () => {
    const src = join(dir.path, 'short.bin');
    await writeFile(src, randomBytes(100));
    await expect(moveIntoExtents(src, src, [{ isoOffset: 0, fileOffset: 0, bytes: 50 }])).rejects.toThrow(
      /100 bytes, its ISO extents 50/,
    );
  });
});

describe('buildIso through the placeholder', () => {
  it('gives the bytes xorriso writes to a file from the same tree, with the squashfs intact', async () => {
    const env = { PATH: process.env.PATH };
    const res = await buildIso(
      { rootfs: await layoutRootfs(layout), outputDir: join(dir.path, 'out'), name: 'sp' },
      { env, sourceDateEpoch: 1_700_000_000 },
    );
    const isoBytes = (await stat(res.isoPath)).size;
    // The old way: the whole tree, real squashfs included, extracted and given to xorriso writing a file.
    tree = join(dir.path, 'tree');
    expect((await run('xorriso', ['-osirrox', 'on', '-indev', res.isoPath, '-extract', '/', tree])).code).toBe(0);
    expect((await run('chmod', ['-R', 'u+w', tree])).code).toBe(0);
    direct = join(dir.path, 'direct.iso');
    const args = xorrisoArgs({ isoDir: tree, outPath: direct, sourceDateEpoch: 1_700_000_000 });
    const r = await run('xorriso', args, { env });
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(direct)).equals(await readFile(res.isoPath))).toBe(true);
    const ls = await run('unsquashfs', ['-l', join(tree, 'rootfs.squashfs')]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('squashfs-root/etc/canvos-test-marker');
    const check = await run('xorriso', ['-indev', res.isoPath, '-check_media', '--']);
    expect(check.code, check.stderr).toBe(0);
    expect(isoBytes % 2048).toBe(0);
  }, 240_000);

  it('keeps the placeholders off the tree on a tmpfs (or in the tree): the same bytes either way', async () => {
    if (!tree || !direct) throw new Error('needs the ISO and tree of the test before');
    // A wrapper that logs xorriso's arguments, to see where the placeholders were.
    const log = join(dir.path, 'xorriso-args.log');
    const wrapper = join(dir.path, 'xorriso-wrapper');
    await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$@" >> '${log}'\nexec xorriso "$@"\n`);
    await chmod(wrapper, 0o755);
    for (const placeholders of ['auto', 'tree'] as const) {
      const isoDir = join(dir.path, `tree-${placeholders}`);
      await cp(tree, isoDir, { recursive: true });
      await writeFile(log, '');
      const out = join(dir.path, `${placeholders}.iso`);
      const moveIn = ['rootfs.squashfs', 'boot/kernel', 'boot/initrd'];
      await writeIso(
        { isoDir, outPath: out, sourceDateEpoch: 1_700_000_000, moveIn, placeholders },
        { xorriso: wrapper },
      );
      expect((await readFile(out)).equals(await readFile(direct)), placeholders).toBe(true);
      const args = (await readFile(log, 'utf8')).split('\n');
      // With a tmpfs at /dev/shm (here and on CI), 'auto' maps the three placeholders from there.
      const shm = (await statfs('/dev/shm').catch(() => undefined))?.type === 0x01021994;
      if (!shm) continue;
      const fromShm = args.filter((a) => a.startsWith('/dev/shm/canvos-iso-'));
      expect(fromShm.length, args.join(' ')).toBe(placeholders === 'auto' ? 3 : 0);
      for (const p of moveIn) expect(existsSync(join(isoDir, p))).toBe(placeholders === 'tree');
      for (const p of fromShm) expect(existsSync(p)).toBe(false);
    }
  }, 120_000);
});
