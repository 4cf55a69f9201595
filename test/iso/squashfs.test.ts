/**
 * writeSquashfs against the real squashfs readers: a tree on disk (built as root: owners, devices, setuid, hardlinks,
 * xattrs) goes through walkDirectory into our writer and through mksquashfs; `unsquashfs -lln` listings must match,
 * sqfsdiff must find equal contents, unsquashfs extraction must be byte-identical and the kernel must mount it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chown, lutimes, mkdir, readdir, readFile, symlink, link, writeFile, chmod, open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsEntry } from '../../src/tar/entry.js';
import { walkDirectory, writeSquashfs } from '../../src/iso/squashfs/index.js';
import type { SquashfsOptions } from '../../src/iso/squashfs/index.js';
import { run, tmpDir } from '../helpers/tools.js';
import { nativeAvailable } from '../../src/native/load.js';

const MiB = 1 << 20;
const T = 1_700_000_000;
const MANY = 600; // ~29 KiB of directory data: several metadata blocks, so the directory index is used
const manyName = (i: number): string => `entry-with-a-rather-long-name-${String(i).padStart(4, '0')}.conf`;
const XATTRS: Record<string, Record<string, Buffer>> = {
  'bin/ping': { 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex') },
  'etc/tiny-0.txt': { 'user.foo': Buffer.from('bar'), 'trusted.t': Buffer.from([0, 1, 2]) },
  etc: { 'user.dir': Buffer.from('yes') },
};

let tmp: { path: string; cleanup(): Promise<void> };
let src: string;

async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function writeRandom(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  for (let left = size; left > 0; left -= MiB) await fh.write(randomBytes(Math.min(MiB, left)));
  await fh.close();
}

/** Every path under `dir`, deepest first (for setting directory mtimes after their contents). */
async function allPaths(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...(await allPaths(dir, p)));
    out.push(p);
  }
  return out;
}

async function buildTree(root: string): Promise<void> {
  for (const d of ['etc', 'bin', 'dev', 'many', 'sticky', 'sgid', 'a', 'b'])
    await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, 'empty'), '');
  await writeRandom(join(root, 'exact'), MiB);
  await writeRandom(join(root, 'plus1'), MiB + 1);
  await writeRandom(join(root, 'big30'), 30 * 1000 * 1000);
  await writeFile(join(root, 'big30.copy'), await readFile(join(root, 'big30'))); // dedupe candidate
  await writeFile(join(root, 'zeros'), Buffer.alloc(3 * MiB + 17)); // sparse blocks
  await writeFile(join(root, 'text'), 'the quick brown fox jumps over the lazy dog\n'.repeat(60_000));
  for (let i = 0; i < 40; i++) await writeFile(join(root, `etc/tiny-${i}.txt`), randomBytes(1 + i * 97));
  await writeFile(join(root, 'etc/tiny-dup.txt'), await readFile(join(root, 'etc/tiny-3.txt')));
  for (let i = 0; i < MANY; i++) await writeFile(join(root, 'many', manyName(i)), `${i}\n`);
  let deep = join(root, 'deep');
  for (let i = 0; i < 40; i++) deep = join(deep, `level${i}`);
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'leaf'), 'bottom\n');
  await writeFile(join(root, 'bin/ping'), randomBytes(5000));
  await chmod(join(root, 'bin/ping'), 0o4755);
  await writeFile(join(root, 'bin/sgid'), 'x');
  await chmod(join(root, 'bin/sgid'), 0o2711);
  await chmod(join(root, 'sticky'), 0o1777);
  await chmod(join(root, 'sgid'), 0o2750);
  await writeFile(join(root, 'a/h1'), 'hardlinked content\n');
  await link(join(root, 'a/h1'), join(root, 'a/h2'));
  await link(join(root, 'a/h1'), join(root, 'b/h3'));
  await symlink('../etc/tiny-0.txt', join(root, 'b/rel'));
  await symlink('/usr/bin/env', join(root, 'b/abs'));
  await symlink('nowhere', join(root, 'b/dangling'));
  await sh('mknod', [join(root, 'dev/null'), 'c', '1', '3']);
  await sh('mknod', [join(root, 'dev/sda1'), 'b', '8', '1']);
  await sh('mknod', [join(root, 'dev/bigminor'), 'c', '240', '300000']);
  await sh('mkfifo', [join(root, 'dev/fifo')]);
  await chown(join(root, 'etc/tiny-1.txt'), 1000, 1000);
  await chown(join(root, 'b'), 65534, 65534);
  await chown(join(root, 'a/h1'), 123456, 7);
  for (const [p, xs] of Object.entries(XATTRS)) {
    for (const [k, v] of Object.entries(xs))
      await sh('setfattr', ['-n', k, '-v', `0x${v.toString('hex')}`, join(root, p)]);
  }
  for (const p of await allPaths(root)) await lutimes(join(root, p), T, T);
  await lutimes(root, T, T);
}

/** walkDirectory plus the xattrs this test set (walkDirectory does not read xattrs). */
async function* walkWithXattrs(dir: string): AsyncGenerator<FsEntry> {
  for await (const e of walkDirectory(dir)) yield XATTRS[e.path] ? { ...e, xattrs: XATTRS[e.path] } : e;
}

async function ours(name: string, opts: SquashfsOptions = {}): Promise<string> {
  const out = join(tmp.path, name);
  await writeSquashfs(walkWithXattrs(src), out, { mkfsTime: T, ...opts });
  return out;
}

const listing = (img: string): Promise<string> => sh('unsquashfs', ['-lln', img]);
const sha = async (p: string): Promise<string> => {
  const h = createHash('sha256');
  for await (const b of createReadStream(p)) h.update(b as Buffer);
  return h.digest('hex');
};

beforeAll(async () => {
  tmp = await tmpDir('canvos-sqfs-');
  src = join(tmp.path, 'src');
  await mkdir(src);
  await buildTree(src);
}, 300_000);
afterAll(async () => {
  await run('umount', [join(tmp.path, 'mnt')]);
  await tmp.cleanup();
});

describe('writeSquashfs vs mksquashfs', () => {
  for (const [bs, opts] of [
    [MiB, {}],
    [4096, { blockSize: 4096, fragments: false, dedupe: false, level: 1 }],
    [65536, { blockSize: 65536, concurrency: 1, level: nativeAvailable() ? 12 : 9 }],
  ] as const) {
    it(`lists and extracts identically (block size ${bs}, ${JSON.stringify(opts)})`, async () => {
      const img = await ours(`ours-${bs}.sqfs`, opts);
      const ref = join(tmp.path, `ref-${bs}.sqfs`);
      await sh('mksquashfs', [src, ref, '-noappend', '-b', String(bs), '-comp', 'gzip', '-quiet', '-no-progress']);
      const [a, b] = await Promise.all([listing(img), listing(ref)]);
      expect(a.split('\n').length).toBeGreaterThan(MANY + 100);
      expect(a).toBe(b);
      // Second reader (squashfs-tools-ng): contents, owners, permissions, timestamps.
      const diff = await run('sqfsdiff', ['-T', '-a', ref, '-b', img]);
      expect(diff.stdout + diff.stderr).toBe('');
      expect(diff.code).toBe(0);
      // unsquashfs -s decodes our superblock; bytes_used is what the tools trust.
      const s = await sh('unsquashfs', ['-s', img]);
      expect(s).toContain(`Block size ${bs}`);
      expect(s).toContain('Compression gzip');
    });
  }

  it('extracts byte-identical files with owners, modes, devices and hardlinks (unsquashfs -d as root)', async () => {
    const img = await ours('extract.sqfs');
    const out = join(tmp.path, 'extract');
    await sh('unsquashfs', ['-d', out, img]);
    for (const f of [
      'empty',
      'exact',
      'plus1',
      'big30',
      'big30.copy',
      'zeros',
      'text',
      'etc/tiny-39.txt',
      'etc/tiny-dup.txt',
    ]) {
      expect(await sha(join(out, f)), f).toBe(await sha(join(src, f)));
    }
    const fmt = '%y %m %U %G %T@ %P %l\n';
    const norm = (s: string): string[] => s.split('\n').filter(Boolean).sort();
    expect(norm(await sh('find', [out, '-not', '-type', 'd', '-printf', `%s ${fmt}`]))).toEqual(
      norm(await sh('find', [src, '-not', '-type', 'd', '-printf', `%s ${fmt}`])),
    );
    expect(norm(await sh('find', [out, '-type', 'd', '-printf', fmt]))).toEqual(
      norm(await sh('find', [src, '-type', 'd', '-printf', fmt])),
    );
    const devs = ['dev/null', 'dev/sda1', 'dev/bigminor'];
    const st = (root: string): Promise<string> => sh('stat', ['-c', '%F %t %T', ...devs.map((d) => join(root, d))]);
    expect(await st(out)).toBe(await st(src));
    expect(await st(out)).toContain('character special file f0 493e0');
    // The image stores one inode for the three hardlinked names, with link count 3.
    const info = await sh('rdsquashfs', ['-s', '/b/h3', img]);
    expect(info).toMatch(/Hard link count: 3/);
    expect(await sh('getfattr', ['-d', '-m', '-', '-e', 'hex', join(out, 'bin/ping')])).toContain(
      'security.capability=0x0100000200200000000000000000000000000000',
    );
  });

  it('is reproducible: the same entries give the same bytes, whatever the concurrency', async () => {
    const a = await ours('r1.sqfs', { concurrency: 1 });
    const b = await ours('r2.sqfs', { concurrency: 4 });
    expect(await sha(a)).toBe(await sha(b));
  });

  it('mounts with the kernel (mount -t squashfs -o loop,ro) and matches the source tree', async (ctx) => {
    const img = await ours('mount.sqfs');
    const mnt = join(tmp.path, 'mnt');
    await mkdir(mnt, { recursive: true });
    const m = await run('mount', ['-t', 'squashfs', '-o', 'loop,ro', img, mnt]);
    if (m.code !== 0) {
      console.warn(`squashfs kernel mount not permitted in this sandbox, skipping: ${m.stderr.trim()}`);
      ctx.skip();
      return;
    }
    try {
      const fmt = '%m %U %G %T@ %p %l\n';
      const find = async (root: string, args: string[]): Promise<string[]> =>
        (await run('find', ['.', ...args, '-printf', fmt], { cwd: root })).stdout.split('\n').sort();
      expect(await find(mnt, ['-type', 'd'])).toEqual(await find(src, ['-type', 'd']));
      const files = async (root: string): Promise<string[]> =>
        (await run('find', ['.', '-not', '-type', 'd', '-printf', `%s ${fmt}`], { cwd: root })).stdout
          .split('\n')
          .sort();
      expect(await files(mnt)).toEqual(await files(src));
      expect(await sha(join(mnt, 'big30'))).toBe(await sha(join(src, 'big30')));
      expect(await sha(join(mnt, 'plus1'))).toBe(await sha(join(src, 'plus1')));
      // Lookups by name go through the directory index of the large directory.
      const names = Array.from({ length: MANY }, (_, i) => join(mnt, 'many', manyName(i)));
      expect((await sh('stat', ['-c', '%s', ...names])).split('\n').filter(Boolean)).toHaveLength(MANY);
      expect(await readFile(join(mnt, 'many', manyName(MANY - 1)), 'utf8')).toBe(`${MANY - 1}\n`);
      expect(await sh('rdsquashfs', ['-s', '/many', img])).toMatch(/extended directory/i);
      const hl = await sh('stat', ['-c', '%i %h', join(mnt, 'a/h1'), join(mnt, 'a/h2'), join(mnt, 'b/h3')]);
      const lines = hl.trim().split('\n');
      expect(new Set(lines).size).toBe(1);
      expect(lines[0]).toMatch(/ 3$/);
      const x = await sh('getfattr', [
        '-d',
        '-m',
        '-',
        '-e',
        'hex',
        join(mnt, 'etc/tiny-0.txt'),
        join(mnt, 'etc'),
        join(mnt, 'bin/ping'),
      ]);
      expect(x).toContain('user.foo=0x626172');
      expect(x).toContain('trusted.t=0x000102');
      expect(x).toContain('user.dir=0x796573');
      expect(x).toContain('security.capability=0x01000002002');
      expect(await sh('stat', ['-c', '%F %t %T', join(mnt, 'dev/sda1')])).toBe('block special file 8 1\n');
    } finally {
      await run('umount', [mnt]);
    }
  });
});

describe('writeSquashfs metadata layout vs mksquashfs when the inode table spans many metadata blocks', () => {
  // 1200 files of one block plus a tail (4 KiB blocks): ~50 KB of inodes, so directory runs split at inode-block
  // boundaries, and a directory's size (its run headers) only matches mksquashfs when every inode before it has the
  // same size, i.e. when tail ends are placed as mksquashfs places them.
  let layout: string;
  beforeAll(async () => {
    layout = join(tmp.path, 'layout');
    for (let d = 0; d < 3; d++) {
      const dir = join(layout, `dir${d}`);
      await mkdir(dir, { recursive: true });
      for (let i = 0; i < 400; i++) {
        await writeFile(
          join(dir, `library-object-${String(i).padStart(3, '0')}.bin`),
          randomBytes(4097 + (((d * 400 + i) * 613) % 5000)),
        );
      }
      await writeFile(join(dir, 'small.txt'), `small ${d}\n`);
    }
    for (const p of await allPaths(layout)) await lutimes(join(layout, p), T, T);
    await lutimes(layout, T, T);
  }, 300_000);

  for (const [name, opts, extra] of [
    ['default', {}, []],
    ['alwaysUseFragments', { alwaysUseFragments: true }, ['-always-use-fragments']],
  ] as const) {
    it(`lists exactly like mksquashfs${extra.length ? ` ${extra.join(' ')}` : ''} (${name}), directory sizes included`, async () => {
      const img = join(tmp.path, `layout-${name}.sqfs`);
      await writeSquashfs(walkDirectory(layout), img, { mkfsTime: T, blockSize: 4096, ...opts });
      const ref = join(tmp.path, `layout-ref-${name}.sqfs`);
      await sh('mksquashfs', [
        layout,
        ref,
        '-noappend',
        '-b',
        '4096',
        '-comp',
        'gzip',
        '-quiet',
        '-no-progress',
        ...extra,
      ]);
      const [a, b] = await Promise.all([listing(img), listing(ref)]);
      expect(a.split('\n').length).toBeGreaterThan(1200);
      expect(a).toBe(b);
      if (name === 'default') {
        // Only the 3 small files share fragment blocks (mksquashfs -always-use-fragments packs tails a little
        // differently from us: 707 vs 706 fragment blocks here, so that count is not compared).
        const frags = (s: string): string => /Number of fragments (\d+)/.exec(s)?.[1] ?? '?';
        expect(frags(await sh('unsquashfs', ['-s', img]))).toBe('1');
        expect(frags(await sh('unsquashfs', ['-s', ref]))).toBe('1');
      }
      const diff = await run('sqfsdiff', ['-T', '-a', ref, '-b', img]);
      expect(diff.stdout + diff.stderr).toBe('');
      expect(diff.code).toBe(0);
    });
  }
});
