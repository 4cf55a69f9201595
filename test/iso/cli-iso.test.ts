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
import { run, tmpDir } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';
import { nativeAvailable } from '../../src/native/load.js';

let dir: { path: string; cleanup(): Promise<void> };
let fx: BootFixture;
beforeAll(async () => {
  dir = await tmpDir('canvos-cli-iso-');
  fx = await prepareBootFixture();
}, 600_000);
afterAll(async () => {
  await dir.cleanup();
});

async function cli(
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, CANVOS_CACHE_DIR: join(dir.path, 'cache'), ...extraEnv };
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

describe('--squashfs-level', () => {
  const base = (): string[] => ['--base', `oci:${fx.layoutDir}:latest`, '--output', join(dir.path, 'lvl')];

  it('a level out of range is a usage error (exit 2) for iso, disk and build-all, before anything is read', async () => {
    const max = nativeAvailable() ? 12 : 9;
    for (const bad of ['0', String(max + 1), 'fast', '2.5', '']) {
      for (const cmd of [
        ['iso', ...base()],
        ['disk', ...base()],
        ['build-all', '--push'],
      ]) {
        const r = await cli([...cmd, '--squashfs-level', bad]);
        expect(r.code, `${cmd[0]!} ${bad}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(`--squashfs-level ${JSON.stringify(bad)} is invalid`);
        expect(r.stderr).toContain(`use 1..${String(max)}`);
      }
    }
    // node:zlib has no levels above 9: the hint says why (the CLI bundle in a child: the backend is per process).
    const bin = join(import.meta.dirname, '../../bin/canvos-lite.js');
    const env = { ...process.env, CANVOS_NO_NATIVE: '1', CANVOS_CACHE_DIR: join(dir.path, 'cache') };
    const js = await run(process.execPath, [bin, 'iso', ...base(), '--squashfs-level', '10'], { env });
    expect(js.code, js.stderr).toBe(2);
    expect(js.stderr).toContain('node:zlib');
    expect(await readdir(join(dir.path, 'lvl')).catch(() => null)).toBeNull();
  });

  it.skipIf(!nativeAvailable())('builds the ISO at level 1 and 12; the same level gives the same ISO', async () => {
    const iso = async (level: string, name: string): Promise<string> => {
      const r = await cli(['iso', ...base(), '--name', name, '--squashfs-level', level, '--json'], {
        SOURCE_DATE_EPOCH: '1700000000',
      });
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { sha256: string }).sha256;
    };
    const [l1, l12, again] = [await iso('1', 'l1'), await iso('12', 'l12'), await iso('12', 'l12b')];
    expect(l1).not.toBe(l12);
    expect(again).toBe(l12);
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
