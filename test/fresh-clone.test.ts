// A fresh clone of the committed tree with `npm ci --ignore-scripts` (no install script, so nothing is built): the
// step scripts/test.sh runs first finds the prebuilt addon and builds nothing, and native.test, run in the clone with
// CANVOS_EXPECT_NATIVE=1 as test.sh does, passes on it. (The full README order, `npm ci --ignore-scripts && npm run
// demo && npm test`, is what .ci/run does on CI's own clean clone; this is the cheap check of the same point.)
// Uncommitted changes are not in the clone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, tmpDir } from './helpers/tools.js';

const root = join(import.meta.dirname, '..');
let tmp: Awaited<ReturnType<typeof tmpDir>>;
let clone: string;
// The clone's vitest must not think it runs inside this one.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(VITEST|TEST$|NODE_ENV$|CANVOS_|FORCE_COLOR$)/.test(k)),
);

async function ok(cmd: string, args: string[], extra: NodeJS.ProcessEnv = {}) {
  const r = await run(cmd, args, { cwd: clone, env: { ...env, ...extra }, timeoutMs: 300_000 });
  expect(r.code, `${cmd} ${args.join(' ')}: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`).toBe(0);
  return r;
}

beforeAll(async () => {
  tmp = await tmpDir('canvos-fresh-clone-');
  clone = join(tmp.path, 'canvos-lite');
  const r = await run('git', ['clone', '--quiet', root, clone]);
  expect(r.code, r.stderr).toBe(0);
  await ok('npm', ['ci', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn']);
}, 400_000);

afterAll(async () => {
  await tmp?.cleanup();
});

describe('a fresh clone installed with --ignore-scripts', () => {
  it('has the addon from the prebuilds: nothing to build, native.test passes with CANVOS_EXPECT_NATIVE=1', async () => {
    expect(existsSync(join(clone, 'native/build'))).toBe(false);
    const install = await ok(process.execPath, ['scripts/install-native.mjs']);
    expect(install.stdout + install.stderr).toBe('');
    expect(existsSync(join(clone, 'native/build'))).toBe(false);
    const resolved = await ok(process.execPath, [
      '-e',
      "process.stdout.write(require('node-gyp-build').resolve('native'))",
    ]);
    if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
      expect(resolved.stdout).toBe(join(clone, `native/prebuilds/linux-${process.arch}/node.napi.glibc.node`));
    }
    const t = await ok(join(clone, 'node_modules/.bin/vitest'), ['run', '--reporter=verbose', 'test/native.test.ts'], {
      CANVOS_EXPECT_NATIVE: '1',
      NO_COLOR: '1',
    });
    expect(t.stdout).toContain('chunk compressor native');
    expect(t.stdout).toMatch(/Tests\s+5 passed/);
  });
});
