// The package's install script (scripts/install-native.mjs): silent when a prebuild loads, a build from source
// otherwise, and ONE line, exit 0, when the optional addon cannot be built (never the node-gyp dump).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run, tmpDir } from './helpers/tools.js';
import { asUnprivileged, unprivilegedIdentity, unprivilegedTempDir } from './helpers/unprivileged.js';

const root = join(import.meta.dirname, '..');
let tmp: Awaited<ReturnType<typeof tmpDir>>;

/** A copy of the package's install-time files (no prebuilds unless asked), sharing the repo's node_modules. */
async function pkg(name: string, withPrebuilds = false, base = tmp.path): Promise<string> {
  const dir = join(base, name);
  await mkdir(join(dir, 'scripts'), { recursive: true });
  await cp(join(root, 'package.json'), join(dir, 'package.json'));
  await cp(join(root, 'scripts/install-native.mjs'), join(dir, 'scripts/install-native.mjs'));
  await cp(join(root, 'native/binding.gyp'), join(dir, 'native/binding.gyp'));
  await cp(join(root, 'native/src'), join(dir, 'native/src'), { recursive: true });
  if (withPrebuilds) await cp(join(root, 'native/prebuilds'), join(dir, 'native/prebuilds'), { recursive: true });
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

const install = (dir: string, env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [join(dir, 'scripts/install-native.mjs')], {
    cwd: dir,
    env: { ...process.env, ...env },
    timeoutMs: 180_000,
  });

beforeAll(async () => {
  tmp = await tmpDir('canvos-install-native-');
});
afterAll(async () => {
  await tmp.cleanup();
});

describe('install script (scripts/install-native.mjs)', () => {
  it('says nothing and builds nothing when the prebuild for this platform loads', async () => {
    const dir = await pkg('prebuilt', true);
    const r = await install(dir);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(existsSync(join(dir, 'native/build'))).toBe(false);
  });

  it('removes a build from source older than native/src (it would shadow the prebuild), and keeps a current one', async () => {
    const dir = await pkg('stale', true);
    const prebuild = join(dir, 'native/prebuilds', `linux-${process.arch}`);
    const node = (await readdir(prebuild)).find((f) => f.endsWith('.node'))!;
    const built = join(dir, 'native/build/Release/canvos_native.node');
    await mkdir(dirname(built), { recursive: true });
    // A current build (newer than the sources): left alone, silently, and it is what loads.
    await cp(join(prebuild, node), built);
    expect(await install(dir)).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(existsSync(built)).toBe(true);
    // The same build dated before the sources, as after a checkout that changed native/src.
    await utimes(built, new Date('2020-01-01'), new Date('2020-01-01'));
    const r = await install(dir);
    expect(r).toEqual({
      code: 0,
      stdout: '',
      stderr: 'native addon: removed native/build, a build from source older than native/src\n',
    });
    expect(existsSync(join(dir, 'native/build'))).toBe(false);
    const probe = "console.log(require('node-gyp-build').resolve('native'))";
    expect((await run(process.execPath, ['-e', probe], { cwd: dir })).stdout).toContain(
      `native/prebuilds/linux-${process.arch}/`,
    );
  });

  it('prints one line and exits 0 when the libdeflate/libzstd headers are missing', async () => {
    const dir = await pkg('no-headers');
    // The real compiler, blind to /usr/include: what a machine without libdeflate-dev/libzstd-dev sees.
    const cxx = join(tmp.path, 'cxx-no-headers');
    await writeFile(cxx, '#!/bin/sh\nexec c++ -nostdinc "$@"\n', { mode: 0o755 });
    const r = await install(dir, { CXX: cxx });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'native addon skipped: libdeflate/libzstd headers not found; using the JS fallback (apt-get install libdeflate-dev libzstd-dev)\n',
    );
  });

  it('prints one line and exits 0 without a C++ compiler', async () => {
    const r = await install(await pkg('no-compiler'), { CXX: join(tmp.path, 'no-such-c++') });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^native addon skipped: no C\+\+ compiler \(.*no-such-c\+\+\) found; using the JS fallback \(apt-get install g\+\+ libdeflate-dev libzstd-dev\)\n$/,
    );
  });

  it('prints one line (not the gyp dump) and exits 0 when node-gyp fails', async () => {
    const r = await install(await pkg('gyp-fails'), { npm_config_nodedir: join(tmp.path, 'no-node-headers') });
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stderr).toMatch(
      /^native addon skipped: the build from source failed: .*; using the JS fallback \(see why: node scripts\/install-native.mjs --verbose\)\n$/,
    );
  });

  it('builds from source when no prebuild matches and the headers exist; the result loads', async () => {
    const dir = await pkg('source');
    const r = await install(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`native addon built from source: ${join(dir, 'native/build/Release/canvos_native.node')}\n`);
    const probe =
      "const m = require(require('node-gyp-build').resolve('native')); console.log(m.libdeflateVersion, m.zstdVersion)";
    const loaded = await run(process.execPath, ['-e', probe], { cwd: dir });
    expect(loaded.stdout).toMatch(/^\d+\.\d+ \d+\.\d+\.\d+\n$/);
  });

  it('needs no root: as an unprivileged user the prebuild loads silently, and the build from source works', async () => {
    const id = unprivilegedIdentity();
    expect(id, 'the canvostest user (scripts/install-deps.sh)').not.toBeNull();
    const base = unprivilegedTempDir('canvos-install-native-');
    try {
      const dirs = [await pkg('prebuilt', true, base), await pkg('source', false, base)];
      expect((await run('chown', ['-R', `${id!.uid}:${id!.gid}`, ...dirs])).code).toBe(0);
      const as = async (dir: string) => {
        const [cmd, ...args] = asUnprivileged([process.execPath, join(dir, 'scripts/install-native.mjs')]);
        return run(cmd!, args, { cwd: dir, timeoutMs: 180_000 });
      };
      expect(await as(dirs[0]!)).toEqual({ code: 0, stdout: '', stderr: '' });
      const built = await as(dirs[1]!);
      expect(built.code, built.stderr).toBe(0);
      expect(built.stderr).toBe(
        `native addon built from source: ${join(dirs[1]!, 'native/build/Release/canvos_native.node')}\n`,
      );
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
