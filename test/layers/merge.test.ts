// mergeLayers / extractFile against umoci: three layers with whiteouts, opaque dirs, type changes and hardlinks are
// written to an OCI layout, unpacked by `umoci unpack --rootless`, and the unpacked tree must equal our merged view.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { entriesToTar } from '../../src/tar/write.js';
import { join } from 'node:path';
import { buildLayer, type BuiltLayer } from '../../src/layers/build.js';
import { readLayer } from '../../src/layers/read.js';
import { mergeLayers, type LayerOpener } from '../../src/layers/merge.js';
import { extractFile, extractFileTo } from '../../src/layers/extract.js';
import type { LayerSpec } from '../../src/layers/spec.js';
import { opener, snapshotDir, snapshotEntries, tempDir, writeLayout } from './helpers.js';

const f = (path: string, inline: string, mode?: number) => ({
  type: 'file' as const,
  path,
  source: { inline },
  ...(mode === undefined ? {} : { mode }),
});

const LAYERS: LayerSpec[] = [
  {
    entries: [
      { type: 'dir', path: '/tmp', mode: 0o1777 },
      f('/etc/ssh/moduli', 'moduli'),
      f('/etc/ssh/ssh_host_rsa_key', 'secret', 0o600),
      f('/etc/ssh/sshd_config', 'config'),
      f('/usr/local/system/providers/agent-provider-old', 'old provider', 0o755),
      f('/usr/local/system/providers/sub/x', 'x'),
      f('/opt/data/keep', 'keep'),
      f('/boot/vmlinuz-6.1', 'kernel 6.1'),
      { type: 'symlink', path: '/boot/vmlinuz', target: 'vmlinuz-6.1' },
      { type: 'symlink', path: '/lib', target: 'usr/lib' },
      f('/usr/lib/os-release', 'NAME=kairos'),
      f('/var/a', 'file that becomes a dir'),
      f('/srv/dir/child', 'hidden when srv/dir becomes a file'),
      f('/hl/a', 'v1'),
      { type: 'hardlink', path: '/hl/b', target: '/hl/a' },
      f('/hl2/a', 'pair'),
      { type: 'hardlink', path: '/hl2/b', target: '/hl2/a' },
      f('/hl3/a', 'intact pair'),
      { type: 'hardlink', path: '/hl3/b', target: '/hl3/a' },
    ],
  },
  {
    entries: [
      { type: 'whiteout', paths: ['/etc/ssh/moduli', '/etc/ssh/ssh_host_rsa_key'] },
      { type: 'opaque', path: '/usr/local/system/providers' },
      f('/usr/local/system/providers/agent-provider-k3s', 'k3s provider', 0o755),
      f('/var/a/new', 'inside the new dir'),
      f('/hl/a', 'v2 replaces the link target'),
      f('/opt/data/new', 'new'),
      f('/boot/vmlinuz-6.6', 'kernel 6.6'),
      { type: 'symlink', path: '/boot/vmlinuz', target: '/boot/vmlinuz-6.6' },
    ],
  },
  {
    entries: [
      f('/srv/dir', 'dir replaced by a file'),
      { type: 'whiteout', paths: ['/opt/data', '/hl2/a'] },
      f('/opt/data/fresh', 'recreated in the same layer'),
      f('/etc/ssh/sshd_config', 'config v2', 0o600),
    ],
  },
];

let t: { dir: string; cleanup: () => Promise<void> };
let layers: BuiltLayer[];
let openers: LayerOpener[];
beforeAll(async () => {
  t = await tempDir('merge');
  const blobs = join(t.dir, 'layout', 'blobs', 'sha256');
  layers = [];
  for (const spec of LAYERS) layers.push(await buildLayer(spec, { dir: blobs, sourceDateEpoch: 1_700_000_000 }));
  openers = layers.map((l) => opener(l.path));
  await writeLayout(join(t.dir, 'layout'), layers);
});
afterAll(() => t.cleanup());

describe('mergeLayers', () => {
  it('equals the tree umoci unpacks (paths, types, modes, link targets, content digests)', async () => {
    execFileSync(
      'umoci',
      ['unpack', '--rootless', '--image', `${join(t.dir, 'layout')}:latest`, join(t.dir, 'bundle')],
      { stdio: 'pipe' },
    );
    const unpacked = await snapshotDir(join(t.dir, 'bundle', 'rootfs'));
    const merged = await snapshotEntries(mergeLayers(openers));
    expect(Object.fromEntries([...merged].sort())).toEqual(Object.fromEntries([...unpacked].sort()));
    // spot checks, so the comparison above cannot pass vacuously
    expect(merged.get('etc/ssh/moduli')).toBeUndefined();
    expect(merged.has('usr/local/system/providers/agent-provider-old')).toBe(false);
    expect(merged.get('usr/local/system/providers/agent-provider-k3s')).toMatch(/^file 755 /);
    expect(merged.has('srv/dir/child')).toBe(false);
    expect(merged.get('var/a')).toBe('dir 755');
    expect([...merged.keys()].filter((p) => p.startsWith('opt/data/'))).toEqual(['opt/data/fresh']);
    expect(merged.get('tmp')).toBe('dir 1777');
    expect(merged.get('hl/b')).not.toBe(merged.get('hl/a'));
    expect(merged.get('hl2/b')).toMatch(/^file 644 /);
  });

  it('entriesToTar of the merged view extracts (GNU tar) to the same tree umoci unpacked', async () => {
    const tarFile = join(t.dir, 'merged.tar');
    await pipeline(entriesToTar(mergeLayers(openers)), createWriteStream(tarFile));
    const x = join(t.dir, 'merged-x');
    await mkdir(x);
    execFileSync('tar', ['-xf', tarFile, '-C', x]);
    const fromTar = await snapshotDir(x);
    const fromUmoci = await snapshotDir(join(t.dir, 'bundle', 'rootfs'));
    expect(fromTar.size).toBeGreaterThan(20);
    expect(Object.fromEntries([...fromTar].sort())).toEqual(Object.fromEntries([...fromUmoci].sort()));
  });

  it('never emits whiteouts, emits each path once, and keeps intact hardlink pairs as hardlinks', async () => {
    const seen = new Map<string, string>();
    for await (const e of mergeLayers(openers)) {
      expect(seen.has(e.path)).toBe(false);
      expect(e.path).not.toMatch(/(^|\/)\.wh\./);
      seen.set(e.path, e.type === 'hardlink' ? `hardlink ${e.linkname}` : e.type);
      e.content?.resume();
    }
    expect(seen.get('hl3/b')).toBe('hardlink hl3/a');
    expect(seen.get('hl/b')).toBe('file'); // materialised with its layer's content
  });
});

describe('extractFile', () => {
  it('reads files through file and directory symlinks and hardlinks; null when deleted or absent', async () => {
    expect(String(await extractFile(openers, '/boot/vmlinuz'))).toBe('kernel 6.6');
    expect(String(await extractFile(openers, 'lib/os-release'))).toBe('NAME=kairos');
    expect(String(await extractFile(openers, '/etc/ssh/sshd_config'))).toBe('config v2');
    expect(String(await extractFile(openers, '/hl/b'))).toBe('v1');
    expect(String(await extractFile(openers, '/hl3/b'))).toBe('intact pair');
    expect(await extractFile(openers, '/etc/ssh/moduli')).toBeNull();
    expect(await extractFile(openers, '/usr/local/system/providers/sub/x')).toBeNull();
    expect(await extractFile(openers, '/boot')).toBeNull();
    expect(await extractFile(openers, '/nope')).toBeNull();
    await expect(extractFile(openers, '/boot/vmlinuz', { maxBytes: 3 })).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('closes every layer stream when it stops early (no file descriptor leak)', async () => {
    const fds = async () => (await readdir('/proc/self/fd')).length;
    // a layer much larger than one read buffer, so stopping at its first file leaves the source mid-way
    for (const compression of ['gzip', 'none'] as const) {
      const layer = await buildLayer(
        {
          entries: [f('/a/first', 'first'), { type: 'file', path: '/z/big', source: { inline: randomBytes(4 << 20) } }],
        },
        { dir: join(t.dir, `big-${compression}`), compression },
      );
      const ops = [...openers, opener(layer.path)];
      expect(String(await extractFile(ops, '/a/first'))).toBe('first');
      const before = await fds();
      for (let i = 0; i < 20; i++) expect(String(await extractFile(ops, '/a/first'))).toBe('first');
      await new Promise((r) => setTimeout(r, 50));
      expect(await fds()).toBeLessThanOrEqual(before + 2);
    }
    const before = await fds();
    for (let i = 0; i < 20; i++) {
      await extractFile(openers, '/etc/ssh/sshd_config');
      await extractFile(openers, '/hl/b');
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(await fds()).toBeLessThanOrEqual(before + 2);
  });

  it('streams a file to disk with extractFileTo', async () => {
    const dest = join(t.dir, 'kernel');
    const meta = await extractFileTo(openers, '/boot/vmlinuz', dest);
    expect(meta).toMatchObject({ path: 'boot/vmlinuz-6.6', type: 'file', size: 10, mtime: 1_700_000_000 });
    expect(await readFile(dest, 'utf8')).toBe('kernel 6.6');
    expect(await extractFileTo(openers, '/missing', join(t.dir, 'missing'))).toBeNull();
  });
});

describe('entries source', () => {
  it('relocates /usr/local/system/providers/* to /system/providers/ from a merged image', async () => {
    const prefix = 'usr/local/system/providers/';
    const built = await buildLayer(
      {
        entries: [
          {
            type: 'entries',
            source: mergeLayers(openers),
            map: (p) => (p.startsWith(prefix) ? `system/providers/${p.slice(prefix.length)}` : null),
          },
          { type: 'whiteout', paths: ['/usr/local/system/providers'] },
        ],
      },
      { dir: join(t.dir, 'moved'), sourceDateEpoch: 0 },
    );
    const got: string[] = [];
    for await (const e of readLayer(await opener(built.path)())) {
      const parts: Buffer[] = [];
      for await (const c of e.content ?? []) parts.push(c as Buffer);
      got.push(`${e.type} ${e.path} ${e.mode.toString(8)} ${Buffer.concat(parts).toString()}`.trim());
    }
    expect(got).toEqual([
      'directory system 755',
      'directory system/providers 755',
      'file system/providers/agent-provider-k3s 755 k3s provider',
      'directory usr 755',
      'directory usr/local 755',
      'directory usr/local/system 755',
      'file usr/local/system/.wh.providers 644',
    ]);
  });
});
