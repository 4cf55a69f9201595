/**
 * Class 5 (corrupt or short content → exit 7 in every command, 11 only for unsafe paths), class 6 (size limits,
 * UTF-8, linear YAML, scalar aliases) and class 8 (validation as skopeo: oci: tags, --platform OS, --authfile,
 * --project-dir, certificates). Each case runs the real CLI and checks the failure's shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tmpDir } from '../helpers/tools.js';
import { entries, expectCleanFailure, runBin } from './harness.js';

let reg: TestRegistry;
let tmp: { path: string; cleanup(): Promise<void> };
let fixture: string;

beforeAll(async () => {
  tmp = await tmpDir('canvos-rel-content-');
  reg = await startRegistry();
  fixture = join(tmp.path, 'fixture');
  await makeOciLayout(fixture, { tag: 'v1', platforms: ['linux/amd64', 'linux/arm64'], layerBytes: 4096 });
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await tmp?.cleanup();
});

const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A one-image OCI layout with the given layer blobs and config diff_ids. */
async function craftLayout(dir: string, layers: Buffer[], diffIds: string[]): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer): Promise<string> => {
    await writeFile(join(dir, 'blobs', 'sha256', hex(b)), b);
    return `sha256:${hex(b)}`;
  };
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }),
  );
  const layerDescs = await Promise.all(
    layers.map(async (l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: await put(l),
      size: l.length,
    })),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
      layers: layerDescs,
    }),
  );
  const md = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: md,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
}

/** A tar with one small file. */
async function tarOf(name: string, body: string): Promise<Buffer> {
  const p = tarPack();
  p.entry({ name }, body);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('corrupt or short content → exit 7', () => {
  it('a garbage docker-archive', async () => {
    const f = join(tmp.path, 'garbage.tar');
    await writeFile(f, randomBytes(8192));
    const r = await runBin(['copy', `docker-archive:${f}`, `oci:${join(tmp.path, 'out-garbage')}`]);
    await expectCleanFailure(r, { code: 7, withinMs: 10_000 });
    expect(await entries(join(tmp.path, 'out-garbage'))).toBeNull();
  });

  it('a corrupt blob in an oci: source leaves no destination', async () => {
    const src = join(tmp.path, 'corrupt-src');
    await makeOciLayout(src, { tag: 'v1', layerBytes: 4096 });
    const blobs = join(src, 'blobs', 'sha256');
    const idx = JSON.parse(await readFile(join(src, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(join(blobs, idx.manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: { digest: string }[];
    };
    const layer = join(blobs, manifest.layers[0]!.digest.slice(7));
    const bytes = await readFile(layer);
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(layer, bytes);
    const r = await runBin(['copy', `oci:${src}:v1`, `oci:${join(tmp.path, 'out-corrupt')}:v1`]);
    await expectCleanFailure(r, { code: 7, withinMs: 10_000, message: /does not match/ });
    expect((await readdir(tmp.path)).filter((n) => n.includes('out-corrupt'))).toEqual([]);
  });

  it('a truncated gzip layer read by iso --base', async () => {
    const dir = join(tmp.path, 'trunc-gz');
    const gz = gzipSync(await tarOf('etc/os-release', 'ID=kairos\n'.repeat(2000)));
    await craftLayout(dir, [gz.subarray(0, gz.length - 200)], [`sha256:${'1'.repeat(64)}`]);
    const r = await runBin(['iso', '--base', `oci:${dir}:v1`, '--output', join(tmp.path, 'iso-out')]);
    await expectCleanFailure(r, { code: 7, withinMs: 30_000 });
    expect(await entries(join(tmp.path, 'iso-out'))).toBeNull();
  });

  it('a config whose diff_ids do not match its layers', async () => {
    const dir = join(tmp.path, 'diffids');
    await craftLayout(dir, [gzipSync(await tarOf('a', 'b'))], []);
    const r = await runBin(['iso', '--base', `oci:${dir}:v1`, '--output', join(tmp.path, 'iso-out2')]);
    await expectCleanFailure(r, { code: 7, withinMs: 30_000, message: /0 diff_ids for 1 layers/ });
  });
});

describe('a wrong diff_id of a base layer → exit 7 naming the layer digest and index', () => {
  const wrongDiffId = async (name: string): Promise<{ dir: string; layer: string }> => {
    const dir = join(tmp.path, name);
    const good = await tarOf('etc/os-release', 'ID=ubuntu\nVERSION_ID="22.04"\n');
    const other = await tarOf('etc/os-release', 'ID=other\n');
    const gz = gzipSync(good);
    await craftLayout(dir, [gzipSync(other), gz], [`sha256:${hex(other)}`, `sha256:${'2'.repeat(64)}`]);
    return { dir, layer: `sha256:${hex(gz)}` };
  };
  const message = (layer: string): RegExp =>
    new RegExp(
      `layer 1 \\(${layer}\\): the uncompressed layer is sha256:[0-9a-f]{64}, but the config's diff_ids\\[1\\]`,
    );

  it('iso --base', async () => {
    const { dir, layer } = await wrongDiffId('diffid-iso');
    const out = join(tmp.path, 'diffid-iso-out');
    const r = await runBin(['iso', '--base', `oci:${dir}:v1`, '--output', out]);
    await expectCleanFailure(r, { code: 7, withinMs: 30_000, message: message(layer) });
    expect(await entries(out)).toBeNull();
  });

  it('build --output oci:', async () => {
    const { dir, layer } = await wrongDiffId('diffid-build');
    const project = join(tmp.path, 'diffid-project');
    await mkdir(project, { recursive: true });
    await writeFile(
      join(project, '.arg'),
      `OS_DISTRIBUTION=ubuntu\nOS_VERSION=22.04\nK8S_DISTRIBUTION=k3s\nK8S_VERSION=1.30.4\nPE_VERSION=v4.9.38\nIMAGE_REGISTRY=example.com/edge\nBASE_IMAGE=oci:${dir}:v1\n`,
    );
    const out = join(tmp.path, 'diffid-build-out');
    const r = await runBin(['build', '--output', `oci:${out}`], { cwd: project });
    await expectCleanFailure(r, { code: 7, withinMs: 30_000, message: message(layer) });
    expect(await entries(out)).toBeNull();
  });
});

describe('limits and text inputs → exit 3', () => {
  const project = async (name: string, file: string, content: string | Buffer): Promise<string> => {
    const dir = join(tmp.path, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, file), content);
    return dir;
  };

  it('a canvos.yaml over the limit is refused at once, naming the file and the limit', async () => {
    let text = 'OS_DISTRIBUTION: ubuntu\n';
    for (let i = 0; i < 80_000; i++) text += `K${i}: v\n`;
    const dir = await project('big-yaml', 'canvos.yaml', text);
    const r = await runBin(['build', '--dry-run'], { cwd: dir });
    await expectCleanFailure(r, {
      code: 3,
      withinMs: 5_000,
      message: /canvos\.yaml: canvos\.yaml is larger than the limit of 65536 bytes/,
    });
  });

  it('a mirror.yaml just under the limit with thousands of keys parses in linear time; duplicates are refused', async () => {
    let text = 'images:\n  - ref: a.io/x\nrewrite:\n  prefix: p\n';
    for (let i = 0; text.length < 250_000; i++) text += `x${i}: 1\n`;
    const dir = await project('mirror-dup', 'mirror.yaml', `${text}x5: 2\n`);
    const r = await runBin(['mirror', 'plan', '--config', join(dir, 'mirror.yaml')]);
    await expectCleanFailure(r, { code: 3, withinMs: 15_000, message: /Map keys must be unique \("x5"\)/ });
  });

  it('a non-UTF-8 .arg is refused naming the byte offset', async () => {
    const dir = await project(
      'latin1',
      '.arg',
      Buffer.concat([Buffer.from('OS_DISTRIBUTION=ubuntu\nCUSTOM_TAG=caf'), Buffer.from([0xe9]), Buffer.from('\n')]),
    );
    const r = await runBin(['build', '--dry-run'], { cwd: dir });
    await expectCleanFailure(r, {
      code: 3,
      withinMs: 5_000,
      message: /not UTF-8 text \(invalid byte 0xe9 at offset 37\)/,
    });
  });

  it('a 60 kB CUSTOM_TAG is refused and echoed cut short', async () => {
    const dir = await project(
      'long-tag',
      '.arg',
      `OS_DISTRIBUTION=ubuntu\nK8S_VERSION=1.30.4\nPE_VERSION=v4.9.38\nCUSTOM_TAG=${'a'.repeat(60_000)}\n`,
    );
    const r = await runBin(['build', '--dry-run'], { cwd: dir });
    await expectCleanFailure(r, {
      code: 3,
      withinMs: 5_000,
      message: /provider image tag "k3s-1\.30\.4-\S+-a+…" \(60019 characters\) is not a valid tag/,
    });
    expect(r.stderr.length).toBeLessThan(1000);
  });

  it('a scalar alias is a value like any other', async () => {
    const dir = await project(
      'alias',
      'canvos.yaml',
      'OS_DISTRIBUTION: ubuntu\nK8S_VERSION: 1.30.4\nPE_VERSION: v4.9.38\nCUSTOM_TAG: &t demo\nISO_NAME: *t\n',
    );
    const r = await runBin(['build', '--dry-run', '--timeout', '1'], { cwd: dir });
    expect(r.stderr).not.toMatch(/ISO_NAME|alias/);
    expect(r.code).not.toBe(3);
  });
});

describe('validation as skopeo', () => {
  it.each([
    ['a tag with a space', 'bad tag'],
    ['a 129-character tag', 'a'.repeat(129)],
  ])('oci: refuses %s (exit 4)', async (_l, tag) => {
    const r = await runBin(['copy', `oci:${fixture}:v1`, `oci:${join(tmp.path, 'out-tag')}:${tag}`]);
    await expectCleanFailure(r, { code: 4, withinMs: 5_000, message: /invalid tag/ });
    expect(await entries(join(tmp.path, 'out-tag'))).toBeNull();
  });

  it('--platform linux means linux/<host arch>', async () => {
    const host = process.arch === 'x64' ? 'amd64' : process.arch;
    const r = await runBin([
      'copy',
      '--json',
      '--platform',
      'linux',
      `oci:${fixture}:v1`,
      `oci:${join(tmp.path, 'out-platform')}:v1`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { platforms: string[] }).platforms).toEqual([`linux/${host}`]);
  });

  it.each([
    [
      'a missing --authfile',
      ['--authfile', '/nonexistent/auth.json'],
      /--authfile \/nonexistent\/auth\.json does not exist/,
    ],
    ['a missing --cert-dir', ['--cert-dir', '/nonexistent/certs'], /--cert-dir \/nonexistent\/certs does not exist/],
  ])('%s is an error (exit 2), not ignored', async (_l, flags, message) => {
    const r = await runBin(['copy', ...flags, `oci:${fixture}:v1`, `oci:${join(tmp.path, 'out-flags')}`]);
    await expectCleanFailure(r, { code: 2, withinMs: 5_000, message });
  });

  it('--project-dir must exist', async () => {
    const dir = join(tmp.path, 'pd');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '.arg'), 'OS_DISTRIBUTION=ubuntu\nK8S_VERSION=1.30.4\n');
    const r = await runBin(['build', '--dry-run', '--project-dir', '/nonexistent'], { cwd: dir });
    await expectCleanFailure(r, {
      code: 2,
      withinMs: 5_000,
      message: /--project-dir \/nonexistent is not an existing directory/,
    });
  });

  it('a garbage ca.crt in --cert-dir is an error naming the file', async () => {
    const certs = join(tmp.path, 'certs');
    await mkdir(certs, { recursive: true });
    await writeFile(join(certs, 'ca.crt'), 'not a certificate\n');
    const r = await runBin([
      'copy',
      '--cert-dir',
      certs,
      `docker://${reg.host}/app:v1`,
      `oci:${join(tmp.path, 'out-cert')}`,
    ]);
    await expectCleanFailure(r, {
      code: 3,
      withinMs: 10_000,
      message: new RegExp(`${certs}/ca\\.crt: no PEM certificate in the file`),
    });
  });
});
