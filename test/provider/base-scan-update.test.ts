import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { updateScan, type BaseScan } from '../../src/provider/base-scan.js';
import type { FsEntry } from '../../src/tar/entry.js';

const meta = { mode: 0o755, uid: 0, gid: 0, uname: '', gname: '', mtime: 0 };
function scan(): BaseScan {
  return {
    files: new Map([
      ['etc/passwd', { content: Buffer.from('root:x:0:0::/root:/bin/sh\n'), mode: 0o644, uid: 0, gid: 0 }],
    ]),
    dirs: new Map([
      ['etc', meta],
      ['etc/ssh', meta],
      ['opt', meta],
      ['opt/old', meta],
    ]),
    links: new Map([['lib', 'usr/lib']]),
    children: new Map([
      ['etc/ssh', ['moduli', 'sshd_config']],
      ['opt/old', ['a']],
    ]),
    systemdVersion: 252,
    entries: 0,
  };
}
const entry = (path: string, type: FsEntry['type'], extra: Partial<FsEntry> = {}): FsEntry => ({
  path,
  type,
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtime: 0,
  size: 0,
  ...extra,
});
const file = (path: string, text: string): FsEntry =>
  entry(path, 'file', { size: text.length, content: Readable.from([Buffer.from(text)]) });

async function* layer(entries: FsEntry[]): AsyncIterable<FsEntry> {
  yield* entries;
}

describe('updateScan (the base scan kept current through Dockerfile layers)', () => {
  it('a RUN that creates SSH host keys lists them, so the provider layers white them out like the base’s', async () => {
    const s = scan();
    await updateScan(
      s,
      layer([file('etc/ssh/ssh_host_ed25519_key', 'k'), file('etc/ssh/ssh_host_ed25519_key.pub', 'p')]),
      new Set(),
    );
    expect(s.children.get('etc/ssh')).toEqual([
      'moduli',
      'ssh_host_ed25519_key',
      'ssh_host_ed25519_key.pub',
      'sshd_config',
    ]);
  });

  it('whiteouts and opaque directories remove what they hide (before the same layer’s additions)', async () => {
    const s = scan();
    await updateScan(
      s,
      layer([
        entry('opt/old/new', 'file', { content: Readable.from([]) }),
        entry('opt/old/.wh..wh..opq', 'file'),
        entry('etc/ssh/.wh.moduli', 'file'),
        entry('.wh.lib', 'file'),
        entry('etc/.wh.passwd', 'file'),
      ]),
      new Set(['etc/passwd']),
    );
    expect(s.children.get('opt/old')).toEqual(['new']);
    expect(s.children.get('etc/ssh')).toEqual(['sshd_config']);
    expect(s.links.has('lib')).toBe(false);
    expect(s.files.has('etc/passwd')).toBe(false);
    expect(s.dirs.has('opt/old')).toBe(true);
  });

  it('re-reads watched files, records new directories, links and the systemd version', async () => {
    const s = scan();
    await updateScan(
      s,
      layer([
        file('etc/passwd', 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n'),
        entry('srv', 'directory', { mode: 0o750 }),
        entry('opt/old', 'symlink', { linkname: '/srv' }),
        entry('usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-256.so', 'file', { content: Readable.from([]) }),
      ]),
      new Set(['etc/passwd']),
    );
    expect(s.files.get('etc/passwd')?.content.toString()).toContain('app:x:1000');
    expect(s.dirs.get('srv')?.mode).toBe(0o750);
    expect(s.dirs.has('opt/old')).toBe(false); // replaced by a symlink
    expect(s.links.get('opt/old')).toBe('/srv');
    expect(s.systemdVersion).toBe(256);
  });
});
