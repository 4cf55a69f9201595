/**
 * Sweep, corrupt files and local filesystem errors (issue #19 classes 3 and 4, and the hostile files of the brief):
 * truncated gzip, truncated tar, a diff_ids mismatch, garbage and symlinked docker-archives, a mirror archive whose
 * manifest points outside, outputs that are files or directories, `/proc`, for every command reading them. See
 * sweep-harness.ts for what each row asserts.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { makeOciLayout } from '../helpers/fixtures.js';
import { tmpDir } from '../helpers/tools.js';
import { sweep, type SweepCase } from './sweep-harness.js';

interface Ctx {
  dir: string;
}
let ctx: Ctx;
let cleanup: () => Promise<void>;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A tar of `entries` (name → body, or `{ link }` for a symlink). */
async function tarOf(entries: Record<string, string | Buffer | { symlinkTo: string }>): Promise<Buffer> {
  const p = tarPack();
  for (const [name, body] of Object.entries(entries)) {
    if (typeof body === 'object' && 'symlinkTo' in body) p.entry({ name, type: 'symlink', linkname: body.symlinkTo });
    else p.entry({ name }, body);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A one-image OCI layout (tag v1) with these gzip layer blobs and config diff_ids. */
async function layout(dir: string, layers: Buffer[], diffIds: string[]): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer): Promise<string> => {
    await writeFile(join(dir, 'blobs', 'sha256', sha(b)), b);
    return `sha256:${sha(b)}`;
  };
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }),
  );
  const layerType = 'application/vnd.oci.image.layer.v1.tar+gzip';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
      layers: await Promise.all(
        layers.map(async (l) => ({ mediaType: layerType, digest: await put(l), size: l.length })),
      ),
    }),
  );
  const ref = { 'org.opencontainers.image.ref.name': 'v1' };
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: await put(manifest),
        size: manifest.length,
        annotations: ref,
      },
    ],
  };
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

beforeAll(async () => {
  const tmp = await tmpDir('canvos-sweep-files-');
  const dir = tmp.path;
  const rootfs = await tarOf({ 'etc/os-release': 'ID=kairos\n'.repeat(3000), 'boot/x': randomBytes(20_000) });
  const gz = gzipSync(rootfs);
  const diff = `sha256:${sha(rootfs)}`;
  await layout(join(dir, 'trunc-gz'), [gz.subarray(0, gz.length - 300)], [diff]);
  const cut = gzipSync(rootfs.subarray(0, 700));
  await layout(join(dir, 'trunc-tar'), [cut], [`sha256:${sha(rootfs.subarray(0, 700))}`]);
  await layout(join(dir, 'diff-ids'), [gz], []);
  await writeFile(join(dir, 'garbage.tar'), randomBytes(8192));
  await writeFile(join(dir, 'link-out.tar'), await tarOf({ 'manifest.json': { symlinkTo: '/etc/passwd' } }));
  await writeFile(
    join(dir, 'link-in.tar'),
    await tarOf({ 'real.json': '[]', 'manifest.json': { symlinkTo: 'real.json' } }),
  );
  await writeFile(join(dir, 'bad-json.tar'), await tarOf({ 'manifest.json': '[{"Config": <garbage' }));
  // A mirror archive (the tar of an OCI layout, as mirror save writes it) in arch/, and manifests in arch/sub/ that
  // name it by a path outside their directory: without the check a load would read it and go on to the registry.
  const fixture = join(dir, 'fixture');
  await makeOciLayout(fixture, { tag: 'v1', layerBytes: 2048 });
  const members: Record<string, Buffer> = {};
  for (const f of [
    'oci-layout',
    'index.json',
    ...(await readdir(join(fixture, 'blobs', 'sha256'))).map((b) => `blobs/sha256/${b}`),
  ])
    members[f] = await readFile(join(fixture, f));
  const archive = await tarOf(members);
  await mkdir(join(dir, 'arch', 'sub'), { recursive: true });
  await writeFile(join(dir, 'arch', 'a.tar'), archive);
  const top = (JSON.parse(members['index.json']!.toString()) as { manifests: { digest: string; mediaType: string }[] })
    .manifests[0]!;
  const manifest = (name: string, digest = top.digest): string =>
    JSON.stringify({
      format: 'canvos-lite-mirror-archive/v1',
      created: '2026-01-01T00:00:00Z',
      size: archive.length,
      parts: [{ name, size: archive.length, sha256: sha(archive) }],
      images: [{ ref: 'example.com/app:v1', digest, mediaType: top.mediaType }],
    });
  await writeFile(join(dir, 'arch', 'sub', 'outside.manifest.json'), manifest('../a.tar'));
  await writeFile(join(dir, 'arch', 'sub', 'absolute.manifest.json'), manifest(join(dir, 'arch', 'a.tar')));
  await writeFile(join(dir, 'arch', 'bad-digest.manifest.json'), manifest('a.tar', 'sha256:../../../etc/passwd'));
  await writeFile(join(dir, 'a-file'), 'x');
  await mkdir(join(dir, 'a-dir'));
  await symlink('/proc', join(dir, 'proc-link'));
  ctx = { dir };
  cleanup = () => tmp.cleanup();
}, 60_000);
afterAll(() => cleanup?.());

const p = (c: Ctx, name: string): string => join(c.dir, name);
// Rows run concurrently: each gets its own output path (`out`), so one row's clean-up never meets another's files.
const iso =
  (src: string, out = 'out-iso') =>
  (c: Ctx) => ['iso', '--base', src.replace('{d}', c.dir), '--output', p(c, out)];
const disk =
  (src: string, out = 'out-disk') =>
  (c: Ctx) => ['disk', '--base', src.replace('{d}', c.dir), '--output', p(c, out)];
const copy =
  (src: string, out = 'out-copy') =>
  (c: Ctx) => ['copy', src.replace('{d}', c.dir), `oci:${p(c, out)}:v1`];
const pull =
  (src: string, out = 'out-pull') =>
  (c: Ctx) => ['pull-artifact', src.replace('{d}', c.dir), p(c, out)];

/** Rows for each reader of `src` ({d} = the test directory), all expecting `code`. */
const rows = (
  label: string,
  src: string,
  code: number,
  readers: Record<string, (s: string, out: string) => (c: Ctx) => string[]>,
  message?: RegExp,
): SweepCase<Ctx>[] =>
  Object.entries(readers).map(([cmd, make]) => {
    const out = `out-${cmd.replace('pull-artifact', 'pull')}-${label.replace(/[^a-z0-9]+/gi, '-')}`;
    return {
      name: `${cmd}: ${label} → ${code}`,
      args: make(src, out),
      code,
      message,
      dest: (c: Ctx) => p(c, out),
      withinMs: 30_000,
    };
  });

const cases: SweepCase<Ctx>[] = [
  ...rows('a truncated gzip layer', 'oci:{d}/trunc-gz:v1', 7, { iso, disk }),
  ...rows('a truncated tar layer', 'oci:{d}/trunc-tar:v1', 7, { iso, disk }),
  ...rows('diff_ids not matching the layers', 'oci:{d}/diff-ids:v1', 7, { iso, disk }, /diff_ids/),
  ...rows('a garbage docker-archive', 'docker-archive:{d}/garbage.tar', 7, { copy, iso, disk, 'pull-artifact': pull }),
  ...rows('manifest.json a symlink out', 'docker-archive:{d}/link-out.tar', 7, { copy, iso }, /not a regular file/),
  ...rows('manifest.json a symlink in', 'docker-archive:{d}/link-in.tar', 7, { copy }, /not a regular file/),
  ...rows('manifest.json not JSON', 'docker-archive:{d}/bad-json.tar', 7, { copy, iso }, /manifest\.json is invalid/),
  ...['outside', 'absolute', 'bad-digest'].map((name) => ({
    name: `mirror load: an archive manifest that ${name === 'bad-digest' ? 'names a bad digest' : `points ${name}`} → 12`,
    args: (c: Ctx) => [
      'mirror',
      'load',
      '--from',
      join(c.dir, 'arch', name === 'bad-digest' ? '' : 'sub', `${name}.manifest.json`),
      '--to',
      '127.0.0.1:9/x',
    ],
    code: 12,
    message: /is not a canvos-lite-mirror-archive\/v1 manifest/,
    withinMs: 10_000,
  })),
  ...[
    [
      'iso --output a file',
      (c: Ctx) => [...iso('oci:{d}/fixture:v1')(c).slice(0, -1), p(c, 'a-file')],
      /ENOTDIR|EEXIST/,
    ],
    [
      'disk --output a file',
      (c: Ctx) => [...disk('oci:{d}/fixture:v1')(c).slice(0, -1), p(c, 'a-file')],
      /EEXIST|ENOTDIR/,
    ],
    [
      'pull-artifact into a file',
      (c: Ctx) => ['pull-artifact', `oci:${p(c, 'fixture')}:v1`, p(c, 'a-file')],
      /E[A-Z]+/,
    ],
    [
      'copy to docker-archive: a directory',
      (c: Ctx) => [...copy('oci:{d}/fixture:v1')(c).slice(0, -1), `docker-archive:${p(c, 'a-dir')}`],
      /EISDIR/,
    ],
    ['copy into /proc', (c: Ctx) => [...copy('oci:{d}/fixture:v1')(c).slice(0, -1), 'oci:/proc/x/y'], /\/proc/],
    [
      'copy through a link into /proc',
      (c: Ctx) => [...copy('oci:{d}/fixture:v1')(c).slice(0, -1), `oci:${p(c, 'proc-link')}/x/y`],
      /proc/,
    ],
  ].map(([name, args, message]) => ({
    name: `${name as string} → 20`,
    args: args as (c: Ctx) => string[],
    code: 20,
    message: message as RegExp,
    withinMs: 15_000,
  })),
];

describe('sweep: corrupt files and local filesystem errors', () => sweep(cases, () => ctx));
