/**
 * The installer ISO as an OCI artifact, end to end and rootless: canvostest builds the fixture ISO with
 * `iso --push` into a real registry; `mirror save` → `mirror load` moves it to a second registry; `pull-artifact`
 * writes the ISO and its `.sha256` back byte-identical. `copy` to an OCI layout carries it too; a tampered blob is
 * refused without leaving a file, and an ordinary image (no titled layers) is refused with exit 5.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISO_ARTIFACT_TYPE, SHA256SUM_ANNOTATION } from '../../src/artifact/artifact.js';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedTempDir } from '../helpers/unprivileged.js';

const BIN = resolve(__dirname, '../../bin/canvos-lite.js');
let work: string;
let a: TestRegistry;
let b: TestRegistry;
let iso: { isoPath: string; sha256Path: string; sha256: string; pushed: { ref: string; digest: string } };

/** The CLI as canvostest, with SOURCE_DATE_EPOCH and a private cache. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = ['env', 'SOURCE_DATE_EPOCH=1700000000', `CANVOS_CACHE_DIR=${join(work, 'cache')}`];
  const [cmd = '', ...rest] = asUnprivileged([...env, process.execPath, BIN, ...args]);
  return run(cmd, rest, { cwd: work, timeoutMs: 600_000 });
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

beforeAll(async () => {
  const fx = await prepareBootFixture();
  work = unprivilegedTempDir('canvos-artifact-');
  await cp(fx.layoutDir, join(work, 'base'), { recursive: true });
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  const r = await cli(
    'iso',
    '--base',
    `oci:${join(work, 'base')}:latest`,
    '--name',
    'edge',
    '--output',
    join(work, 'iso'),
    '--push',
    `${a.host}/edge/installer-iso:v1`,
    '--insecure',
    '--json',
  );
  expect(r.code, r.stderr).toBe(0);
  iso = JSON.parse(r.stdout) as typeof iso;
}, 600_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('ISO as an OCI artifact', () => {
  it('pushes one titled layer with the artifactType, the empty config and the .sha256 line as an annotation', async () => {
    const res = await fetch(`${a.url}/v2/edge/installer-iso/manifests/v1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const body = Buffer.from(await res.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(iso.pushed.digest);
    const m = JSON.parse(body.toString()) as {
      artifactType: string;
      config: { mediaType: string; size: number };
      layers: Array<{ digest: string; annotations: Record<string, string> }>;
      annotations: Record<string, string>;
    };
    expect(m.artifactType).toBe(ISO_ARTIFACT_TYPE);
    expect(m.config).toMatchObject({ mediaType: 'application/vnd.oci.empty.v1+json', size: 2 });
    expect(m.layers).toHaveLength(1);
    expect(m.layers[0]?.digest).toBe(`sha256:${iso.sha256}`);
    expect(m.layers[0]?.annotations['org.opencontainers.image.title']).toBe('edge.iso');
    expect(`${m.annotations[SHA256SUM_ANNOTATION]}\n`).toBe(await readFile(iso.sha256Path, 'utf8'));
    expect(m.annotations['org.opencontainers.image.created']).toBe('2023-11-14T22:13:20Z');
  });

  it('survives mirror save → load, and pull-artifact gives the original bytes and .sha256', async () => {
    const tar = join(work, 'mirror.tar');
    const s = await cli('mirror', 'save', `${a.host}/edge/installer-iso:v1`, '--to', tar, '--src-insecure');
    expect(s.code, s.stderr).toBe(0);
    const l = await cli('mirror', 'load', '--from', tar, '--to', `${b.host}/airgap`, '--dest-insecure', '--json');
    expect(l.code, l.stderr).toBe(0);
    const dest = (JSON.parse(l.stdout) as { images: Array<{ destination: string; digest: string }> }).images[0];
    expect(dest?.digest).toBe(iso.pushed.digest);
    const out = join(work, 'pulled');
    const p = await cli('pull-artifact', '--insecure', dest?.destination ?? '', out, '--json');
    expect(p.code, p.stderr).toBe(0);
    expect((JSON.parse(p.stdout) as { files: string[] }).files).toEqual([
      join(out, 'edge.iso'),
      join(out, 'edge.iso.sha256'),
    ]);
    expect(await sha256(join(out, 'edge.iso'))).toBe(iso.sha256);
    expect(await readFile(join(out, 'edge.iso.sha256'))).toEqual(await readFile(iso.sha256Path));
    const check = await run('sha256sum', ['-c', 'edge.iso.sha256'], { cwd: out });
    expect(check.stdout).toContain('edge.iso: OK');
    expect((await readdir(out)).sort()).toEqual(['edge.iso', 'edge.iso.sha256']);
  }, 300_000);

  it('is carried by copy into an OCI layout; a tampered blob is refused and leaves no file', async () => {
    const layout = join(work, 'layout');
    const c = await cli('copy', '--src-insecure', `docker://${a.host}/edge/installer-iso:v1`, `oci:${layout}:v1`);
    expect(c.code, c.stderr).toBe(0);
    const ok = await cli('pull-artifact', `oci:${layout}:v1`, join(work, 'from-layout'));
    expect(ok.code, ok.stderr).toBe(0);
    expect(await sha256(join(work, 'from-layout', 'edge.iso'))).toBe(iso.sha256);
    // Flip one byte of the ISO blob: the pull must fail on the digest and not leave a (partial) file.
    const blob = join(layout, 'blobs', 'sha256', iso.sha256);
    const bytes = await readFile(blob);
    bytes[40_000] = (bytes[40_000] ?? 0) ^ 0xff;
    await writeFile(blob, bytes);
    const bad = await cli('pull-artifact', `oci:${layout}:v1`, join(work, 'tampered'));
    expect(bad.code, bad.stderr).toBe(7);
    expect(bad.stderr).toMatch(/digest|sha256/i);
    expect(await readdir(join(work, 'tampered'))).toEqual([]);
  }, 300_000);

  it("--push-as image writes CanvOS's iso-disk-image form: the ISO at /disk/<name>.iso in a scratch image", async () => {
    const layout = join(work, 'iso-image');
    const r = await cli(
      'iso',
      '--base',
      `oci:${join(work, 'base')}:latest`,
      '--name',
      'edge',
      '--output',
      join(work, 'iso2'),
      '--push',
      `oci:${layout}:v1`,
      '--push-as',
      'image',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const built = JSON.parse(r.stdout) as typeof iso;
    expect(built.sha256).toBe(iso.sha256); // SOURCE_DATE_EPOCH: the same ISO again
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    expect(index.manifests[0]?.digest).toBe(built.pushed.digest);
    const blob = (d: string): string => join(layout, 'blobs', 'sha256', d.replace('sha256:', ''));
    const m = JSON.parse(await readFile(blob(built.pushed.digest), 'utf8')) as {
      layers: Array<{ digest: string; mediaType: string }>;
    };
    expect(m.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip']);
    const x = join(work, 'iso-image-x');
    await run('mkdir', ['-p', x]);
    const t = await run('tar', ['-xzf', blob(m.layers[0]?.digest ?? ''), '-C', x]);
    expect(t.code, t.stderr).toBe(0);
    expect(await readdir(join(x, 'disk'))).toEqual(['edge.iso']);
    expect(await sha256(join(x, 'disk', 'edge.iso'))).toBe(iso.sha256);
  }, 300_000);

  it('refuses an ordinary image (no titled layers) with exit 5', async () => {
    const r = await cli('pull-artifact', `oci:${join(work, 'base')}:latest`, join(work, 'not-artifact'));
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('org.opencontainers.image.title');
  });
});
