/**
 * Class 1, time bounds on everything external: a registry that accepts and never answers, one that stalls in the
 * middle of a blob body, and a credential helper that never exits all end in a bounded time with a clear exit code,
 * the host named, nothing written at the destination and nothing left in $TMPDIR.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { blackHole, entries, expectCleanFailure, runBin, serveImage, type ServedImage } from './harness.js';

let served: ServedImage;
let authReg: TestRegistry;
let proxy: FaultProxy;
let tmp: { path: string };

beforeAll(async () => {
  [served, authReg] = await Promise.all([
    serveImage('canvos-rel-timeouts-', 512 * 1024),
    startRegistry({ auth: 'basic' }),
  ]);
  proxy = served.proxy;
  tmp = { path: served.dir };
}, 60_000);
afterAll(async () => {
  await Promise.all([served?.stop(), authReg?.stop()]);
});

describe('time bounds', () => {
  it('a registry that accepts and never answers: exit 10 naming the host within twice --timeout', async () => {
    const hole = await blackHole();
    try {
      const dest = join(tmp.path, 'out-blackhole');
      const r = await runBin([
        'copy',
        '--timeout',
        '2',
        '--src-insecure',
        `docker://${hole.host}/app:v1`,
        `oci:${dest}:v1`,
      ]);
      await expectCleanFailure(r, {
        code: 10,
        withinMs: 10_000,
        message: new RegExp(`${hole.host}.*no response within 2 s`),
      });
      expect(r.stderr).toMatch(/hint: .*raise --timeout/);
      expect(await entries(dest)).toBeNull();
    } finally {
      await hole.close();
    }
  });

  it('the default timeout is tens of seconds, not minutes (black hole, no --timeout)', async () => {
    const hole = await blackHole();
    try {
      const r = await runBin([
        'copy',
        '--src-insecure',
        `docker://${hole.host}/app:v1`,
        `oci:${join(tmp.path, 'out-default')}`,
      ]);
      await expectCleanFailure(r, { code: 10, withinMs: 75_000, message: /no response within 30 s/ });
      expect(r.ms).toBeGreaterThan(25_000);
    } finally {
      await hole.close();
    }
  }, 90_000);

  it('a blob body that stalls mid-way: exit 10 within the bound, the new destination is not created', async () => {
    proxy.clearRules();
    proxy.addRule({
      method: 'GET',
      path: /\/blobs\/sha256:/,
      times: Infinity,
      action: { kind: 'stall-mid-body', afterBytes: 100_000 },
    });
    const dest = join(tmp.path, 'out-stall');
    const r = await runBin([
      'copy',
      '--timeout',
      '2',
      '--src-insecure',
      `docker://${proxy.host}/app:v1`,
      `oci:${dest}:v1`,
    ]);
    proxy.clearRules();
    await expectCleanFailure(r, { code: 10, withinMs: 15_000, message: new RegExp(`${proxy.host}.*stalled`) });
    expect(await entries(dest)).toBeNull();
  });

  it('a credential helper that never exits is killed after --timeout: exit 8', async () => {
    const binDir = join(tmp.path, 'helper-bin');
    await mkdir(binDir, { recursive: true });
    const pidFile = join(tmp.path, 'helper.pid');
    await writeFile(join(binDir, 'docker-credential-sleepy'), `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 600\n`);
    await chmod(join(binDir, 'docker-credential-sleepy'), 0o755);
    const auth = join(tmp.path, 'auth-sleepy.json');
    await writeFile(auth, JSON.stringify({ credHelpers: { [authReg.host]: 'sleepy' } }));
    const r = await runBin(
      [
        'copy',
        '--timeout',
        '2',
        '--authfile',
        auth,
        '--src-insecure',
        `docker://${authReg.host}/app:v1`,
        `oci:${join(tmp.path, 'out-helper')}`,
      ],
      {
        env: { PATH: `${binDir}:${process.env.PATH}` },
      },
    );
    await expectCleanFailure(r, {
      code: 8,
      withinMs: 10_000,
      message: /docker-credential-sleepy did not answer .* within 2 s and was killed/,
    });
    const pid = Number(await readFile(pidFile, 'utf8'));
    // The shell exec'd sleep under the same pid: it must be gone.
    await new Promise((res) => setTimeout(res, 200));
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('--timeout is validated', async () => {
    const r = await runBin(['copy', '--timeout', 'soon', 'oci:/nonexistent', 'oci:/nonexistent2']);
    await expectCleanFailure(r, { code: 2, withinMs: 5_000, message: /--timeout must be a number of seconds/ });
  });
});
