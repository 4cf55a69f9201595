/**
 * The ISO does not depend on who builds it: the same inputs and SOURCE_DATE_EPOCH built by root (umask 022, LANG=C,
 * TZ=UTC, cwd /) and by the unprivileged `canvostest` user (umask 077, LANG=C.UTF-8, another TZ, its own cwd) through
 * the real CLI give the same sha256. The unprivileged ISO
 * records 0:0 for every ISO entry (Rock Ridge) and its rootfs.squashfs keeps the layers' owners (root files 0/0,
 * local-ui.tar's 1000/1000). Needs the built CLI (`npx tsc -p tsconfig.json && node scripts/bundle.mjs`).
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareBootFixture } from '../helpers/boot-fixture.js';
import { run } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';

const repo = resolve(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'canvos-lite.js');
let work = '';
let base = '';

beforeAll(async () => {
  work = unprivilegedTempDir('canvos-iso-unpriv-');
  const fx = await prepareBootFixture();
  // The fixture lives in root's cache; the unprivileged user gets its own copy of every input.
  await cp(fx.layoutDir, join(work, 'layout'), { recursive: true });
  base = `oci:${join(work, 'layout')}:${fx.tag}`;
  await writeFile(join(work, 'user-data'), '#cloud-config\ninstall:\n  auto: true\n');
  await mkdir(join(work, 'files-iso', 'extras'), { recursive: true });
  await writeFile(join(work, 'files-iso', 'extras', 'site.txt'), 'site\n');
  await mkdir(join(work, 'ui', 'www'), { recursive: true });
  await writeFile(join(work, 'ui', 'www', 'index.html'), '<html></html>\n');
  const t = await run('tar', [
    '--sort=name',
    '--owner=1000',
    '--group=1000',
    '--numeric-owner',
    '--mtime=@1700000000',
    '-cf',
    join(work, 'local-ui.tar'),
    '-C',
    join(work, 'ui'),
    '.',
  ]);
  expect(t.code, t.stderr).toBe(0);
  const id = unprivilegedIdentity();
  if (id && process.getuid?.() === 0) expect((await run('chown', ['-R', `${id.uid}:${id.gid}`, work])).code).toBe(0);
}, 600_000);
afterAll(async () => {
  if (work) await run('rm', ['-rf', work]);
});

/** `canvos-lite iso --base …` with a clean environment, as the given user and umask; returns the ISO's sha256. */
async function buildAs(who: 'root' | 'unprivileged', out: string, umask: string): Promise<string> {
  const argv = [
    'env',
    `PATH=${process.env.PATH ?? ''}`,
    `HOME=${work}`,
    `CANVOS_CACHE_DIR=${join(work, `cache-${who}`)}`,
    'SOURCE_DATE_EPOCH=1700000000',
    `LANG=${who === 'root' ? 'C' : 'C.UTF-8'}`,
    `TZ=${who === 'root' ? 'UTC' : 'Asia/Kolkata'}`,
    'sh',
    '-c',
    `umask ${umask} && exec "$@"`,
    'sh',
    process.execPath,
    bin,
    'iso',
    '--base',
    base,
    '--user-data',
    join(work, 'user-data'),
    '--files-iso',
    join(work, 'files-iso'),
    '--local-ui',
    join(work, 'local-ui.tar'),
    '--name',
    'same',
    '--output',
    out,
    '--json',
  ];
  const [cmd, ...args] = who === 'root' ? argv : asUnprivileged(argv);
  const r = await run(cmd ?? '', args, { cwd: who === 'root' ? '/' : work, timeoutMs: 300_000 });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { sha256: string }).sha256;
}

describe.runIf(unprivilegedIdentity() !== null)('ISO built by root and by an unprivileged user', () => {
  it("has the same sha256, 0:0 Rock Ridge owners, and the layers' owners inside the squashfs", async () => {
    const unpriv = await buildAs('unprivileged', join(work, 'out-user'), '077');
    const root = await buildAs('root', join(work, 'out-root'), '022');
    expect(unpriv).toBe(root);

    const iso = join(work, 'out-user', 'same.iso');
    const ls = await run('xorriso', ['-indev', iso, '-find', '/', '-exec', 'lsdl']);
    expect(ls.code, ls.stderr).toBe(0);
    const rows = ls.stdout.split('\n').filter((l) => /^[-dl][rwx-]{9}/.test(l));
    expect(rows.length).toBeGreaterThan(15);
    for (const row of rows) expect(row).toMatch(/^\S+\s+\d+\s+0\s+0\s/);
    expect(ls.stdout).toMatch(/^-rw-r--r--\s+1 0\s+0 .* '\/extras\/site\.txt'$/m);
    expect(ls.stdout).toMatch(/^drwxr-xr-x\s+\d+ 0\s+0 .* '\/extras'$/m);

    const sq = join(work, 'rootfs.squashfs');
    const x = await run('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/rootfs.squashfs', sq]);
    expect(x.code, x.stderr).toBe(0);
    const l = await run('unsquashfs', ['-lln', sq]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/^-\S+ 0\/0\s+\d+ .* squashfs-root\/etc\/canvos-test-marker$/m);
    expect(l.stdout).toMatch(/^-\S+ 0\/0\s+\d+ .* squashfs-root\/boot\/vmlinuz-\S+$/m);
    expect(l.stdout).toMatch(/^-rw-\S+ 1000\/1000\s+14 .* squashfs-root\/opt\/spectrocloud\/www\/index\.html$/m);
    const owners = new Set(
      l.stdout
        .split('\n')
        .map((r) => /^\S+ (\d+\/\d+) /.exec(r)?.[1])
        .filter(Boolean),
    );
    expect([...owners].sort()).toEqual(['0/0', '1000/1000']);
  }, 600_000);
});
