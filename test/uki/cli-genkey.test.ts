/**
 * `canvos-lite uki genkey` through the CLI: exit codes for refused inputs, and one rootless run of the bundled
 * bin/canvos-lite.js as the unprivileged user (the keys need no privilege).
 */
import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { run, tmpDir } from '../helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from '../helpers/unprivileged.js';

const repoRoot = resolve(import.meta.dirname, '../..');
const bin = join(repoRoot, 'bin', 'canvos-lite.js');
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('canvos-lite uki genkey', () => {
  it('usage errors exit 2, a missing Microsoft keys decision exits 3 with a hint', async () => {
    const t = await tmpDir('canvos-uki-cli-');
    dirs.push(t.path);
    const env = { PATH: process.env.PATH };
    expect((await runCli(['uki'], { env, cwd: t.path })).code).toBe(2);
    expect(
      (await runCli(['uki', 'genkey', '--expiration-in-days', 'ten', '--skip-microsoft-keys'], { env, cwd: t.path }))
        .code,
    ).toBe(2);
    const r = await runCli(['uki', 'genkey'], { env, cwd: t.path });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Microsoft.*\nhint: pass --microsoft-keys DIR/);
    expect(existsSync(join(t.path, 'secure-boot', 'private-keys'))).toBe(false);
    const both = await runCli(['uki', 'genkey', '--skip-microsoft-keys', '--microsoft-keys', 'x'], {
      env,
      cwd: t.path,
    });
    expect(both.code).toBe(2);
  });

  it.skipIf(!existsSync(bin) || !unprivilegedIdentity())(
    'runs rootless from the bundle; a second run refuses to replace the keys',
    async () => {
      const work = unprivilegedTempDir('canvos-uki-rootless-');
      dirs.push(work);
      const argv = asUnprivileged([
        'env',
        `HOME=${work}`,
        `PATH=${process.env.PATH}`,
        'SOURCE_DATE_EPOCH=1780000000',
        process.execPath,
        bin,
        'uki',
        'genkey',
        '--dir',
        join(work, 'sb'),
        '--org',
        'Rootless Org',
        '--skip-microsoft-keys',
        '--json',
      ]);
      const r = await run(argv[0] as string, argv.slice(1));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { files: string[]; counts: { KEK: number; db: number } };
      expect(out.files).toHaveLength(16);
      expect(out.counts).toEqual({ KEK: 1, db: 1 });
      expect((await readdir(join(work, 'sb', 'enrollment'))).length).toBe(9);
      expect((await stat(join(work, 'sb', 'private-keys', 'db.key'))).uid).toBe(unprivilegedIdentity()?.uid);
      const again = await run(argv[0] as string, argv.slice(1));
      expect(again.code).toBe(3);
      expect(again.stderr).toMatch(/PK\.key exists; refusing/);
    },
  );
});
