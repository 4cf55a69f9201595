// buildLayer: determinism, GNU tar / gzip as independent oracles, PAX long names and xattrs, spec semantics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildLayer, type BuildLayerOptions } from '../../src/layers/build.js';
import { readLayer } from '../../src/layers/read.js';
import type { FsEntry } from '../../src/tar/entry.js';
import type { LayerSpec } from '../../src/layers/spec.js';
import { jsCompressor } from '../../src/native/load.js';
import { gnuList, tempDir } from './helpers.js';

// A capability blob (VFS_CAP_REVISION_2, cap_net_raw effective+permitted): binary, with NUL bytes.
const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const LONG = `usr/lib/${'very-long-directory-name/'.repeat(5)}agent-provider-k3s-with-a-long-file-name`;

let t: { dir: string; cleanup: () => Promise<void> };
let host: string;
beforeAll(async () => {
  t = await tempDir('build');
  host = join(t.dir, 'host');
  await mkdir(join(host, 'scripts/sub'), { recursive: true });
  await writeFile(join(host, 'scripts/run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await writeFile(join(host, 'scripts/sub/data.txt'), 'data\n', { mode: 0o640 });
  await symlink('../run.sh', join(host, 'scripts/sub/run-link'));
  await symlink('/etc/absolute/target', join(host, 'scripts/abs-link'));
  await link(join(host, 'scripts/sub/data.txt'), join(host, 'scripts/a-hardlink.txt'));
});
afterAll(() => t.cleanup());

function spec(): LayerSpec {
  return {
    entries: [
      { type: 'file', path: '/etc/hello', source: { inline: 'hello\n' }, mode: 0o600, uid: 7, gid: 7 },
      {
        type: 'file',
        path: `/${LONG}`,
        source: { inline: Buffer.from('binary') },
        mode: 0o755,
        xattrs: { 'security.capability': CAP },
      },
      { type: 'symlink', path: '/boot/vmlinuz', target: 'vmlinuz-6.1.0-kairos' },
      { type: 'file', path: '/z/target', source: { inline: 'shared\n' } },
      { type: 'hardlink', path: '/a/link', target: '/z/target' },
      { type: 'char', path: '/dev/console', devmajor: 5, devminor: 1, mode: 0o620 },
      { type: 'block', path: '/dev/sda', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
      { type: 'fifo', path: '/run/initctl', mode: 0o600 },
      { type: 'dir', path: '/tmp', mode: 0o1777 },
      { type: 'whiteout', paths: ['/etc/ssh/moduli', '/etc/ssh/ssh_host_rsa_key'] },
      { type: 'opaque', path: '/usr/local/system/providers' },
      { type: 'tree', path: '/opt/k3s', host: join(host, 'scripts') },
      {
        type: 'file',
        path: '/etc/hello',
        source: { inline: 'later wins\n' },
        mode: 0o644,
        uid: 1000,
        gid: 1001,
        uname: 'kairos',
        gname: 'users',
      },
      { type: 'file', path: '/etc/machine-id', source: { inline: '' }, mode: 0o444, mtime: 1_700_000_000 },
    ],
  };
}

const build = (sub: string, o: Partial<BuildLayerOptions> = {}) => buildLayer(spec(), { dir: join(t.dir, sub), ...o });

async function entries(path: string): Promise<Array<FsEntry & { data?: string }>> {
  const out: Array<FsEntry & { data?: string }> = [];
  for await (const e of readLayer(createReadStream(path))) {
    const parts: Buffer[] = [];
    for await (const c of e.content ?? []) parts.push(c as Buffer);
    out.push({ ...e, content: undefined, data: Buffer.concat(parts).toString('latin1') });
  }
  return out;
}

describe('buildLayer', () => {
  it('is byte-identical for the same SOURCE_DATE_EPOCH and differs for another epoch', async () => {
    const a = await build('a', { sourceDateEpoch: 1_700_000_000 });
    const b = await build('b', { sourceDateEpoch: 1_700_000_000 });
    const c = await build('c', { sourceDateEpoch: 1_600_000_000 });
    expect(b.digest).toBe(a.digest);
    expect(b.diffId).toBe(a.diffId);
    expect((await readFile(a.path)).equals(await readFile(b.path))).toBe(true);
    expect(c.diffId).not.toBe(a.diffId);
    expect(c.digest).not.toBe(a.digest);
    expect(a.path).toBe(join(t.dir, 'a', a.digest.slice(7)));
  });

  it('defaults the epoch from SOURCE_DATE_EPOCH, else 0', async () => {
    const old = process.env.SOURCE_DATE_EPOCH;
    try {
      process.env.SOURCE_DATE_EPOCH = '1600000000';
      const env = await build('env');
      const explicit = await build('explicit', { sourceDateEpoch: 1_600_000_000 });
      expect(env.diffId).toBe(explicit.diffId);
      delete process.env.SOURCE_DATE_EPOCH;
      const unset = await build('unset');
      expect(unset.diffId).toBe((await build('zero', { sourceDateEpoch: 0 })).diffId);
      const listing = gnuList(unset.path);
      expect(listing).toMatch(/1970-01-01 00:00 etc\/machine-id/); // mtime clamped to the epoch
      process.env.SOURCE_DATE_EPOCH = 'yesterday';
      await expect(build('bad')).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    } finally {
      if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = old;
    }
  });

  it('produces a multi-member gzip that gzip -t accepts and whose gunzip sha256 is the diffId', async () => {
    const r = await build('gz', { sourceDateEpoch: 0, chunkSize: 4096 });
    execFileSync('gzip', ['-t', r.path]);
    const tar = execFileSync('gzip', ['-dc', r.path], { maxBuffer: 64 << 20 });
    expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(r.diffId);
    expect(tar.length).toBe(r.uncompressedSize);
    expect(
      `sha256:${createHash('sha256')
        .update(await readFile(r.path))
        .digest('hex')}`,
    ).toBe(r.digest);
    // more than one gzip member: the magic+CM+FLG header occurs again after the first member
    const blob = await readFile(r.path);
    expect(blob.indexOf(Buffer.from([0x1f, 0x8b, 8]), 10)).toBeGreaterThan(0);
    expect(r.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    // the same tar with the default chunk size and with the node:zlib backend decompresses identically
    const big = await build('gz2', { sourceDateEpoch: 0, compressor: jsCompressor(), level: 9 });
    expect(big.diffId).toBe(r.diffId);
    execFileSync('gzip', ['-t', big.path]);
  });

  it("compression 'none' writes the plain tar (digest = diffId)", async () => {
    const r = await build('none', { sourceDateEpoch: 0, compression: 'none' });
    expect(r.digest).toBe(r.diffId);
    expect(r.size).toBe(r.uncompressedSize);
    expect(r.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
  });

  it('GNU tar lists modes, owners, links, devices, long names and xattrs', async () => {
    const r = await build('list', { sourceDateEpoch: 0 });
    const l = gnuList(r.path);
    const lines = l.split('\n');
    const line = (suffix: string) => lines.find((x) => x.endsWith(suffix)) ?? `missing ${suffix}`;
    expect(line(' etc/hello')).toMatch(/^-rw-r--r-- +kairos\/users +11 /); // later spec entry won
    expect(line(' boot/vmlinuz -> vmlinuz-6.1.0-kairos')).toMatch(/^lrwxrwxrwx /);
    expect(line(' dev/console')).toMatch(/^crw--w---- +0\/0 +5,1 /);
    expect(line(' dev/sda')).toMatch(/^brw-rw---- +0\/6 +8,0 /);
    expect(line(' run/initctl')).toMatch(/^prw------- /);
    expect(line(' tmp/')).toMatch(/^drwxrwxrwt /);
    // the hardlink set is rooted on the byte-order-smallest path so the link follows its target in the archive
    expect(line(' a/link')).toMatch(/^-rw-r--r-- /);
    expect(line(' z/target link to a/link')).toMatch(/^hrw-r--r-- /);
    expect(line(` ${LONG}`)).toMatch(/^-rwxr-xr-x\* /);
    expect(l).toContain('  x: 20 security.capability');
    expect(line(' etc/ssh/.wh.moduli')).toMatch(/^-/);
    expect(line(' etc/ssh/.wh.ssh_host_rsa_key')).toMatch(/^-/);
    expect(line(' usr/local/system/providers/.wh..wh..opq')).toMatch(/^-/);
    // tree: modes kept, symlinks kept, host hardlinks become tar hardlinks
    expect(line(' opt/k3s/run.sh')).toMatch(/^-rwxr-xr-x /);
    expect(line(' opt/k3s/sub/run-link -> ../run.sh')).toMatch(/^l/);
    expect(line(' opt/k3s/abs-link -> /etc/absolute/target')).toMatch(/^l/);
    expect(line(' opt/k3s/a-hardlink.txt')).toMatch(/^-rw-r----- /);
    expect(line(' opt/k3s/sub/data.txt link to opt/k3s/a-hardlink.txt')).toMatch(/^h/);
    // implied parents and sorted byte order
    expect(line(' usr/local/system/')).toMatch(/^drwxr-xr-x +0\/0 /);
    const names = lines
      .filter(
        (x) =>
          x.startsWith('-') ||
          x.startsWith('d') ||
          x.startsWith('l') ||
          x.startsWith('h') ||
          x.startsWith('c') ||
          x.startsWith('b') ||
          x.startsWith('p'),
      )
      .map((x) =>
        x
          .replace(/^.*? \d{4}-\d\d-\d\d \d\d:\d\d /, '')
          .replace(/ (->|link to) .*$/, '')
          .replace(/\/$/, ''),
      );
    expect(names).toEqual([...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    expect(new Set(names).size).toBe(names.length);
  });

  it('long paths and binary xattrs survive a round trip through readLayer and GNU tar extraction', async () => {
    const r = await build('rt', { sourceDateEpoch: 0 });
    const es = await entries(r.path);
    const long = es.find((e) => e.path === LONG)!;
    expect(long.xattrs?.['security.capability']?.equals(CAP)).toBe(true);
    expect(long.data).toBe('binary');
    const hello = es.find((e) => e.path === 'etc/hello')!;
    expect(hello).toMatchObject({
      type: 'file',
      mode: 0o644,
      uid: 1000,
      gid: 1001,
      uname: 'kairos',
      gname: 'users',
      data: 'later wins\n',
    });
    expect(es.find((e) => e.path === 'dev/sda')).toMatchObject({ type: 'block', devmajor: 8, devminor: 0, gid: 6 });
    expect(es.find((e) => e.path === 'z/target')).toMatchObject({ type: 'hardlink', linkname: 'a/link' });
    // GNU tar extracts the file and its xattr (security.* needs root; the listing test covers non-root runs)
    if (process.getuid?.() === 0) {
      const x = join(t.dir, 'x');
      await mkdir(x);
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xzf', r.path, '-C', x, LONG]);
      expect(await readFile(join(x, LONG), 'utf8')).toBe('binary');
      const caps = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-cf', '-', '-C', x, LONG]);
      expect(caps.includes(Buffer.concat([Buffer.from('SCHILY.xattr.security.capability='), CAP]))).toBe(true);
    }
  });

  it('uses PAX for big ids, long link targets and keeps UTF-8 names (GNU tar and readLayer agree)', async () => {
    const target = `/opt/${'t'.repeat(150)}`;
    const r = await buildLayer(
      {
        entries: [
          { type: 'file', path: '/big-ids', source: { inline: 'x' }, uid: 3_000_000, gid: 4_000_000 },
          { type: 'symlink', path: '/long-link', target },
          { type: 'file', path: '/etc/größe-ü', source: { inline: 'ü' } },
        ],
      },
      { dir: join(t.dir, 'pax'), sourceDateEpoch: 0 },
    );
    const l = gnuList(r.path);
    expect(l).toMatch(/^-rw-r--r-- +3000000\/4000000 .* big-ids$/m);
    expect(l).toContain(`long-link -> ${target}`);
    expect(l).toContain('etc/größe-ü');
    const es = await entries(r.path);
    expect(es.find((e) => e.path === 'big-ids')).toMatchObject({ uid: 3_000_000, gid: 4_000_000 });
    expect(es.find((e) => e.path === 'long-link')).toMatchObject({ type: 'symlink', linkname: target });
    expect(es.find((e) => e.path === 'etc/größe-ü')).toMatchObject({ data: Buffer.from('ü').toString('latin1') });
  });

  it('entries sources relocate hardlink pairs and refuse links whose target map() dropped', async () => {
    async function* src(): AsyncGenerator<FsEntry> {
      const { Readable } = await import('node:stream');
      yield {
        path: 'usr/local/bin/a',
        type: 'file',
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 5,
        size: 3,
        content: Readable.from([Buffer.from('abc')]),
      };
      yield {
        path: 'usr/local/bin/b',
        type: 'hardlink',
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 5,
        size: 0,
        linkname: 'usr/local/bin/a',
      };
      yield {
        path: 'usr/local/skip',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 5,
        size: 1,
        content: Readable.from([Buffer.from('s')]),
      };
    }
    const r = await buildLayer(
      {
        entries: [
          {
            type: 'entries',
            source: src(),
            map: (p) => (p.startsWith('usr/local/bin/') ? p.replace('usr/local/bin/', 'bin/') : null),
          },
        ],
      },
      { dir: join(t.dir, 'ent'), sourceDateEpoch: 100 },
    );
    const es = await entries(r.path);
    expect(es.map((e) => [e.path, e.type, e.linkname, e.data, e.mtime])).toEqual([
      ['bin', 'directory', undefined, '', 100],
      ['bin/a', 'file', undefined, 'abc', 5],
      ['bin/b', 'hardlink', 'bin/a', '', 5],
    ]);
    await expect(
      buildLayer(
        { entries: [{ type: 'entries', source: src(), map: (p) => (p.endsWith('/b') ? p : null) }] },
        { dir: join(t.dir, 'ent2') },
      ),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG', message: expect.stringContaining('which map() dropped') });
  });

  it('rejects conflicting and unsafe specs', async () => {
    const bad = (s: LayerSpec) => buildLayer(s, { dir: join(t.dir, 'bad') });
    await expect(
      bad({
        entries: [
          { type: 'file', path: '/a', source: { inline: '' } },
          { type: 'file', path: '/a/b', source: { inline: '' } },
        ],
      }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('a is a file but a/b is inside it'),
    });
    await expect(
      bad({ entries: [{ type: 'file', path: '/x/../../etc/passwd', source: { inline: '' } }] }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    await expect(bad({ entries: [{ type: 'hardlink', path: '/l', target: '/missing' }] })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
    });
    await expect(
      bad({ entries: [{ type: 'file', path: '/f', source: { host: join(t.dir, 'nope') } }] }),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('takes implied parent metadata from parentMeta (e.g. the base image) and defaults the rest', async () => {
    const r = await buildLayer(
      {
        entries: [
          { type: 'file', path: '/root/.ssh/authorized_keys', source: { inline: 'ssh-ed25519 AAAA' }, mode: 0o600 },
        ],
      },
      {
        dir: join(t.dir, 'parents'),
        parentMeta: (p) => (p === 'root' ? { mode: 0o700 } : p === 'root/.ssh' ? { mode: 0o700, uid: 5 } : undefined),
      },
    );
    const l = gnuList(r.path);
    expect(l).toMatch(/^drwx------ +0\/0 .* root\/$/m);
    expect(l).toMatch(/^drwx------ +5\/0 .* root\/\.ssh\/$/m);
  });

  it('can skip implied parents and leaves no temp files behind', async () => {
    const dir = join(t.dir, 'noparents');
    const r = await buildLayer(
      { entries: [{ type: 'file', path: '/etc/x/y', source: { inline: 'y' } }] },
      { dir, impliedParents: false },
    );
    expect(gnuList(r.path).trim().split('\n')).toHaveLength(1);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(dir)).toEqual([r.digest.slice(7)]);
  });
});
