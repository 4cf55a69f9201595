import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { copyImage } from '../../src/copy/copy.js';
import { openDestination, openSource } from '../../src/transports/resolve-location.js';
import { CanvosError } from '../../src/errors.js';
import { layoutDestination } from '../../src/transports/oci-layout/layout-destination.js';
import { parseManifest } from '../../src/image/schemas.js';
import { run, tmpDir, umoci } from '../helpers/tools.js';
import { makeOciLayout } from '../helpers/fixtures.js';

let tmp: { path: string; cleanup(): Promise<void> };
const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const LONG = `configs/${'d'.repeat(120)}`;

/** A legacy `docker save` tree: two images, a symlinked duplicate layer, a gzip layer, a config behind a long path. */
async function legacyTree(root: string): Promise<{ tarA: Buffer; tarB: Buffer }> {
  const fsA = join(root, '..', 'rootfs-a');
  const fsB = join(root, '..', 'rootfs-b');
  await mkdir(join(fsA, 'etc'), { recursive: true });
  await mkdir(join(fsB, 'opt'), { recursive: true });
  await writeFile(join(fsA, 'etc', 'a.txt'), 'layer a\n');
  await writeFile(join(fsB, 'opt', 'b.txt'), 'layer b\n');
  const mk = async (dir: string, out: string): Promise<Buffer> => {
    const r = await run('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-C', dir, '-cf', out, '.']);
    if (r.code !== 0) throw new Error(r.stderr);
    return readFile(out);
  };
  await mkdir(root, { recursive: true });
  const tarA = await mk(fsA, join(root, '..', 'a.tar'));
  const tarB = await mk(fsB, join(root, '..', 'b.tar'));
  const idA = 'a'.repeat(64);
  const idB = 'b'.repeat(64);
  const idC = 'c'.repeat(64);
  for (const id of [idA, idB, idC]) await mkdir(join(root, id));
  await writeFile(join(root, idA, 'layer.tar'), tarA);
  await symlink(`../${idA}/layer.tar`, join(root, idB, 'layer.tar'));
  await writeFile(join(root, idC, 'layer.tar'), gzipSync(tarB));
  const cfg = (diffs: string[]): Buffer =>
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['A=1'] },
        rootfs: { type: 'layers', diff_ids: diffs },
      }),
    );
  const cfg1 = cfg([`sha256:${hex(tarA)}`, `sha256:${hex(tarB)}`]);
  const cfg2 = cfg([`sha256:${hex(tarA)}`]);
  await writeFile(join(root, `${hex(cfg1)}.json`), cfg1);
  await mkdir(join(root, LONG), { recursive: true });
  await writeFile(join(root, LONG, 'config.json'), cfg2);
  await writeFile(
    join(root, 'manifest.json'),
    JSON.stringify([
      { Config: `${hex(cfg1)}.json`, RepoTags: ['first:1'], Layers: [`${idA}/layer.tar`, `${idC}/layer.tar`] },
      { Config: `${LONG}/config.json`, RepoTags: ['localhost:5000/second:2'], Layers: [`${idB}/layer.tar`] },
    ]),
  );
  return { tarA, tarB };
}

let tars: { tarA: Buffer; tarB: Buffer };
beforeAll(async () => {
  tmp = await tmpDir('canvos-archive-');
  tars = await legacyTree(join(tmp.path, 'tree'));
  for (const format of ['gnu', 'pax']) {
    const r = await run('tar', [
      `--format=${format}`,
      '-C',
      join(tmp.path, 'tree'),
      '-cf',
      join(tmp.path, `${format}.tar`),
      '.',
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
});
afterAll(async () => {
  await tmp?.cleanup();
});

describe.each(['gnu', 'pax'])('docker-archive reader (%s tar)', (format) => {
  const file = (): string => join(tmp.path, `${format}.tar`);

  it('asks which image when there are several', async () => {
    const e = await openSource(`docker-archive:${file()}`)
      .getManifest()
      .catch((x: unknown) => x);
    expect(CanvosError.is(e) && e.code).toBe('ERR_LAYOUT');
    expect((e as Error).message).toContain('(first:1, localhost:5000/second:2)');
  });

  it('synthesises an OCI manifest for mixed tar/gzip layers and copies a layout umoci can unpack', async () => {
    const src = openSource(`docker-archive:${file()}:docker.io/library/first:1`);
    const raw = await src.getManifest();
    const m = parseManifest(raw.bytes);
    expect(m.kind).toBe('image');
    if (m.kind !== 'image') return;
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.value.layers.map((l) => [l.mediaType, l.digest])).toEqual([
      ['application/vnd.oci.image.layer.v1.tar', `sha256:${hex(tars.tarA)}`],
      ['application/vnd.oci.image.layer.v1.tar+gzip', `sha256:${hex(gzipSync(tars.tarB))}`],
    ]);
    const out = join(tmp.path, `${format}-layout`);
    await copyImage(src, layoutDestination(out, { tag: 'first' }));
    const bundle = join(tmp.path, `${format}-bundle`);
    await umoci(['unpack', '--rootless', '--image', `${out}:first`, bundle]);
    expect(await readFile(join(bundle, 'rootfs', 'etc', 'a.txt'), 'utf8')).toBe('layer a\n');
    expect(await readFile(join(bundle, 'rootfs', 'opt', 'b.txt'), 'utf8')).toBe('layer b\n');
  });

  it('selects by @index or by name, follows symlinked layers and long member names', async () => {
    const byIndex = await openSource(`docker-archive:${file()}:@1`).getManifest();
    const byName = await openSource(`docker-archive:${file()}:localhost:5000/second:2`).getManifest();
    expect(byName.digest).toBe(byIndex.digest);
    const out = join(tmp.path, `${format}-second`);
    const r = await copyImage(openSource(`docker-archive:${file()}:@1`), layoutDestination(out, { tag: 's' }));
    expect(r.rootDigest).toBe(byIndex.digest);
    expect(r.blobs.copied).toBe(2);
  });
});

describe('docker-archive writer', () => {
  it('writes a docker-save tar that is also an OCI layout; without index.json the reader synthesises Docker v2s2', async () => {
    const fx = await makeOciLayout(join(tmp.path, 'w-src'), { tag: 'v1', layers: 2, layerBytes: 8192 });
    const tar = join(tmp.path, 'written.tar');
    await copyImage(
      openSource(`oci:${join(tmp.path, 'w-src')}:v1`),
      openDestination(`docker-archive:${tar}:registry.example/app:v1`),
    );
    const listing = (await run('tar', ['-tf', tar])).stdout.trim().split('\n');
    expect(listing).toEqual(
      expect.arrayContaining([
        'manifest.json',
        'index.json',
        'oci-layout',
        `blobs/sha256/${fx.manifestDigests[0]!.slice(7)}`,
      ]),
    );
    expect(listing.filter((n) => n.endsWith('.tmp') || n.includes('spool'))).toEqual([]);
    // Byte-exact through the embedded manifest.
    expect((await openSource(`docker-archive:${tar}`).getManifest()).digest).toBe(fx.manifestDigests[0]);
    // umoci reads the very same file as an OCI layout once unpacked.
    const unpacked = join(tmp.path, 'written');
    await mkdir(unpacked);
    await run('tar', ['-xf', tar, '-C', unpacked]);
    expect(await umoci(['ls', '--layout', unpacked])).toContain('v1');
    // A plain docker-save view (no index.json): all-gzip layers give a Docker v2s2 manifest over the same blobs.
    const plain = join(tmp.path, 'plain.tar');
    await run('tar', ['-cf', plain, '-C', unpacked, '--exclude=index.json', '.']);
    const raw = await openSource(`docker-archive:${plain}:registry.example/app:v1`).getManifest();
    const m = parseManifest(raw.bytes);
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    if (m.kind !== 'image') throw new Error('expected an image manifest');
    expect(m.value.config.digest).toBe(fx.images[0]!.configDigest);
    expect(m.value.layers.map((l) => [l.mediaType, l.digest])).toEqual(
      fx.images[0]!.layerDigests.map((d) => ['application/vnd.docker.image.rootfs.diff.tar.gzip', d]),
    );
    const r = await copyImage(
      openSource(`docker-archive:${plain}`),
      layoutDestination(join(tmp.path, 'plain-out'), { tag: 'p' }),
    );
    expect(r).toMatchObject({ rootDigest: raw.digest, blobs: { copied: 3 } });
  });
});
