/**
 * writeSquashfs fed directly with FsEntry streams the way a merged layer stream arrives: any order, missing parent
 * directories, hardlinks before their targets, xattrs on every inode type, a > 4 GiB file, and the error paths.
 * Oracles: unsquashfs -lln, rdsquashfs (squashfs-tools-ng) and the kernel via a loop mount where permitted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import type { FsEntry } from '../../src/tar/entry.js';
import { writeSquashfs } from '../../src/iso/squashfs/index.js';
import type { SquashfsProgress } from '../../src/iso/squashfs/index.js';
import { run, tmpDir } from '../helpers/tools.js';

let tmp: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  tmp = await tmpDir('canvos-sqfs-entries-');
});
afterAll(async () => {
  await tmp.cleanup();
});

async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1_600_000_000, size: 0 };
type Spec = Omit<FsEntry, 'content'> & { data?: Buffer };
const file = (path: string, data: Buffer | string, extra: Partial<Spec> = {}): Spec => {
  const d = Buffer.from(data);
  return { ...base, path, type: 'file', size: d.length, data: d, ...extra };
};

async function* stream(specs: readonly Spec[]): AsyncGenerator<FsEntry> {
  for (const { data, ...e } of specs) yield data ? { ...e, content: Readable.from([data]) } : e;
}

const specs: Spec[] = [
  // Children before their directory, and usr/ never appears: it must become an implicit 0755 root dir.
  file('etc/ssl/cert.pem', 'CERT\n', { uid: 33, gid: 44 }),
  { ...base, path: 'usr/bin/link-first', type: 'hardlink', linkname: 'usr/bin/target' },
  file('usr/bin/target', 'hard\n', { mode: 0o755 }),
  { ...base, path: 'etc', type: 'directory', mode: 0o750, uid: 5, gid: 6, xattrs: { 'user.dir': Buffer.from('d') } },
  { ...base, path: 'etc/ssl', type: 'directory', mode: 0o755 },
  file('usr/bin/cap', 'capable', {
    xattrs: {
      'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'),
      'system.posix_acl_access': Buffer.from('dropped'),
    },
  }),
  {
    ...base,
    path: 'dev/console',
    type: 'char',
    mode: 0o600,
    devmajor: 5,
    devminor: 1,
    xattrs: { 'trusted.dev': Buffer.from('c') },
  },
  { ...base, path: 'dev/loop0', type: 'block', mode: 0o660, devmajor: 7, devminor: 0 },
  { ...base, path: 'run/fifo', type: 'fifo', xattrs: { 'trusted.f': Buffer.from('f') } },
  {
    ...base,
    path: 'lib',
    type: 'symlink',
    mode: 0o777,
    linkname: 'usr/lib',
    xattrs: { 'trusted.l': Buffer.from('l') },
  },
  { ...base, path: 'usr/bin/link-chain', type: 'hardlink', linkname: 'usr/bin/link-first' },
  { ...base, path: '', type: 'directory', mode: 0o755, mtime: 1_600_000_001 },
];

describe('writeSquashfs with FsEntry streams', () => {
  it('accepts any order, creates implicit directories and resolves hardlinks to later targets', async () => {
    const img = join(tmp.path, 'order.sqfs');
    const res = await writeSquashfs(stream(specs), img, { mkfsTime: 1234 });
    expect(res).toMatchObject({ inodes: 14, files: 3, dirs: 7 });
    const list = await sh('unsquashfs', ['-lln', img]);
    expect(list).toMatch(/^drwxr-xr-x 0\/0 +\d+ 1970-01-01 00:20 squashfs-root\/usr$/m);
    expect(list).toMatch(/^drwxr-x--- 5\/6 +\d+ 2020-09-13 12:26 squashfs-root\/etc$/m);
    expect(list).toMatch(/^-rw-r--r-- 33\/44 +5 .* squashfs-root\/etc\/ssl\/cert.pem$/m);
    expect(list).toMatch(/^crw------- 0\/0 +5, +1 .* squashfs-root\/dev\/console$/m);
    expect(list).toMatch(/^brw-rw---- 0\/0 +7, +0 .* squashfs-root\/dev\/loop0$/m);
    expect(list).toMatch(/^prw-r--r-- 0\/0 .* squashfs-root\/run\/fifo$/m);
    expect(list).toMatch(/^lrwxrwxrwx 0\/0 .* squashfs-root\/lib -> usr\/lib$/m);
    for (const p of ['target', 'link-first', 'link-chain']) {
      expect(await sh('rdsquashfs', ['-s', `/usr/bin/${p}`, img])).toMatch(/Hard link count: 3/);
      expect(await sh('rdsquashfs', ['-c', `/usr/bin/${p}`, img])).toBe('hard\n');
    }
    // xattrs on a file, a directory, a device, a fifo and a symlink (extended inodes); system.* is dropped.
    // (trusted.* on the special files: the kernel hides user.* on anything but files and directories.)
    const x = (p: string): Promise<string> => sh('rdsquashfs', ['-x', p, img]);
    expect(await x('/usr/bin/cap')).toContain('security.capability');
    expect(await x('/usr/bin/cap')).not.toContain('system.');
    expect(await x('/etc')).toContain('user.dir');
    expect(await x('/dev/console')).toContain('trusted.dev');
    expect(await x('/run/fifo')).toContain('trusted.f');
    expect(await x('/lib')).toContain('trusted.l');
    expect(await sh('unsquashfs', ['-s', img])).not.toContain('Xattrs are not stored');
    // The order of the stream does not change the listing.
    const rev = join(tmp.path, 'reverse.sqfs');
    await writeSquashfs(stream([...specs].reverse()), rev, { mkfsTime: 1234 });
    expect(await sh('unsquashfs', ['-lln', rev])).toBe(list);
  });

  it('mounts an image with xattrs on every inode type (kernel reader)', async (ctx) => {
    const img = join(tmp.path, 'xmount.sqfs');
    await writeSquashfs(stream(specs), img);
    const mnt = join(tmp.path, 'xmnt');
    await sh('mkdir', ['-p', mnt]);
    const m = await run('mount', ['-t', 'squashfs', '-o', 'loop,ro', img, mnt]);
    if (m.code !== 0) {
      console.warn(`squashfs kernel mount not permitted in this sandbox, skipping: ${m.stderr.trim()}`);
      ctx.skip();
      return;
    }
    try {
      const g = await sh('getfattr', [
        '-h',
        '-d',
        '-m',
        '-',
        '-e',
        'text',
        ...['usr/bin/cap', 'etc', 'dev/console', 'run/fifo', 'lib'].map((p) => join(mnt, p)),
      ]);
      for (const k of ['security.capability', 'user.dir="d"', 'trusted.dev="c"', 'trusted.f="f"', 'trusted.l="l"'])
        expect(g).toContain(k);
      expect(await sh('stat', ['-c', '%h %i', join(mnt, 'usr/bin/target'), join(mnt, 'usr/bin/link-chain')])).toMatch(
        /^3 (\d+)\n3 \1\n$/,
      );
    } finally {
      await run('umount', [mnt]);
    }
  });

  it('stores a file larger than 4 GiB (extended inode, sparse zero blocks)', async () => {
    const size = 4 * 1024 ** 3 + 3;
    const zero = Buffer.alloc(1 << 20);
    async function* content(): AsyncGenerator<Buffer> {
      for (let left = size - 3; left > 0; left -= zero.length) yield zero;
      yield Buffer.from('end');
    }
    const img = join(tmp.path, 'large.sqfs');
    async function* one(): AsyncGenerator<FsEntry> {
      yield { ...base, path: 'big', type: 'file', size, content: Readable.from(content()) };
    }
    const res = await writeSquashfs(one(), img, { dedupe: false });
    expect(res.bytes).toBeLessThan(1 << 20);
    const s = await sh('rdsquashfs', ['-s', '/big', img]);
    expect(s).toMatch(/Inode type: extended file/);
    expect(s).toContain(`File size: ${size}`);
    expect(await sh('unsquashfs', ['-lln', img])).toMatch(
      new RegExp(`^-rw-r--r-- 0/0 +${size} .*squashfs-root/big$`, 'm'),
    );
    // Read the last bytes back: through the kernel (seeks) when loop mounts work, else squashfs-tools-ng's reader.
    const mnt = join(tmp.path, 'lmnt');
    await sh('mkdir', ['-p', mnt]);
    const mounted = (await run('mount', ['-t', 'squashfs', '-o', 'loop,ro', img, mnt])).code === 0;
    const cmd = mounted ? `tail -c 4 '${mnt}/big'` : `rdsquashfs -c /big '${img}' | tail -c 4`;
    const tail = await run('sh', ['-c', `${cmd} | od -An -c`], { timeoutMs: 300_000 });
    if (mounted) await run('umount', [mnt]);
    expect(tail.stdout.replace(/\s+/g, ' ').trim()).toBe('\\0 e n d');
  }, 300_000);

  for (const extra of [{}, { alwaysUseFragments: true }]) {
    it(`dedupes identical files (one copy of the blocks and of the tail end) and both read back (${JSON.stringify(extra)})`, async () => {
      const blob = randomBytes(3 * (1 << 20) + 1234);
      const two = [file('a/one', blob), file('b/two', blob), file('c/other', randomBytes(1000))];
      const tag = extra.alwaysUseFragments ? 'frag' : 'block';
      const on = join(tmp.path, `dedupe-on-${tag}.sqfs`);
      const off = join(tmp.path, `dedupe-off-${tag}.sqfs`);
      const a = await writeSquashfs(stream(two), on, extra);
      const b = await writeSquashfs(stream(two), off, { ...extra, dedupe: false });
      expect(b.bytes - a.bytes).toBeGreaterThan(blob.length - 8192);
      for (const img of [on, off]) {
        for (const p of ['/a/one', '/b/two', '/c/other']) {
          const r = await run('sh', ['-c', `rdsquashfs -c ${p} '${img}' | sha256sum`]);
          const want = p === '/c/other' ? undefined : createHash('sha256').update(blob).digest('hex');
          if (want) expect(r.stdout.slice(0, 64), `${img} ${p}`).toBe(want);
          else expect(r.code, `${img} ${p}`).toBe(0);
        }
      }
      // The tail end is a fragment only with alwaysUseFragments (c/other, < 1 block, is one in both cases).
      const s = await run('unsquashfs', ['-s', on]);
      expect(s.stdout).toContain(`Number of fragments 1`);
      const st = await run('rdsquashfs', ['-s', '/a/one', on]);
      expect(st.stdout).toMatch(
        extra.alwaysUseFragments
          ? /Fragment index: 0x0\n[^]*Block count: 3\n/
          : /Fragment index: 0xFFFFFFFF\n[^]*Block count: 4\n/,
      );
    });
  }

  it('reports progress and rejects bad input with CanvosErrors, leaving no temp file', async () => {
    const events: SquashfsProgress[] = [];
    await writeSquashfs(stream(specs), join(tmp.path, 'p.sqfs'), { onProgress: (p) => events.push(p) });
    expect(events.map((e) => e.phase)).toEqual(expect.arrayContaining(['tables', 'done']));
    expect(events.at(-1)).toMatchObject({ phase: 'done', entries: specs.length });

    const cases: Array<[string, Spec[], string]> = [
      ['short', [{ ...file('f', 'abc'), size: 4 }], 'ERR_SIZE_MISMATCH'],
      ['dangling', [{ ...base, path: 'h', type: 'hardlink', linkname: 'missing' }], 'ERR_ISO'],
      ['under-file', [file('f', 'x'), file('f/g', 'y')], 'ERR_ISO'],
      ['dotdot', [file('../escape', 'x')], 'ERR_ISO'],
    ];
    for (const [name, s, code] of cases) {
      const err = await writeSquashfs(stream(s), join(tmp.path, `${name}.sqfs`)).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(CanvosError);
      expect((err as CanvosError).code, name).toBe(code);
    }
    const bad = await writeSquashfs(stream([]), join(tmp.path, 'bs.sqfs'), { blockSize: 3000 }).catch(
      (e: unknown) => e,
    );
    expect((bad as CanvosError).code).toBe('ERR_USAGE');

    const ac = new AbortController();
    async function* slow(): AsyncGenerator<FsEntry> {
      yield { ...base, path: 'a', type: 'file', size: 1, content: Readable.from([Buffer.from('a')]) };
      ac.abort();
      yield { ...base, path: 'b', type: 'file', size: 1, content: Readable.from([Buffer.from('b')]) };
    }
    const aborted = await writeSquashfs(slow(), join(tmp.path, 'abort.sqfs'), { signal: ac.signal }).catch(
      (e: unknown) => e,
    );
    expect((aborted as CanvosError).code).toBe('ERR_ABORTED');
    expect(existsSync(join(tmp.path, 'abort.sqfs'))).toBe(false);
    expect((await readdir(tmp.path)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
