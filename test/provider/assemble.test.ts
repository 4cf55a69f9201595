import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLayer } from '../../src/layers/build.js';
import type { LayerOpener } from '../../src/layers/merge.js';
import { MediaType } from '../../src/image/media-types.js';
import { sha256 } from '../../src/image/digest.js';
import { assembleImage, layerMediaTypeFor } from '../../src/provider/assemble.js';
import { globMatch, resolveInBase, scanBase } from '../../src/provider/base-scan.js';
import { tmpDir } from '../helpers/tools.js';

const D = (c: string) => sha256(c);

describe('assembleImage', () => {
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Env: ['A=1'] },
      rootfs: { type: 'layers', diff_ids: [D('d0')] },
      history: [{ created_by: 'base' }, { empty_layer: true, created_by: 'ENV' }],
      extra: { kept: true },
    }),
  );
  const base = (mediaType: string) => ({
    manifest: { bytes: Buffer.from('{}'), mediaType, digest: D('m') },
    configBytes,
    layers: [{ mediaType: MediaType.DockerLayerGzip, digest: D('l0'), size: 10 }],
  });
  const layer = {
    digest: D('l1'),
    size: 5,
    diffId: D('d1'),
    mediaType: MediaType.DockerLayerGzip,
    createdBy: 'canvos-lite provider k8s-1.30.4',
  };

  it('keeps the Docker family, base config fields and layers; appends diff_ids and history', () => {
    const a = assembleImage(base(MediaType.DockerManifest), [layer], { created: '2023-11-14T22:13:20Z' });
    const m = JSON.parse(a.manifest.bytes.toString()) as {
      mediaType: string;
      config: { mediaType: string; digest: string };
      layers: { digest: string }[];
    };
    expect(m.mediaType).toBe(MediaType.DockerManifest);
    expect(m.config.mediaType).toBe(MediaType.DockerConfig);
    expect(m.layers.map((l) => l.digest)).toEqual([D('l0'), D('l1')]);
    expect(a.manifest.digest).toBe(sha256(a.manifest.bytes));
    expect(m.config.digest).toBe(sha256(a.config.bytes));
    const c = JSON.parse(a.config.bytes.toString()) as Record<string, unknown>;
    expect(c.rootfs).toEqual({ type: 'layers', diff_ids: [D('d0'), D('d1')] });
    expect(c.history).toEqual([
      { created_by: 'base' },
      { empty_layer: true, created_by: 'ENV' },
      { created: '2023-11-14T22:13:20Z', created_by: 'canvos-lite provider k8s-1.30.4' },
    ]);
    expect(c.extra).toEqual({ kept: true });
    expect(c.created).toBe('2023-11-14T22:13:20Z');
    expect(layerMediaTypeFor(MediaType.DockerManifest)).toBe(MediaType.DockerLayerGzip);
  });

  it('OCI family; no created → base created kept; deterministic bytes', () => {
    const a = assembleImage(base(MediaType.OciManifest), [{ ...layer, mediaType: MediaType.OciLayerGzip }]);
    const b = assembleImage(base(MediaType.OciManifest), [{ ...layer, mediaType: MediaType.OciLayerGzip }]);
    expect(a.manifest.digest).toBe(b.manifest.digest);
    expect(a.manifest.mediaType).toBe(MediaType.OciManifest);
    expect((JSON.parse(a.config.bytes.toString()) as { created: string }).created).toBe('2024-01-01T00:00:00Z');
    expect(layerMediaTypeFor(MediaType.OciManifest)).toBe(MediaType.OciLayerGzip);
  });
});

describe('base scan', () => {
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  let openers: LayerOpener[];
  beforeAll(async () => {
    tmp = await tmpDir('canvos-scan-');
    const l0 = await buildLayer(
      {
        entries: [
          { type: 'dir', path: '/etc', mode: 0o755 },
          { type: 'dir', path: '/root', mode: 0o700 },
          { type: 'dir', path: '/usr/lib', mode: 0o755 },
          { type: 'symlink', path: '/lib', target: 'usr/lib' },
          { type: 'file', path: '/usr/lib/os-kairos-release', source: { inline: 'KAIROS_NAME="x"\n' } },
          { type: 'symlink', path: '/etc/kairos-release', target: '../usr/lib/os-kairos-release' },
          { type: 'file', path: '/etc/ssh/ssh_host_rsa_key', source: { inline: 'k' }, mode: 0o600 },
          { type: 'file', path: '/etc/ssh/moduli', source: { inline: 'm' } },
          { type: 'file', path: '/usr/lib/systemd/libsystemd-shared-252.so', source: { inline: 'elf' } },
        ],
      },
      { dir: tmp.path, sourceDateEpoch: 1 },
    );
    const l1 = await buildLayer(
      {
        entries: [
          { type: 'whiteout', paths: ['/etc/ssh/moduli'] },
          { type: 'file', path: '/etc/ssh/sshd_config', source: { inline: 'c' } },
          { type: 'file', path: '/etc/cos/bootargs.cfg', source: { inline: 'set baseCmd=""\n' }, mode: 0o600, uid: 5 },
        ],
      },
      { dir: tmp.path, sourceDateEpoch: 1 },
    );
    openers = [l0, l1].map((l) => async () => createReadStream(l.path));
  });
  afterAll(async () => tmp?.cleanup());

  it('collects edited files (following symlinks), directory metadata, listings and the systemd version in one pass', async () => {
    const s = await scanBase(openers, {
      files: ['/etc/kairos-release', '/etc/cos/bootargs.cfg', '/etc/missing'],
      listDirs: ['/etc/ssh', '/var/lib/dbus'],
    });
    expect(s.files.get('etc/kairos-release')?.content.toString()).toBe('KAIROS_NAME="x"\n');
    expect(s.files.get('etc/cos/bootargs.cfg')).toMatchObject({ mode: 0o600, uid: 5 });
    expect(s.files.has('etc/missing')).toBe(false);
    expect(s.children.get('etc/ssh')).toEqual(['ssh_host_rsa_key', 'sshd_config']); // moduli was whited out
    expect(s.children.get('var/lib/dbus')).toEqual([]);
    expect(s.dirs.get('root')?.mode).toBe(0o700);
    expect(s.links.get('lib')).toBe('usr/lib');
    expect(s.systemdVersion).toBe(252);
  });

  it('resolveInBase follows directory symlinks like a COPY into the rootfs would', () => {
    const scan = {
      links: new Map([
        ['lib', 'usr/lib'],
        ['bin', '/usr/bin'],
        ['etc/alt', 'file-target'],
        ['loop', 'loop'],
      ]),
      dirs: new Map([
        ['usr/lib', {}],
        ['usr/bin', {}],
        ['usr', {}],
      ]),
    };
    expect(resolveInBase(scan, 'lib/systemd/system/k3s.service')).toBe('usr/lib/systemd/system/k3s.service');
    expect(resolveInBase(scan, 'lib')).toBe('usr/lib');
    expect(resolveInBase(scan, 'bin/k3s')).toBe('usr/bin/k3s');
    expect(resolveInBase(scan, 'etc/alt')).toBe('etc/alt'); // a symlink to a file is replaced, not followed
    expect(resolveInBase(scan, 'opt/x')).toBe('opt/x');
    expect(resolveInBase(scan, 'loop/x')).toBe('loop/x'); // cycles stop
  });

  it('globMatch matches one segment', () => {
    expect(globMatch('ssh_host_*', 'ssh_host_rsa_key.pub')).toBe(true);
    expect(globMatch('ssh_host_*', 'sshd_config')).toBe(false);
    expect(globMatch('*.crt', 'a.b.crt')).toBe(true);
    expect(globMatch('moduli', 'moduli.bak')).toBe(false);
  });
});
