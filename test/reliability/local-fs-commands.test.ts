/**
 * Class 4 beyond `copy`: ENOSPC for `build --output oci:`, `iso --output` and `mirror save --to DIR` (a small tmpfs in
 * `unshare -Urm`, as the unprivileged test user), and EMFILE, ENAMETOOLONG, EISDIR and a file where a directory is
 * expected: exit 20, the path and errno in one line, a hint, no stack, nothing left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { makeOciLayout } from '../helpers/fixtures.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';
import { BASE_FILES, makeProject, pushFixtureImages } from '../provider/fixture-images.js';
import { expectCleanFailure, inNamespace, runBin, serveImage, type ServedImage } from './harness.js';

let base: string;
let served: ServedImage;
let reg: TestRegistry;
let project: string;
let isoBase: string;
let fixture: string;

beforeAll(async () => {
  base = unprivilegedTempDir('canvos-rel-fs2-');
  await chmod(base, 0o755);
  served = await serveImage('canvos-rel-fs2-srv-', 512 * 1024);
  reg = await startRegistry();
  // A base with a 600 kB incompressible file: the provider image does not fit the 256 kB tmpfs.
  const big = randomBytes(450 * 1024).toString('base64');
  const refs = await pushFixtureImages(reg, join(base, 'images'), { baseFiles: { ...BASE_FILES, 'opt/big': big } });
  project = join(base, 'project');
  await makeProject(project, `${refs.argLines}K8S_VERSION=1.30.4\n`);
  const fx = await prepareBootFixture();
  await cp(fx.layoutDir, join(base, 'iso-base'), { recursive: true });
  isoBase = `oci:${join(base, 'iso-base')}:${fx.tag}`;
  fixture = join(base, 'fixture');
  await makeOciLayout(fixture, { tag: 'v1', layerBytes: 512 * 1024, layers: 6 });
  for (const e of await readdir(base, { recursive: true, withFileTypes: true }))
    await chmod(join(e.parentPath, e.name), e.isDirectory() ? 0o755 : 0o644);
}, 600_000);
afterAll(async () => {
  await served?.stop();
  await reg?.stop();
  await rm(base, { recursive: true, force: true });
});

const tmpfs = (size: string): string => `mount -t tmpfs -o size=${size} tmpfs "$M"`;

/** The blob cache outside the run's $TMPDIR (which is also its $HOME and must end empty). */
async function cacheEnv(name: string): Promise<string[]> {
  const dir = join(base, `cache-${name}`);
  await mkdir(dir, { mode: 0o777 });
  await chmod(dir, 0o777);
  return [`CANVOS_CACHE_DIR=${dir}`];
}

describe.runIf(unprivilegedIdentity() !== null)('ENOSPC (tmpfs in unshare -Urm, unprivileged) → exit 20', () => {
  // [command, tmpfs size, argv with $M for the mount]: each names the file and errno, nothing is left on the mount.
  const cases: [string, string, () => string[]][] = [
    [
      'build --output oci:DIR',
      '256k',
      () => [
        'build',
        ...['--project-dir', project, '--arg-file', join(project, '.arg'), '--insecure-registry', reg.host],
        ...['--output', 'oci:$M/out'],
      ],
    ],
    ['iso --output DIR', '1m', () => ['iso', '--base', isoBase, '--output', '$M/out']],
    [
      'mirror save --to DIR',
      '400k',
      () => ['mirror', 'save', '--src-insecure', `${served.reg.host}/app:v1`, '--to', '$M/out'],
    ],
  ];
  it.each(cases)(
    '%s',
    async (label, size, argv) => {
      const mnt = join(base, `full-${label.split(' ')[0]!}`);
      await mkdir(mnt, { mode: 0o777 });
      const args = argv().map((a) => a.replace('$M', mnt));
      const r = await inNamespace(tmpfs(size), mnt, args, await cacheEnv(label.split(' ')[0]!));
      await expectCleanFailure(r, { code: 20, withinMs: 60_000, message: new RegExp(`${mnt}/\\S+: ENOSPC`) });
      expect(r.stderr).toMatch(/hint: free space/);
      expect(r.stdout).toMatch(/^LEFT:\s*$/m);
    },
    90_000,
  );
});

describe('more path errors → exit 20', () => {
  it('EMFILE (ulimit -n 28): names the file and the limit; the partial layout is removed', async () => {
    const out = join(base, 'emfile-out');
    const r = await runBin(['copy', `oci:${fixture}:v1`, `oci:${out}:v1`], {
      wrap: (argv) => ['bash', '-c', 'ulimit -n 28; exec "$@"', 'bash', ...argv],
    });
    await expectCleanFailure(r, { code: 20, withinMs: 20_000, message: /: EMFILE/ });
    expect(r.stderr).toMatch(/hint: too many open files: raise the limit \(ulimit -n\)/);
    expect((await readdir(base)).filter((n) => n.includes('emfile-out'))).toEqual([]);
  });

  it('ENAMETOOLONG: iso --output with a 300-character name', async () => {
    const out = join(base, 'y'.repeat(300));
    const r = await runBin(['iso', '--base', isoBase, '--output', out]);
    await expectCleanFailure(r, { code: 20, withinMs: 30_000, message: new RegExp(`${out}: ENAMETOOLONG`) });
    expect(r.stderr).toMatch(/hint: the path .* is too long/);
  });

  it('EISDIR: mirror save --to NAME.tar where NAME.tar is a directory', async () => {
    const to = join(base, 'is-a-dir.tar');
    await mkdir(join(to, 'keep'), { recursive: true });
    const r = await runBin(['mirror', 'save', '--src-insecure', `${served.reg.host}/app:v1`, '--to', to]);
    await expectCleanFailure(r, { code: 20, withinMs: 30_000, message: new RegExp(`${to}\\S*: EISDIR`) });
    expect(await readdir(to)).toEqual(['keep']);
    expect((await readdir(base)).filter((n) => n.startsWith('is-a-dir.') && n !== 'is-a-dir.tar.layout')).toEqual([
      'is-a-dir.tar',
    ]);
  });

  it('a file where the output directory should be: iso --output FILE', async () => {
    const file = join(base, 'a-file');
    await writeFile(file, 'x');
    const r = await runBin(['iso', '--base', isoBase, '--output', file]);
    await expectCleanFailure(r, { code: 20, withinMs: 30_000, message: new RegExp(`${file}: (ENOTDIR|EEXIST)`) });
    expect(r.stderr).toMatch(/hint: /);
  });
});
