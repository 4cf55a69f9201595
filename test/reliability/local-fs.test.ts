/**
 * Class 4, local filesystem errors: ENOSPC (a small tmpfs in `unshare -Urm`, as the unprivileged test user), a
 * read-only bind mount, EACCES, ENOTDIR and EISDIR end with exit 20, a message naming the path and the real errno,
 * and a hint; nothing is left at the destination or in $TMPDIR.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeOciLayout } from '../helpers/fixtures.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';
import { expectCleanFailure, inNamespace, runBin } from './harness.js';

let base: string;
let fixture: string;

beforeAll(async () => {
  base = unprivilegedTempDir('canvos-rel-fs-');
  fixture = join(base, 'fixture');
  await makeOciLayout(fixture, { tag: 'v1', layerBytes: 512 * 1024 });
  // The fixture is read by the unprivileged user.
  await chmod(base, 0o755);
}, 60_000);
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe.runIf(unprivilegedIdentity() !== null)('local filesystem errors → exit 20', () => {
  it('ENOSPC on a full tmpfs (unshare -Urm, unprivileged): names the file and errno; the partial layout is removed', async () => {
    const mnt = join(base, 'small');
    await mkdir(mnt);
    const r = await inNamespace('mount -t tmpfs -o size=400k tmpfs "$M"', mnt, [
      'copy',
      `oci:${fixture}:v1`,
      `oci:${mnt}/out:v1`,
    ]);
    await expectCleanFailure(r, {
      code: 20,
      withinMs: 20_000,
      message: new RegExp(`${mnt}/\\.out\\.partial-\\S+: ENOSPC`),
    });
    expect(r.stderr).toMatch(/hint: free space/);
    expect(r.stdout).toMatch(/^LEFT:\s*$/m);
  });

  it('a read-only bind mount is EROFS (not ENOENT)', async () => {
    const mnt = join(base, 'ro');
    await mkdir(mnt);
    const r = await inNamespace('mount --bind "$M" "$M"; mount -o remount,bind,ro "$M"', mnt, [
      'copy',
      `oci:${fixture}:v1`,
      `oci:${mnt}/out:v1`,
    ]);
    await expectCleanFailure(r, { code: 20, withinMs: 20_000, message: new RegExp(`${mnt}.*: EROFS`) });
    expect(r.stderr).toMatch(/hint: that filesystem is mounted read-only/);
    expect(r.stdout).toMatch(/^LEFT:\s*$/m);
  });

  it('EACCES: a directory the user may not write', async () => {
    const locked = join(base, 'locked');
    await mkdir(locked, { mode: 0o755 }); // owned by root
    const tmp = unprivilegedTempDir('canvos-rel-fs-tmp-');
    const r = await runBin(['copy', `oci:${fixture}:v1`, `oci:${locked}/out:v1`], {
      tmp,
      wrap: (argv) => asUnprivileged(['env', `TMPDIR=${tmp}`, `HOME=${tmp}`, ...argv]),
    });
    await expectCleanFailure(r, { code: 20, withinMs: 20_000, message: new RegExp(`${locked}.*: EACCES`) });
    expect(r.stderr).toMatch(/hint: check the permissions/);
  });
});

describe('path errors → exit 20', () => {
  it('ENOTDIR: a path through a file', async () => {
    const file = join(base, 'a-file');
    await writeFile(file, 'x');
    const r = await runBin(['copy', `oci:${fixture}:v1`, `oci:${file}/sub/out`]);
    await expectCleanFailure(r, { code: 20, withinMs: 10_000, message: new RegExp(`${file}/sub/out: ENOTDIR`) });
  });

  it('EISDIR: a docker-archive destination that is a directory', async () => {
    const dir = join(base, 'archive-dir');
    await mkdir(dir);
    const r = await runBin(['copy', `oci:${fixture}:v1`, `docker-archive:${dir}`]);
    await expectCleanFailure(r, { code: 20, withinMs: 10_000, message: /EISDIR/ });
  });

  it('ENAMETOOLONG names the errno', async () => {
    const r = await runBin(['copy', `oci:${fixture}:v1`, `oci:${join(base, 'x'.repeat(300))}`]);
    await expectCleanFailure(r, { code: 20, withinMs: 10_000, message: /ENAMETOOLONG/ });
  });
});
