// readLayer: path-traversal rejection (tar-stream crafted archives), GNU tar archives in gnu/posix/ustar formats as
// an independent oracle for the parser, and the content contract (unread content is skipped).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tarStream from 'tar-stream';
import { readLayer } from '../../src/layers/read.js';
import type { FsEntry } from '../../src/tar/entry.js';
import { snapshotDir, snapshotEntries, tempDir } from './helpers.js';

type Hdr = Partial<tarStream.Header> & { name: string; body?: string };

async function craft(headers: Hdr[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const { body, ...h } of headers) {
    await new Promise<void>((res, rej) => pack.entry(h, body ?? '', (e) => (e ? rej(e) : res())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function readAll(buf: Buffer): Promise<FsEntry[]> {
  const out: FsEntry[] = [];
  for await (const e of readLayer(Readable.from([buf]))) out.push(e);
  return out;
}

let t: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  t = await tempDir('read');
});
afterAll(() => t.cleanup());

describe('readLayer safety', () => {
  it.each([
    ['../evil', [{ name: '../evil', body: 'x' }]],
    ['a/../../evil', [{ name: 'a/../../evil', body: 'x' }]],
    ['a/../b (any .. segment)', [{ name: 'a/../b', body: 'x' }]],
    [
      'hardlink to ../x',
      [
        { name: 'ok', body: 'x' },
        { name: 'link', type: 'link', linkname: '../x' },
      ],
    ],
    ['hardlink to /../x', [{ name: 'link', type: 'link', linkname: '/../x' }]],
  ] as Array<[string, Hdr[]]>)('rejects %s with ERR_TAR_UNSAFE naming the entry', async (_n, headers) => {
    const tar = await craft(headers);
    for (const blob of [tar, gzipSync(tar)]) {
      const err = await readAll(blob).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_TAR_UNSAFE' });
      const bad = headers[headers.length - 1]!;
      expect((err as Error).message).toContain(JSON.stringify(bad.linkname ?? bad.name));
    }
  });

  it('refuses an oversized PAX record instead of buffering it', async () => {
    const tar = await craft([{ name: 'x', body: 'x', pax: { comment: 'y'.repeat(2 << 20) } }]);
    await expect(readAll(tar)).rejects.toMatchObject({
      code: 'ERR_LAYER_CORRUPT',
      message: expect.stringContaining('extended header'),
    });
  });

  it('normalises ./ and leading / and accepts absolute or escaping symlink targets', async () => {
    const es = await readAll(
      await craft([
        { name: './', type: 'directory' },
        { name: './etc/a', body: 'a' },
        { name: '/etc/b', body: 'b' },
        { name: 'etc//c/', type: 'directory' },
        { name: 'etc/abs', type: 'symlink', linkname: '/usr/bin/x' },
        { name: 'etc/up', type: 'symlink', linkname: '../../../../x' },
        { name: 'etc/hl', type: 'link', linkname: './etc/a' },
      ]),
    );
    expect(es.map((e) => [e.path, e.type, e.linkname])).toEqual([
      ['', 'directory', undefined],
      ['etc/a', 'file', undefined],
      ['etc/b', 'file', undefined],
      ['etc/c', 'directory', undefined],
      ['etc/abs', 'symlink', '/usr/bin/x'],
      ['etc/up', 'symlink', '../../../../x'],
      ['etc/hl', 'hardlink', 'etc/a'],
    ]);
  });

  it('skips content the consumer did not read, and fails on a truncated archive', async () => {
    const tar = await craft([
      { name: 'big', body: 'x'.repeat(100_000) },
      { name: 'small', body: 'tail' },
    ]);
    const seen: string[] = [];
    for await (const e of readLayer(Readable.from([gzipSync(tar)]))) {
      if (e.path === 'small') for await (const c of e.content!) seen.push(String(c));
    }
    expect(seen.join('')).toBe('tail');
    // partially read, then abandoned
    const got: string[] = [];
    for await (const e of readLayer(Readable.from([tar.subarray(0, 60_000), tar.subarray(60_000)]))) {
      if (e.path === 'big') {
        for await (const _c of e.content!) break;
      } else got.push(e.path);
    }
    expect(got).toEqual(['small']);
    await expect(readAll(tar.subarray(0, 50_000))).rejects.toMatchObject({
      code: 'ERR_LAYER_CORRUPT',
      message: expect.stringContaining('truncated'),
    });
    await expect(readAll(Buffer.alloc(1024, 7))).rejects.toMatchObject({ code: 'ERR_LAYER_CORRUPT' });
  });
});

describe('readLayer against GNU tar', () => {
  it.each(['gnu', 'posix', 'ustar', 'oldgnu'])(
    'reads a GNU tar --format=%s archive like the filesystem it came from',
    async (format) => {
      const src = join(t.dir, `src-${format}`);
      const longDir = join(src, 'd'.repeat(60), 'e'.repeat(60));
      await mkdir(longDir, { recursive: true });
      await mkdir(join(src, 'etc'));
      await writeFile(join(longDir, 'f'.repeat(90)), 'long name content');
      await writeFile(join(src, 'etc/conf'), 'conf\n', { mode: 0o600 });
      await writeFile(join(src, 'etc/big'), Buffer.alloc(3 * 1024 * 1024 + 5, 'z'));
      await symlink('conf', join(src, 'etc/conf-link'));
      await link(join(src, 'etc/conf'), join(src, 'etc/conf-hard'));
      const longLinkTarget = `../${'t'.repeat(120)}`;
      await symlink(longLinkTarget, join(src, 'etc/long-link'));
      const tarFile = join(t.dir, `${format}.tar`);
      // ustar cannot hold a 120-byte link name; leave that entry out there
      const names =
        format === 'ustar' || format === 'oldgnu'
          ? ['etc/conf', 'etc/big', 'etc/conf-link', 'etc/conf-hard', 'd'.repeat(60)]
          : ['.'];
      if (format === 'oldgnu') names.push('etc/long-link');
      execFileSync('tar', [`--format=${format}`, '-cf', tarFile, '-C', src, ...names]);
      const fromTar = await snapshotEntries(readLayer(createReadStream(tarFile)));
      const fromDisk = await snapshotDir(src);
      if (format === 'ustar') fromDisk.delete('etc/long-link');
      if (names[0] !== '.') fromDisk.delete('etc'); // only its children were archived
      expect(Object.fromEntries(fromTar)).toEqual(Object.fromEntries(fromDisk));
    },
  );

  it('reads fifos and uid/gid/uname from a GNU tar archive', async () => {
    const src = join(t.dir, 'fifo');
    await mkdir(src);
    execFileSync('mkfifo', [join(src, 'pipe')]);
    const tarFile = join(t.dir, 'fifo.tar');
    execFileSync('tar', [
      '--format=posix',
      '--owner=kairos:1234',
      '--group=users:99',
      '-cf',
      tarFile,
      '-C',
      src,
      'pipe',
    ]);
    const [e] = await readAll(execFileSync('cat', [tarFile]));
    expect(e).toMatchObject({ path: 'pipe', type: 'fifo', uid: 1234, gid: 99, uname: 'kairos', gname: 'users' });
  });
});
