/**
 * `canvos-lite iso` end to end on an oci: layout (the boot fixture): exit codes, JSON result, the ISO and its
 * .sha256 in --output; and buildIso aborted mid-way leaves the output directory empty.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanvosError } from '../../src/errors.js';
import { buildIso } from '../../src/iso/build-iso.js';
import { layoutRootfs, prepareBootFixture, type BootFixture } from '../helpers/boot-fixture.js';
import { tmpDir } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';

let dir: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;
beforeAll(async () => {
  dir = await tmpDir('canvos-cli-iso-');
  fx = await prepareBootFixture();
}, 600_000);
afterAll(async () => {
  await dir.cleanup();
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, CANVOS_CACHE_DIR: join(dir.path, 'cache') };
  return runCli(args, { env, cwd: dir.path });
}

describe('canvos-lite iso', () => {
  it('builds the ISO from an oci: base and prints the JSON result', async () => {
    const ud = join(dir.path, 'user-data');
    await writeFile(ud, '#cloud-config\ninstall:\n  poweroff: true\n');
    const out = join(dir.path, 'build');
    const r = await cli([
      'iso',
      '--base',
      `oci:${fx.layoutDir}:latest`,
      '--user-data',
      ud,
      '--name',
      'cli-test',
      '--output',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { isoPath: string; sha256: string };
    expect(res.isoPath).toBe(join(out, 'cli-test.iso'));
    expect((await readdir(out)).sort()).toEqual(['cli-test.iso', 'cli-test.iso.sha256']);
    expect(await readFile(join(out, 'cli-test.iso.sha256'), 'utf8')).toBe(`${res.sha256}  cli-test.iso\n`);
  });

  it('exits 3 without --base or a configuration, and 3 for user-data without #cloud-config', async () => {
    expect((await cli(['iso'])).code).toBe(3); // no --base: the CanvOS configuration drives it, and there is none
    const ud = join(dir.path, 'bad-user-data');
    await writeFile(ud, 'install: {}\n');
    const r = await cli([
      'iso',
      '--base',
      `oci:${fx.layoutDir}:latest`,
      '--user-data',
      ud,
      '--output',
      join(dir.path, 'bad'),
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('#cloud-config');
  });
});

describe('buildIso abort', () => {
  it('rejects with ERR_ABORTED and removes the output directory it made', async () => {
    const ac = new AbortController();
    const out = join(dir.path, 'aborted');
    const err = await buildIso(
      { rootfs: await layoutRootfs(fx.layoutDir), outputDir: out },
      { signal: ac.signal, onProgress: (p) => (p.phase === 'efi' ? ac.abort() : undefined) },
    ).catch((e: unknown) => e);
    expect(CanvosError.is(err) && err.code).toBe('ERR_ABORTED');
    expect(await readdir(out).catch(() => null)).toBeNull(); // the output directory the build made is removed again
  });
});
